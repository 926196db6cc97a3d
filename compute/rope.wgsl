// Rotary position embedding, rotate-half convention (HF `apply_rotary_pos_emb` with `rotate_half`, as in
// Qwen2/Llama): for i < D/2, with a = position * inv_freq[i] taken in f32 as transformers does,
//   out[i]       = x[i] * cos(a) - x[i + D/2] * sin(a)
//   out[i + D/2] = x[i + D/2] * cos(a) + x[i] * sin(a)
// `sign` = -1 rotates by -a (the backward). One thread per (row, i) pair; rows are (b, t, h). cos/sin come from
// ROPE_FNS (compute/rope_fns.ts), shared with the decode attention kernel that rotates q and k itself.

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

{{ROPE_FNS}}

// (x1, x2) rotated by `angle` (times `sign`).
fn rotate(x1: f32, x2: f32, angle: f32) -> vec2f {
  return rotate_pair(x1, x2, p.sign * angle);
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
