import assert from "node:assert/strict";
import { loadDataset } from "../../../lib/data/load.ts";
import { convertSample, DEFAULT_SOURCE, DEFAULT_TARGET } from "../../../lib/data/make_sample.ts";
import { seedRowsToParquet } from "../../../lib/data/parquet_write.ts";
import type { SeedRow } from "../../../lib/data/types.ts";

const root = new URL("../../../", import.meta.url).pathname;
const source = `${root}${DEFAULT_SOURCE}`;
const target = `${root}${DEFAULT_TARGET}`;
const haveSample = (() => {
  try {
    Deno.statSync(source);
    Deno.statSync(target);
    return true;
  } catch {
    return false;
  }
})();

Deno.test({
  name: `data/anekdots_sample.parquet is the current conversion of the JSONL${
    haveSample ? "" : " (SKIPPED: data/anekdots_sample.{jsonl,parquet} missing; run deno task make-sample)"
  }`,
  ignore: !haveSample,
  async fn() {
    const { bytes } = await convertSample(source);
    const shipped = await Deno.readFile(target);
    assert.ok(
      bytes.length === shipped.length && bytes.every((byte, i) => byte === shipped[i]),
      "data/anekdots_sample.parquet is stale: run deno task make-sample",
    );
    const fromJsonl = await loadDataset(source);
    const fromParquet = await loadDataset(target);
    assert.equal(fromParquet.rows.length, fromJsonl.rows.length);
    assert.deepEqual(
      fromParquet.rows.map((row) => (row as SeedRow).replicas),
      fromJsonl.rows.map((row) => (row as SeedRow).replicas),
    );
  },
});

Deno.test("seedRowsToParquet: deterministic bytes, no rows is an error", () => {
  const rows: SeedRow[] = [{
    kind: "seed",
    line: 1,
    original: "o",
    replicas: [{ speakerName: "", phrase: "p" }],
    totalMark: 2,
  }];
  assert.deepEqual(seedRowsToParquet(rows), seedRowsToParquet(rows));
  assert.throws(() => seedRowsToParquet([]), /at least one valid row/);
});
