// Rotary position embedding, rotate-half convention (HF `apply_rotary_pos_emb` with `rotate_half`, as in
// Qwen2/Llama): for i < D/2, with a = position * inv_freq[i] taken in f32 as transformers does,
//   out[i]       = x[i] * cos(a) - x[i + D/2] * sin(a)
//   out[i + D/2] = x[i + D/2] * cos(a) + x[i] * sin(a)
// `sign` = -1 rotates by -a (the backward). One thread per (row, i) pair; rows are (b, t, h).
// cos/sin are computed here rather than with the WGSL built-ins, whose accuracy is only specified on [-π, π]:
// angles reach tens of thousands of radians at long positions, where a GPU's fast sin/cos loses digits.

struct Params {
  pairs: u32,
  heads: u32,
  half: u32,
  sign: f32,
  // rope_append only: k's (row, i) pairs, its heads, tokens per batch row, and the cache's rows and fill.
  pairs_k: u32,
  kv_heads: u32,
  tokens: u32,
  kv_rows: u32,
  length: u32,
  // Where positions[0] is in the bound buffer (the whole allocation is bound; see Tensor.wholeBuffer).
  pos_offset: u32,
}

const WG: u32 = 256u;

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> x: array<f32>;
@group(0) @binding(2) var<storage, read> positions: array<i32>;
@group(0) @binding(3) var<storage, read> inv_freq: array<f32>;
@group(0) @binding(4) var<storage, read_write> out: array<f32>;

// π/2 as a sum of five f32 parts of 8 significant bits each (Cody–Waite), so k * part is exact for |k| < 2^16:
// the reduction below stays accurate for |a| up to about 1e5 radians.
const PIO2_1: f32 = 1.5703125;
const PIO2_2: f32 = 4.825592041015625e-4;
const PIO2_3: f32 = 1.2665987014770508e-6;
const PIO2_4: f32 = 9.89530235528946e-10;
const PIO2_5: f32 = 2.5579538487363607e-12;
const TWO_OVER_PI: f32 = 0.6366197723675814;

// (cos a, sin a): reduce a to r in about [-π/4, π/4] with a = k π/2 + r, evaluate minimax polynomials (Cephes
// sinf/cosf, about 1 ulp), then pick by the quadrant k mod 4.
fn cos_sin(a: f32) -> vec2f {
  let k = round(a * TWO_OVER_PI);
  // a - k*PIO2_1 and the next step are exact (the operands are within a factor of two); the small tail is
  // summed first so the remaining subtraction rounds once.
  let r1 = (a - k * PIO2_1) - k * PIO2_2;
  let r = r1 - (k * PIO2_3 + (k * PIO2_4 + k * PIO2_5));
  let z = r * r;
  let s = r + r * z * (-1.6666654611e-1 + z * (8.3321608736e-3 + z * -1.9515295891e-4));
  let c = 1.0 - 0.5 * z + z * z * (4.166664568298827e-2 + z * (-1.388731625493765e-3 + z * 2.443315711809948e-5));
  switch (i32(k) & 3) {
    case 0: { return vec2f(c, s); }
    case 1: { return vec2f(-s, c); }
    case 2: { return vec2f(-c, -s); }
    default: { return vec2f(s, -c); }
  }
}

// (x1, x2) rotated by `angle` (times `sign`).
fn rotate(x1: f32, x2: f32, angle: f32) -> vec2f {
  let cs = cos_sin(angle);
  let sn = p.sign * cs.y;
  return vec2f(x1 * cs.x - x2 * sn, x2 * cs.x + x1 * sn);
}

// Pair i of x (row i / half, element i % half and its partner half further) rotated into out.
fn rotate_x_pair(i: u32) {
  let row = i / p.half;
  let j = i % p.half;
  let lo = row * 2u * p.half + j;
  let hi = lo + p.half;
  let r = rotate(x[lo], x[hi], f32(positions[p.pos_offset + row / p.heads]) * inv_freq[j]);
  out[lo] = r.x;
  out[hi] = r.y;
}

@compute @workgroup_size(WG)
fn main(@builtin(global_invocation_id) gid: vec3u, @builtin(num_workgroups) nwg: vec3u) {
  let i = gid.x + gid.y * nwg.x * WG;
  if (i < p.pairs) { rotate_x_pair(i); }
}

@group(0) @binding(5) var<storage, read> append_k: array<f32>;
@group(0) @binding(6) var<storage, read> append_v: array<f32>;
@group(0) @binding(7) var<storage, read_write> cache_k: array<f32>;
@group(0) @binding(8) var<storage, read_write> cache_v: array<f32>;

// Decoding's rotations and cache append in one dispatch: the first `pairs` threads rotate q (x) into out as
// main does; the next `pairs_k` rotate a pair of k straight into the cache at position length + t and copy the
// same two elements of v.
@compute @workgroup_size(WG)
fn rope_append(@builtin(global_invocation_id) gid: vec3u, @builtin(num_workgroups) nwg: vec3u) {
  let i = gid.x + gid.y * nwg.x * WG;
  if (i < p.pairs) {
    rotate_x_pair(i);
    return;
  }
  let ik = i - p.pairs;
  if (ik >= p.pairs_k) { return; }
  let row = ik / p.half; // (b, t, h) of k
  let j = ik % p.half;
  let bt = row / p.kv_heads;
  let b = bt / p.tokens;
  let t = bt % p.tokens;
  let lo = row * 2u * p.half + j;
  let hi = lo + p.half;
  let dst_row = (b * p.kv_rows + p.length + t) * p.kv_heads + row % p.kv_heads;
  let dst_lo = dst_row * 2u * p.half + j;
  let dst_hi = dst_lo + p.half;
  let r = rotate(append_k[lo], append_k[hi], f32(positions[p.pos_offset + bt]) * inv_freq[j]);
  cache_k[dst_lo] = r.x;
  cache_k[dst_hi] = r.y;
  cache_v[dst_lo] = append_v[lo];
  cache_v[dst_hi] = append_v[hi];
}
