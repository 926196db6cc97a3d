/**
 * Writes seed rows as parquet in the layout the Hugging Face hub serves (pyarrow's):
 * `original: string`, `parsed: list<element: struct<speaker_name: string, phrase: string>>`,
 * `total_mark: int64` (or `double` when a mark is fractional).
 */
import { parquetWriteBuffer } from "hyparquet-writer";
import type { SeedRow } from "./types.ts";

/** Identifies this writer in the file metadata (constant, so the same rows give the same bytes). */
const CREATED_BY = "ostrota lib/data/parquet_write.ts";

/** Encodes seed rows as a parquet file. Deterministic: equal rows give equal bytes. */
export function seedRowsToParquet(rows: readonly SeedRow[]): Uint8Array {
  if (rows.length === 0) {
    throw new RangeError("no rows to write: a parquet sample needs at least one valid row");
  }
  const integerMarks = rows.every((row) => Number.isSafeInteger(row.totalMark));
  const buffer = parquetWriteBuffer({
    createdBy: CREATED_BY,
    columnData: [
      { name: "original", data: rows.map((row) => row.original) },
      {
        name: "parsed",
        data: rows.map((row) => row.replicas.map((r) => ({ speaker_name: r.speakerName, phrase: r.phrase }))),
      },
      {
        name: "total_mark",
        data: integerMarks ? rows.map((row) => BigInt(row.totalMark)) : rows.map((row) => row.totalMark),
      },
    ],
    schema: [
      { name: "root", num_children: 3 },
      { name: "original", type: "BYTE_ARRAY", converted_type: "UTF8", repetition_type: "OPTIONAL" },
      { name: "parsed", repetition_type: "OPTIONAL", converted_type: "LIST", num_children: 1 },
      { name: "list", repetition_type: "REPEATED", num_children: 1 },
      { name: "element", repetition_type: "OPTIONAL", num_children: 2 },
      { name: "speaker_name", type: "BYTE_ARRAY", converted_type: "UTF8", repetition_type: "OPTIONAL" },
      { name: "phrase", type: "BYTE_ARRAY", converted_type: "UTF8", repetition_type: "OPTIONAL" },
      { name: "total_mark", type: integerMarks ? "INT64" : "DOUBLE", repetition_type: "OPTIONAL" },
    ],
  });
  return new Uint8Array(buffer);
}
