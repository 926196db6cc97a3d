/**
 * The decode path of matmul: one input row times a [N, K] weight (f32, f16 or NF4), streamed with wide loads.
 * matmulInto routes x [1, K] @ Wᵀ here; other shapes use the tiled GEMM.
 */
import { NF4_LEVEL_WGSL } from "./nf4_level.ts";
import { type BufferRange, type KernelSpec, Params, rt } from "./runtime.ts";

const FILE = new URL("./gemv.wgsl", import.meta.url);

/** How the weight is stored, as the GEMV reads it. */
export type GemvWeight = "f32" | "f16" | "nf4";

const W_DECLS: Record<GemvWeight, string> = {
  f32: `@group(0) @binding(2) var<storage, read> W: array<vec4f>;
fn row_dot(row: u32, lane: u32) -> f32 {
  let k4 = p.K / 4u;
  let base = row * k4;
  var acc = vec4f(0.0);
  for (var i = lane; i < k4; i += LANES) { acc = fma(W[base + i], x[i], acc); }
  return acc.x + acc.y + acc.z + acc.w;
}`,
  f16: `@group(0) @binding(2) var<storage, read> W: array<vec4<u32>>;
fn row_dot(row: u32, lane: u32) -> f32 {
  let k8 = p.K / 8u;
  let base = row * k8;
  var acc = vec4f(0.0);
  for (var i = lane; i < k8; i += LANES) {
    let w = W[base + i];
    acc = fma(vec4f(unpack2x16float(w.x), unpack2x16float(w.y)), x[2u * i], acc);
    acc = fma(vec4f(unpack2x16float(w.z), unpack2x16float(w.w)), x[2u * i + 1u], acc);
  }
  return acc.x + acc.y + acc.z + acc.w;
}`,
  // 16-byte loads: four words = 32 codes, all in one 64-weight block (K is a multiple of 32 here).
  nf4: `@group(0) @binding(2) var<storage, read> W: array<vec4<u32>>;
@group(0) @binding(5) var<storage, read> W_absmax: array<f32>;
${NF4_LEVEL_WGSL}
fn word_dot(word: u32, xa: vec4f, xb: vec4f) -> f32 {
  let lo = vec4f(nf4_level((word >> 4u) & 15u), nf4_level(word & 15u), nf4_level((word >> 12u) & 15u), nf4_level((word >> 8u) & 15u));
  let hi = vec4f(nf4_level((word >> 20u) & 15u), nf4_level((word >> 16u) & 15u), nf4_level((word >> 28u) & 15u), nf4_level((word >> 24u) & 15u));
  return dot(lo, xa) + dot(hi, xb);
}
fn row_dot(row: u32, lane: u32) -> f32 {
  let k32 = p.K / 32u;
  let base = row * k32;
  var acc = 0.0;
  for (var i = lane; i < k32; i += LANES) {
    let w = W[base + i];
    let x0 = 8u * i;
    let sum = word_dot(w.x, x[x0], x[x0 + 1u]) + word_dot(w.y, x[x0 + 2u], x[x0 + 3u]) +
      word_dot(w.z, x[x0 + 4u], x[x0 + 5u]) + word_dot(w.w, x[x0 + 6u], x[x0 + 7u]);
    acc = fma(sum, W_absmax[(base + i) / 2u], acc);
  }
  return acc;
}`,
};

/**
 * Rows per workgroup: long rows get a whole workgroup; short rows share one, and very short rows (a tiny model's
 * lm_head) get one thread each, since a reduction tree per row would cost more than the row itself.
 */
function rowsPerGroup(k: number, weight: GemvWeight): number {
  const chunks = k / ({ f32: 4, f16: 8, nf4: 32 } as const)[weight];
  if (chunks >= 256) return 1;
  if (chunks >= 64) return 4;
  return chunks > 32 ? 16 : 256;
}

const kernels = new Map<string, KernelSpec>();

/** One spec object per variant, so the runtime finds its pipeline without rebuilding a key. */
function kernel(rows: number, storage: GemvWeight): KernelSpec {
  const key = `${rows}|${storage}`;
  let spec = kernels.get(key);
  if (!spec) {
    spec = {
      file: FILE,
      entry: "main",
      bindings: storage === "nf4"
        ? ["read", "read", "read", "write", "read"]
        : ["read", "read", "read", "write"],
      defines: { ROWS: rows, W_DECL: W_DECLS[storage] },
    };
    kernels.set(key, spec);
  }
  return spec;
}

/** Whether the GEMV can take this product (the wrapper falls back to the GEMM otherwise). */
export function gemvApplies(k: number, weight: GemvWeight): boolean {
  return k > 0 && k % (weight === "nf4" ? 32 : 8) === 0;
}

/** y (+)= x @ Wᵀ (+ bias): x [1, K], W [N, K]; `extra` is the NF4 absmax buffer. */
export function gemvInto(
  y: BufferRange,
  x: BufferRange,
  weight: BufferRange,
  storage: GemvWeight,
  n: number,
  k: number,
  bias: BufferRange | null,
  accumulate: boolean,
  absmax: BufferRange | null,
): void {
  const rows = rowsPerGroup(k, storage);
  const spec = kernel(rows, storage);
  const buffers = [x, weight, bias ?? x, y];
  if (storage === "nf4") buffers.push(absmax!);
  rt().dispatch(spec, new Params().u32(n, k, bias ? 1 : 0, accumulate ? 1 : 0), buffers, Math.ceil(n / rows));
}
