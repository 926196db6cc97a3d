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

Deno.test({
  name: `the shipped sample loads and prepares without NaN${
    haveSample ? "" : " (SKIPPED: data/anekdots_sample.jsonl missing)"
  }`,
  ignore: !haveSample,
  async fn() {
    const { prepareDataset, formatDatasetStats } = await import("../../../lib/data/prepare.ts");
    const prepared = prepareDataset(await loadDataset(target), { evalSize: 0.1, seed: 42 });
    assert.ok(prepared.stats.kept >= 400, `only ${prepared.stats.kept} usable dialogs in the sample`);
    const trainPairs = new Set(prepared.train.map((e) => JSON.stringify(e.messages)));
    assert.ok(
      prepared.eval.every((e) => !trainPairs.has(JSON.stringify(e.messages))),
      "an eval pair is also trained on",
    );
    assert.ok(!formatDatasetStats(prepared.stats).includes("NaN"));
  },
});
