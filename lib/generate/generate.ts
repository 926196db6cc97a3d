/**
 * Autoregressive generation on the GPU with a KV cache: one prefill over the prompt, then one token per step.
 * Greedy decoding keeps the chosen tokens on the GPU (each step's argmax is the next step's input) and reads
 * them back a window of steps at a time; sampling reads each step's logits and picks on the host. Streaming
 * callers get every token in order; batched greedy generation (evaluation) left-pads prompts and masks the
 * padding.
 */
import { argmax } from "../../compute/argmax.ts";
import { KVCache } from "../../compute/attention.ts";
import { noGrad } from "../../compute/autograd.ts";
import { embedding } from "../../compute/embedding.ts";
import { matmul } from "../../compute/matmul.ts";
import { rt } from "../../compute/runtime.ts";
import { empty, keep, type Tensor, tensor, tidy } from "../../compute/tensor.ts";
import type { CausalLM } from "../models/types.ts";
import { GREEDY, pickToken, type SamplingOptions, seededRandom, validateSampling } from "./sampling.ts";

export interface GenerateOptions extends Partial<SamplingOptions> {
  maxNewTokens: number;
  /** Generation stops after any of these ids (it is included in the output). */
  stopIds?: readonly number[];
  seed?: number;
  /**
   * Read every step's logits back and pick on the host even when greedy (one readback per token). The step by
   * step reference that the pipelined greedy decoding is tested against; otherwise only slower.
   */
  pickOnHost?: boolean;
}

export interface GenerateResult {
  ids: number[];
  stoppedBy: "stop-id" | "max-new-tokens" | "callback";
}

/** Return false from the callback to stop (e.g. a stop string was seen, or the client went away). */
export type OnToken = (id: number) => boolean | void;

/**
 * Greedy steps per readback. A readback in Deno blocks the host until all submitted work is done and resolves
 * about 10 ms later, so a window's ids are looked at only once the next window is encoded (see decodeGreedy).
 * Steps past a stop are wasted: at most 2 × 16 − 1 (the rest of the stop's window and the window encoded behind
 * it); after a stop at the first token, the steps encoded in PREFILL_LEAD_MS.
 */
export const DECODE_WINDOW = 16;

/** Prompts evaluation decodes at once by default (generateGreedyBatch: a row per prompt). */
export const EVAL_BATCH = 16;

/**
 * Host time spent encoding steps after the prefill's readback before awaiting its ids, which Deno resolves ~10
 * ms after the GPU drains: the GPU gets those steps instead of idling, the first token is not held back.
 */
const PREFILL_LEAD_MS = 8;

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

/**
 * The last position of each row, hidden [B, T, C] -> [B, C]: the tensor itself when T = 1 (decoding), a row
 * view when B = 1 and the row starts at a bindable offset, else a gather.
 */
function lastRows(hidden: Tensor): Tensor {
  const [batch, seq, c] = hidden.shape;
  if (seq === 1) return hidden.reshape([batch, c]);
  const flat = hidden.reshape([batch * seq, c]); // flat: [B·T, C]
  if (batch === 1 && ((hidden.offset + (seq - 1) * c) * 4) % rt().gpu.storageAlign === 0) {
    return flat.rows(seq - 1, seq);
  }
  const rows = tensor(Int32Array.from({ length: batch }, (_, b) => b * seq + seq - 1), [batch], "i32");
  return embedding(rows, flat);
}

/** Logits of the last position of each row: hidden [B, T, C] -> [B, V]. */
function lastLogits(model: CausalLM, hidden: Tensor): Tensor {
  return matmul(lastRows(hidden), model.lmHead(), { transB: true });
}

function newCaches(model: CausalLM, batch: number, maxLen: number): KVCache[] {
  return Array.from(
    { length: model.numLayers },
    () => new KVCache(batch, maxLen, model.numKvHeads, model.headDim),
  );
}

/** Prompts as one left-padded [B, T] batch: row b starts with pad[b] copies of its first token. */
interface PromptBatch {
  ids: Int32Array;
  pad: number[];
  length: number;
}

function padPrompts(prompts: readonly (readonly number[])[]): PromptBatch {
  const length = Math.max(...prompts.map((p) => p.length));
  const pad = prompts.map((p) => length - p.length);
  const ids = Int32Array.from(prompts.flatMap((p, b) => [...new Array(pad[b]).fill(p[0]), ...p]));
  return { ids, pad, length };
}

/**
 * Greedy decoding without a wait per token. The chosen ids never leave the GPU between steps: slot j of one
 * buffer holds step j's B ids, written by that step's argmax and read as the next step's input ids; positions
 * are known on the host. The prefill is read back alone, then windows of up to DECODE_WINDOW steps, one
 * readback each. Each step is submitted as soon as it is encoded, so the GPU starts while the host encodes the
 * rest. A readback in Deno blocks the host until all submitted work is done, so the next window's first step is
 * prepared (encoded) before it and submitted right after: the GPU runs that step while the host encodes the
 * second. The readback resolves ~10 ms later, so a window's ids are awaited only once the next window is
 * encoded, when they have long arrived and the GPU still has that window's steps to run. The prefill's are
 * awaited after PREFILL_LEAD_MS of encoding the next steps, so that the first token streams as soon as the
 * prompt is processed while the GPU has those steps to run. `take` gets each step's B ids in order; false ends
 * decoding, and the window encoded behind is dropped unread (the cache rows it appended are never read). The
 * cache never grows past prompt + maxNewTokens.
 */
async function decodeGreedy(
  model: CausalLM,
  prompts: PromptBatch,
  maxNewTokens: number,
  take: (ids: Int32Array) => boolean,
): Promise<void> {
  const { pad, length } = prompts;
  const batch = pad.length;
  const maxLen = length + maxNewTokens;
  const caches = newCaches(model, batch, maxLen);
  // Slots start at bindable offsets. GPU work runs in submission order, so a window's readback has copied the
  // slots before the next window's steps overwrite them.
  const align = rt().gpu.storageAlign / 4;
  const stride = Math.ceil(batch / align) * align;
  const slots = keep(empty([DECODE_WINDOW * stride], "i32"));
  const slot = (j: number) => slots.rows(j * stride, j * stride + batch); // [B]
  // Generated tokens are never padding: one mask over every column serves all steps.
  const keyMask = pad.some((p) => p > 0)
    ? keep(tensor(
      Int32Array.from(
        { length: batch * maxLen },
        (_, i) => i % maxLen >= pad[Math.floor(i / maxLen)] ? 1 : 0,
      ),
      [batch, maxLen],
      "i32",
    ))
    : undefined;
  // Every step's positions in one buffer written once: step s feeds the token of step s − 1, which sits in column
  // length + s − 1. Steps bind the whole buffer at an offset, so they all share their bind groups (creating one
  // costs the host more than encoding the dispatch).
  const positions = keep(tensor(
    Int32Array.from({ length: maxNewTokens * stride }, (_, i) => {
      const b = i % stride;
      return b < batch ? length + Math.floor(i / stride) - 1 - pad[b] : 0;
    }),
    [maxNewTokens * stride],
    "i32",
  ));
  const unread: { steps: number; ids: Promise<Int32Array> }[] = [];
  let next = 1; // the first step not yet encoded (step 0 is the prefill)
  const prefill = () => {
    const ids = tensor(prompts.ids, [batch, length], "i32");
    const positions = tensor(
      prompts.ids.map((_, i) => Math.max(0, (i % length) - pad[Math.floor(i / length)])),
      [batch, length],
      "i32",
    );
    argmax(lastLogits(model, model.hidden(ids, { positions, caches, keyMask })), slot(0));
  };
  // Encodes the next step into slot j, its input ids from slot `from`.
  const step = (j: number, from: number) => {
    const s = next++;
    noGrad(() =>
      tidy(() => {
        const ids = slot(from).reshape([batch, 1]); // [B, 1]
        const stepPositions = positions.rows(s * stride, s * stride + batch).reshape([batch, 1]); // [B, 1]
        argmax(lastLogits(model, model.hidden(ids, { positions: stepPositions, caches, keyMask })), slot(j));
      })
    );
  };
  // Issues the readback of a window's slots; it blocks until the GPU is done.
  const readBack = (steps: number) => {
    const filled = slots.rows(0, (steps - 1) * stride + batch); // [(steps − 1)·stride + B]
    unread.push({ steps, ids: filled.read() as Promise<Int32Array> });
    filled.dispose();
  };
  // Passes the oldest unread window's ids to `take`; false once it says stop.
  const takeWindow = async () => {
    const { steps, ids } = unread.shift()!;
    const host = await ids;
    for (let j = 0; j < steps; j++) {
      if (!take(host.subarray(j * stride, j * stride + batch))) return false;
    }
    return true;
  };
  try {
    noGrad(() => tidy(prefill));
    let steps = 1; // of the last encoded window (the prefill's is one)
    while (next < maxNewTokens) {
      const afterPrefill = next === 1;
      // Read back a window ago: awaiting it now leaves the GPU the steps encoded since.
      if (unread.length > 0 && !(await takeWindow())) return;
      const size = Math.min(DECODE_WINDOW, maxNewTokens - next);
      const first = rt().prepare(() => step(0, steps - 1));
      try {
        readBack(steps);
      } finally {
        first.submit();
      }
      let j = 1;
      if (afterPrefill) {
        // The prefill's ids arrive ~10 ms after its readback: the steps encoded until shortly before then keep
        // the GPU busy while the first token streams, and do not delay it.
        const lead = performance.now() + PREFILL_LEAD_MS;
        for (; j < size && performance.now() < lead; j++) rt().asOneSubmission(() => step(j, j - 1));
        if (!(await takeWindow())) return;
      }
      for (; j < size; j++) rt().asOneSubmission(() => step(j, j - 1));
      steps = size;
    }
    if (unread.length > 0 && !(await takeWindow())) return;
    // The last window: the GPU has nothing else to run, so its readback is awaited at once.
    readBack(steps);
    await takeWindow();
  } finally {
    // A window left unread is dropped; a device error there resurfaces at the next submission.
    for (const window of unread) window.ids.catch(() => {});
    slots.dispose();
    positions.dispose();
    keyMask?.dispose();
    for (const cache of caches) cache.dispose();
  }
}

/** Decoding with a readback per step: `pick` chooses from the last position's logits [V]. */
async function decodeOnHost(
  model: CausalLM,
  promptIds: readonly number[],
  maxNewTokens: number,
  pick: (logits: Float32Array) => number,
  take: (id: number) => boolean,
): Promise<void> {
  const caches = newCaches(model, 1, promptIds.length + maxNewTokens);
  try {
    let input = [...promptIds];
    let past = 0;
    for (let step = 0; step < maxNewTokens; step++) {
      const logitsTensor = noGrad(() =>
        tidy(() => {
          const ids = tensor(Int32Array.from(input), [1, input.length], "i32");
          const positions = tensor(Int32Array.from(input, (_, t) => past + t), [1, input.length], "i32");
          return lastLogits(model, model.hidden(ids, { positions, caches }));
        })
      );
      const logits = (await logitsTensor.read()) as Float32Array;
      logitsTensor.dispose();
      const next = pick(logits);
      if (!take(next)) return;
      past += input.length;
      input = [next];
    }
  } finally {
    for (const cache of caches) cache.dispose();
  }
}

/**
 * Generates from one prompt, calling `onToken` for each new token. Greedy settings (temperature 0, repetition
 * penalty 1) decode on the GPU a window at a time; others pick each token on the host.
 */
export async function generate(
  model: CausalLM,
  promptIds: readonly number[],
  options: GenerateOptions,
  onToken?: OnToken,
): Promise<GenerateResult> {
  checkLength(model, promptIds.length, options.maxNewTokens);
  checkIds(model, promptIds);
  const sampling = validateSampling({ ...GREEDY, ...options });
  const stop = new Set(options.stopIds ?? []);
  const history = [...promptIds];
  const ids: number[] = [];
  let stoppedBy: GenerateResult["stoppedBy"] = "max-new-tokens";
  const take = (next: number): boolean => {
    ids.push(next);
    history.push(next);
    if (onToken?.(next) === false) stoppedBy = "callback";
    else if (stop.has(next)) stoppedBy = "stop-id";
    return stoppedBy === "max-new-tokens";
  };
  if (sampling.temperature === 0 && sampling.repetitionPenalty === 1 && !options.pickOnHost) {
    await decodeGreedy(model, padPrompts([promptIds]), options.maxNewTokens, (step) => take(step[0]));
  } else {
    const random = seededRandom(options.seed ?? 0);
    const pick = (logits: Float32Array) => pickToken(logits, history, sampling, random);
    await decodeOnHost(model, promptIds, options.maxNewTokens, pick, take);
  }
  return { ids, stoppedBy };
}

/**
 * Greedy generation for a batch of prompts (evaluation): prompts are left-padded, padding is masked out of
 * attention and positions count real tokens only, so each row gets what it would get alone. Rows that stopped
 * keep decoding (their ids are dropped) until every row has stopped.
 */
export async function generateGreedyBatch(
  model: CausalLM,
  prompts: readonly (readonly number[])[],
  options: { maxNewTokens: number; stopIds?: readonly number[] },
): Promise<number[][]> {
  if (prompts.length === 0) throw new RangeError("the batch has no prompts");
  checkLength(model, Math.max(...prompts.map((p) => p.length)), options.maxNewTokens);
  for (const p of prompts) {
    if (p.length === 0) throw new RangeError("a prompt in the batch is empty");
    checkIds(model, p);
  }
  const stop = new Set(options.stopIds ?? []);
  const outputs: number[][] = prompts.map(() => []);
  const done = prompts.map(() => false);
  await decodeGreedy(model, padPrompts(prompts), options.maxNewTokens, (step) => {
    step.forEach((id, b) => {
      if (done[b]) return;
      outputs[b].push(id);
      if (stop.has(id)) done[b] = true;
    });
    return done.includes(false);
  });
  return outputs;
}
