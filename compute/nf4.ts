/**
 * NF4 weights (bitsandbytes' 4-bit NormalFloat): quantise on the GPU, dequantise, optional double
 * quantisation of the absmax values, and a linear op whose forward and input-gradient read the packed 4-bit
 * weights directly (dequantised as the GEMM loads its tiles), so the model is never widened whole.
 */
import { needsGrad, record } from "./autograd.ts";
import { sumTo } from "./elementwise.ts";
import { GEMV_MAX_X_ROWS, gemvApplies, gemvInto, type Nf4Scales } from "./gemv.ts";
import { matmulInto, type PackedNf4Matrix } from "./matmul.ts";
import { type KernelSpec, Params, rt } from "./runtime.ts";
import { assertDType, empty, keep, shapeString, type Tensor, tensor } from "./tensor.ts";

const FILE = new URL("./nf4.wgsl", import.meta.url);

export { NF4_LEVELS } from "./nf4_level.ts";

export const NF4_BLOCK = 64;
export const DOUBLE_QUANT_BLOCK = 256;

/**
 * bitsandbytes' `create_dynamic_map(signed, max_exponent_bits=7, total_bits=8)`: 256 sorted values used for
 * 8-bit blockwise quantisation (double-quantised absmax, 8-bit optimizer states). Computed in float32 as torch
 * computes it (linspace, midpoints, scaling).
 */
export function dynamicMap(signed = true): Float32Array {
  const maxExponentBits = 7;
  const nonSignBits = 8 - 1;
  const data: number[] = [];
  const f = Math.fround;
  for (let i = 0; i < maxExponentBits; i++) {
    const items = signed
      ? 2 ** (i + nonSignBits - maxExponentBits) + 1
      : 2 ** (i + nonSignBits - maxExponentBits + 1) + 1;
    const bounds = linspaceF32(0.1, 1, items);
    const scale = 10 ** (-(maxExponentBits - 1) + i);
    for (let k = 0; k + 1 < bounds.length; k++) {
      const mean = f(f(bounds[k] + bounds[k + 1]) / 2);
      data.push(f(scale * mean));
      if (signed) data.push(f(-scale * mean));
    }
  }
  data.push(0, 1);
  while (data.length < 256) data.push(0);
  return Float32Array.from(data.sort((a, b) => a - b));
}

/** torch.linspace in float32 (it fills the first half from the start and the second half from the end). */
function linspaceF32(start: number, end: number, steps: number): number[] {
  const f = Math.fround;
  const step = f(f(end - start) / (steps - 1));
  const half = Math.floor(steps / 2);
  return Array.from(
    { length: steps },
    (_, i) => (i < half ? f(start + f(step * i)) : f(end - f(step * (steps - i - 1)))),
  );
}

/** A packed NF4 matrix [rows, cols] (PyTorch layout [out, in]). */
export interface Nf4Weight {
  shape: [number, number];
  /** u32 words holding 8 codes each (bitsandbytes' byte layout). */
  packed: Tensor;
  /** Per-64 absmax in f32, or null when double-quantised (then `double` holds it). */
  absmax: Tensor | null;
  double: { q: Tensor; absmax2: Tensor; offset: number; code: Tensor } | null;
  /**
   * The double-quantised absmax widened to f32 for decoding, made on first use (nf4DecodeScales) and dropped when
   * the weight enters a training graph; absent otherwise.
   */
  decodeAbsmax?: Tensor | null;
}

function spec(entry: string, bindings: KernelSpec["bindings"]): KernelSpec {
  return { file: FILE, entry, bindings };
}

function groups64(n: number): number {
  return Math.ceil(n / 64);
}

/** Quantises an f32 matrix [rows, cols] to NF4 on the GPU; `doubleQuant` also 8-bit-quantises the absmax. */
export async function quantizeNf4(weight: Tensor, doubleQuant = false): Promise<Nf4Weight> {
  assertDType("quantizeNf4", weight, "f32");
  if (weight.ndim !== 2) throw new RangeError(`quantizeNf4 needs a matrix, got ${shapeString(weight.shape)}`);
  const n = weight.size;
  const blocks = Math.ceil(n / NF4_BLOCK);
  const packed = keep(empty([Math.ceil(n / 8)], "u32", "weights"));
  const absmax = keep(empty([blocks], "f32", "weights"));
  rt().dispatch(spec("quantize", ["read", "write", "write"]), new Params().u32(n, blocks).f32(0).u32(0), [
    weight.range,
    packed.range,
    absmax.range,
  ], groups64(blocks));
  const shape = weight.shape as [number, number];
  if (!doubleQuant) return { shape, packed, absmax, double: null };
  // The offset is the mean absmax (bitsandbytes subtracts it before the 8-bit quantisation).
  const values = (await absmax.read()) as Float32Array;
  let sum = 0;
  for (const v of values) sum += v;
  const offset = Math.fround(sum / values.length);
  const dqBlocks = Math.ceil(blocks / DOUBLE_QUANT_BLOCK);
  const q = keep(empty([Math.ceil(blocks / 4)], "u32", "weights"));
  const absmax2 = keep(empty([dqBlocks], "f32", "weights"));
  // Each weight keeps its own 1 KiB copy of the map, so disposing weights frees everything they hold.
  const code = keep(tensor(dynamicMap(true), [256], "f32", "weights"));
  rt().dispatch(
    spec("double_quantize", ["read", "read", "write", "write"]),
    new Params().u32(blocks, dqBlocks).f32(offset).u32(0),
    [
      absmax.range,
      code.range,
      q.range,
      absmax2.range,
    ],
    groups64(dqBlocks),
  );
  absmax.dispose();
  return { shape, packed, absmax: null, double: { q, absmax2, offset, code } };
}

/**
 * The f32 absmax of a weight (widened from 8 bits when double-quantised; the caller disposes it then). `tag` is
 * the widened copy's memory category.
 */
export function nf4Absmax(w: Nf4Weight, tag = "activations"): Tensor {
  if (w.absmax) return w.absmax;
  const { q, absmax2, offset, code } = w.double!;
  const blocks = Math.ceil(w.shape[0] * w.shape[1] / NF4_BLOCK);
  const out = empty([blocks], "f32", tag);
  rt().dispatch(
    spec("double_dequantize", ["read", "read", "read", "write"]),
    new Params().u32(blocks, 0).f32(offset).u32(0),
    [
      q.range,
      code.range,
      absmax2.range,
      out.range,
    ],
    groups64(blocks),
  );
  return out;
}

/** Widens an NF4 matrix to f32 (tests, merges and exports; the forward never needs it). */
export function dequantizeNf4(w: Nf4Weight): Tensor {
  const n = w.shape[0] * w.shape[1];
  const absmax = nf4Absmax(w);
  const out = empty(w.shape);
  rt().dispatch(spec("dequantize", ["read", "read", "write"]), new Params().u32(n, 0).f32(0).u32(0), [
    w.packed.range,
    absmax.range,
    out.range,
  ], groups64(n));
  if (absmax !== w.absmax) absmax.dispose();
  return out;
}

export function disposeNf4(w: Nf4Weight): void {
  releaseNf4DecodeScales(w);
  w.packed.dispose();
  w.absmax?.dispose();
  if (w.double) {
    w.double.q.dispose();
    w.double.absmax2.dispose();
    w.double.code.dispose();
  }
}

/** GPU bytes a quantised weight holds. */
export function nf4Bytes(w: Nf4Weight): number {
  const double = w.double ? w.double.q.bytes + w.double.absmax2.bytes + w.double.code.bytes : 0;
  return w.packed.bytes + (w.absmax?.bytes ?? 0) + (w.decodeAbsmax?.bytes ?? 0) + double;
}

/** Which scales a single row (decoding) reads: the widened f32 copy (nf4DecodeScales) or those stored. */
export type Nf4DecodeScales = "widened" | "stored";

/**
 * y = x @ Wᵀ (+ bias) with W in NF4: x [..., in] -> [..., out]. The gradient flows to x (and bias) only: the
 * base weight is frozen, as in QLoRA. A single row is a GEMV reading `decodeScales`; with "widened", inference
 * over up to GEMV_MAX_X_ROWS rows (batched decoding) keeps the widened copy too; a weight in a training graph
 * drops it.
 */
export function nf4Linear(
  x: Tensor,
  w: Nf4Weight,
  bias: Tensor | null = null,
  decodeScales: Nf4DecodeScales = "stored",
): Tensor {
  const [out, inp] = w.shape;
  if (x.shape.at(-1) !== inp) {
    throw new RangeError(
      `nf4Linear: input ${shapeString(x.shape)} does not end in ${inp} (weight ${shapeString(w.shape)})`,
    );
  }
  const lead = x.shape.slice(0, -1);
  const x2 = x.reshape([-1, inp]); // x2: [N, in]
  const y = empty([x2.shape[0], out]); // y: [N, out]
  if (x2.shape[0] === 1 && gemvApplies(inp, "nf4")) {
    const scales = nf4GemvScales(w, decodeScales);
    gemvInto(y.range, x2.range, w.packed.range, "nf4", out, inp, bias?.range ?? null, false, scales);
  } else {
    // Batched decoding (a few rows a step, no gradient) keeps the widened scales as the GEMV does, rather than
    // widening them every step. Longer products (a prompt's prefill, a checkpointed training forward, which
    // records no gradient either) widen them for the call only: kept for every layer they would add 4 bytes
    // per 64 weights to training's peak (0.41 GiB for the 7B, bench/results/h200-2026-11-28by-*).
    if (decodeScales === "widened" && !needsGrad(x, bias) && x2.shape[0] <= GEMV_MAX_X_ROWS) {
      nf4DecodeScales(w);
    }
    withMatrix(w, (m) => matmulInto(y, x2, m, { transB: true, bias }));
  }
  const result = y.reshape([...lead, out]);
  if (needsGrad(x, bias)) {
    releaseNf4DecodeScales(w);
    record(result, bias ? [x, bias] : [x], [], (g) => {
      const g2 = g.reshape([-1, out]); // g2: [N, out]
      const gx = empty([g2.shape[0], inp]); // gx = g @ W: [N, in]
      withMatrix(w, (m) => matmulInto(gx, g2, m, {}));
      const grads: (Tensor | null)[] = [gx.reshape(x.shape)];
      if (bias) grads.push(bias.requiresGrad ? sumTo(g2, [out]) : null);
      return grads;
    });
  }
  return result;
}

/** An NF4 weight's scales as the GEMV reads them (as stored). */
export function nf4Scales(w: Nf4Weight): Nf4Scales {
  if (w.absmax) return { kind: "f32", absmax: w.absmax.range };
  const { q, code, absmax2, offset } = w.double!;
  return { kind: "double", q: q.range, code: code.range, absmax2: absmax2.range, offset };
}

/**
 * An NF4 weight's scales for decoding, as f32: double-quantised ones are widened once and kept (4 bytes per 64
 * weights, ~0.3 GB for a 7B model), since the GEMV reads f32 scales faster (bench --suite decode measures both).
 */
export function nf4DecodeScales(w: Nf4Weight): Nf4Scales {
  if (w.absmax) return { kind: "f32", absmax: w.absmax.range };
  w.decodeAbsmax ??= keep(nf4Absmax(w, "weights"));
  return { kind: "f32", absmax: w.decodeAbsmax.range };
}

/** The scales a GEMV (one row, decoding) reads: the widened f32 copy or those stored. */
export function nf4GemvScales(w: Nf4Weight, which: Nf4DecodeScales): Nf4Scales {
  return which === "widened" ? nf4DecodeScales(w) : nf4Scales(w);
}

/** Frees the widened decode scales, if any (training and disposal; decoding widens them again when needed). */
export function releaseNf4DecodeScales(w: Nf4Weight): void {
  w.decodeAbsmax?.dispose();
  w.decodeAbsmax = null;
}

/**
 * Runs `use` with the weight as a GEMM operand: double-quantised absmax is widened only for the call, unless
 * decoding has kept a widened copy (a prefill after a generation).
 */
function withMatrix(w: Nf4Weight, use: (m: PackedNf4Matrix) => void): void {
  const absmax = w.decodeAbsmax ?? nf4Absmax(w);
  use({ kind: "nf4", shape: w.shape, packed: w.packed, absmax });
  if (absmax !== w.absmax && absmax !== w.decodeAbsmax) absmax.dispose();
}
