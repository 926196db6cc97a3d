// SwiGLU (Qwen2/Llama MLP): out = silu(gate) * up, and its backward writing both input gradients in one pass.
// One thread per element; large grids are folded into 2-D.

struct Params {
  n: u32,
}

const WG: u32 = 256u;

@group(0) @binding(0) var<uniform> p: Params;

fn linear_index(gid: vec3u, nwg: vec3u) -> u32 {
  return gid.x + gid.y * nwg.x * WG;
}

{{ACTIVATIONS}}

@group(0) @binding(1) var<storage, read> f_gate: array<f32>;
@group(0) @binding(2) var<storage, read> f_up: array<f32>;
@group(0) @binding(3) var<storage, read_write> f_out: array<f32>;

@compute @workgroup_size(WG)
fn swiglu(@builtin(global_invocation_id) gid: vec3u, @builtin(num_workgroups) nwg: vec3u) {
  let i = linear_index(gid, nwg);
  if (i >= p.n) { return; }
  let g = f_gate[i];
  f_out[i] = g * sigmoid(g) * f_up[i];
}

// d gate = dy * up * silu'(gate), silu'(g) = s (1 + g (1 - s)); d up = dy * silu(gate).
@group(0) @binding(1) var<storage, read> b_gate: array<f32>;
@group(0) @binding(2) var<storage, read> b_up: array<f32>;
@group(0) @binding(3) var<storage, read> b_dy: array<f32>;
@group(0) @binding(4) var<storage, read_write> b_dgate: array<f32>;
@group(0) @binding(5) var<storage, read_write> b_dup: array<f32>;

@compute @workgroup_size(WG)
fn swiglu_backward(@builtin(global_invocation_id) gid: vec3u, @builtin(num_workgroups) nwg: vec3u) {
  let i = linear_index(gid, nwg);
  if (i >= p.n) { return; }
  let g = b_gate[i];
  let s = sigmoid(g);
  let dy = b_dy[i];
  b_dgate[i] = dy * b_up[i] * s * (1.0 + g * (1.0 - s));
  b_dup[i] = dy * g * s;
}
