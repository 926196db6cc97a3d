/**
 * Dataset loaders: parquet (as the Hugging Face hub serves datasets), JSONL / JSON arrays and CSV, in the
 * seed's schema (`original`, `parsed`, `total_mark`) or the generic chat format (`messages`). The format
 * is detected from the content (parquet magic bytes, a JSON array, JSON lines) and the extension; the schema
 * from the fields. Bad rows are counted by reason and never stop loading; only a file that cannot be a
 * dataset at all (missing, empty, unknown columns, unparseable CSV or parquet) is an error.
 */
import { parse as parseCsv } from "csv-parse/sync";
import { parquetMetadata, parquetReadObjects, parquetSchema } from "hyparquet";
import { BadRowCollector, excerpt } from "./bad_rows.ts";
import type { DatasetFormat, DatasetRow, DatasetSchema, LoadedDataset } from "./types.ts";
import { validateChatRow, validateSeedRow } from "./validate.ts";

const SEED_FIELDS = ["original", "parsed", "total_mark"];
const CHAT_FIELDS = ["messages"];

/** A dataset file's problem that makes it unreadable as a whole (not a single bad row). */
export class DatasetError extends Error {
  override name = "DatasetError";
}

const PARQUET_MAGIC = [0x50, 0x41, 0x52, 0x31]; // "PAR1"

function hasPrefix(bytes: Uint8Array, prefix: number[]): boolean {
  return prefix.every((byte, i) => bytes[i] === byte);
}

function stripBom(text: string): string {
  return text.charCodeAt(0) === 0xfeff ? text.slice(1) : text;
}

/** Detects the format from magic bytes, then the extension, then the first non-blank character. */
export function detectFormat(bytes: Uint8Array, path: string): DatasetFormat {
  if (hasPrefix(bytes, PARQUET_MAGIC)) return "parquet";
  const lower = path.toLowerCase();
  if (lower.endsWith(".parquet")) return "parquet";
  if (lower.endsWith(".csv") || lower.endsWith(".tsv")) return "csv";
  if (lower.endsWith(".jsonl") || lower.endsWith(".ndjson")) return "jsonl";
  let start = 0;
  if (hasPrefix(bytes, [0xef, 0xbb, 0xbf])) start = 3;
  while (start < bytes.length && [0x20, 0x09, 0x0a, 0x0d].includes(bytes[start])) start++;
  const first = bytes[start];
  if (first === 0x5b /* [ */) {
    // A file that is one JSON array is a JSON dataset; JSON lines may also start with "[" (a bad row).
    try {
      if (Array.isArray(JSON.parse(new TextDecoder().decode(bytes)))) return "json";
    } catch {
      return "jsonl";
    }
  }
  if (first === 0x7b /* { */ || lower.endsWith(".json")) return "jsonl";
  return "csv";
}

function schemaFromFields(fields: Iterable<string>, path: string): DatasetSchema {
  const names = new Set(fields);
  if (CHAT_FIELDS.every((field) => names.has(field))) return "chat";
  if (SEED_FIELDS.some((field) => names.has(field))) return "seed";
  throw new DatasetError(
    `${path}: unknown columns [${[...names].join(", ")}]; expected the seed's (${
      SEED_FIELDS.join(", ")
    }) or ` +
      `the chat format's (${CHAT_FIELDS.join(", ")})`,
  );
}

interface RawRecord {
  line: number;
  value: unknown;
}

class Assembler {
  readonly bad = new BadRowCollector();
  readonly rows: DatasetRow[] = [];
  rowsRead = 0;
  schema: DatasetSchema | null = null;

  constructor(readonly path: string, readonly numericStrings: boolean) {}

  /** Decides the schema from the first record that is an object, as the rows come. */
  add(record: RawRecord): void {
    const { line, value } = record;
    if (this.schema === null && typeof value === "object" && value !== null && !Array.isArray(value)) {
      this.schema = schemaFromFields(Object.keys(value), this.path);
    }
    const result = this.schema === "chat"
      ? validateChatRow(value, line)
      : validateSeedRow(value, line, { numericStrings: this.numericStrings });
    if (result.ok) this.rows.push(result.row);
    else this.bad.add(line, result.reason, result.detail);
  }

  finish(format: DatasetFormat): LoadedDataset {
    if (this.rowsRead === 0) throw new DatasetError(`${this.path}: the file has no rows`);
    if (this.schema === null) {
      throw new DatasetError(
        `${this.path}: no row is a JSON object, so neither the seed's schema nor the chat format was found ` +
          `(${excerpt(this.bad.report().counts)})`,
      );
    }
    return {
      path: this.path,
      format,
      schema: this.schema,
      rowsRead: this.rowsRead,
      rows: this.rows,
      bad: this.bad.report(),
    };
  }
}

function loadJsonLines(bytes: Uint8Array, path: string): LoadedDataset {
  const assembler = new Assembler(path, false);
  const decoder = new TextDecoder("utf-8", { fatal: true });
  let lineStart = 0;
  let lineNumber = 0;
  while (lineStart <= bytes.length) {
    const newline = bytes.indexOf(0x0a, lineStart);
    const end = newline === -1 ? bytes.length : newline;
    const lineBytes = bytes.subarray(lineStart, end);
    lineStart = end + 1;
    lineNumber++;
    // The final newline of a file ends the last line; it does not start an empty one.
    if (newline === -1 && lineBytes.length === 0) break;
    assembler.rowsRead++;
    let text: string;
    try {
      text = decoder.decode(lineBytes);
    } catch {
      assembler.bad.add(lineNumber, "invalid_utf8", "the line is not valid UTF-8");
      continue;
    }
    if (lineNumber === 1) text = stripBom(text);
    if (text.trim() === "") {
      assembler.bad.add(lineNumber, "blank_line", "empty line");
      continue;
    }
    let value: unknown;
    try {
      value = JSON.parse(text);
    } catch (err) {
      assembler.bad.add(lineNumber, "invalid_json", `${(err as Error).message}: ${excerpt(text)}`);
      continue;
    }
    assembler.add({ line: lineNumber, value });
  }
  return assembler.finish("jsonl");
}

function loadJsonArray(bytes: Uint8Array, path: string): LoadedDataset {
  let values: unknown[];
  try {
    values = JSON.parse(stripBom(new TextDecoder("utf-8", { fatal: true }).decode(bytes)));
  } catch (err) {
    throw new DatasetError(`${path}: not a valid UTF-8 JSON array (${(err as Error).message})`);
  }
  const assembler = new Assembler(path, false);
  assembler.rowsRead = values.length;
  values.forEach((value, index) => assembler.add({ line: index + 1, value }));
  return assembler.finish("json");
}

function loadCsv(bytes: Uint8Array, path: string): LoadedDataset {
  // Invalid UTF-8 is decoded to U+FFFD; a record that then holds U+FFFD is rejected, but only when the
  // file really had invalid bytes (a valid file may contain U+FFFD on purpose).
  let hasInvalidUtf8 = false;
  try {
    new TextDecoder("utf-8", { fatal: true }).decode(bytes);
  } catch {
    hasInvalidUtf8 = true;
  }
  const text = stripBom(new TextDecoder().decode(bytes));
  if (text.trim() === "") throw new DatasetError(`${path}: the file is empty`);
  const assembler = new Assembler(path, true);
  let records: { record: string[]; info: { lines: number } }[];
  try {
    records = parseCsv(text, {
      delimiter: path.toLowerCase().endsWith(".tsv") ? "\t" : ",",
      info: true,
      relax_column_count: true,
      skip_empty_lines: true,
      skip_records_with_error: true,
      on_skip: (err) => {
        assembler.rowsRead++;
        const lines = Number((err as { lines?: number } | undefined)?.lines ?? 0);
        assembler.bad.add(lines, "invalid_csv", err?.message ?? "unparseable record");
        return undefined;
      },
    }) as unknown as { record: string[]; info: { lines: number } }[];
  } catch (err) {
    throw new DatasetError(`${path}: cannot parse as CSV (${(err as Error).message})`);
  }
  if (records.length === 0) throw new DatasetError(`${path}: the CSV has no header`);
  const header = records[0].record.map((name) => name.trim());
  schemaFromFields(header, path);
  for (const { record, info } of records.slice(1)) {
    assembler.rowsRead++;
    if (record.length !== header.length) {
      assembler.bad.add(
        info.lines,
        "wrong_column_count",
        `${record.length} fields, the header has ${header.length}: ${excerpt(record.join(","))}`,
      );
      continue;
    }
    if (hasInvalidUtf8 && record.some((field) => field.includes("\ufffd"))) {
      assembler.bad.add(info.lines, "invalid_utf8", "the record is not valid UTF-8");
      continue;
    }
    assembler.add({
      line: info.lines,
      value: Object.fromEntries(header.map((name, i) => [name, record[i]])),
    });
  }
  return assembler.finish("csv");
}

async function loadParquet(bytes: Uint8Array, path: string): Promise<LoadedDataset> {
  const buffer = bytes.buffer.slice(bytes.byteOffset, bytes.byteOffset + bytes.byteLength) as ArrayBuffer;
  let rows: Record<string, unknown>[];
  let columns: string[];
  try {
    const metadata = parquetMetadata(buffer);
    columns = parquetSchema(metadata).children.map((child) => child.element.name);
    rows = await parquetReadObjects({ file: buffer, metadata });
  } catch (err) {
    throw new DatasetError(`${path}: not a readable parquet file (${(err as Error).message})`);
  }
  schemaFromFields(columns, path);
  const assembler = new Assembler(path, false);
  assembler.rowsRead = rows.length;
  rows.forEach((row, index) => {
    // Parquet has no "missing field": a null in a nullable column is the closest, and counts as missing.
    const value = Object.fromEntries(Object.entries(row).filter(([, v]) => v !== null && v !== undefined));
    assembler.add({ line: index + 1, value });
  });
  return assembler.finish("parquet");
}

/** Parses dataset bytes; `path` names the source in messages and hints the format by its extension. */
export async function parseDataset(bytes: Uint8Array, path: string): Promise<LoadedDataset> {
  if (bytes.length === 0) throw new DatasetError(`${path}: the file is empty`);
  const format = detectFormat(bytes, path);
  if (format === "parquet") return await loadParquet(bytes, path);
  if (format === "json") return loadJsonArray(bytes, path);
  if (format === "jsonl") return loadJsonLines(bytes, path);
  return loadCsv(bytes, path);
}

/** Reads and parses a dataset file (parquet, JSONL, JSON array or CSV; seed schema or chat format). */
export async function loadDataset(path: string): Promise<LoadedDataset> {
  let bytes: Uint8Array;
  try {
    bytes = await Deno.readFile(path);
  } catch (err) {
    if (err instanceof Deno.errors.NotFound) {
      throw new DatasetError(`dataset file ${path} does not exist: check the path`);
    }
    throw err;
  }
  return await parseDataset(bytes, path);
}
