/**
 * Pipelined greedy decoding (ids kept on the GPU, one readback per window) against the step by step host path
 * (`pickOnHost`): the same ids, the same streaming and the same stop reason, for stops, callbacks that end
 * generation inside a window, lengths that are no multiple of the window and a cache filled to the model's
 * last position; batched greedy generation against one prompt at a time. Readbacks are counted at the runtime.
 */
import assert from "node:assert/strict";
import { rt } from "../../../compute/runtime.ts";
import type { Gpt2Config, Qwen2Config } from "../../../lib/checkpoint/mod.ts";
import {
  DECODE_WINDOW,
  generate,
  generateGreedyBatch,
  type GenerateOptions,
  type GenerateResult,
} from "../../../lib/generate/generate.ts";
import { loadModel } from "../../../lib/models/mod.ts";
import { writeRandomModel } from "../../../lib/models/presets.ts";
import type { CausalLM } from "../../../lib/models/types.ts";
import { GPT2, QWEN } from "../models/_configs.ts";
import { gpuTest } from "../../compute/harness.ts";

/** Runs `fn` counting the readbacks that go through the runtime. */
async function countReadbacks<T>(fn: () => Promise<T>): Promise<{ result: T; readbacks: number }> {
  const runtime = rt();
  const read = runtime.read;
  let readbacks = 0;
  runtime.read = (src, bytes) => {
    readbacks++;
    return read.call(runtime, src, bytes);
  };
  try {
    return { result: await fn(), readbacks };
  } finally {
    runtime.read = read;
  }
}

/** Readbacks of a pipelined run that produced `tokens` ids: the prefill's, then one per window. */
function windows(tokens: number): number {
  return 1 + Math.ceil((tokens - 1) / DECODE_WINDOW);
}

interface Run {
  result: GenerateResult;
  streamed: number[];
  readbacks: number;
}

/** Generates, recording the streamed ids; `stopAfter` makes the callback return false on that call. */
async function run(
  model: CausalLM,
  prompt: number[],
  options: GenerateOptions,
  stopAfter = Infinity,
): Promise<Run> {
  const streamed: number[] = [];
  const { result, readbacks } = await countReadbacks(() =>
    generate(model, prompt, options, (id) => {
      streamed.push(id);
      return streamed.length < stopAfter;
    })
  );
  return { result, streamed, readbacks };
}

/** The pipelined run equals the host path's: ids, stop reason and streamed ids (which are the ids). */
function assertSameRun(label: string, pipelined: Run, host: Run): void {
  assert.deepEqual(pipelined.result, host.result, label);
  assert.deepEqual(pipelined.streamed, pipelined.result.ids, `${label}: streamed`);
  assert.deepEqual(host.streamed, host.result.ids, `${label}: streamed (host)`);
}

/** The first index ≥ `from` whose id does not occur earlier and that lies inside a window (not at its ends). */
function midWindowFirstOccurrence(ids: number[], from: number): number {
  const index = ids.findIndex((id, i) =>
    i >= from && ids.indexOf(id) === i && (i - 1) % DECODE_WINDOW !== 0 && i % DECODE_WINDOW !== 0
  );
  if (index < 0) throw new Error(`no id first seen inside a window after ${from} in ${ids}`);
  return index;
}

async function withModel(config: Qwen2Config | Gpt2Config, fn: (model: CausalLM) => Promise<void>) {
  const dir = await Deno.makeTempDir({ prefix: "ostrota-generate-" });
  try {
    await writeRandomModel(dir, config, { seed: 11, std: 0.4, tokenizer: false });
    const model = await loadModel(dir);
    try {
      await fn(model);
    } finally {
      model.dispose();
    }
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}

for (const [name, config] of [["qwen2", QWEN], ["gpt2", GPT2]] as const) {
  gpuTest(
    `${name}: pipelined greedy decoding gives the host path's ids with one readback per window`,
    async () => {
      await withModel(config, async (model) => {
        const prompt = [5, 17, 99, 3];
        // Up to the model's last position: the look-ahead must never append past the cache.
        const longest = model.maxPositions - prompt.length;
        for (const maxNewTokens of [1, 2, DECODE_WINDOW + 1, 2 * DECODE_WINDOW + 5, longest]) {
          const label = `${maxNewTokens} new tokens`;
          const host = await run(model, prompt, { maxNewTokens, pickOnHost: true });
          const pipelined = await run(model, prompt, { maxNewTokens });
          assertSameRun(label, pipelined, host);
          assert.equal(pipelined.result.stoppedBy, "max-new-tokens", label);
          assert.equal(host.readbacks, maxNewTokens, `${label}: host readbacks`);
          assert.equal(pipelined.readbacks, windows(maxNewTokens), `${label}: pipelined readbacks`);
        }
        const reference = (await run(model, prompt, { maxNewTokens: longest, pickOnHost: true })).result.ids;
        if (new Set(reference).size < 8) throw new Error(`the random model repeats itself: ${reference}`);

        // A stop id first produced inside the third window: generation ends there, the id included.
        const stopAt = midWindowFirstOccurrence(reference, DECODE_WINDOW + 1);
        const stopIds = [reference[stopAt]];
        const host = await run(model, prompt, { maxNewTokens: longest, stopIds, pickOnHost: true });
        const pipelined = await run(model, prompt, { maxNewTokens: longest, stopIds });
        assertSameRun("stop id", pipelined, host);
        assert.deepEqual(pipelined.result, { ids: reference.slice(0, stopAt + 1), stoppedBy: "stop-id" });
        // The stop's window was the last read: the window encoded behind it is dropped unread.
        assert.equal(pipelined.readbacks, windows(stopAt + 1), "stop: readbacks");

        // The callback says stop in the middle of a window: nothing after it is streamed or returned.
        for (const stopAfter of [1, 3, DECODE_WINDOW + 4]) {
          const label = `callback false on call ${stopAfter}`;
          const host = await run(model, prompt, { maxNewTokens: longest, pickOnHost: true }, stopAfter);
          const pipelined = await run(model, prompt, { maxNewTokens: longest }, stopAfter);
          assertSameRun(label, pipelined, host);
          assert.deepEqual(
            pipelined.result,
            { ids: reference.slice(0, stopAfter), stoppedBy: "callback" },
            label,
          );
        }
      });
    },
  );

  gpuTest(
    `${name}: batched greedy generation equals one prompt at a time, one readback per window`,
    async () => {
      await withModel(config, async (model) => {
        const prompts = [[5, 17, 99, 3], [42], [7, 7, 7, 7, 7, 7, 1], [200, 13]];
        const maxNewTokens = 2 * DECODE_WINDOW + 3;
        const singles: number[][] = [];
        for (const prompt of prompts) {
          singles.push((await run(model, prompt, { maxNewTokens, pickOnHost: true })).result.ids);
        }
        const all = await countReadbacks(() => generateGreedyBatch(model, prompts, { maxNewTokens }));
        assert.deepEqual(all.result, singles);
        assert.equal(all.readbacks, windows(maxNewTokens));

        // Rows stop at their own stop ids (mid-window); the batch ends when every row has stopped.
        const stopIds = [singles[0][midWindowFirstOccurrence(singles[0], 1)]];
        const expected = singles.map((ids) => {
          const at = ids.findIndex((id) => stopIds.includes(id));
          return at < 0 ? ids : ids.slice(0, at + 1);
        });
        const stopped = await generateGreedyBatch(model, prompts, { maxNewTokens, stopIds });
        assert.deepEqual(stopped, expected);
        const one = await generateGreedyBatch(model, [prompts[0]], { maxNewTokens, stopIds });
        assert.deepEqual(one, [expected[0]]);
      });
    },
  );
}

gpuTest("sampling and repetition penalties pick on the host, one readback per token", async () => {
  await withModel(QWEN, async (model) => {
    const prompt = [3, 1, 4, 1, 5];
    for (const options of [{ temperature: 0.8, topK: 20, seed: 3 }, { repetitionPenalty: 1.3 }]) {
      const first = await run(model, prompt, { maxNewTokens: 10, ...options });
      const again = await run(model, prompt, { maxNewTokens: 10, ...options });
      assert.equal(first.readbacks, 10, JSON.stringify(options));
      assert.deepEqual(first.result, again.result, `${JSON.stringify(options)} repeats for a seed`);
      assert.deepEqual(first.streamed, first.result.ids);
    }
  });
});

gpuTest("argument errors throw RangeErrors naming the value", async () => {
  await withModel(GPT2, async (model) => {
    await assert.rejects(generate(model, [1, 2], { maxNewTokens: 0 }), RangeError);
    await assert.rejects(generate(model, [1, 300], { maxNewTokens: 2 }), /token id 300/);
    await assert.rejects(generate(model, new Array(63).fill(1), { maxNewTokens: 2 }), /63 tokens/);
    await assert.rejects(generateGreedyBatch(model, [], { maxNewTokens: 2 }), RangeError);
    await assert.rejects(generateGreedyBatch(model, [[1], []], { maxNewTokens: 2 }), /empty/);
  });
});
