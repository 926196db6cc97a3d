/**
 * The decode path of matmul: one input row times a [N, K] weight (f32, f16 or NF4), streamed with 16-byte loads.
 * matmulInto routes x [m, K] @ Wᵀ here for m up to GEMV_MAX_X_ROWS (`gemvRowsInto` for several rows, whose long
 * reductions split into layers summed by compute/split_sum.ts); other shapes use the tiled GEMM. Weights that
 * read the same x share one dispatch: stacked (q, k and v, each with its own output; `gemvStackInto`) or as a
 * SwiGLU pair (gate and up, `gemvSwigluInto`). NF4 scales are read as given: f32 (compute/nf4.ts widens a
 * double-quantised weight's once for decoding) or bitsandbytes' 8-bit double quantisation as stored; NF4 levels
 * come from an f32 table, one code at a time, or (long rows, Qwen's down) from a table of f16 level pairs, a byte
 * of codes at a time. Where the device has subgroups, a row's lanes sum across one.
 */
import { ACTIVATION_FNS_WGSL } from "./activation_fns.ts";
import { NF4_LEVEL_F16_WGSL, NF4_LEVEL_WGSL } from "./nf4_level.ts";
import { type BufferRange, type KernelSpec, Params, rt } from "./runtime.ts";
import { splitSumInto } from "./split_sum.ts";
import { empty } from "./tensor.ts";

const FILE = new URL("./gemv.wgsl", import.meta.url);

/** How the weight is stored, as the GEMV reads it. */
export type GemvWeight = "f32" | "f16" | "nf4";

/** Where an NF4 weight's per-64 scales come from: f32 values, or bitsandbytes' 8-bit double quantisation. */
export type Nf4Scales =
  | { kind: "f32"; absmax: BufferRange }
  | { kind: "double"; q: BufferRange; code: BufferRange; absmax2: BufferRange; offset: number };

/**
 * How a GEMV dispatch is laid out: workgroups of `threads` threads, `lanes` of them share a row's chunks, each
 * thread owns `rowsPerThread` rows (reusing its slice of x for all of them).
 */
export interface GemvLayout {
  threads: number;
  lanes: number;
  rowsPerThread: number;
  /**
   * NF4 only: copies of the f16 level-pair table in workgroup memory (see NF4_PAIR_DOT), or 0 (the default) for
   * f32 levels looked up one code at a time.
   */
  pairCopies?: number;
  /**
   * Several rows of x only: layers of split-K, each a run of the reduction's chunks in its own workgroups,
   * their partial sums added by a second pass (compute/split_sum.ts); 1 (the default) for none.
   */
  splits?: number;
}

const CHUNK: Record<GemvWeight, number> = { f32: 4, f16: 8, nf4: 32 };
/** Pieces a chunk is multiplied in for several rows of x (chunkDecl's PIECES). */
const PIECES: Record<GemvWeight, number> = { f32: 1, f16: 2, nf4: 4 };

/** One NF4 word (8 codes) against the 8 x values it multiplies; codes are in bitsandbytes' nibble order. */
const NF4_LEVEL_DOT = `var<workgroup> nf4_table: array<f32, 16>;
fn word_levels_lo(word: u32) -> vec4f {
  return vec4f(nf4_table[(word >> 4u) & 15u], nf4_table[word & 15u], nf4_table[(word >> 12u) & 15u], nf4_table[(word >> 8u) & 15u]);
}
fn word_levels_hi(word: u32) -> vec4f {
  return vec4f(nf4_table[(word >> 20u) & 15u], nf4_table[(word >> 16u) & 15u], nf4_table[(word >> 28u) & 15u], nf4_table[(word >> 24u) & 15u]);
}
fn word_dot(word: u32, xa: vec4f, xb: vec4f) -> f32 {
  return dot(word_levels_lo(word), xa) + dot(word_levels_hi(word), xb);
}`;

/** Memory banks of workgroup memory (NVIDIA, AMD and Intel GPUs have 32 of 4 bytes). */
const BANKS = 32;

/** Copies of the pair table for long NF4 rows: 16 left x bigger segments and beat 32 (28.0 against 29.5 us). */
const LONG_ROW_PAIR_COPIES = 16;

/**
 * The same product with half the table lookups: one per byte of codes, which yields both of its levels as two f16
 * (bitsandbytes' order: the high nibble is the first weight), at the cost of the levels' rounding to f16
 * (relative error at most 2^-11; bitsandbytes' own GEMV rounds them to the compute dtype, bf16 in the seed). The
 * 256 pairs are stored PAIR_COPIES times, interleaved, and thread t reads copy t % PAIR_COPIES: with a copy per
 * bank a warp's 32 lookups never meet in one bank whatever its bytes are, with half as many two lanes may.
 * Measured on an H200 (bench/results/h200-2026-11-28{ao,as}-sweep-*): faster only for long rows, Qwen's down
 * 31.9 → 28.0 us with 16 copies; slower for gate/up and q/k/v (50 → 58–66 us, 14 → 26 us), where a workgroup's
 * rows are short, so the table's fill and workgroup memory (fewer resident workgroups) cost more than the
 * lookups save.
 */
const NF4_PAIR_DOT = `var<workgroup> nf4_pairs: array<u32, 256 * PAIR_COPIES>;
var<private> pair_copy: u32;
fn byte_levels(word: u32, shift: u32) -> vec2f {
  return unpack2x16float(nf4_pairs[((word >> shift) & 255u) * PAIR_COPIES + pair_copy]);
}
fn word_dot(word: u32, xa: vec4f, xb: vec4f) -> f32 {
  return dot(vec4f(byte_levels(word, 0u), byte_levels(word, 8u)), xa) +
    dot(vec4f(byte_levels(word, 16u), byte_levels(word, 24u)), xb);
}`;

/**
 * WGSL that fills the pair table: each of the 256 pairs is built once and stored in every copy, each thread
 * starting at another copy so a warp's stores hit distinct banks.
 */
const NF4_PAIR_TABLE_FILL = `  pair_copy = tid % PAIR_COPIES;
  for (var e = tid; e < 256u; e += WG) {
    let pair = nf4_level_f16(e >> 4u) | (nf4_level_f16(e & 15u) << 16u);
    for (var c = 0u; c < PAIR_COPIES; c++) { nf4_pairs[e * PAIR_COPIES + (c + e) % PAIR_COPIES] = pair; }
  }`;

/**
 * How a storage of NF4 scales is read: WGSL all sources share (the `Scale` a chunk load carries and
 * `scale_value`), its buffers per source with `load_scale_s(chunk)`, and what each source stages first.
 */
interface Nf4ScalesWgsl {
  shared: string;
  bindings: number;
  source(s: number, first: number): string;
  prologue(s: number): string;
}

const NF4_SCALES: Record<Nf4Scales["kind"], Nf4ScalesWgsl> = {
  f32: {
    shared: `alias Scale = f32;
fn scale_value(s: Scale) -> f32 { return s; }`,
    bindings: 1,
    source: (s, first) =>
      `@group(0) @binding(${first}) var<storage, read> W_absmax${s}: array<f32>;
fn load_scale_${s}(c: u32) -> Scale { return W_absmax${s}[c >> 1u]; }`,
    prologue: () => "",
  },
  // Two chunks per 64-weight block; four 8-bit codes per word; one second-level scale per 256 blocks. The load
  // fetches the block's code and second-level scale; the sources' 8-bit maps, staged side by side in workgroup
  // memory, are read when the chunk is multiplied (the first loads are issued before the maps are staged).
  double: {
    shared: `var<workgroup> code_table: array<f32, 256 * SOURCES>;
struct Scale { code: u32, absmax2: f32, offset: f32 }
fn scale_value(s: Scale) -> f32 { return code_table[s.code] * s.absmax2 + s.offset; }`,
    bindings: 3,
    source: (s, first) =>
      `@group(0) @binding(${first}) var<storage, read> W_q${s}: array<u32>;
@group(0) @binding(${first + 1}) var<storage, read> W_code${s}: array<f32>;
@group(0) @binding(${first + 2}) var<storage, read> W_absmax2${s}: array<f32>;
fn load_scale_${s}(c: u32) -> Scale {
  let block = c >> 1u;
  let code = (W_q${s}[block >> 2u] >> ((block & 3u) * 8u)) & 255u;
  return Scale(${s * 256}u + code, W_absmax2${s}[block / 256u], p.absmax_offset[${s}]);
}`,
    prologue: (s) => `  if (tid < 256u) { code_table[${s * 256}u + tid] = W_code${s}[tid]; }`,
  },
};

/**
 * WGSL of what every source of a storage shares: the chunk's size, x's slice of it and their dot product; for
 * several rows of x, the chunk in PIECES pieces (NF4: a word of 8 codes; f16: 4 values; f32: the chunk), each
 * dequantised once for all rows (`piece_deq(chunk, q)`) and dotted with x's row r (`piece_x(i, r, q)`), a piece
 * at a time so a thread's registers hold one piece of each of its rows' chunks.
 */
function chunkDecl(storage: GemvWeight, scales: Nf4Scales["kind"] | null, pairCopies: number): string {
  if (storage === "f32") {
    return `const CHUNK: u32 = 4u;
const VPC: u32 = 1u;
alias Slice = vec4f;
alias Chunk = vec4f;
const PIECES: u32 = 1u;
alias Piece = vec4f;
fn chunk_x(i: u32) -> Slice { return x_seg[i]; }
fn chunk_dot(w: Chunk, xs: Slice) -> f32 { return dot(w, xs); }
fn piece_x(i: u32, r: u32, q: u32) -> Piece { return x_seg[r * SEG + i]; }
fn piece_deq(w: Chunk, q: u32) -> Piece { return w; }
fn piece_dot(a: Piece, b: Piece) -> f32 { return dot(a, b); }`;
  }
  if (storage === "f16") {
    return `const CHUNK: u32 = 8u;
const VPC: u32 = 2u;
struct Slice { a: vec4f, b: vec4f }
alias Chunk = vec4<u32>;
fn chunk_x(i: u32) -> Slice { return Slice(x_seg[i], x_seg[SEG + i]); }
fn chunk_dot(w: Chunk, xs: Slice) -> f32 {
  return dot(vec4f(unpack2x16float(w.x), unpack2x16float(w.y)), xs.a) +
    dot(vec4f(unpack2x16float(w.z), unpack2x16float(w.w)), xs.b);
}
const PIECES: u32 = 2u;
alias Piece = vec4f;
fn piece_x(i: u32, r: u32, q: u32) -> Piece { return x_seg[(2u * r + q) * SEG + i]; }
fn piece_deq(w: Chunk, q: u32) -> Piece {
  return vec4f(unpack2x16float(w[2u * q]), unpack2x16float(w[2u * q + 1u]));
}
fn piece_dot(a: Piece, b: Piece) -> f32 { return dot(a, b); }`;
  }
  const levels = pairCopies > 0
    ? `const PAIR_COPIES: u32 = ${pairCopies}u;\n${NF4_LEVEL_F16_WGSL}\n${NF4_PAIR_DOT}`
    : `${NF4_LEVEL_WGSL}\n${NF4_LEVEL_DOT}`;
  return `const CHUNK: u32 = 32u;
const VPC: u32 = 8u;
${NF4_SCALES[scales!].shared}
${levels}
struct Slice { v0: vec4f, v1: vec4f, v2: vec4f, v3: vec4f, v4: vec4f, v5: vec4f, v6: vec4f, v7: vec4f }
struct Chunk { w: vec4<u32>, scale: Scale }
fn chunk_x(i: u32) -> Slice {
  return Slice(x_seg[i], x_seg[SEG + i], x_seg[2u * SEG + i], x_seg[3u * SEG + i], x_seg[4u * SEG + i],
    x_seg[5u * SEG + i], x_seg[6u * SEG + i], x_seg[7u * SEG + i]);
}
fn chunk_dot(ch: Chunk, xs: Slice) -> f32 {
  let w = ch.w;
  return (word_dot(w.x, xs.v0, xs.v1) + word_dot(w.y, xs.v2, xs.v3) + word_dot(w.z, xs.v4, xs.v5) +
    word_dot(w.w, xs.v6, xs.v7)) * scale_value(ch.scale);
}
${
    pairCopies > 0 ? "" : `
const PIECES: u32 = 4u;
struct Piece { lo: vec4f, hi: vec4f }
fn piece_x(i: u32, r: u32, q: u32) -> Piece {
  let b = (8u * r + 2u * q) * SEG + i;
  return Piece(x_seg[b], x_seg[b + SEG]);
}
fn piece_deq(ch: Chunk, q: u32) -> Piece {
  let s = scale_value(ch.scale);
  return Piece(word_levels_lo(ch.w[q]) * s, word_levels_hi(ch.w[q]) * s);
}
fn piece_dot(a: Piece, b: Piece) -> f32 { return dot(a.lo, b.lo) + dot(a.hi, b.hi); }`
  }`;
}

/** Storage buffers a source binds: its weight, its NF4 scales and its bias. */
function sourceBindings(storage: GemvWeight, scales: Nf4Scales["kind"] | null): number {
  return 2 + (storage === "nf4" ? NF4_SCALES[scales!].bindings : 0);
}

/** WGSL of source s's weight and bias, from binding `first`, and `load_chunk_s(row, c)`. */
function sourceDecl(storage: GemvWeight, scales: Nf4Scales["kind"] | null, s: number, first: number): string {
  const words = storage === "f32" ? "vec4f" : "vec4<u32>";
  const weight = `@group(0) @binding(${first}) var<storage, read> W${s}: array<${words}>;
@group(0) @binding(${first + 1}) var<storage, read> bias${s}: array<f32>;`;
  if (storage !== "nf4") {
    return `${weight}
fn load_chunk_${s}(row: u32, c: u32) -> Chunk { return W${s}[row * (p.K / CHUNK) + c]; }`;
  }
  return `${weight}
${NF4_SCALES[scales!].source(s, first + 2)}
fn load_chunk_${s}(row: u32, c: u32) -> Chunk {
  let g = row * (p.K / CHUNK) + c;
  return Chunk(W${s}[g], load_scale_${s}(g));
}`;
}

/** `name(src, ...)`: the call `call(s)` for source src, one branch per source (src is uniform per workgroup). */
function bySource(signature: string, sources: number, call: (s: number) => string): string {
  const branches = Array.from(
    { length: sources - 1 },
    (_, i) => `  if (src == ${i + 1}u) { ${call(i + 1)} }`,
  );
  return `fn ${signature} {\n${[...branches, `  ${call(0)}`].join("\n")}\n}`;
}

/**
 * WGSL of the sources' buffers (from binding `first`) and the functions main reads them by: `load_chunk`,
 * `bias_of`, and `y_of` / `store_y` for each of the `outputs` outputs (bound after the sources).
 */
function sourcesDecl(
  storage: GemvWeight,
  scales: Nf4Scales["kind"] | null,
  pairCopies: number,
  sources: number,
  outputs: number,
  first: number,
): string {
  const per = sourceBindings(storage, scales);
  const decls = Array.from({ length: sources }, (_, s) => sourceDecl(storage, scales, s, first + s * per));
  const ys = Array.from(
    { length: outputs },
    (_, s) => `@group(0) @binding(${first + sources * per + s}) var<storage, read_write> y${s}: array<f32>;`,
  );
  return [
    chunkDecl(storage, scales, pairCopies),
    ...decls,
    ...ys,
    bySource(
      "load_chunk(src: u32, row: u32, c: u32) -> Chunk",
      sources,
      (s) => `return load_chunk_${s}(row, c);`,
    ),
    bySource("bias_of(src: u32, row: u32) -> f32", sources, (s) => `return bias${s}[row];`),
    bySource("y_of(src: u32, row: u32) -> f32", outputs, (s) => `return y${s}[row];`),
    bySource("store_y(src: u32, row: u32, v: f32)", outputs, (s) => `y${s}[row] = v; return;`),
  ].join("\n");
}

function largestPowerOfTwoAtMost(v: number): number {
  return 2 ** Math.floor(Math.log2(Math.max(1, v)));
}

/**
 * The layout for a product, from bench/gemv_sweep.ts on an H200 (bench/results/h200-2026-11-27g-gemv.txt): 16
 * lanes per row, 32 for short matrices (fewer than 4096 rows of 256+ chunks, or fewer than 1024 rows: more
 * threads per row keep the GPU busy; Qwen's k/v 512 x 3584 NF4 8.5 against 9.8 us with 16 lanes,
 * bench/results/h200-2026-11-28n-sweeps.txt) and for long NF4 rows (256+ chunks: Qwen's down, where x does not
 * fit workgroup memory and only 112 workgroups of 32 rows keep its staging cheap; 512 threads of 2 rows each put
 * twice the loads in flight, 31.4 against 37.1 us with 256 threads of 4 rows, bench/results/h200-2026-11-28x-*;
 * and 16 copies of the f16 level-pair table, see NF4_PAIR_DOT);
 * more rows per thread as the row count grows, half as many for a SwiGLU pair, whose threads accumulate both
 * weights' rows (Qwen's gate+up 51.4 against 50.0 us with subgroups, bench/results/h200-2026-11-28ag-sweep.txt).
 * Very short rows get fewer lanes (about four chunks each), down to one.
 */
export function gemvLayout(
  n: number,
  k: number,
  storage: GemvWeight,
  combine: "stack" | "swiglu" = "stack",
  xRows = 1,
): GemvLayout {
  const chunks = k / CHUNK[storage];
  const longNf4 = storage === "nf4" && chunks >= 256;
  const wide = longNf4 || (chunks >= 256 && n < 4096) || n < 1024;
  const lanes = Math.min(wide ? 32 : 16, largestPowerOfTwoAtMost(chunks / 4));
  if (xRows > 1) return rowsLayout(n, k, lanes);
  if (longNf4) return { threads: 512, lanes, rowsPerThread: 2, pairCopies: LONG_ROW_PAIR_COPIES };
  // A SwiGLU pair's thread already accumulates two weights' rows.
  const rowsPerThread = (n >= 32768 ? 4 : n >= 8192 ? 2 : 1) / (combine === "swiglu" && n >= 8192 ? 2 : 1);
  return { threads: 256, lanes, rowsPerThread };
}

/**
 * The layout for several rows of x (evaluation's batched decoding), from bench/gemv_sweep.ts at 16 rows on an H200
 * (bench/results/h200-2026-11-28bx-sweep-x16-splits.txt, 40 layouts a shape). Where k allows two layers of split-K
 * of at least 512 (as the GEMM's), 4 lanes of 4 rows each (8 lanes of one row below 2048 rows), so a workgroup
 * stages x once for 256 rows, and split-K up to about 512 workgroups, at most 8 layers: against the one-row
 * lanes without split-K, Qwen's gate/up 190.5 -> 141.4 us, down 256.2 -> 128.1, q/o 49.1 -> 37.9, k/v 41.4 ->
 * 17.0, the f16 lm_head 1273 -> 822 (one layer). Shorter rows (GPT-2 small's k = 768, where the host's encoding
 * bounds decoding and a second pass costs a dispatch) keep the one-row lanes, 4 rows a thread for 8192+ rows, 2
 * for 2048+.
 */
function rowsLayout(n: number, k: number, oneRowLanes: number): GemvLayout {
  const most = Math.min(8, Math.floor(k / 512));
  if (most < 2) return { threads: 256, lanes: oneRowLanes, rowsPerThread: n >= 8192 ? 4 : n >= 2048 ? 2 : 1 };
  const layout = n >= 2048
    ? { threads: 256, lanes: Math.min(4, oneRowLanes), rowsPerThread: 4 }
    : { threads: 256, lanes: Math.min(8, oneRowLanes), rowsPerThread: 1 };
  const groups = Math.ceil(n / ((layout.threads / layout.lanes) * layout.rowsPerThread));
  return { ...layout, splits: Math.min(most, 2 ** Math.ceil(Math.log2(Math.ceil(512 / groups)))) };
}

/**
 * Every layout a tuner may choose among (all compute the same sums, in possibly different orders): workgroups of
 * 256 threads, and of 512 with 32 or 64 lanes (more loads in flight per workgroup for long rows).
 */
export const GEMV_LAYOUTS: readonly GemvLayout[] = [
  ...[4, 8, 16, 32].flatMap((lanes) =>
    [1, 2, 4].map((rowsPerThread) => ({ threads: 256, lanes, rowsPerThread }))
  ),
  ...[32, 64].flatMap((lanes) => [1, 2, 4].map((rowsPerThread) => ({ threads: 512, lanes, rowsPerThread }))),
];

/** A normalisation of x fused ahead of the product: RMSNorm (Qwen2) or LayerNorm (GPT-2), f32 parameters. */
export type GemvNorm =
  | { kind: "rms"; weight: BufferRange; eps: number }
  | { kind: "layer"; weight: BufferRange; bias: BufferRange; eps: number };

/**
 * WGSL of `norm_stats`, `staged_x`, `norm_finish` and `row_scale` for a normalisation (see gemv.wgsl); `binding`
 * is its first binding.
 */
function normDecl(norm: GemvNorm["kind"] | "none", binding: number): string {
  const unscaled = `fn norm_finish(tid: u32) {}
fn row_scale() -> f32 { return 1.0; }`;
  if (norm === "none") {
    return `fn norm_stats(tid: u32) {}
fn staged_x(i: u32) -> vec4f { return x[i]; }
${unscaled}`;
  }
  if (norm === "rms") {
    // RMSNorm's 1 / rms scales every row's sum alike, so it is applied to the sums: x is read once, as it is
    // staged, and its sum of squares is reduced once x is staged instead of in a pass over x before it.
    return `@group(0) @binding(${binding}) var<storage, read> norm_w: array<vec4f>;
var<private> norm_sq: f32;
fn norm_stats(tid: u32) {}
fn staged_x(i: u32) -> vec4f { let v = x[i]; norm_sq += dot(v, v); return v * norm_w[i]; }
fn norm_finish(tid: u32) { norm_rstd = inverseSqrt(workgroup_sum(norm_sq, tid) / f32(p.K) + p.norm_eps); }
fn row_scale() -> f32 { return norm_rstd; }`;
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
fn staged_x(i: u32) -> vec4f { return (x[i] - vec4f(norm_mean)) * norm_rstd * norm_w[i] + norm_b[i]; }
${unscaled}`;
}

/** A GEMV kernel's shape: what varies between dispatches is only in Params and the bound buffers. */
interface Variant {
  layout: GemvLayout;
  storage: GemvWeight;
  scales: Nf4Scales["kind"] | null;
  norm: GemvNorm["kind"] | "none";
  /** Stacked sources, each with its own rows and output, or a SwiGLU pair (gate, up) with one output. */
  combine: "stack" | "swiglu";
  sources: number;
  /** The subgroup width the kernel is written for (rt().subgroups), null without subgroups. */
  subgroups: number | null;
  /** Copies of the NF4 level-pair table, 0 for f32 levels (and for other storages). */
  pairCopies: number;
  /** Rows of x (1 when decoding one sequence; up to GEMV_MAX_X_ROWS, one source, no norm, no epilogue). */
  xRows: number;
}

/** Whether a row's lanes sit in one subgroup, so their partial sums meet in registers. */
function rowsBySubgroup(v: Variant): boolean {
  return v.subgroups !== null && v.layout.lanes <= v.subgroups;
}

/** Workgroup memory the kernel keeps besides x's segment: partial sums, NF4 tables, the reduction tree. */
function reservedBytes(v: Variant): number {
  const { threads } = v.layout;
  const partials = rowsBySubgroup(v)
    ? 0
    : threads * v.layout.rowsPerThread * (v.combine === "swiglu" ? 2 : 1) * 4;
  const codeTables = v.scales === "double" ? 256 * 4 * v.sources : 0;
  const reduceSlots = v.subgroups === null ? threads : Math.ceil(threads / v.subgroups);
  // NF4 levels: the f32 table (16 of them, NF4_LEVEL_DOT) or the f16 pair table's copies.
  const levels = v.storage !== "nf4" ? 0 : v.pairCopies > 0 ? v.pairCopies * 256 * 4 : 16 * 4;
  return partials + codeTables + reduceSlots * 8 + levels;
}

/** Whether a variant's workgroup memory leaves room for x: all of it, or a chunk per lane, for each row of x. */
function leavesRoomForX(v: Variant, k: number): boolean {
  const limit = rt().gpu.device.limits.maxComputeWorkgroupStorageSize;
  return reservedBytes(v) + Math.min(k, v.layout.lanes * CHUNK[v.storage]) * 4 * v.xRows <= limit;
}

const segments = new Map<string, number>();

/**
 * Chunks of x staged per segment: all of x when it fits in the GPU's workgroup memory, else a multiple of the
 * lanes (a lane's chunks then continue from one segment into the next, so its next load is known early).
 */
function segmentChunks(chunks: number, v: Variant): number {
  const reserved = reservedBytes(v);
  const key = `${v.storage}|${chunks}|${v.layout.lanes}|${reserved}|${v.xRows}`;
  let segment = segments.get(key);
  if (segment === undefined) {
    const bytes = rt().gpu.device.limits.maxComputeWorkgroupStorageSize - reserved;
    const fit = Math.floor(bytes / (CHUNK[v.storage] * 4 * v.xRows));
    segment = fit >= chunks ? chunks : Math.max(v.layout.lanes, fit - (fit % v.layout.lanes));
    segments.set(key, segment);
  }
  return segment;
}

/** Storage buffers a dispatch binds: x, the epilogue's input, the norm's parameters, the sources, the outputs. */
function bindingCount(v: Variant): number {
  const norm = v.norm === "layer" ? 2 : v.norm === "rms" ? 1 : 0;
  const outputs = v.combine === "swiglu" ? 1 : v.sources;
  return 2 + norm + v.sources * sourceBindings(v.storage, v.scales) + outputs;
}

/** One row a thread accumulates: slot j is local row `row` of weight part `part` (gate, up) of source `src`. */
interface Slot {
  j: number;
  row: number;
  src: string;
  part: number;
}

/** Row sums across the lanes of a subgroup: a butterfly, every lane ends with the sum. */
const LANES_SUM_WGSL = `fn lanes_sum(v: f32) -> f32 {
  var s = v;
  for (var m = LANES / 2u; m > 0u; m >>= 1u) { s += subgroupShuffleXor(s, m); }
  return s;
}`;

/** Row sums in workgroup memory: the lanes' partials, then one thread per row adds them. */
const ROW_SUM_WGSL =
  `// partial[(lane * PARTS + part) * ROWS + row]: consecutive rows side by side, so the final per-row sums read
// without conflicts.
var<workgroup> partial: array<f32, WG * RPT * PARTS>;

// The sum of a row's partials, for one part (gate or up) of each lane.
fn row_sum(part: u32, r: u32) -> f32 {
  var v = 0.0;
  for (var l = 0u; l < LANES; l++) { v += partial[(l * PARTS + part) * ROWS + r]; }
  return v;
}`;

/** WGSL that writes row `row`'s output from its sums (`sum(part)`): SwiGLU's gating, or the epilogue. */
function finishRow(v: Variant, sum: (part: number) => string): string {
  return v.combine === "swiglu"
    ? `let g = product(0u, ${sum(0)}, row);\n      store_y(0u, row, g * sigmoid(g) * product(1u, ${
      sum(1)
    }, row));`
    : `var v = epilogue(row, product(src, ${sum(0)}, row));\n` +
      `      if (p.accumulate != 0u) { v += y_of(src, row); }\n      store_y(src, row, v);`;
}

/** The end of main with subgroups: each slot's lanes sum by butterfly, lane 0 finishes its rows. */
function finishBySubgroup(v: Variant, slots: Slot[]): string {
  const rows = Array.from({ length: v.layout.rowsPerThread }, (_, r) => r);
  const slotOf = (row: number, part: number) => part * v.layout.rowsPerThread + row;
  return [
    ...slots.map(({ j }) => `  let sum${j} = lanes_sum(acc${j});`),
    "  if (lane == 0u) {",
    ...rows.map((r) =>
      `    if (first_row + local_row + ${r}u < p.rows[src]) {\n      let row = first_row + local_row + ${r}u;\n      ` +
      finishRow(v, (part) => `sum${slotOf(r, part)}`) + "\n    }"
    ),
    "  }",
  ].join("\n");
}

/** The end of main without: partials to workgroup memory, then one thread per row adds them and finishes it. */
function finishByWorkgroup(v: Variant, slots: Slot[]): string {
  return [
    ...slots.map(({ j, row, part }) =>
      `  partial[(lane * PARTS + ${part}u) * ROWS + local_row + ${row}u] = acc${j};`
    ),
    "  workgroupBarrier();",
    "  for (var r = tid; r < ROWS; r += WG) {",
    "    let row = first_row + r;",
    "    if (row >= p.rows[src]) { break; }",
    `    ${finishRow(v, (part) => `row_sum(${part}u, r)`)}`,
    "  }",
  ].join("\n");
}

/** x's rows a kernel multiplies: [0] when decoding one sequence. */
function xRowsOf(v: Variant): number[] {
  return Array.from({ length: v.xRows }, (_, r) => r);
}

/** The accumulator of slot j and x's row r (`acc${name}`): slot j alone for one row of x. */
function accName(v: Variant, j: number, r: number): string {
  return v.xRows === 1 ? `${j}` : `${j}_${r}`;
}

/** The chunk step for one row of x: x's slice of the chunk, read once, for every slot. */
function oneRowUpdates(slots: Slot[]): string {
  return [
    "      let xs = chunk_x(i - s0);",
    ...slots.map(({ j, row, src }) =>
      `      let w${j} = next${j};\n      if (more) { next${j} = load_chunk(${src}, row${row}, i + LANES); }\n` +
      `      acc${j} += chunk_dot(w${j}, xs);`
    ),
  ].join("\n");
}

/**
 * The chunk step for several rows of x: a piece of each slot's chunk at a time is dequantised once, then dotted
 * with the same piece of every row of x.
 */
function multiRowUpdates(v: Variant, slots: Slot[]): string {
  const pieces = Array.from({ length: PIECES[v.storage] }, (_, q) => q);
  return [
    ...slots.map(({ j, row, src }) =>
      `      let w${j} = next${j};\n      if (more) { next${j} = load_chunk(${src}, row${row}, i + LANES); }`
    ),
    ...pieces.map((q) =>
      "      {\n" +
      slots.map(({ j }) => `        let d${j} = piece_deq(w${j}, ${q}u);\n`).join("") +
      xRowsOf(v).map((r) =>
        `        {\n          let xr = piece_x(i - s0, ${r}u, ${q}u);\n` +
        slots.map(({ j }) => `          acc${accName(v, j, r)} += piece_dot(d${j}, xr);\n`).join("") +
        "        }\n"
      ).join("") + "      }"
    ),
  ].join("\n");
}

/**
 * WGSL that writes y[r, row] (row-major [XROWS, rows]; layer wid.z of split-K writes its own [XROWS, rows] part)
 * from its sum: the bias, and y's old value if accumulating (both left to the second pass when split).
 */
function finishXRow(r: number, sum: string): string {
  return `{ var v = product(src, ${sum}, row); let at = (wid.z * XROWS + ${r}u) * p.rows[src] + row; ` +
    `if (p.accumulate != 0u) { v += y_of(src, at); } store_y(src, at, v); }`;
}

/** The end of main for several rows of x, with subgroups: every accumulator's lanes sum, lane 0 stores. */
function finishRowsBySubgroup(v: Variant, slots: Slot[]): string {
  return [
    ...slots.flatMap(({ j }) =>
      xRowsOf(v).map((r) => `  let sum${accName(v, j, r)} = lanes_sum(acc${accName(v, j, r)});`)
    ),
    "  if (lane == 0u) {",
    ...slots.map(({ j, row }) =>
      `    if (first_row + local_row + ${row}u < p.rows[src]) {\n      let row = first_row + local_row + ${row}u;\n` +
      xRowsOf(v).map((r) => `      ${finishXRow(r, `sum${accName(v, j, r)}`)}\n`).join("") + "    }"
    ),
    "  }",
  ].join("\n");
}

/** The same without subgroups: x's rows one after another through the workgroup's partial sums. */
function finishRowsByWorkgroup(v: Variant, slots: Slot[]): string {
  return xRowsOf(v).map((r) =>
    [
      ...slots.map(({ j, row }) => `  partial[lane * ROWS + local_row + ${row}u] = acc${accName(v, j, r)};`),
      "  workgroupBarrier();",
      "  for (var rr = tid; rr < ROWS; rr += WG) {",
      "    let row = first_row + rr;",
      "    if (row >= p.rows[src]) { break; }",
      `    ${finishXRow(r, "row_sum(0u, rr)")}`,
      "  }",
      "  workgroupBarrier();",
    ].join("\n")
  ).join("\n");
}

/** The end of main: rows' sums across a subgroup or through workgroup memory, for one row of x or several. */
function rowsOut(v: Variant, slots: Slot[]): string {
  if (v.xRows > 1) {
    return rowsBySubgroup(v) ? finishRowsBySubgroup(v, slots) : finishRowsByWorkgroup(v, slots);
  }
  return rowsBySubgroup(v) ? finishBySubgroup(v, slots) : finishByWorkgroup(v, slots);
}

const kernels = new Map<string, KernelSpec>();

/** One spec object per variant, so the runtime finds its pipeline without rebuilding a key. */
function kernel(v: Variant, segment: number): KernelSpec {
  const { layout, storage, scales, norm, combine, sources, pairCopies, xRows } = v;
  const key =
    `${layout.threads}|${layout.lanes}|${layout.rowsPerThread}|${storage}|${scales}|${segment}|${norm}|${combine}|${sources}|${v.subgroups}|${pairCopies}|${xRows}`;
  let spec = kernels.get(key);
  if (!spec) {
    const swiglu = combine === "swiglu";
    const normBindings = norm === "layer" ? 2 : norm === "rms" ? 1 : 0;
    const outputs = swiglu ? 1 : sources;
    // A slot is one row a thread accumulates: its RPT rows, of both weights for a SwiGLU pair (gate slots first,
    // up slots after, on the same rows).
    const slots: Slot[] = Array.from({ length: layout.rowsPerThread * (swiglu ? 2 : 1) }, (_, j) => ({
      j,
      row: j % layout.rowsPerThread,
      src: swiglu ? `${Math.floor(j / layout.rowsPerThread)}u` : "src",
      part: swiglu ? Math.floor(j / layout.rowsPerThread) : 0,
    }));
    const rows = Array.from({ length: layout.rowsPerThread }, (_, r) => r);
    const prologues = storage === "nf4"
      ? Array.from({ length: sources }, (_, s) => NF4_SCALES[scales!].prologue(s)).filter((l) => l !== "")
      : [];
    spec = {
      file: FILE,
      entry: "main",
      bindings: Array.from(
        { length: bindingCount(v) },
        (_, i) => i >= bindingCount(v) - outputs ? "write" : "read",
      ),
      defines: {
        ACTIVATIONS: ACTIVATION_FNS_WGSL,
        NORM_DECL: normDecl(norm, 3),
        WG: layout.threads,
        LANES: layout.lanes,
        RPT: layout.rowsPerThread,
        SEG: segment,
        SOURCES: sources,
        STACKED: swiglu ? 1 : sources,
        PARTS: swiglu ? 2 : 1,
        XROWS: xRows,
        W_DECL: sourcesDecl(storage, scales, pairCopies, sources, outputs, 3 + normBindings),
        // The tables are read after the barrier that opens the first segment.
        PROLOGUE: storage === "nf4"
          ? [
            pairCopies > 0 ? NF4_PAIR_TABLE_FILL : `  if (tid < 16u) { nf4_table[tid] = nf4_level(tid); }`,
            ...prologues,
          ].join("\n")
          : "",
        ACC_DECL: [
          ...rows.map((r) => `  let row${r} = min(first_row + local_row + ${r}u, last);`),
          ...slots.map(({ j }) =>
            `${xRowsOf(v).map((r) => `  var acc${accName(v, j, r)} = 0.0;\n`).join("")}  var next${j}: Chunk;`
          ),
        ].join("\n"),
        PREFETCH_FIRST: slots.map(({ j, row, src }) =>
          `  if (c_begin + lane < c_end) { next${j} = load_chunk(${src}, row${row}, c_begin + lane); }`
        ).join("\n"),
        ROW_UPDATES: xRows === 1 ? oneRowUpdates(slots) : multiRowUpdates(v, slots),
        ROW_SUM_DECL: rowsBySubgroup(v) ? LANES_SUM_WGSL : ROW_SUM_WGSL,
        ROWS_OUT: rowsOut(v, slots),
      },
    };
    kernels.set(key, spec);
  }
  return spec;
}

/**
 * A variant for several rows of x whose staged segment, a chunk per lane for every row at least, fits the
 * device's workgroup memory: the default layout halves its lanes until it does; a given one is refused. (Several
 * rows of x dequantise each chunk once into f32, a piece at a time (`piece_deq`), with the f32 level table.)
 */
function withRoomForRows(v: Variant, k: number, given: boolean): Variant {
  let layout = v.layout;
  while (!given && layout.lanes > 1 && !leavesRoomForX({ ...v, layout }, k)) {
    layout = { ...layout, lanes: layout.lanes / 2 };
  }
  if (!leavesRoomForX({ ...v, layout }, k)) {
    throw new RangeError(
      `gemv: ${v.xRows} rows of x with ${layout.lanes} lanes a row need more than this device's ` +
        `${rt().gpu.device.limits.maxComputeWorkgroupStorageSize} bytes of workgroup memory: use fewer lanes`,
    );
  }
  return { ...v, layout };
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

/** One weight W [rows, K] of a GEMV dispatch, as stored (`scales` are an NF4 weight's), with its bias [rows]. */
export interface GemvSource {
  weight: BufferRange;
  scales: Nf4Scales | null;
  bias: BufferRange | null;
  rows: number;
}

/** Sources one dispatch takes at most (Params holds four of each per-source field). */
const MAX_GEMV_SOURCES = 4;

/**
 * Rows of x one GEMV takes at most: evaluation decodes 16 prompts at once, and a thread keeps an accumulator per
 * row of x (more rows go to the tiled GEMM).
 */
export const GEMV_MAX_X_ROWS = 16;

/** What a GEMV dispatch shares among its sources. */
export interface GemvOptions {
  /** The weights' storage, alike for every source (and their NF4 scales' kind). */
  storage: GemvWeight;
  /** Normalises x on the way in. */
  norm?: GemvNorm | null;
  layout?: GemvLayout;
}

function variantOf(
  options: GemvOptions,
  sources: readonly GemvSource[],
  combine: Variant["combine"],
  rows: number,
  k: number,
  xRows = 1,
): Variant {
  const { storage } = options;
  const scales = sources[0].scales?.kind ?? null;
  if (!(Number.isInteger(xRows) && xRows >= 1 && xRows <= GEMV_MAX_X_ROWS)) {
    throw new RangeError(`gemv: ${xRows} rows of x; the GEMV takes 1 to ${GEMV_MAX_X_ROWS} (use the GEMM)`);
  }
  if (
    sources.some((s) => (storage === "nf4") !== (s.scales !== null) || (s.scales?.kind ?? null) !== scales)
  ) {
    throw new TypeError(
      `gemv: ${storage} weights ${
        storage === "nf4" ? "need NF4 scales, all of one kind" : "take no NF4 scales"
      }`,
    );
  }
  const layout = options.layout ?? gemvLayout(rows, k, storage, combine, xRows);
  const v: Variant = {
    layout,
    storage,
    scales,
    norm: options.norm?.kind ?? "none",
    combine,
    sources: sources.length,
    subgroups: rt().subgroups,
    pairCopies: 0,
    xRows,
  };
  const splits = layout.splits ?? 1;
  if (!(Number.isInteger(splits) && splits >= 1 && (splits === 1 || xRows > 1))) {
    throw new RangeError(
      `gemv: ${splits} layers of split-K; use a whole number from 1, and more than 1 only for several rows of x`,
    );
  }
  if (xRows > 1) return withRoomForRows(v, k, options.layout !== undefined);
  if (storage !== "nf4") return v;
  let copies = layout.pairCopies ?? 0;
  if (copies === 0) return v;
  if (!(Number.isInteger(copies) && copies > 0 && copies <= BANKS && (copies & (copies - 1)) === 0)) {
    throw new RangeError(
      `gemv: ${copies} copies of the NF4 pair table: use 0 or a power of two up to ${BANKS}`,
    );
  }
  // The default layout's table shrinks to what the device's workgroup memory has room for; a given one is refused.
  while (options.layout === undefined && copies > 0 && !leavesRoomForX({ ...v, pairCopies: copies }, k)) {
    copies = copies === 1 ? 0 : copies / 2;
  }
  if (copies > 0 && !leavesRoomForX({ ...v, pairCopies: copies }, k)) {
    throw new RangeError(
      `gemv: ${copies} copies of the NF4 pair table leave no room for x in this device's ` +
        `${rt().gpu.device.limits.maxComputeWorkgroupStorageSize} bytes of workgroup memory: use fewer`,
    );
  }
  return { ...v, pairCopies: copies };
}

/** Whether one dispatch can bind these sources on this device (else call them in smaller stacks). */
export function gemvFits(
  options: GemvOptions,
  sources: readonly GemvSource[],
  combine: "stack" | "swiglu",
): boolean {
  if (sources.length > MAX_GEMV_SOURCES) return false;
  const v = variantOf(options, sources, combine, sources[0].rows, CHUNK[options.storage]);
  return bindingCount(v) <= rt().gpu.device.limits.maxStorageBuffersPerShaderStage;
}

function dispatchGemv(
  v: Variant,
  x: BufferRange,
  k: number,
  sources: readonly GemvSource[],
  outputs: readonly BufferRange[],
  norm: GemvNorm | null,
  epilogue: GemvEpilogue,
  accumulate: boolean,
): void {
  if (bindingCount(v) > rt().gpu.device.limits.maxStorageBuffersPerShaderStage) {
    throw new RangeError(
      `gemv: ${sources.length} sources need ${bindingCount(v)} storage buffers, more than this device's ` +
        `${rt().gpu.device.limits.maxStorageBuffersPerShaderStage}: call fewer at once`,
    );
  }
  const chunks = k / CHUNK[v.storage];
  // Split-K: each layer's run of chunks a multiple of the lanes, so every lane of a row takes as many.
  const lanes = v.layout.lanes;
  const splitChunks = Math.ceil(chunks / (v.layout.splits ?? 1) / lanes) * lanes;
  const layers = Math.ceil(chunks / splitChunks);
  const segment = segmentChunks(Math.min(chunks, splitChunks), v);
  const bytes = reservedBytes(v) + segment * CHUNK[v.storage] * 4 * v.xRows;
  // wgpu does not check a shader's workgroup memory against the limit, and a GPU may hang on one that exceeds it.
  if (bytes > rt().gpu.device.limits.maxComputeWorkgroupStorageSize) {
    throw new RangeError(
      `gemv: ${bytes} bytes of workgroup memory, more than this device's ` +
        `${rt().gpu.device.limits.maxComputeWorkgroupStorageSize}: use fewer lanes or rows of x`,
    );
  }
  const spec = kernel(v, segment);
  const aux = epilogue.kind === "residual"
    ? epilogue.residual
    : epilogue.kind === "silu-gate"
    ? epilogue.gate
    : x;
  const buffers = [x, aux];
  if (norm) buffers.push(norm.weight);
  if (norm?.kind === "layer") buffers.push(norm.bias);
  for (const s of sources) {
    buffers.push(s.weight, s.bias ?? x);
    if (s.scales?.kind === "f32") buffers.push(s.scales.absmax);
    if (s.scales?.kind === "double") buffers.push(s.scales.q, s.scales.code, s.scales.absmax2);
  }
  const split = layers > 1;
  const rowsPerGroup = (v.layout.threads / v.layout.lanes) * v.layout.rowsPerThread;
  const four = (f: (s: GemvSource, i: number) => number) =>
    Array.from({ length: MAX_GEMV_SOURCES }, (_, i) => (i < sources.length ? f(sources[i], i) : 0));
  const firstGroups: number[] = [];
  let groups = 0;
  for (const s of sources) {
    firstGroups.push(groups);
    if (v.combine === "stack") groups += Math.ceil(s.rows / rowsPerGroup);
  }
  if (v.combine === "swiglu") groups = Math.ceil(sources[0].rows / rowsPerGroup);
  // A split grid is 3-D, so its workgroups per layer cannot fold into a second dimension.
  if (split && groups > rt().gpu.device.limits.maxComputeWorkgroupsPerDimension) {
    throw new RangeError(
      `gemv: ${groups} workgroups a layer of split-K, more than this device's ` +
        `${rt().gpu.device.limits.maxComputeWorkgroupsPerDimension}: use more rows a workgroup or no split`,
    );
  }
  // Split, the bias and y's old value are left to the second pass.
  const params = new Params().u32(k, accumulate && !split ? 1 : 0, EPILOGUE_CODES[epilogue.kind])
    .f32(norm?.eps ?? 0)
    .u32(...four((s) => s.rows))
    .u32(...four((_, i) => v.combine === "stack" ? firstGroups[i] : 0))
    .u32(...four((s) => (s.bias && !split ? 1 : 0)))
    .f32(...four((s) => (s.scales?.kind === "double" ? s.scales.offset : 0)))
    .u32(splitChunks);
  if (!split) {
    rt().dispatch(spec, params, [...buffers, ...outputs], groups);
    return;
  }
  // Every layer's partial sums, partial: [layers, xRows, rows], added into the output by the second pass.
  const partial = empty([layers, v.xRows, sources[0].rows]);
  rt().dispatch(spec, params, [...buffers, partial.range], [groups, 1, layers]);
  splitSumInto(partial.range, layers, outputs[0], v.xRows, sources[0].rows, sources[0].bias, accumulate);
  partial.dispose();
}

/**
 * outputs[s] = norm(x) @ W_sᵀ (+ bias_s) for every source in one dispatch (q, k and v of one layer): x [1, K],
 * W_s [rows_s, K], outputs[s] [rows_s]. Stacks the device cannot bind at once are split.
 */
export function gemvStackInto(
  x: BufferRange,
  k: number,
  sources: readonly GemvSource[],
  outputs: readonly BufferRange[],
  options: GemvOptions,
): void {
  if (sources.length === 0 || sources.length !== outputs.length) {
    throw new RangeError(`gemv: ${sources.length} sources for ${outputs.length} outputs`);
  }
  if (sources.length > 1 && !gemvFits(options, sources, "stack")) {
    const half = Math.ceil(sources.length / 2);
    gemvStackInto(x, k, sources.slice(0, half), outputs.slice(0, half), options);
    gemvStackInto(x, k, sources.slice(half), outputs.slice(half), options);
    return;
  }
  const rows = sources.reduce((sum, s) => sum + s.rows, 0);
  const v = variantOf(options, sources, "stack", rows, k);
  dispatchGemv(v, x, k, sources, outputs, options.norm ?? null, { kind: "none" }, false);
}

/**
 * y = silu(norm(x) @ Gᵀ (+ bias_g)) * (norm(x) @ Uᵀ (+ bias_u)) in one dispatch: SwiGLU's gate and up
 * projections read together, x [1, K], G and U [rows, K], y [rows].
 */
export function gemvSwigluInto(
  y: BufferRange,
  x: BufferRange,
  k: number,
  gate: GemvSource,
  up: GemvSource,
  options: GemvOptions,
): void {
  if (gate.rows !== up.rows) throw new RangeError(`gemv: gate has ${gate.rows} rows but up has ${up.rows}`);
  const v = variantOf(options, [gate, up], "swiglu", gate.rows, k);
  dispatchGemv(v, x, k, [gate, up], [y], options.norm ?? null, { kind: "none" }, false);
}

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
  layout?: GemvLayout,
  epilogue: GemvEpilogue = { kind: "none" },
  norm: GemvNorm | null = null,
): void {
  const source: GemvSource = { weight, scales, bias, rows: n };
  const v = variantOf({ storage, norm, layout }, [source], "stack", n, k);
  dispatchGemv(v, x, k, [source], [y], norm, epilogue, accumulate);
}

/**
 * y = x @ Wᵀ (+ bias) (+ y if `accumulate`) for each of x's rows at once: x [xRows, K] (1 to GEMV_MAX_X_ROWS
 * rows), W [N, K], y [xRows, N]. One pass over W: each chunk of it is loaded and dequantised once for all rows,
 * where the tiled GEMM re-reads it per tile of rows (evaluation's batched decoding, matmulInto's route for short
 * products). The default layout (`rowsLayout`) splits long reductions into layers of workgroups, then sums them.
 */
export function gemvRowsInto(
  y: BufferRange,
  x: BufferRange,
  xRows: number,
  source: GemvSource,
  storage: GemvWeight,
  k: number,
  accumulate: boolean,
  layout?: GemvLayout,
): void {
  const v = variantOf({ storage, layout }, [source], "stack", source.rows, k, xRows);
  dispatchGemv(v, x, k, [source], [y], null, { kind: "none" }, accumulate);
}
