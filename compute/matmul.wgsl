// Batched GEMM: C[b] = op(A[b]) @ op(B[b]) (+ bias), f32 accumulation.
// A is [M, K] (or [K, M] with TRANS_A), B is [K, N] (or [N, K] with TRANS_B), C is [M, N]; a batch stride of 0
// shares an operand across the batch. B_DECL declares B and `load_b(index) -> f32`: f32, f16 or NF4-packed
// (frozen weights, dequantised as they are loaded into the tile). One dispatch covers k in [k_begin, k_end):
// long reductions are split over several accumulating dispatches (see matmul.ts), or over workgroup layers
// whose partial products are summed afterwards (split_k).
//
// Register-blocked: a workgroup computes a BM x BN tile through BK-deep slices staged in workgroup memory as
// vec4 columns; each thread owns TM x TN outputs held in vec4 registers that the wrapper unrolls into named
// variables (ACC_*), since WGSL arrays indexed in loops spill out of registers. A thread's outputs are TM / 4
// groups of 4 rows and TN / 4 groups of 4 columns, the groups WG_Y * 4 rows (WG_X * 4 columns) apart: so the
// threads of a warp read consecutive vec4s of a tile row (no workgroup-memory bank conflicts, which a thread
// owning TN adjacent columns causes) and store consecutive columns of C.
// MULTIPLY is the slice's k loop unrolled by the wrapper: each read names its tile row by a constant and its
// vec4 by an index fixed per thread, so the bounds clamp WGSL requires is computed once per thread rather
// than once per read (4096^3 on an H200, 128 x 128 tiles: 30.5 TFLOP/s with the flat tiles, 40.2 with these;
// bench/results/h200-2026-11-28m-gemm0.txt, h200-2026-11-28o-sweeps.txt).
// LOAD_A / LOAD_B stage the tiles: with vec4 loads along the contiguous dimension when it is a multiple of 4
// (A_DECL / B_DECL then bind the operand as array<vec4f>), else element by element. With vec4 loads on both
// operands the next slice is prefetched into registers (PREFETCH_*) while the current one is multiplied, so
// global-memory latency hides behind the arithmetic; LOAD_* then only move those registers into the tiles.

struct Params {
  M: u32,
  N: u32,
  K: u32,
  has_bias: u32,
  stride_a: u32,
  stride_b: u32,
  stride_c: u32,
  accumulate: u32,
  k_begin: u32,
  k_end: u32,
  // Split-K: when nonzero, workgroup layer z reduces k in [z * split_k, (z + 1) * split_k) and writes its partial
  // product to layer z of C (A and B are then shared: stride 0); split_sum.wgsl sums the layers.
  split_k: u32,
}

@group(0) @binding(0) var<uniform> p: Params;
{{A_DECL}}
{{B_DECL}}
@group(0) @binding(3) var<storage, read> bias: array<f32>;
@group(0) @binding(4) var<storage, read_write> C: array<f32>;

const BM: u32 = {{BM}}u;
const BN: u32 = {{BN}}u;
const BK: u32 = {{BK}}u;
const TM: u32 = {{TM}}u;
const TN: u32 = {{TN}}u;
const WG_X: u32 = BN / TN;
const WG_Y: u32 = BM / TM;
const THREADS: u32 = WG_X * WG_Y;

// tile_a[k][m / 4][m % 4] holds op(A)[row0 + m, k0 + k]; tile_b likewise for op(B)[k, col0 + n].
var<workgroup> tile_a: array<array<vec4f, BM / 4u>, BK>;
var<workgroup> tile_b: array<array<vec4f, BN / 4u>, BK>;

fn store_c(gm: u32, gn: u32, base: u32, value: f32) {
  if (gm >= p.M || gn >= p.N) { return; }
  var v = value;
  if (p.has_bias != 0u) { v += bias[gn]; }
  let idx = base + gm * p.N + gn;
  if (p.accumulate != 0u) { v += C[idx]; }
  C[idx] = v;
}

fn store_row(gm: u32, gn: u32, base: u32, v: vec4f) {
  store_c(gm, gn, base, v.x);
  store_c(gm, gn + 1u, base, v.y);
  store_c(gm, gn + 2u, base, v.z);
  store_c(gm, gn + 3u, base, v.w);
}

@compute @workgroup_size(WG_X, WG_Y, 1)
fn main(@builtin(local_invocation_id) lid: vec3u, @builtin(workgroup_id) wid: vec3u) {
  let batch = wid.z;
  var k_begin = p.k_begin;
  var k_end = p.k_end;
  if (p.split_k != 0u) {
    k_begin = batch * p.split_k;
    k_end = min(k_begin + p.split_k, p.K);
  }
  let row0 = wid.y * BM;
  let col0 = wid.x * BN;
  let tid = lid.y * WG_X + lid.x;
  let a_base = batch * p.stride_a;
  let b_base = batch * p.stride_b;

{{ACC_DECL}}
{{PREFETCH_FIRST}}
  for (var k0 = k_begin; k0 < k_end; k0 += BK) {
{{LOAD_A}}
{{LOAD_B}}
    workgroupBarrier();
{{PREFETCH_NEXT}}
{{MULTIPLY}}
    workgroupBarrier();
  }

  let c_base = batch * p.stride_c;
  let gm0 = row0 + lid.y * 4u;
  let gn0 = col0 + lid.x * 4u;
{{ACC_STORE}}
}
