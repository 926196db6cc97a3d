/**
 * The decode path of matmul: one input row times a [N, K] weight (f32, f16 or NF4), streamed with 16-byte loads.
 * matmulInto routes x [1, K] @ Wᵀ here; other shapes use the tiled GEMM. NF4 weights are read with their scales
 * as stored, double-quantised ones included, so decoding never widens an absmax buffer.
 */
import { ACTIVATION_FNS_WGSL } from "./activation_fns.ts";
import { NF4_LEVEL_WGSL } from "./nf4_level.ts";
import { WORKGROUP_REDUCE_WGSL } from "./workgroup_reduce.ts";
import { type BufferRange, type KernelSpec, Params, rt } from "./runtime.ts";

const FILE = new URL("./gemv.wgsl", import.meta.url);

/** How the weight is stored, as the GEMV reads it. */
export type GemvWeight = "f32" | "f16" | "nf4";

/** Where an NF4 weight's per-64 scales come from: f32 values, or bitsandbytes' 8-bit double quantisation. */
export type Nf4Scales =
  | { kind: "f32"; absmax: BufferRange }
  | { kind: "double"; q: BufferRange; code: BufferRange; absmax2: BufferRange; offset: number };

/**
 * How a GEMV dispatch is laid out: `lanes` threads share a row's chunks, each thread owns `rowsPerThread` rows
 * (reusing its slice of x for all of them).
 */
export interface GemvLayout {
  lanes: number;
  rowsPerThread: number;
}

const WG = 256;
const CHUNK: Record<GemvWeight, number> = { f32: 4, f16: 8, nf4: 32 };

/** One NF4 word (8 codes) against the 8 x values it multiplies; codes are in bitsandbytes' nibble order. */
const NF4_WORD_DOT = `fn word_dot(word: u32, xa: vec4f, xb: vec4f) -> f32 {
  let lo = vec4f(nf4_table[(word >> 4u) & 15u], nf4_table[word & 15u], nf4_table[(word >> 12u) & 15u], nf4_table[(word >> 8u) & 15u]);
  let hi = vec4f(nf4_table[(word >> 20u) & 15u], nf4_table[(word >> 16u) & 15u], nf4_table[(word >> 28u) & 15u], nf4_table[(word >> 24u) & 15u]);
  return dot(lo, xa) + dot(hi, xb);
}`;

const NF4_SCALES: Record<Nf4Scales["kind"], { decl: string; prologue: string }> = {
  f32: {
    decl: `@group(0) @binding(6) var<storage, read> W_absmax: array<f32>;
alias Scale = f32;
fn load_scale(c: u32) -> Scale { return W_absmax[c >> 1u]; }
fn scale_value(s: Scale) -> f32 { return s; }`,
    prologue: "",
  },
  // Two chunks per 64-weight block; four 8-bit codes per word; one second-level scale per 256 blocks. The load
  // fetches the block's code and second-level scale; the 8-bit map, staged in workgroup memory, is read when the
  // chunk is multiplied (the first loads are issued before the map is staged).
  double: {
    decl: `@group(0) @binding(6) var<storage, read> W_q: array<u32>;
@group(0) @binding(7) var<storage, read> W_code: array<f32>;
@group(0) @binding(8) var<storage, read> W_absmax2: array<f32>;
var<workgroup> code_table: array<f32, 256>;
struct Scale { code: u32, absmax2: f32 }
fn load_scale(c: u32) -> Scale {
  let block = c >> 1u;
  return Scale((W_q[block >> 2u] >> ((block & 3u) * 8u)) & 255u, W_absmax2[block / 256u]);
}
fn scale_value(s: Scale) -> f32 { return code_table[s.code] * s.absmax2 + p.absmax_offset; }`,
    prologue: "  code_table[tid] = W_code[tid];",
  },
};

/** WGSL of a weight storage: its buffers, x's slice per chunk, a chunk's load and its dot product. */
function weightDecl(storage: GemvWeight, scales: Nf4Scales["kind"] | null): string {
  if (storage === "f32") {
    return `const CHUNK: u32 = 4u;
const VPC: u32 = 1u;
@group(0) @binding(2) var<storage, read> W: array<vec4f>;
alias Slice = vec4f;
alias Chunk = vec4f;
fn chunk_x(i: u32) -> Slice { return x_seg[i]; }
fn load_chunk(row: u32, c: u32) -> Chunk { return W[row * (p.K / 4u) + c]; }
fn chunk_dot(w: Chunk, xs: Slice) -> f32 { return dot(w, xs); }`;
  }
  if (storage === "f16") {
    return `const CHUNK: u32 = 8u;
const VPC: u32 = 2u;
@group(0) @binding(2) var<storage, read> W: array<vec4<u32>>;
struct Slice { a: vec4f, b: vec4f }
alias Chunk = vec4<u32>;
fn chunk_x(i: u32) -> Slice { return Slice(x_seg[i], x_seg[SEG + i]); }
fn load_chunk(row: u32, c: u32) -> Chunk { return W[row * (p.K / 8u) + c]; }
fn chunk_dot(w: Chunk, xs: Slice) -> f32 {
  return dot(vec4f(unpack2x16float(w.x), unpack2x16float(w.y)), xs.a) +
    dot(vec4f(unpack2x16float(w.z), unpack2x16float(w.w)), xs.b);
}`;
  }
  return `const CHUNK: u32 = 32u;
const VPC: u32 = 8u;
@group(0) @binding(2) var<storage, read> W: array<vec4<u32>>;
${NF4_SCALES[scales!].decl}
${NF4_LEVEL_WGSL}
var<workgroup> nf4_table: array<f32, 16>;
${NF4_WORD_DOT}
struct Slice { v0: vec4f, v1: vec4f, v2: vec4f, v3: vec4f, v4: vec4f, v5: vec4f, v6: vec4f, v7: vec4f }
struct Chunk { w: vec4<u32>, scale: Scale }
fn chunk_x(i: u32) -> Slice {
  return Slice(x_seg[i], x_seg[SEG + i], x_seg[2u * SEG + i], x_seg[3u * SEG + i], x_seg[4u * SEG + i],
    x_seg[5u * SEG + i], x_seg[6u * SEG + i], x_seg[7u * SEG + i]);
}
fn load_chunk(row: u32, c: u32) -> Chunk {
  let g = row * (p.K / 32u) + c;
  return Chunk(W[g], load_scale(g));
}
fn chunk_dot(ch: Chunk, xs: Slice) -> f32 {
  let w = ch.w;
  return (word_dot(w.x, xs.v0, xs.v1) + word_dot(w.y, xs.v2, xs.v3) + word_dot(w.z, xs.v4, xs.v5) +
    word_dot(w.w, xs.v6, xs.v7)) * scale_value(ch.scale);
}`;
}

function largestPowerOfTwoAtMost(v: number): number {
  return 2 ** Math.floor(Math.log2(Math.max(1, v)));
}

/**
 * The layout for a product, from bench/gemv_sweep.ts on an H200 (bench/results/h200-2026-11-27g-gemv.txt): 16
 * lanes per row, 32 for short matrices (fewer than 4096 rows of 256+ chunks, or fewer than 1024 rows: more
 * threads per row keep the GPU busy; Qwen's k/v 512 x 3584 NF4 8.5 against 9.8 us with 16 lanes,
 * bench/results/h200-2026-11-28n-sweeps.txt) and for long NF4 rows (256+ chunks, where four rows per thread
 * sharing x's slice pay off); more rows per thread as the row count grows. Very short rows get fewer lanes
 * (about four chunks each), down to one.
 */
export function gemvLayout(n: number, k: number, storage: GemvWeight): GemvLayout {
  const chunks = k / CHUNK[storage];
  const longNf4 = storage === "nf4" && chunks >= 256;
  const wide = longNf4 || (chunks >= 256 && n < 4096) || n < 1024;
  const lanes = Math.min(wide ? 32 : 16, largestPowerOfTwoAtMost(chunks / 4));
  if (longNf4) return { lanes, rowsPerThread: 4 };
  const rowsPerThread = n >= 32768 ? 4 : n >= 8192 ? 2 : 1;
  return { lanes, rowsPerThread };
}

/** Every layout a tuner may choose among (all compute the same sums, in possibly different orders). */
export const GEMV_LAYOUTS: readonly GemvLayout[] = [4, 8, 16, 32].flatMap((lanes) =>
  [1, 2, 4].map((rowsPerThread) => ({ lanes, rowsPerThread }))
);

/** A normalisation of x fused ahead of the product: RMSNorm (Qwen2) or LayerNorm (GPT-2), f32 parameters. */
export type GemvNorm =
  | { kind: "rms"; weight: BufferRange; eps: number }
  | { kind: "layer"; weight: BufferRange; bias: BufferRange; eps: number };

/** WGSL of `norm_stats` and `staged_x` for a normalisation (see gemv.wgsl); `binding` is its first binding. */
function normDecl(norm: GemvNorm["kind"] | "none", binding: number): string {
  if (norm === "none") {
    return `fn norm_stats(tid: u32) {}
fn staged_x(i: u32) -> vec4f { return x[i]; }`;
  }
  if (norm === "rms") {
    return `@group(0) @binding(${binding}) var<storage, read> norm_w: array<vec4f>;
fn norm_stats(tid: u32) {
  var sq = 0.0;
  for (var i = tid; i < p.K / 4u; i += WG) { let v = x[i]; sq += dot(v, v); }
  norm_rstd = inverseSqrt(workgroup_sum(sq, tid) / f32(p.K) + p.norm_eps);
}
fn staged_x(i: u32) -> vec4f { return x[i] * norm_rstd * norm_w[i]; }`;
  }
  // Two passes (mean, then squared deviations), as compute/norm.wgsl does, against cancellation.
  return `@group(0) @binding(${binding}) var<storage, read> norm_w: array<vec4f>;
@group(0) @binding(${binding + 1}) var<storage, read> norm_b: array<vec4f>;
fn norm_stats(tid: u32) {
  var s = 0.0;
  for (var i = tid; i < p.K / 4u; i += WG) { let v = x[i]; s += v.x + v.y + v.z + v.w; }
  norm_mean = workgroup_sum(s, tid) / f32(p.K);
  var sq = 0.0;
  for (var i = tid; i < p.K / 4u; i += WG) { let d = x[i] - vec4f(norm_mean); sq += dot(d, d); }
  norm_rstd = inverseSqrt(workgroup_sum(sq, tid) / f32(p.K) + p.norm_eps);
}
fn staged_x(i: u32) -> vec4f { return (x[i] - vec4f(norm_mean)) * norm_rstd * norm_w[i] + norm_b[i]; }`;
}

const kernels = new Map<string, KernelSpec>();

/** Workgroup memory the kernel keeps for partial sums, tables and the reduction tree; the rest may stage x. */
const RESERVED_WORKGROUP_BYTES = 8192;

const segments = new Map<string, number>();

/**
 * Chunks of x staged per segment: all of x when it fits in the GPU's workgroup memory, else a multiple of the
 * lanes (a lane's chunks then continue from one segment into the next, so its next load is known early).
 */
function segmentChunks(k: number, storage: GemvWeight, lanes: number): number {
  const key = `${storage}|${k}|${lanes}`;
  let segment = segments.get(key);
  if (segment === undefined) {
    const chunks = k / CHUNK[storage];
    const bytes = rt().gpu.device.limits.maxComputeWorkgroupStorageSize - RESERVED_WORKGROUP_BYTES;
    const fit = Math.floor(bytes / (CHUNK[storage] * 4));
    segment = fit >= chunks ? chunks : Math.max(lanes, fit - (fit % lanes));
    segments.set(key, segment);
  }
  return segment;
}

/** One spec object per variant, so the runtime finds its pipeline without rebuilding a key. */
function kernel(
  layout: GemvLayout,
  storage: GemvWeight,
  scales: Nf4Scales["kind"] | null,
  segment: number,
  norm: GemvNorm["kind"] | "none",
): KernelSpec {
  const key = `${layout.lanes}|${layout.rowsPerThread}|${storage}|${scales}|${segment}|${norm}`;
  let spec = kernels.get(key);
  if (!spec) {
    const rows = Array.from({ length: layout.rowsPerThread }, (_, j) => j);
    const scaleBindings: KernelSpec["bindings"] = scales === "double"
      ? ["read", "read", "read"]
      : scales === "f32"
      ? ["read"]
      : [];
    const normBindings: KernelSpec["bindings"] = norm === "layer"
      ? ["read", "read"]
      : norm === "rms"
      ? ["read"]
      : [];
    spec = {
      file: FILE,
      entry: "main",
      bindings: ["read", "read", "read", "write", "read", ...scaleBindings, ...normBindings],
      defines: {
        ACTIVATIONS: ACTIVATION_FNS_WGSL,
        WORKGROUP_REDUCE: WORKGROUP_REDUCE_WGSL,
        NORM_DECL: normDecl(norm, 6 + scaleBindings.length),
        LANES: layout.lanes,
        RPT: layout.rowsPerThread,
        SEG: segment,
        W_DECL: weightDecl(storage, scales),
        // The tables are read after the barrier that opens the first segment.
        PROLOGUE: storage === "nf4"
          ? `  if (tid < 16u) { nf4_table[tid] = nf4_level(tid); }\n${NF4_SCALES[scales!].prologue}`
          : "",
        ACC_DECL: rows.map((j) =>
          `  var acc${j} = 0.0;\n  let row${j} = min(first_row + local_row + ${j}u, last);\n  var next${j}: Chunk;`
        ).join("\n"),
        PREFETCH_FIRST: rows.map((j) => `  if (lane < chunks) { next${j} = load_chunk(row${j}, lane); }`)
          .join("\n"),
        ROW_UPDATES: rows.map((j) =>
          `      let w${j} = next${j};\n      if (more) { next${j} = load_chunk(row${j}, i + LANES); }\n` +
          `      acc${j} += chunk_dot(w${j}, xs);`
        ).join("\n"),
        PARTIAL_STORE: rows.map((j) => `  partial[lane * ROWS + local_row + ${j}u] = acc${j};`).join("\n"),
      },
    };
    kernels.set(key, spec);
  }
  return spec;
}

/** Whether the GEMV can take this product (the wrapper falls back to the GEMM otherwise). */
export function gemvApplies(k: number, weight: GemvWeight): boolean {
  return k > 0 && k % CHUNK[weight] === 0;
}

/**
 * What the GEMV applies to each output after the bias: nothing, `+ residual[row]` (a residual connection),
 * `silu(gate[row]) * y` (SwiGLU's gating of the up projection) or GPT-2's GELU.
 */
export type GemvEpilogue =
  | { kind: "none" }
  | { kind: "residual"; residual: BufferRange }
  | { kind: "silu-gate"; gate: BufferRange }
  | { kind: "gelu" };

const EPILOGUE_CODES: Record<GemvEpilogue["kind"], number> = {
  none: 0,
  residual: 1,
  "silu-gate": 2,
  gelu: 3,
};

const NO_EPILOGUE: GemvEpilogue = { kind: "none" };

/**
 * y (+)= epilogue(norm(x) @ Wᵀ (+ bias)): x [1, K], W [N, K]; `scales` are an NF4 weight's; `norm` (optional)
 * normalises x on the way in.
 */
export function gemvInto(
  y: BufferRange,
  x: BufferRange,
  weight: BufferRange,
  storage: GemvWeight,
  n: number,
  k: number,
  bias: BufferRange | null,
  accumulate: boolean,
  scales: Nf4Scales | null,
  layout: GemvLayout = gemvLayout(n, k, storage),
  epilogue: GemvEpilogue = NO_EPILOGUE,
  norm: GemvNorm | null = null,
): void {
  if ((storage === "nf4") !== (scales !== null)) {
    throw new TypeError(`gemv: ${storage} weights ${storage === "nf4" ? "need" : "take no"} NF4 scales`);
  }
  const segment = segmentChunks(k, storage, layout.lanes);
  const spec = kernel(layout, storage, scales?.kind ?? null, segment, norm?.kind ?? "none");
  const aux = epilogue.kind === "residual"
    ? epilogue.residual
    : epilogue.kind === "silu-gate"
    ? epilogue.gate
    : x;
  const buffers = [x, weight, bias ?? x, y, aux];
  if (scales?.kind === "f32") buffers.push(scales.absmax);
  if (scales?.kind === "double") buffers.push(scales.q, scales.code, scales.absmax2);
  if (norm) buffers.push(norm.weight);
  if (norm?.kind === "layer") buffers.push(norm.bias);
  const params = new Params().u32(n, k, bias ? 1 : 0, accumulate ? 1 : 0)
    .f32(scales?.kind === "double" ? scales.offset : 0).u32(EPILOGUE_CODES[epilogue.kind]).f32(
      norm?.eps ?? 0,
    );
  const rowsPerGroup = (WG / layout.lanes) * layout.rowsPerThread;
  rt().dispatch(spec, params, buffers, Math.ceil(n / rowsPerGroup));
}
