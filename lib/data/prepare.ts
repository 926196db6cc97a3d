/**
 * The seed's preprocessing: keep dialogs with exactly two replicas (first = user, second = assistant),
 * sort by `total_mark` descending (stable), take N, split train/eval deterministically by seed, and
 * standardise to chat messages. Exact duplicate pairs are dropped first so that no evaluation example is
 * also a training example.
 */
import { BadRowCollector } from "./bad_rows.ts";
import { type CountTokens, countWhitespaceWords, type LengthSummary, summarizeLengths } from "./stats.ts";
import type {
  BadRowReport,
  ChatExample,
  ChatMessage,
  DatasetFormat,
  DatasetSchema,
  LoadedDataset,
} from "./types.ts";

export interface PrepareOptions {
  /** Take the N best-rated dialogs after sorting (default: all). */
  limit?: number;
  /** Evaluation examples: a count (>= 1) or a fraction in (0, 1). Default 0.1. */
  evalSize?: number;
  /** Seed of the train/eval split. Default 0. */
  seed?: number;
  /** Token counter for the length statistics. Default {@link countWhitespaceWords}. */
  countTokens?: CountTokens;
  /** Name of the counter, shown in reports. Default "whitespace words" (or "custom" for another counter). */
  tokenCounterName?: string;
  /** Optional system message put before every dialog. */
  systemPrompt?: string;
}

export interface DatasetStats {
  path: string;
  format: DatasetFormat;
  schema: DatasetSchema;
  /** Records seen in the file. */
  rowsRead: number;
  /** Rows that passed schema validation. */
  valid: number;
  /** Rows left after the two-replica filter and de-duplication. */
  kept: number;
  /** Rows taken after sorting (the limit). */
  selected: number;
  train: number;
  eval: number;
  seed: number;
  /** Every dropped row by reason: malformed rows, filtered dialogs, duplicates. */
  dropped: Record<string, number>;
  /** The first few dropped rows. */
  droppedExamples: BadRowReport["examples"];
  tokenCounter: string;
  /** Token lengths of the selected examples (train and eval). */
  lengths: { prompt: LengthSummary; answer: LengthSummary };
}

export interface PreparedDataset {
  train: ChatExample[];
  eval: ChatExample[];
  stats: DatasetStats;
}

/** mulberry32: a small, well-known 32-bit PRNG, so the split is the same on every platform. */
function mulberry32(seed: number): () => number {
  let state = seed >>> 0;
  return () => {
    state = (state + 0x6d2b79f5) >>> 0;
    let t = state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** Indices 0..n-1 in a seeded Fisher-Yates order. */
export function seededPermutation(n: number, seed: number): number[] {
  const random = mulberry32(seed);
  const order = Array.from({ length: n }, (_, i) => i);
  for (let i = n - 1; i > 0; i--) {
    const j = Math.floor(random() * (i + 1));
    [order[i], order[j]] = [order[j], order[i]];
  }
  return order;
}

function evalCount(evalSize: number, selected: number): number {
  if (!Number.isFinite(evalSize) || evalSize <= 0) {
    throw new RangeError(`evalSize must be a count >= 1 or a fraction in (0, 1), got ${evalSize}`);
  }
  const count = evalSize < 1 ? Math.round(evalSize * selected) : evalSize;
  if (!Number.isInteger(count)) {
    throw new RangeError(`evalSize ${evalSize} must be a whole number of examples`);
  }
  if (selected > 0 && count >= selected) {
    throw new RangeError(
      `evalSize ${evalSize} leaves no training example out of ${selected}: lower evalSize or raise limit`,
    );
  }
  return count;
}

/** The user/assistant pair of a row, or the reason it is not one. */
function toPair(
  row: LoadedDataset["rows"][number],
): { messages: ChatMessage[]; mark: number | null } | string {
  if (row.kind === "seed") {
    if (row.replicas.length !== 2) return "not_two_replicas";
    return {
      messages: [
        { role: "user", content: row.replicas[0].phrase.trim() },
        { role: "assistant", content: row.replicas[1].phrase.trim() },
      ],
      mark: row.totalMark,
    };
  }
  const turns = row.messages.filter((message) => message.role !== "system");
  if (turns.length !== 2 || turns[0].role !== "user" || turns[1].role !== "assistant") {
    return "not_user_assistant_pair";
  }
  return { messages: turns.map((m) => ({ role: m.role, content: m.content.trim() })), mark: null };
}

/** Runs the seed's preprocessing on a loaded dataset. */
export function prepareDataset(dataset: LoadedDataset, options: PrepareOptions = {}): PreparedDataset {
  const seed = options.seed ?? 0;
  if (!Number.isInteger(seed)) throw new RangeError(`seed must be an integer, got ${seed}`);
  if (options.limit !== undefined && !(Number.isInteger(options.limit) && options.limit >= 1)) {
    throw new RangeError(`limit must be a positive integer, got ${options.limit}`);
  }
  const dropped = new BadRowCollector();
  dropped.merge(dataset.bad);
  const seen = new Set<string>();
  const kept: ChatExample[] = [];
  for (const row of dataset.rows) {
    const pair = toPair(row);
    if (typeof pair === "string") {
      dropped.add(row.line, pair, "only dialogs of one user replica and one assistant replica are used");
      continue;
    }
    const key = JSON.stringify(pair.messages.map((m) => m.content));
    if (seen.has(key)) {
      dropped.add(row.line, "duplicate", "the same prompt and answer appear on an earlier line");
      continue;
    }
    seen.add(key);
    const messages: ChatMessage[] = options.systemPrompt === undefined
      ? pair.messages
      : [{ role: "system", content: options.systemPrompt }, ...pair.messages];
    kept.push({ messages, totalMark: pair.mark, line: row.line });
  }
  // Array.prototype.sort is stable, so equal marks keep file order, as the seed's pandas sort does.
  const sorted = [...kept].sort((a, b) => (b.totalMark ?? 0) - (a.totalMark ?? 0));
  const selected = options.limit === undefined ? sorted : sorted.slice(0, options.limit);
  const evalN = evalCount(options.evalSize ?? 0.1, selected.length);
  const evalIndices = new Set(seededPermutation(selected.length, seed).slice(0, evalN));
  const train = selected.filter((_, i) => !evalIndices.has(i));
  const evalSet = selected.filter((_, i) => evalIndices.has(i));
  const countTokens = options.countTokens ?? countWhitespaceWords;
  const contentOf = (example: ChatExample, role: string) =>
    example.messages.find((message) => message.role === role)?.content ?? "";
  const report = dropped.report();
  return {
    train,
    eval: evalSet,
    stats: {
      path: dataset.path,
      format: dataset.format,
      schema: dataset.schema,
      rowsRead: dataset.rowsRead,
      valid: dataset.rows.length,
      kept: kept.length,
      selected: selected.length,
      train: train.length,
      eval: evalSet.length,
      seed,
      dropped: report.counts,
      droppedExamples: report.examples,
      tokenCounter: options.tokenCounterName ?? (options.countTokens ? "custom" : "whitespace words"),
      lengths: {
        prompt: summarizeLengths(selected.map((example) => countTokens(contentOf(example, "user")))),
        answer: summarizeLengths(selected.map((example) => countTokens(contentOf(example, "assistant")))),
      },
    },
  };
}

function formatSummary(summary: LengthSummary): string {
  if (summary.count === 0) return "no examples";
  const mean = (summary.mean as number).toFixed(1);
  return `min ${summary.min}, median ${summary.median}, mean ${mean}, p95 ${summary.p95}, max ${summary.max}`;
}

/** A readable multi-line account of the preprocessing, for CLIs and logs. */
export function formatDatasetStats(stats: DatasetStats): string {
  const lines = [
    `${stats.path} (${stats.format}, ${stats.schema} schema)`,
    `rows read ${stats.rowsRead}, valid ${stats.valid}, kept ${stats.kept}, selected ${stats.selected} ` +
    `-> train ${stats.train}, eval ${stats.eval} (seed ${stats.seed})`,
  ];
  const reasons = Object.entries(stats.dropped).sort((a, b) => b[1] - a[1]);
  if (reasons.length > 0) {
    lines.push(`dropped: ${reasons.map(([reason, count]) => `${reason} ${count}`).join(", ")}`);
    for (const example of stats.droppedExamples) {
      lines.push(`  line ${example.line}: ${example.reason}: ${example.detail}`);
    }
  }
  lines.push(`prompt length (${stats.tokenCounter}): ${formatSummary(stats.lengths.prompt)}`);
  lines.push(`answer length (${stats.tokenCounter}): ${formatSummary(stats.lengths.answer)}`);
  return lines.join("\n");
}
