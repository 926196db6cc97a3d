// Row normalisation over the last dim: RMSNorm (Qwen2/Llama) and LayerNorm (GPT-2), forward and backward.
// CENTER (text define) selects LayerNorm: subtract the row mean and add a bias. W_TYPE is the storage type of
// weight and bias (f32, or f16 for frozen weights). Row kernels run one workgroup of WG threads per row: strided
// loops, then a shared-memory tree, so long rows are read coalesced and the sums are deterministic.
// Per-row statistics are kept as stats[row] = (mean, rstd), mean = 0 for RMSNorm.

struct Params {
  rows: u32,
  cols: u32,
  eps: f32,
  // Parameter-gradient kernels: rows per partial sum, number of partial sums, and which group of partials
  // (0: weight, 1: bias) param_grad_reduce sums.
  chunk: u32,
  chunks: u32,
  group: u32,
}

const WG: u32 = 256u;
const CENTER: bool = {{CENTER}};

@group(0) @binding(0) var<uniform> p: Params;

{{WORKGROUP_REDUCE}}

fn row_index(wid: vec3u, nwg: vec3u) -> u32 {
  return wid.x + wid.y * nwg.x;
}

// y = (x - mean) * rstd * w (+ b); stats[row] = (mean, rstd).
@group(0) @binding(1) var<storage, read> fx: array<f32>;
@group(0) @binding(2) var<storage, read> fw: array<{{W_TYPE}}>;
// LayerNorm's bias; RMSNorm binds the weight here and never reads it.
@group(0) @binding(3) var<storage, read> fb: array<{{W_TYPE}}>;
@group(0) @binding(4) var<storage, read_write> fy: array<f32>;
@group(0) @binding(5) var<storage, read_write> fstats: array<vec2f>;

@compute @workgroup_size(WG)
fn forward(
  @builtin(local_invocation_index) lid: u32,
  @builtin(workgroup_id) wid: vec3u,
  @builtin(num_workgroups) nwg: vec3u,
) {
  let row = row_index(wid, nwg);
  if (row >= p.rows) { return; }
  let base = row * p.cols;
  let n = f32(p.cols);
  var mean = 0.0;
  if (CENTER) {
    var s = 0.0;
    for (var c = lid; c < p.cols; c += WG) { s += fx[base + c]; }
    mean = workgroup_sum(s, lid) / n;
  }
  // Two passes for LayerNorm (mean, then squared deviations) avoid E[x²] - E[x]² cancellation.
  var sq = 0.0;
  for (var c = lid; c < p.cols; c += WG) {
    let d = fx[base + c] - mean;
    sq += d * d;
  }
  let rstd = inverseSqrt(workgroup_sum(sq, lid) / n + p.eps);
  for (var c = lid; c < p.cols; c += WG) {
    var y = (fx[base + c] - mean) * rstd * f32(fw[c]);
    if (CENTER) { y += f32(fb[c]); }
    fy[base + c] = y;
  }
  if (lid == 0u) { fstats[row] = vec2f(mean, rstd); }
}

// dx = rstd * (g - mean(g) - xhat * mean(g * xhat)) with g = dy * w, xhat = (x - mean) * rstd; RMSNorm has no
// mean(g) term (its output does not depend on a shift of x through the mean).
@group(0) @binding(1) var<storage, read> bx: array<f32>;
@group(0) @binding(2) var<storage, read> bw: array<{{W_TYPE}}>;
@group(0) @binding(3) var<storage, read> bstats: array<vec2f>;
@group(0) @binding(4) var<storage, read> bdy: array<f32>;
@group(0) @binding(5) var<storage, read_write> bdx: array<f32>;

@compute @workgroup_size(WG)
fn backward_x(
  @builtin(local_invocation_index) lid: u32,
  @builtin(workgroup_id) wid: vec3u,
  @builtin(num_workgroups) nwg: vec3u,
) {
  let row = row_index(wid, nwg);
  if (row >= p.rows) { return; }
  let base = row * p.cols;
  let stats = bstats[row];
  var sums = vec2f(0.0);
  for (var c = lid; c < p.cols; c += WG) {
    let g = bdy[base + c] * f32(bw[c]);
    let xhat = (bx[base + c] - stats.x) * stats.y;
    sums += vec2f(g, g * xhat);
  }
  let means = workgroup_sum2(sums, lid) / f32(p.cols);
  var mean_g = 0.0;
  if (CENTER) { mean_g = means.x; }
  for (var c = lid; c < p.cols; c += WG) {
    let g = bdy[base + c] * f32(bw[c]);
    let xhat = (bx[base + c] - stats.x) * stats.y;
    bdx[base + c] = stats.y * (g - mean_g - xhat * means.y);
  }
}

// Stage 1 of the weight/bias gradient: partial column sums over chunks of `chunk` rows, one thread per
// (chunk, column) so adjacent threads read adjacent columns. partials is [G, chunks, cols]: group 0 holds
// Σ dy * xhat (weight), group 1 (LayerNorm only) Σ dy (bias).
@group(0) @binding(1) var<storage, read> px: array<f32>;
@group(0) @binding(2) var<storage, read> pstats: array<vec2f>;
@group(0) @binding(3) var<storage, read> pdy: array<f32>;
@group(0) @binding(4) var<storage, read_write> partials: array<f32>;

@compute @workgroup_size(WG)
fn param_grad_partial(@builtin(global_invocation_id) gid: vec3u, @builtin(num_workgroups) nwg: vec3u) {
  let i = gid.x + gid.y * nwg.x * WG;
  if (i >= p.chunks * p.cols) { return; }
  let k = i / p.cols;
  let c = i % p.cols;
  let end = min(p.rows, (k + 1u) * p.chunk);
  var sums = vec2f(0.0);
  for (var r = k * p.chunk; r < end; r++) {
    let stats = pstats[r];
    let dy = pdy[r * p.cols + c];
    sums += vec2f(dy * (px[r * p.cols + c] - stats.x) * stats.y, dy);
  }
  partials[i] = sums.x;
  if (CENTER) { partials[p.chunks * p.cols + i] = sums.y; }
}

// Stage 2: out[c] = Σ_k partials[group, k, c], summed in chunk order (deterministic).
@group(0) @binding(1) var<storage, read> rpartials: array<f32>;
@group(0) @binding(2) var<storage, read_write> rout: array<f32>;

@compute @workgroup_size(WG)
fn param_grad_reduce(@builtin(global_invocation_id) gid: vec3u, @builtin(num_workgroups) nwg: vec3u) {
  let c = gid.x + gid.y * nwg.x * WG;
  if (c >= p.cols) { return; }
  let base = p.group * p.chunks * p.cols + c;
  var total = 0.0;
  for (var k = 0u; k < p.chunks; k++) { total += rpartials[base + k * p.cols]; }
  rout[c] = total;
}
