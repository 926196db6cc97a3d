// Dropout with a counter-based mask: element i is kept iff hash(seed, i) >= threshold (threshold = p * 2^32),
// so the mask needs no storage and is the same every time the same seed is used (the backward, and a
// checkpointed block's recompute). Kept elements are scaled by 1 / (1 - p). One thread per element.

struct Params {
  n: u32,
  seed: u32,
  threshold: u32,
  scale: f32,
}

const WG: u32 = 256u;

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> x: array<f32>;
@group(0) @binding(2) var<storage, read_write> out: array<f32>;

// PCG-RXS-M-XS hash (Jarzynski & Olano, "Hash Functions for GPU Rendering", 2020).
fn pcg(v: u32) -> u32 {
  let state = v * 747796405u + 2891336453u;
  let word = ((state >> ((state >> 28u) + 4u)) ^ state) * 277803737u;
  return (word >> 22u) ^ word;
}

@compute @workgroup_size(WG)
fn main(@builtin(global_invocation_id) gid: vec3u, @builtin(num_workgroups) nwg: vec3u) {
  let i = gid.x + gid.y * nwg.x * WG;
  if (i >= p.n) { return; }
  let keep = pcg(pcg(p.seed) + i) >= p.threshold;
  out[i] = select(0.0, x[i] * p.scale, keep);
}
