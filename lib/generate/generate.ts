/**
 * Autoregressive generation on the GPU with a KV cache: one prefill over the prompt, then one token per step.
 * Streaming callers get every token as it is chosen; batched greedy generation (evaluation) left-pads prompts
 * and masks the padding.
 */
import { KVCache } from "../../compute/attention.ts";
import { noGrad } from "../../compute/autograd.ts";
import { embedding } from "../../compute/embedding.ts";
import { matmul } from "../../compute/matmul.ts";
import { type Tensor, tensor, tidy } from "../../compute/tensor.ts";
import type { CausalLM } from "../models/types.ts";
import {
  argmax,
  GREEDY,
  pickToken,
  type SamplingOptions,
  seededRandom,
  validateSampling,
} from "./sampling.ts";

export interface GenerateOptions extends Partial<SamplingOptions> {
  maxNewTokens: number;
  /** Generation stops after any of these ids (it is included in the output). */
  stopIds?: readonly number[];
  seed?: number;
}

export interface GenerateResult {
  ids: number[];
  stoppedBy: "stop-id" | "max-new-tokens" | "callback";
}

/** Return false from the callback to stop (e.g. a stop string was seen, or the client went away). */
export type OnToken = (id: number) => boolean | void;

function checkLength(model: CausalLM, promptLength: number, maxNewTokens: number): void {
  if (!Number.isInteger(maxNewTokens) || maxNewTokens < 1) {
    throw new RangeError(`max new tokens must be an integer >= 1, got ${maxNewTokens}`);
  }
  if (promptLength < 1) throw new RangeError("the prompt is empty: give at least one token");
  if (promptLength + maxNewTokens > model.maxPositions) {
    throw new RangeError(
      `prompt of ${promptLength} tokens + ${maxNewTokens} new tokens exceeds the model's ${model.maxPositions} ` +
        `positions: shorten the prompt or lower max new tokens`,
    );
  }
}

function checkIds(model: CausalLM, ids: readonly number[]): void {
  const bad = ids.find((id) => !Number.isInteger(id) || id < 0 || id >= model.vocabSize);
  if (bad !== undefined) {
    throw new RangeError(`token id ${bad} is outside the model's vocabulary [0, ${model.vocabSize})`);
  }
}

/** Logits of the last position of each row: hidden [B, T, C] -> [B, V]. */
function lastLogits(model: CausalLM, hidden: Tensor): Tensor {
  const [batch, seq, c] = hidden.shape;
  const rows = tensor(Int32Array.from({ length: batch }, (_, b) => b * seq + seq - 1), [batch], "i32");
  const last = embedding(rows, hidden.reshape([batch * seq, c])); // last: [B, C]
  return matmul(last, model.lmHead(), { transB: true }); // [B, V]
}

function newCaches(model: CausalLM, batch: number, maxLen: number): KVCache[] {
  return Array.from(
    { length: model.numLayers },
    () => new KVCache(batch, maxLen, model.numKvHeads, model.headDim),
  );
}

/** Generates from one prompt, calling `onToken` for each new token. */
export async function generate(
  model: CausalLM,
  promptIds: readonly number[],
  options: GenerateOptions,
  onToken?: OnToken,
): Promise<GenerateResult> {
  checkLength(model, promptIds.length, options.maxNewTokens);
  checkIds(model, promptIds);
  const sampling = validateSampling({ ...GREEDY, ...options });
  const random = seededRandom(options.seed ?? 0);
  const stop = new Set(options.stopIds ?? []);
  const caches = newCaches(model, 1, promptIds.length + options.maxNewTokens);
  const history = [...promptIds];
  const ids: number[] = [];
  try {
    let input = [...promptIds];
    for (let step = 0; step < options.maxNewTokens; step++) {
      const past = history.length - input.length;
      const logitsTensor = noGrad(() =>
        tidy(() => {
          const idsTensor = tensor(Int32Array.from(input), [1, input.length], "i32");
          const positions = tensor(Int32Array.from(input, (_, t) => past + t), [1, input.length], "i32");
          return lastLogits(model, model.hidden(idsTensor, { positions, caches }));
        })
      );
      const logits = (await logitsTensor.read()) as Float32Array;
      logitsTensor.dispose();
      const next = pickToken(logits, history, sampling, random);
      ids.push(next);
      history.push(next);
      if (onToken?.(next) === false) return { ids, stoppedBy: "callback" };
      if (stop.has(next)) return { ids, stoppedBy: "stop-id" };
      input = [next];
    }
    return { ids, stoppedBy: "max-new-tokens" };
  } finally {
    for (const cache of caches) cache.dispose();
  }
}

/**
 * Greedy generation for a batch of prompts (evaluation): prompts are left-padded, padding is masked out of
 * attention and positions count real tokens only, so each row gets what it would get alone.
 */
export async function generateGreedyBatch(
  model: CausalLM,
  prompts: readonly (readonly number[])[],
  options: { maxNewTokens: number; stopIds?: readonly number[] },
): Promise<number[][]> {
  const batch = prompts.length;
  const longest = Math.max(...prompts.map((p) => p.length));
  checkLength(model, longest, options.maxNewTokens);
  for (const p of prompts) {
    if (p.length === 0) throw new RangeError("a prompt in the batch is empty");
    checkIds(model, p);
  }
  const stop = new Set(options.stopIds ?? []);
  const maxLen = longest + options.maxNewTokens;
  const caches = newCaches(model, batch, maxLen);
  const pad = prompts.map((p) => longest - p.length);
  const keyMask = new Int32Array(batch * maxLen);
  const outputs: number[][] = prompts.map(() => []);
  const done = prompts.map(() => false);
  try {
    let input: number[][] = prompts.map((p, b) => [...new Array(pad[b]).fill(p[0]), ...p]);
    let length = 0;
    for (let step = 0; step < options.maxNewTokens && done.includes(false); step++) {
      const seq = input[0].length;
      for (let b = 0; b < batch; b++) {
        for (let t = 0; t < seq; t++) keyMask[b * maxLen + length + t] = length + t >= pad[b] ? 1 : 0;
      }
      const total = length + seq;
      const mask = new Int32Array(batch * total);
      for (let b = 0; b < batch; b++) mask.set(keyMask.subarray(b * maxLen, b * maxLen + total), b * total);
      const logitsTensor = noGrad(() =>
        tidy(() => {
          const idsTensor = tensor(Int32Array.from(input.flat()), [batch, seq], "i32");
          const positions = tensor(
            Int32Array.from({ length: batch * seq }, (_, i) => {
              const b = Math.floor(i / seq);
              return Math.max(0, length + (i % seq) - pad[b]);
            }),
            [batch, seq],
            "i32",
          );
          const keys = tensor(mask, [batch, total], "i32");
          return lastLogits(model, model.hidden(idsTensor, { positions, caches, keyMask: keys }));
        })
      );
      const logits = (await logitsTensor.read()) as Float32Array;
      logitsTensor.dispose();
      const vocab = model.vocabSize;
      length = total;
      input = prompts.map((_, b) => {
        const next = argmax(logits.subarray(b * vocab, (b + 1) * vocab));
        if (!done[b]) {
          outputs[b].push(next);
          if (stop.has(next)) done[b] = true;
        }
        return [next];
      });
    }
    return outputs;
  } finally {
    for (const cache of caches) cache.dispose();
  }
}
