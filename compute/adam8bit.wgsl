// 8-bit AdamW as bitsandbytes' blockwise optimizer does it: both moments stored as 8-bit codes of a dynamic
// map (signed for m, unsigned for v) with one absmax per block of 256 values. Each step dequantises a block,
// applies the AdamW update in f32, and requantises the block with its new absmax (nearest code).
// One workgroup per block; thread t owns element t of the block.

struct Params {
  n: u32,
  step_size: f32,     // lr * sqrt(1 - beta2^t) / (1 - beta1^t)
  beta1: f32,
  beta2: f32,
  eps_hat: f32,       // eps * sqrt(1 - beta2^t)
  decay: f32,         // 1 - lr * weight_decay
  grad_scale: f32,    // applied to the gradient first (1, or a clipping coefficient when none is bound)
  use_clip: u32,      // 1: multiply the gradient by clip[0] (global-norm clipping computed on the GPU)
}

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read_write> param: array<f32>;
@group(0) @binding(2) var<storage, read> grad: array<f32>;
@group(0) @binding(3) var<storage, read_write> qm: array<u32>;
@group(0) @binding(4) var<storage, read_write> qv: array<u32>;
@group(0) @binding(5) var<storage, read_write> absmax_m: array<f32>;
@group(0) @binding(6) var<storage, read_write> absmax_v: array<f32>;
@group(0) @binding(7) var<storage, read> maps: array<f32>;   // [0, 256): signed map; [256, 512): unsigned
@group(0) @binding(8) var<storage, read> clip: array<f32>;

const BLOCK: u32 = 256u;
var<workgroup> reduce_m: array<f32, 256>;
var<workgroup> reduce_v: array<f32, 256>;
var<workgroup> codes: array<u32, 512>;

fn nearest(x: f32, base: u32) -> u32 {
  var lo = 0u;
  var hi = 255u;
  while (hi - lo > 1u) {
    let mid = (lo + hi) / 2u;
    if (maps[base + mid] <= x) { lo = mid; } else { hi = mid; }
  }
  if (abs(maps[base + hi] - x) < abs(x - maps[base + lo])) { return hi; }
  return lo;
}

fn code_at(words: u32, i: u32) -> u32 {
  return (words >> ((i % 4u) * 8u)) & 255u;
}

@compute @workgroup_size(256)
fn step(@builtin(local_invocation_id) lid: vec3u, @builtin(workgroup_id) wid: vec3u, @builtin(num_workgroups) nwg: vec3u) {
  let block = wid.x + wid.y * nwg.x;
  let i = block * BLOCK + lid.x;
  let live = i < p.n;
  var m = 0.0;
  var v = 0.0;
  if (live) {
    var g = grad[i] * p.grad_scale;
    if (p.use_clip != 0u) { g *= clip[0]; }
    m = maps[code_at(qm[i / 4u], i)] * absmax_m[block];
    v = maps[256u + code_at(qv[i / 4u], i)] * absmax_v[block];
    m = p.beta1 * m + (1.0 - p.beta1) * g;
    v = p.beta2 * v + (1.0 - p.beta2) * g * g;
    param[i] = param[i] * p.decay - p.step_size * m / (sqrt(v) + p.eps_hat);
  }
  reduce_m[lid.x] = abs(m);
  reduce_v[lid.x] = v;
  workgroupBarrier();
  for (var s = BLOCK / 2u; s > 0u; s >>= 1u) {
    if (lid.x < s) {
      reduce_m[lid.x] = max(reduce_m[lid.x], reduce_m[lid.x + s]);
      reduce_v[lid.x] = max(reduce_v[lid.x], reduce_v[lid.x + s]);
    }
    workgroupBarrier();
  }
  let am = reduce_m[0];
  let av = reduce_v[0];
  codes[lid.x] = nearest(select(0.0, m / am, am > 0.0), 0u);
  codes[256u + lid.x] = nearest(select(0.0, v / av, av > 0.0), 256u);
  workgroupBarrier();
  if (lid.x == 0u) {
    absmax_m[block] = am;
    absmax_v[block] = av;
  }
  // Four codes per word: threads 0..63 pack m, 64..127 pack v.
  if (lid.x < 128u) {
    let which = lid.x / 64u;
    let w = lid.x % 64u;
    let first = block * BLOCK + w * 4u;
    if (first < p.n) {
      var word = 0u;
      for (var b = 0u; b < 4u; b++) { word |= codes[which * 256u + w * 4u + b] << (b * 8u); }
      if (which == 0u) { qm[first / 4u] = word; } else { qv[first / 4u] = word; }
    }
  }
}
