// Seeded random initialisation on the GPU (benchmarks build real-shape models without files): normal(0, std)
// from a counter-based hash and Box–Muller, written as f32 or as packed f16 pairs.

struct Params {
  n: u32,
  seed: u32,
  sigma: f32,
  _pad: u32,
}

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read_write> out: array<u32>;

fn pcg(v: u32) -> u32 {
  let state = v * 747796405u + 2891336453u;
  let word = ((state >> ((state >> 28u) + 4u)) ^ state) * 277803737u;
  return (word >> 22u) ^ word;
}

// Two independent normals for counter i.
fn normal2(i: u32) -> vec2f {
  let a = pcg(pcg(p.seed) ^ (2u * i));
  let b = pcg(pcg(p.seed + 0x9e3779b9u) ^ (2u * i + 1u));
  let u1 = (f32(a >> 8u) + 0.5) / 16777216.0;
  let u2 = f32(b >> 8u) / 16777216.0;
  let r = sqrt(-2.0 * log(u1));
  return vec2f(r * cos(6.283185307179586 * u2), r * sin(6.283185307179586 * u2)) * p.sigma;
}

// One f32 per word.
@compute @workgroup_size(256)
fn normal_f32(@builtin(global_invocation_id) gid: vec3u, @builtin(num_workgroups) nwg: vec3u) {
  let i = gid.x + gid.y * nwg.x * 256u;
  if (i >= p.n) { return; }
  out[i] = bitcast<u32>(normal2(i).x);
}

// Two f16 per word (n counts words).
@compute @workgroup_size(256)
fn normal_f16(@builtin(global_invocation_id) gid: vec3u, @builtin(num_workgroups) nwg: vec3u) {
  let i = gid.x + gid.y * nwg.x * 256u;
  if (i >= p.n) { return; }
  out[i] = pack2x16float(normal2(i));
}
