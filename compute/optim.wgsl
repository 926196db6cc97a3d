// Optimizer kernels: the AdamW update (PyTorch's single-tensor algorithm, one thread per element) and global
// gradient-norm clipping (sum of squares per workgroup -> one partial each, partials -> total norm and clip
// coefficient in a single workgroup, which the update applies to the gradient as it reads it): deterministic,
// no readbacks.

struct Params {
  n: u32,
  // sum_squares: the first partial's index; adamw: 1 when the gradient is multiplied by adam_clip[0].
  base: u32,
  groups: u32,
  _pad: u32,
  decay: f32,
  beta1: f32,
  beta2: f32,
  lerp_weight: f32,
  one_minus_beta2: f32,
  step_size: f32,
  bias_correction2_sqrt: f32,
  eps: f32,
  max_norm: f32,
}

@group(0) @binding(0) var<uniform> p: Params;

const WG: u32 = 256u;

// ---- AdamW: p *= 1 - lr*wd; m = lerp(m, g, 1 - beta1); v = beta2 v + (1 - beta2) g²;
//      p -= lr / (1 - beta1^t) * m / (sqrt(v) / sqrt(1 - beta2^t) + eps) ----
@group(0) @binding(1) var<storage, read> adam_grad: array<f32>;
@group(0) @binding(2) var<storage, read_write> adam_param: array<f32>;
@group(0) @binding(3) var<storage, read_write> adam_m: array<f32>;
@group(0) @binding(4) var<storage, read_write> adam_v: array<f32>;
@group(0) @binding(5) var<storage, read> adam_clip: array<f32>;

@compute @workgroup_size(WG)
fn adamw(@builtin(global_invocation_id) gid: vec3u, @builtin(num_workgroups) nwg: vec3u) {
  let i = gid.x + gid.y * nwg.x * WG;
  if (i >= p.n) { return; }
  var g = adam_grad[i];
  if (p.base != 0u) { g *= adam_clip[0]; }
  let param = adam_param[i] * p.decay;
  // torch.lerp uses this two-sided formula; following it keeps m rounding the same way.
  let m_old = adam_m[i];
  var m: f32;
  if (p.lerp_weight < 0.5) {
    m = m_old + p.lerp_weight * (g - m_old);
  } else {
    m = g - (g - m_old) * (1.0 - p.lerp_weight);
  }
  let v = adam_v[i] * p.beta2 + p.one_minus_beta2 * g * g;
  let denom = sqrt(v) / p.bias_correction2_sqrt + p.eps;
  adam_param[i] = param - p.step_size * (m / denom);
  adam_m[i] = m;
  adam_v[i] = v;
}

{{WORKGROUP_REDUCE}}

// ---- stage 1: partials[base + w] = sum of squares of workgroup w's strided share of one gradient ----
@group(0) @binding(1) var<storage, read> sq_grad: array<f32>;
@group(0) @binding(2) var<storage, read_write> sq_partials: array<f32>;

@compute @workgroup_size(WG)
fn sum_squares(@builtin(local_invocation_index) tid: u32, @builtin(workgroup_id) wid: vec3u) {
  var sum = 0.0;
  for (var i = wid.x * WG + tid; i < p.n; i += p.groups * WG) {
    let x = sq_grad[i];
    sum = fma(x, x, sum);
  }
  let total = workgroup_sum(sum, tid);
  if (tid == 0u) { sq_partials[p.base + wid.x] = total; }
}

// ---- stage 2: clip = [min(max_norm / (norm + 1e-6), 1), norm] with norm = sqrt(sum of the n partials)
//      (torch.nn.utils.clip_grad_norm_'s coefficient), one workgroup ----
@group(0) @binding(1) var<storage, read> norm_partials: array<f32>;
@group(0) @binding(2) var<storage, read_write> clip_out: array<f32>;

@compute @workgroup_size(WG)
fn total_norm(@builtin(local_invocation_index) tid: u32) {
  var sum = 0.0;
  for (var i = tid; i < p.n; i += WG) { sum += norm_partials[i]; }
  let total = workgroup_sum(sum, tid);
  if (tid == 0u) {
    let norm = sqrt(total);
    clip_out[0] = min(p.max_norm / (norm + 1e-6), 1.0);
    clip_out[1] = norm;
  }
}
