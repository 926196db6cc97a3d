// Matrix-vector products for decoding, one dispatch for several weights that read the same x: for each source s
// (up to 4), y_s[n] = epilogue(sum_k norm(x)[k] * W_s[n, k] + bias_s[n]) (+ y_s[n]), W_s [N_s, K] row-major
// (PyTorch's Linear layout) stored as f32, f16 or NF4 (every source alike). Stacked sources (q, k and v) each own
// a run of workgroups; a SwiGLU pair (gate and up) shares its workgroups, and each row's two sums meet in
// y[n] = silu(gate[n]) * up[n]. The norm (NORM_DECL) and the epilogue (`epilogue`) are optional. Memory-bound, so
// every byte of W is read once with a 16-byte load (a "chunk": 4 f32, 8 f16 or 32 NF4 codes) and everything else
// comes from workgroup memory.
//
// A workgroup of WG threads owns ROWS consecutive rows: GROUPS thread groups of LANES threads, each group RPT
// rows. x is staged in workgroup memory a segment of SEG chunks at a time, transposed (x_seg[v * SEG + c] is the
// v-th vec4 of chunk c), so the lanes, which read consecutive chunks, read consecutive vec4s. A thread walks its
// rows' chunks lane, lane + LANES, ... (consecutive lanes read consecutive chunks of W, so loads coalesce) and
// reuses each slice of x for its SLOTS rows (RPT rows, of both weights for a SwiGLU pair). A row's LANES partial
// sums meet across a subgroup where its lanes share one (lane 0 then finishes the row), else in workgroup memory,
// where one thread per row adds them. The wrapper unrolls the slots into named
// accumulators (ACC_DECL, ROW_UPDATES), since arrays indexed in loops leave registers. W_DECL declares the
// sources' buffers, VPC (vec4s of x per chunk), the structs `Slice` (x's part of a chunk) and `Chunk` (a chunk
// of W with its scale), `load_chunk(src, row, c) -> Chunk` for chunk c of a source's row,
// `chunk_dot(w: Chunk, xs: Slice) -> f32`, and `bias_of`, `y_of` and `store_y` for a source's row.

struct Params {
  K: u32,
  accumulate: u32,
  epilogue: u32,
  norm_eps: f32,
  // Per source: its rows, its first workgroup (stacked sources), whether it has a bias, and the offset of its
  // double-quantised scales.
  rows: vec4<u32>,
  first_group: vec4<u32>,
  has_bias: vec4<u32>,
  absmax_offset: vec4f,
  // Chunks of the reduction one layer of workgroups takes (wid.z is the layer; all of them in one layer unless
  // several rows of x split the reduction, when each layer writes its partial sums to its own part of y).
  split_chunks: u32,
}

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> x: array<vec4f>;
// The epilogue's second input: the residual (EPILOGUE_RESIDUAL) or the gate (EPILOGUE_SILU_GATE), one per row.
@group(0) @binding(2) var<storage, read> aux: array<f32>;

const EPILOGUE_NONE: u32 = 0u;
const EPILOGUE_RESIDUAL: u32 = 1u;
const EPILOGUE_SILU_GATE: u32 = 2u;
const EPILOGUE_GELU: u32 = 3u;

{{ACTIVATIONS}}

// What follows the product (+ bias) of a row: decoding fuses the residual add, SwiGLU's gating and GPT-2's GELU
// here instead of spending a dispatch on each.
fn epilogue(row: u32, v: f32) -> f32 {
  switch (p.epilogue) {
    case EPILOGUE_RESIDUAL: { return v + aux[row]; }
    case EPILOGUE_SILU_GATE: { let g = aux[row]; return g * sigmoid(g) * v; }
    case EPILOGUE_GELU: { return gelu(v); }
    default: { return v; }
  }
}

const WG: u32 = {{WG}}u;
const LANES: u32 = {{LANES}}u;
const GROUPS: u32 = WG / LANES;
const RPT: u32 = {{RPT}}u;
const ROWS: u32 = GROUPS * RPT;
const SEG: u32 = {{SEG}}u;
// Weights the dispatch reads.
const SOURCES: u32 = {{SOURCES}}u;
// Sources stacked along the rows, each with its own workgroups (1 for a SwiGLU pair).
const STACKED: u32 = {{STACKED}}u;
// Partial sums per row: one, or two for a SwiGLU pair (gate, up).
const PARTS: u32 = {{PARTS}}u;
// Rows of x (and of y): one when decoding, up to 16 for evaluation's batches, each weight chunk loaded and
// dequantised once for all of them (x [XROWS, K], y [XROWS, rows]; no norm, no epilogue).
const XROWS: u32 = {{XROWS}}u;

{{W_DECL}}

var<workgroup> x_seg: array<vec4f, SEG * VPC * XROWS>;

// How a row's LANES partial sums meet (ROW_SUM_DECL): in registers across a subgroup's lanes (`lanes_sum`), or
// in workgroup memory, where one thread per row adds them (`row_sum`).
{{ROW_SUM_DECL}}

{{WORKGROUP_REDUCE}}

// The optional normalisation of x (NORM_DECL): decoding fuses the RMSNorm / LayerNorm that precedes a
// projection into its GEMV, so every workgroup normalises x as it stages it. `norm_stats` computes the row's
// statistics before the product, `staged_x(i)` is the i-th vec4 of x as the product reads it, `norm_finish`
// completes statistics gathered while staging, and `row_scale()` multiplies every row's sum.
var<private> norm_mean: f32;
var<private> norm_rstd: f32;
{{NORM_DECL}}

// The source whose rows a workgroup computes: the last whose first workgroup it has reached.
fn source_of(group: u32) -> u32 {
  var src = 0u;
  for (var s = 1u; s < STACKED; s++) {
    if (group >= p.first_group[s]) { src = s; }
  }
  return src;
}

// The product (+ bias) of row `row` of source `src`, from the sum of its lanes' partials.
fn product(src: u32, sum: f32, row: u32) -> f32 {
  var v = sum * row_scale();
  if (p.has_bias[src] != 0u) { v += bias_of(src, row); }
  return v;
}

@compute @workgroup_size(WG)
fn main(@builtin(local_invocation_index) tid: u32, @builtin(workgroup_id) wid: vec3u, @builtin(num_workgroups) nwg: vec3u) {
  let group = wid.x + wid.y * nwg.x;
  let src = source_of(group);
  let first_row = (group - p.first_group[src]) * ROWS;
  let lane = tid % LANES;
  let local_row = (tid / LANES) * RPT;
  // Rows past the source's end repeat its last row: their sums are computed and never stored, so the loop needs
  // no branch.
  let last = p.rows[src] - 1u;
  let chunks = p.K / CHUNK;
  let c_begin = wid.z * p.split_chunks;
  let c_end = min(chunks, c_begin + p.split_chunks);
  // Each row's next chunk is loaded before the current one is multiplied, so a thread always has a load in
  // flight while it computes; the first loads go out before x is normalised and staged. A lane's chunks are
  // c_begin + lane, c_begin + lane + LANES, ... across segments (SEG is a multiple of LANES when x takes several).
{{ACC_DECL}}
{{PREFETCH_FIRST}}
{{PROLOGUE}}
  norm_stats(tid);
  for (var s0 = c_begin; s0 < c_end; s0 += SEG) {
    let seg = min(SEG, c_end - s0);
    workgroupBarrier();
    // Consecutive threads read consecutive vec4s of x (coalesced) and scatter them into the transposed layout,
    // row after row of x.
    if (XROWS == 1u) {
      for (var e = tid; e < seg * VPC; e += WG) {
        x_seg[(e % VPC) * SEG + e / VPC] = staged_x(s0 * VPC + e);
      }
    } else {
      for (var e = tid; e < seg * VPC * XROWS; e += WG) {
        let r = e / (seg * VPC);
        let f = e - r * seg * VPC;
        x_seg[(r * VPC + f % VPC) * SEG + f / VPC] = staged_x(r * (p.K / 4u) + s0 * VPC + f);
      }
    }
    workgroupBarrier();
    // Once all of x is staged, statistics gathered while staging are complete.
    if (s0 + SEG >= c_end) { norm_finish(tid); }
    for (var i = s0 + lane; i < s0 + seg; i += LANES) {
      let more = i + LANES < c_end;
{{ROW_UPDATES}}
    }
  }
{{ROWS_OUT}}
}
