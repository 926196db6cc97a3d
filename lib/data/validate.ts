/**
 * Row validation shared by every file format: a raw record (a parsed JSON object, a CSV record, a parquet
 * row) becomes a typed row or a reason code. Reason codes are stable strings so reports and tests can
 * count them.
 */
import { excerpt } from "./bad_rows.ts";
import type { ChatMessage, ChatRole, ChatRow, Replica, SeedRow } from "./types.ts";

export type Validated<T> = { ok: true; row: T } | { ok: false; reason: string; detail: string };

function fail<T>(reason: string, detail: string): Validated<T> {
  return { ok: false, reason, detail };
}

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === "object" && value !== null && !Array.isArray(value);
}

/** A finite number, from a number, a safe bigint (parquet INT64), or, when allowed, a numeric string. */
function toMark(value: unknown, numericStrings: boolean): number | null {
  if (typeof value === "number") return Number.isFinite(value) ? value : null;
  if (typeof value === "bigint") {
    const number = Number(value);
    return Number.isSafeInteger(number) ? number : null;
  }
  if (numericStrings && typeof value === "string" && /^\s*[-+]?\d+(\.\d+)?\s*$/.test(value)) {
    return Number(value);
  }
  return null;
}

/**
 * `parsed` as a list, accepting the hub's two encodings: a list of structs (parquet, JSON) or that list as a
 * JSON string (CSV exports).
 */
function toList(value: unknown): unknown[] | null {
  if (Array.isArray(value)) return value;
  if (typeof value === "string") {
    try {
      const decoded = JSON.parse(value);
      return Array.isArray(decoded) ? decoded : null;
    } catch {
      return null;
    }
  }
  return null;
}

export interface SeedValidationOptions {
  /**
   * Accept `total_mark` given as a numeric string. CSV has no types, so its loader turns this on; typed
   * formats (JSON, parquet) keep it off, where a string mark means a wrong column.
   */
  numericStrings?: boolean;
}

/** Validates one record of the seed's schema (`original`, `parsed`, `total_mark`; other fields ignored). */
export function validateSeedRow(
  raw: unknown,
  line: number,
  options: SeedValidationOptions = {},
): Validated<SeedRow> {
  if (!isRecord(raw)) return fail("not_an_object", `expected a JSON object, got ${excerpt(raw)}`);
  if (!("original" in raw)) return fail("missing_original", "no `original` field");
  if (typeof raw.original !== "string") {
    return fail("original_not_string", `\`original\` is ${excerpt(raw.original)}`);
  }
  if (!("parsed" in raw)) return fail("missing_parsed", "no `parsed` field");
  const items = toList(raw.parsed);
  if (items === null) return fail("parsed_not_list", `\`parsed\` is not a list: ${excerpt(raw.parsed)}`);
  const replicas: Replica[] = [];
  for (const [index, item] of items.entries()) {
    if (!isRecord(item)) {
      return fail(
        "replica_not_object",
        `\`parsed[${index}]\` is ${excerpt(item)}, not {speaker_name, phrase}`,
      );
    }
    const speaker = item.speaker_name ?? "";
    if (typeof speaker !== "string") {
      return fail("speaker_name_not_string", `\`parsed[${index}].speaker_name\` is ${excerpt(speaker)}`);
    }
    if (!("phrase" in item)) return fail("missing_phrase", `\`parsed[${index}]\` has no \`phrase\``);
    if (typeof item.phrase !== "string") {
      return fail("phrase_not_string", `\`parsed[${index}].phrase\` is ${excerpt(item.phrase)}`);
    }
    if (item.phrase.trim() === "") return fail("empty_phrase", `\`parsed[${index}].phrase\` is blank`);
    replicas.push({ speakerName: speaker, phrase: item.phrase });
  }
  if (!("total_mark" in raw) || raw.total_mark === undefined) {
    return fail("missing_total_mark", "no `total_mark` field");
  }
  const totalMark = toMark(raw.total_mark, options.numericStrings ?? false);
  if (totalMark === null) {
    return fail("total_mark_not_number", `\`total_mark\` is ${excerpt(raw.total_mark)}, not a number`);
  }
  return { ok: true, row: { kind: "seed", line, original: raw.original, replicas, totalMark } };
}

const ROLES: ReadonlySet<string> = new Set<ChatRole>(["system", "user", "assistant"]);

/** Validates one record of the chat format `{"messages": [{"role", "content"}]}`. */
export function validateChatRow(raw: unknown, line: number): Validated<ChatRow> {
  if (!isRecord(raw)) return fail("not_an_object", `expected a JSON object, got ${excerpt(raw)}`);
  if (!("messages" in raw)) return fail("missing_messages", "no `messages` field");
  const items = toList(raw.messages);
  if (items === null) {
    return fail("messages_not_list", `\`messages\` is not a list: ${excerpt(raw.messages)}`);
  }
  const messages: ChatMessage[] = [];
  for (const [index, item] of items.entries()) {
    if (!isRecord(item)) return fail("message_not_object", `\`messages[${index}]\` is ${excerpt(item)}`);
    if (typeof item.role !== "string" || !ROLES.has(item.role)) {
      return fail(
        "bad_role",
        `\`messages[${index}].role\` is ${excerpt(item.role)}: use system, user or assistant`,
      );
    }
    if (typeof item.content !== "string") {
      return fail("content_not_string", `\`messages[${index}].content\` is ${excerpt(item.content)}`);
    }
    if (item.content.trim() === "") return fail("empty_content", `\`messages[${index}].content\` is blank`);
    messages.push({ role: item.role as ChatRole, content: item.content });
  }
  return { ok: true, row: { kind: "chat", line, messages } };
}
