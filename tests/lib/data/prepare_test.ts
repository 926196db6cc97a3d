import assert from "node:assert/strict";
import { parseDataset } from "../../../lib/data/load.ts";
import { formatDatasetStats, prepareDataset, seededPermutation } from "../../../lib/data/prepare.ts";
import { bytesOf, seedLine } from "./helpers.ts";

async function sample() {
  const lines = [
    seedLine("q1", "a1", 5),
    seedLine("q2", "a2", 9),
    seedLine("q3", "a3", 5),
    JSON.stringify({
      original: "- a\n- b\n- c",
      parsed: [{ speaker_name: "", phrase: "a" }, { speaker_name: "", phrase: "b" }, {
        speaker_name: "",
        phrase: "c",
      }],
      total_mark: 100,
    }),
    seedLine("  q4 ", "\ta4  ", 1),
    seedLine("q2", "a2", 3),
    seedLine("q5", "a5", 7),
    "not json",
  ];
  return await parseDataset(bytesOf(lines.join("\n")), "sample.jsonl");
}

Deno.test("prepare: two-replica filter, de-duplication, stable sort by mark, trimming", async () => {
  const prepared = prepareDataset(await sample(), { evalSize: 1, seed: 3 });
  const all = [...prepared.train, ...prepared.eval].sort((a, b) => a.line - b.line);
  assert.equal(all.length, 5);
  assert.deepEqual(prepared.stats.dropped, { invalid_json: 1, not_two_replicas: 1, duplicate: 1 });
  const ordered = prepareDataset(await sample(), { evalSize: 1, seed: 3, limit: 5 });
  // sorted: q2 (9), q5 (7), q1 (5), q3 (5, after q1: stable), q4 (1)
  const byMark = [...ordered.train, ...ordered.eval].sort((a, b) =>
    (b.totalMark! - a.totalMark!) || a.line - b.line
  );
  assert.deepEqual(byMark.map((e) => e.messages[0].content), ["q2", "q5", "q1", "q3", "q4"]);
  const q4 = all.find((example) => example.line === 5)!;
  assert.deepEqual(q4.messages, [{ role: "user", content: "q4" }, { role: "assistant", content: "a4" }]);
});

Deno.test("prepare: limit takes the best-rated, split is seeded, disjoint and reproducible", async () => {
  const dataset = await sample();
  const top = prepareDataset(dataset, { limit: 2, evalSize: 1, seed: 0 });
  assert.deepEqual([...top.train, ...top.eval].map((e) => e.totalMark).sort(), [7, 9]);
  const a = prepareDataset(dataset, { evalSize: 2, seed: 11 });
  const b = prepareDataset(dataset, { evalSize: 2, seed: 11 });
  assert.deepEqual(a, b);
  const trainLines = new Set(a.train.map((e) => e.line));
  assert.ok(a.eval.every((e) => !trainLines.has(e.line)));
  assert.equal(a.eval.length, 2);
  assert.equal(a.train.length, 3);
  const splits = new Set(
    [0, 1, 2, 3, 4, 5, 6, 7].map((seed) =>
      prepareDataset(dataset, { evalSize: 2, seed }).eval.map((e) => e.line).join(",")
    ),
  );
  assert.ok(splits.size > 1, "different seeds give different splits");
});

Deno.test("prepare: fractional evalSize, bad options are RangeErrors", async () => {
  const dataset = await sample();
  assert.equal(prepareDataset(dataset, { evalSize: 0.4 }).eval.length, 2);
  assert.throws(() => prepareDataset(dataset, { evalSize: 5 }), /leaves no training example/);
  assert.throws(() => prepareDataset(dataset, { evalSize: 0 }), RangeError);
  assert.throws(() => prepareDataset(dataset, { limit: 0 }), /limit must be a positive integer/);
  assert.throws(() => prepareDataset(dataset, { seed: 1.5 }), /seed must be an integer/);
});

Deno.test("prepare: statistics with the default and a plugged-in token counter", async () => {
  const dataset = await sample();
  const prepared = prepareDataset(dataset, { evalSize: 1 });
  assert.equal(prepared.stats.tokenCounter, "whitespace words");
  assert.equal(prepared.stats.rowsRead, 8);
  assert.equal(prepared.stats.valid, 7);
  assert.equal(prepared.stats.kept, 5);
  assert.equal(prepared.stats.lengths.answer.mean, 1);
  const chars = prepareDataset(dataset, {
    evalSize: 1,
    countTokens: (t) => t.length,
    tokenCounterName: "chars",
  });
  assert.equal(chars.stats.tokenCounter, "chars");
  assert.equal(chars.stats.lengths.prompt.max, 2);
  const text = formatDatasetStats(chars.stats);
  assert.match(text, /rows read 8, valid 7, kept 5, selected 5 -> train 4, eval 1/);
  assert.match(text, /dropped: .*duplicate 1/);
  assert.ok(!text.includes("NaN"));
});

Deno.test("prepare: chat rows keep user/assistant pairs, a system prompt is added when asked", async () => {
  const lines = [
    JSON.stringify({
      messages: [{ role: "system", content: "s" }, { role: "user", content: "u" }, {
        role: "assistant",
        content: "a",
      }],
    }),
    JSON.stringify({ messages: [{ role: "user", content: "u" }, { role: "user", content: "u2" }] }),
    JSON.stringify({ messages: [{ role: "user", content: "x" }, { role: "assistant", content: "y" }] }),
  ];
  const dataset = await parseDataset(bytesOf(lines.join("\n")), "chat.jsonl");
  const prepared = prepareDataset(dataset, { evalSize: 1, systemPrompt: "Шути коротко." });
  assert.deepEqual(prepared.stats.dropped, { not_user_assistant_pair: 1 });
  for (const example of [...prepared.train, ...prepared.eval]) {
    assert.deepEqual(example.messages.map((m) => m.role), ["system", "user", "assistant"]);
    assert.equal(example.messages[0].content, "Шути коротко.");
    assert.equal(example.totalMark, null);
  }
});

Deno.test("seededPermutation: a permutation, fixed for a seed", () => {
  const order = seededPermutation(50, 7);
  assert.deepEqual([...order].sort((a, b) => a - b), Array.from({ length: 50 }, (_, i) => i));
  assert.deepEqual(seededPermutation(50, 7), order);
  assert.notDeepEqual(seededPermutation(50, 8), order);
});
