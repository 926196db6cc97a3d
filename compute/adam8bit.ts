/**
 * 8-bit AdamW (bitsandbytes' `adamw_8bit`, blockwise): moments quantised to 8 bits with dynamic maps and a
 * per-256 absmax, updated in f32 inside the kernel. Cuts optimizer memory from 8 to ~2 bytes per parameter.
 */
import { dynamicMap } from "./nf4.ts";
import type { AdamWOptions } from "./optim.ts";
import { Params, rt } from "./runtime.ts";
import { assertDType, empty, keep, shapeString, type Tensor, tensor } from "./tensor.ts";
import { fill, fillBits } from "./elementwise.ts";

const FILE = new URL("./adam8bit.wgsl", import.meta.url);
export const ADAM8_BLOCK = 256;

export interface Adam8bitState {
  /** Codes of m, four per u32. */
  qm: Tensor;
  qv: Tensor;
  absmaxM: Tensor;
  absmaxV: Tensor;
}

/** Both maps side by side: [0, 256) signed (m), [256, 512) unsigned (v). */
export function adam8bitMaps(): Tensor {
  const maps = new Float32Array(512);
  maps.set(dynamicMap(true), 0);
  maps.set(dynamicMap(false), 256);
  return keep(tensor(maps, [512], "f32", "optimizer"));
}

/** Fresh (zero) states for a parameter. */
export function adam8bitState(param: Tensor): Adam8bitState {
  const n = param.size;
  const words = Math.ceil(n / 4);
  const blocks = Math.ceil(n / ADAM8_BLOCK);
  const state = {
    qm: keep(empty([words], "u32", "optimizer")),
    qv: keep(empty([words], "u32", "optimizer")),
    absmaxM: keep(empty([blocks], "f32", "optimizer")),
    absmaxV: keep(empty([blocks], "f32", "optimizer")),
  };
  // absmax 0 makes every code decode to 0, whatever the codes hold.
  fillBits(state.qm, 0);
  fillBits(state.qv, 0);
  fill(state.absmaxM, 0);
  fill(state.absmaxV, 0);
  return state;
}

export function disposeAdam8bitState(s: Adam8bitState): void {
  for (const t of [s.qm, s.qv, s.absmaxM, s.absmaxV]) t.dispose();
}

/**
 * One AdamW step on `param` from `param.grad`, in place. `clipCoef` (a 1-element GPU tensor) multiplies the
 * gradient first when given (global-norm clipping without a readback).
 */
export function adamw8bitStep(
  param: Tensor,
  state: Adam8bitState,
  maps: Tensor,
  o: AdamWOptions,
  clipCoef: Tensor | null = null,
): void {
  const grad = param.grad;
  if (!grad) throw new TypeError(`adamw8bitStep: ${param} has no gradient`);
  assertDType("adamw8bitStep", param, "f32");
  if (grad.size !== param.size) {
    throw new RangeError(
      `adamw8bitStep: grad ${shapeString(grad.shape)} vs param ${shapeString(param.shape)}`,
    );
  }
  if (!(o.step >= 1)) throw new RangeError(`AdamW step must be >= 1, got ${o.step}`);
  const correction1 = 1 - o.beta1 ** o.step;
  const correction2 = Math.sqrt(1 - o.beta2 ** o.step);
  const params = new Params()
    .u32(param.size)
    .f32(o.lr * correction2 / correction1, o.beta1, o.beta2, o.eps * correction2, 1 - o.lr * o.weightDecay, 1)
    .u32(clipCoef ? 1 : 0);
  rt().dispatch(
    {
      file: FILE,
      entry: "step",
      bindings: ["write", "read", "write", "write", "write", "write", "read", "read"],
    },
    params,
    [
      param.range,
      grad.range,
      state.qm.range,
      state.qv.range,
      state.absmaxM.range,
      state.absmaxV.range,
      maps.range,
      (clipCoef ?? maps).range,
    ],
    Math.ceil(param.size / ADAM8_BLOCK),
  );
}

/** Dequantised moments (tests and checkpoints' inspection): [m, v] as f32 arrays. */
export async function readAdam8bitMoments(
  s: Adam8bitState,
  n: number,
): Promise<[Float32Array, Float32Array]> {
  const map = new Float32Array(512);
  map.set(dynamicMap(true), 0);
  map.set(dynamicMap(false), 256);
  const decode = async (q: Tensor, absmax: Tensor, base: number) => {
    const bytes = new Uint8Array(((await q.read()) as Uint32Array).buffer);
    const scales = (await absmax.read()) as Float32Array;
    return Float32Array.from(
      { length: n },
      (_, i) => map[base + bytes[i]] * scales[Math.floor(i / ADAM8_BLOCK)],
    );
  };
  return [await decode(s.qm, s.absmaxM, 0), await decode(s.qv, s.absmaxV, 256)];
}
