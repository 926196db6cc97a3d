/**
 * Dropout with autograd. The mask is a counter-based hash of (seed, element index), with the seed drawn from
 * autograd's `nextSeed()` when the op is called: the backward re-derives the same mask instead of storing it,
 * and a checkpointed block, which rewinds the seed counter, recomputes the same mask.
 */
import { nextSeed, record } from "./autograd.ts";
import { type KernelSpec, Params, rt } from "./runtime.ts";
import { assertDType, empty, type Tensor } from "./tensor.ts";

const KERNEL: KernelSpec = {
  file: new URL("./dropout.wgsl", import.meta.url),
  entry: "main",
  bindings: ["read", "write"],
};
const WG = 256;

/** Element i is dropped iff hash(seed, i) < dropThreshold(p), a u32 compare (no float rounding in the mask). */
export function dropThreshold(p: number): number {
  return Math.min(Math.floor(p * 2 ** 32), 2 ** 32 - 1);
}

function applyMask(x: Tensor, seed: number, p: number): Tensor {
  const out = empty(x.shape); // out: same shape as x
  rt().dispatch(
    KERNEL,
    new Params().u32(x.size, seed, dropThreshold(p)).f32(1 / (1 - p)),
    [x.range, out.range],
    Math.ceil(x.size / WG),
  );
  return out;
}

/**
 * Zeroes each element of x with probability p and scales the rest by 1 / (1 - p). With p = 0 or when not
 * training it returns x itself (no copy, no graph node, no seed drawn). p must be in [0, 1).
 */
export function dropout(x: Tensor, p: number, training = true): Tensor {
  if (!(p >= 0 && p < 1)) throw new RangeError(`dropout: p must be in [0, 1), got ${p}`);
  assertDType("dropout", x, "f32");
  if (p === 0 || !training) return x;
  const seed = nextSeed();
  const out = applyMask(x, seed, p);
  record(out, [x], [], (gy) => [applyMask(gy, seed, p)]);
  return out;
}
