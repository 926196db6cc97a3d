// NF4 quantisation as bitsandbytes defines it: blocks of BLOCK (64) consecutive weights of the flattened
// tensor, one absmax per block, each weight mapped to the nearest of 16 NormalFloat levels (times absmax),
// two 4-bit codes per byte with the first weight in the high nibble. Bytes are stored little-endian in u32
// words so the buffer is byte-identical to bitsandbytes' packed uint8 tensor.
// Double quantisation (optional) stores the absmax values blockwise in 8 bits with bitsandbytes' signed
// dynamic map: q = nearest code of (absmax - offset) / absmax2[block of 256].

struct Params {
  n: u32,
  blocks: u32,
  offset: f32,
  _pad: u32,
}

@group(0) @binding(0) var<uniform> p: Params;

var<private> NF4: array<f32, 16> = array<f32, 16>(
  -1.0, -0.6961928009986877, -0.5250730514526367, -0.39491748809814453,
  -0.28444138169288635, -0.18477343022823334, -0.09105003625154495, 0.0,
  0.07958029955625534, 0.16093020141124725, 0.24611230194568634, 0.33791524171829224,
  0.44070982933044434, 0.5626170039176941, 0.7229568362236023, 1.0,
);

const BLOCK: u32 = 64u;

fn linear_index(gid: vec3u, nwg: vec3u) -> u32 {
  return gid.x + gid.y * nwg.x * 64u;
}

// Nearest NF4 level of x in [-1, 1] (ties go to the lower level, as the midpoint comparisons do).
fn nf4_code(x: f32) -> u32 {
  var best = 0u;
  for (var c = 1u; c < 16u; c++) {
    let mid = 0.5 * (NF4[c - 1u] + NF4[c]);
    if (x > mid) { best = c; }
  }
  return best;
}

// One thread per block: absmax, then the block's 64 codes packed into 8 words.
@group(0) @binding(1) var<storage, read> q_src: array<f32>;
@group(0) @binding(2) var<storage, read_write> q_packed: array<u32>;
@group(0) @binding(3) var<storage, read_write> q_absmax: array<f32>;

@compute @workgroup_size(64)
fn quantize(@builtin(global_invocation_id) gid: vec3u, @builtin(num_workgroups) nwg: vec3u) {
  let block = linear_index(gid, nwg);
  if (block >= p.blocks) { return; }
  let start = block * BLOCK;
  let end = min(start + BLOCK, p.n);
  var amax = 0.0;
  for (var i = start; i < end; i++) { amax = max(amax, abs(q_src[i])); }
  q_absmax[block] = amax;
  let inv = select(0.0, 1.0 / amax, amax > 0.0);
  for (var w = 0u; w < BLOCK / 8u; w++) {
    var word = 0u;
    for (var b = 0u; b < 4u; b++) {
      let e = start + w * 8u + b * 2u;
      var hi = 7u;
      var lo = 7u;
      if (e < end) { hi = nf4_code(q_src[e] * inv); }
      if (e + 1u < end) { lo = nf4_code(q_src[e + 1u] * inv); }
      word |= ((hi << 4u) | lo) << (b * 8u);
    }
    let word_index = block * (BLOCK / 8u) + w;
    if (word_index * 8u < p.n) { q_packed[word_index] = word; }
  }
}

fn nf4_value(packed: u32, e: u32) -> f32 {
  let shift = ((e / 2u) % 4u) * 8u + select(0u, 4u, (e % 2u) == 0u);
  return NF4[(packed >> shift) & 15u];
}

// out[e] = NF4[code(e)] * absmax[e / 64].
@group(0) @binding(1) var<storage, read> d_packed: array<u32>;
@group(0) @binding(2) var<storage, read> d_absmax: array<f32>;
@group(0) @binding(3) var<storage, read_write> d_out: array<f32>;

@compute @workgroup_size(64)
fn dequantize(@builtin(global_invocation_id) gid: vec3u, @builtin(num_workgroups) nwg: vec3u) {
  let e = linear_index(gid, nwg);
  if (e >= p.n) { return; }
  d_out[e] = nf4_value(d_packed[e / 8u], e) * d_absmax[e / BLOCK];
}

// Double quantisation of absmax: one thread per 256-block of absmax values.
@group(0) @binding(1) var<storage, read> dq_absmax: array<f32>;
@group(0) @binding(2) var<storage, read> dq_code: array<f32>;
@group(0) @binding(3) var<storage, read_write> dq_q: array<u32>;
@group(0) @binding(4) var<storage, read_write> dq_absmax2: array<f32>;

const DQ_BLOCK: u32 = 256u;

// Nearest entry of the sorted 256-entry dynamic map (ties to the lower entry).
fn nearest_code(x: f32) -> u32 {
  var lo = 0u;
  var hi = 255u;
  while (hi - lo > 1u) {
    let mid = (lo + hi) / 2u;
    if (dq_code[mid] <= x) { lo = mid; } else { hi = mid; }
  }
  if (abs(dq_code[hi] - x) < abs(x - dq_code[lo])) { return hi; }
  return lo;
}

@compute @workgroup_size(64)
fn double_quantize(@builtin(global_invocation_id) gid: vec3u, @builtin(num_workgroups) nwg: vec3u) {
  let block = linear_index(gid, nwg);
  if (block >= p.blocks) { return; }
  let start = block * DQ_BLOCK;
  let end = min(start + DQ_BLOCK, p.n);
  var amax = 0.0;
  for (var i = start; i < end; i++) { amax = max(amax, abs(dq_absmax[i] - p.offset)); }
  dq_absmax2[block] = amax;
  let inv = select(0.0, 1.0 / amax, amax > 0.0);
  // Four 8-bit codes per word; DQ_BLOCK is a multiple of 4 so a word never straddles blocks.
  for (var w = start / 4u; w * 4u < end; w++) {
    var word = 0u;
    for (var b = 0u; b < 4u; b++) {
      let i = w * 4u + b;
      if (i < end) { word |= nearest_code((dq_absmax[i] - p.offset) * inv) << (b * 8u); }
    }
    dq_q[w] = word;
  }
}

// absmax[i] = code[q[i]] * absmax2[i / 256] + offset.
@group(0) @binding(1) var<storage, read> dd_q: array<u32>;
@group(0) @binding(2) var<storage, read> dd_code: array<f32>;
@group(0) @binding(3) var<storage, read> dd_absmax2: array<f32>;
@group(0) @binding(4) var<storage, read_write> dd_out: array<f32>;

@compute @workgroup_size(64)
fn double_dequantize(@builtin(global_invocation_id) gid: vec3u, @builtin(num_workgroups) nwg: vec3u) {
  let i = linear_index(gid, nwg);
  if (i >= p.n) { return; }
  let q = (dd_q[i / 4u] >> ((i % 4u) * 8u)) & 255u;
  dd_out[i] = dd_code[q] * dd_absmax2[i / DQ_BLOCK] + p.offset;
}
