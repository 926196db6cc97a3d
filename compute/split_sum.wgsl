// Split-K's second pass (after matmul.wgsl's split_k and the GEMV over several rows of x, gemv.wgsl): out[i] =
// the layers' partial products at i summed in layer order (+ bias[i % N]) (+ out[i]), so the result does not depend
// on how the GPU scheduled the layers.

struct Params {
  mn: u32,
  n: u32,
  layers: u32,
  has_bias: u32,
  accumulate: u32,
}

const WG: u32 = 256u;

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> partial: array<f32>;
@group(0) @binding(2) var<storage, read> bias: array<f32>;
@group(0) @binding(3) var<storage, read_write> out: array<f32>;

@compute @workgroup_size(WG)
fn main(@builtin(global_invocation_id) gid: vec3u, @builtin(num_workgroups) nwg: vec3u) {
  let i = gid.x + gid.y * nwg.x * WG;
  if (i >= p.mn) { return; }
  var v = 0.0;
  for (var s = 0u; s < p.layers; s++) { v += partial[s * p.mn + i]; }
  if (p.has_bias != 0u) { v += bias[i % p.n]; }
  if (p.accumulate != 0u) { v += out[i]; }
  out[i] = v;
}
