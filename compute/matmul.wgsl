// Batched GEMM: C[b] = op(A[b]) @ op(B[b]) (+ bias), f32 accumulation.
// A is [M, K] (or [K, M] with TRANS_A), B is [K, N] (or [N, K] with TRANS_B), C is [M, N]; a batch stride of 0
// shares an operand across the batch. B_DECL declares B and `load_b(index) -> f32`: f32, f16 or NF4-packed
// (frozen weights, dequantised as they are loaded into the tile). One dispatch covers k in [k_begin, k_end):
// long reductions are split over several accumulating dispatches (see matmul.ts).
// Register-blocked: a workgroup computes a BM x BN tile; each thread TM x TN outputs, strided by the thread
// grid so shared-memory reads are conflict-free and global stores coalesce.

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
}

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> A: array<f32>;
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
const TRANS_A: bool = {{TRANS_A}};
const TRANS_B: bool = {{TRANS_B}};

var<workgroup> tile_a: array<f32, BK * BM>;
var<workgroup> tile_b: array<f32, BK * BN>;

@compute @workgroup_size(WG_X, WG_Y, 1)
fn main(@builtin(local_invocation_id) lid: vec3u, @builtin(workgroup_id) wid: vec3u) {
  let batch = wid.z;
  let row0 = wid.y * BM;
  let col0 = wid.x * BN;
  let tid = lid.y * WG_X + lid.x;
  let a_base = batch * p.stride_a;
  let b_base = batch * p.stride_b;

  var acc: array<f32, TM * TN>;
  for (var i = 0u; i < TM * TN; i++) { acc[i] = 0.0; }

  for (var k0 = p.k_begin; k0 < p.k_end; k0 += BK) {
    for (var i = tid; i < BM * BK; i += THREADS) {
      var m: u32;
      var k: u32;
      if (TRANS_A) { k = i / BM; m = i % BM; } else { m = i / BK; k = i % BK; }
      let gm = row0 + m;
      let gk = k0 + k;
      var v = 0.0;
      if (gm < p.M && gk < p.k_end) {
        if (TRANS_A) { v = A[a_base + gk * p.M + gm]; } else { v = A[a_base + gm * p.K + gk]; }
      }
      tile_a[k * BM + m] = v;
    }
    for (var i = tid; i < BN * BK; i += THREADS) {
      var n: u32;
      var k: u32;
      if (TRANS_B) { n = i / BK; k = i % BK; } else { k = i / BN; n = i % BN; }
      let gn = col0 + n;
      let gk = k0 + k;
      var v = 0.0;
      if (gn < p.N && gk < p.k_end) {
        if (TRANS_B) { v = load_b(b_base + gn * p.K + gk); } else { v = load_b(b_base + gk * p.N + gn); }
      }
      tile_b[k * BN + n] = v;
    }
    workgroupBarrier();
    for (var k = 0u; k < BK; k++) {
      var a_reg: array<f32, TM>;
      var b_reg: array<f32, TN>;
      for (var i = 0u; i < TM; i++) { a_reg[i] = tile_a[k * BM + lid.y + i * WG_Y]; }
      for (var j = 0u; j < TN; j++) { b_reg[j] = tile_b[k * BN + lid.x + j * WG_X]; }
      for (var i = 0u; i < TM; i++) {
        for (var j = 0u; j < TN; j++) {
          acc[i * TN + j] = fma(a_reg[i], b_reg[j], acc[i * TN + j]);
        }
      }
    }
    workgroupBarrier();
  }

  let c_base = batch * p.stride_c;
  for (var i = 0u; i < TM; i++) {
    let gm = row0 + lid.y + i * WG_Y;
    if (gm >= p.M) { continue; }
    for (var j = 0u; j < TN; j++) {
      let gn = col0 + lid.x + j * WG_X;
      if (gn >= p.N) { continue; }
      var v = acc[i * TN + j];
      if (p.has_bias != 0u) { v += bias[gn]; }
      let idx = c_base + gm * p.N + gn;
      if (p.accumulate != 0u) { v += C[idx]; }
      C[idx] = v;
    }
  }
}
