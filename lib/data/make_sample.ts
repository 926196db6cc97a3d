/**
 * `deno task make-sample [SOURCE.jsonl] [OUT.parquet]`: converts the hand-written sample (JSONL, with its
 * deliberately malformed rows) to the parquet the lab ships, the way the hub serves the real dataset.
 * Every schema-valid row is written in file order (longer dialogs included: the two-replica filter belongs
 * to preprocessing, not to the file); rows that fail validation cannot be typed and are reported instead.
 */
import { loadDataset } from "./load.ts";
import { seedRowsToParquet } from "./parquet_write.ts";
import type { SeedRow } from "./types.ts";

export const DEFAULT_SOURCE = "data/anekdots_sample.jsonl";
export const DEFAULT_TARGET = "data/anekdots_sample.parquet";

/** Converts `source` to parquet bytes; returns them with a one-paragraph summary. */
export async function convertSample(source: string): Promise<{ bytes: Uint8Array; summary: string }> {
  const dataset = await loadDataset(source);
  if (dataset.schema !== "seed") {
    throw new TypeError(`${source} is in the chat format; make-sample converts the seed's schema only`);
  }
  const rows = dataset.rows as SeedRow[];
  const bytes = seedRowsToParquet(rows);
  const skipped = Object.entries(dataset.bad.counts).map(([reason, count]) => `${reason} ${count}`).join(
    ", ",
  );
  const summary = `${source}: ${dataset.rowsRead} lines, ${rows.length} valid rows written` +
    (skipped === "" ? "" : `; skipped ${skipped}`);
  return { bytes, summary };
}

if (import.meta.main) {
  const [source = DEFAULT_SOURCE, target = DEFAULT_TARGET] = Deno.args;
  const { bytes, summary } = await convertSample(source);
  await Deno.writeFile(target, bytes);
  console.log(`${summary}\nwrote ${target} (${bytes.length} bytes)`);
}
