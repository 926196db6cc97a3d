import assert from "node:assert/strict";
import { evaluateOutputs } from "../../../lib/report/evaluate.ts";
import { corpusBleu } from "../../../lib/metrics/bleu.ts";

Deno.test("evaluateOutputs: scores, mean answer words and kept examples", () => {
  const result = evaluateOutputs(
    {
      prompts: ["p1", "p2"],
      references: ["the quick brown fox jumps over the lazy dog", "a b c d e"],
      outputs: ["the fast brown foxes jumped over a lazy dog", ""],
    },
    { exampleCount: 1 },
  );
  assert.equal(
    result.bleu,
    corpusBleu(["the fast brown foxes jumped over a lazy dog", ""], [[
      "the quick brown fox jumps over the lazy dog",
      "a b c d e",
    ]]).score,
  );
  // METEOR of the empty output is 0, so the mean is half of the first sentence's nltk value.
  assert.ok(Math.abs(result.meteor - 0.8654513889 / 2) < 1e-9);
  assert.equal(result.meanAnswerWords, 9 / 2);
  assert.deepEqual(result.examples, [{
    prompt: "p1",
    reference: "the quick brown fox jumps over the lazy dog",
    output: "the fast brown foxes jumped over a lazy dog",
  }]);
});

Deno.test("evaluateOutputs: mismatched or empty inputs are RangeErrors", () => {
  assert.throws(() => evaluateOutputs({ prompts: [], references: [], outputs: [] }), /no outputs/);
  assert.throws(
    () => evaluateOutputs({ prompts: ["p"], references: ["r", "s"], outputs: ["o"] }),
    /same length/,
  );
});
