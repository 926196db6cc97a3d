import assert from "node:assert/strict";
import { countCodePoints, countWhitespaceWords, summarizeLengths } from "../../../lib/data/stats.ts";

Deno.test("summarizeLengths: hand-checked summary and histogram", () => {
  const summary = summarizeLengths([1, 2, 2, 3, 10], 4);
  // width = ceil(11 / 4) = 3: bins 0-2, 3-5, 6-8, 9-11.
  assert.deepEqual(summary.histogram, [
    { from: 0, to: 2, count: 3 },
    { from: 3, to: 5, count: 1 },
    { from: 6, to: 8, count: 0 },
    { from: 9, to: 11, count: 1 },
  ]);
  assert.equal(summary.mean, 18 / 5);
  assert.equal(summary.median, 2);
  assert.equal(summary.p95, 10);
  assert.equal(summary.min, 1);
});

Deno.test("summarizeLengths: empty input has nulls, not NaN; bad counts are errors", () => {
  assert.deepEqual(summarizeLengths([]), {
    count: 0,
    min: null,
    max: null,
    mean: null,
    median: null,
    p95: null,
    histogram: [],
  });
  assert.throws(() => summarizeLengths([1.5]), /non-negative integers/);
  assert.throws(() => summarizeLengths([1], 0), RangeError);
});

Deno.test("token counters: whitespace words and code points", () => {
  assert.equal(countWhitespaceWords("  Штирлиц  шёл\tпо\nкоридору "), 4);
  assert.equal(countWhitespaceWords(""), 0);
  assert.equal(countCodePoints("ёж😀"), 3);
});
