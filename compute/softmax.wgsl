// Softmax over the last dim (numerically stable) and its backward. One workgroup of WG threads per row: each
// thread keeps a running (max, sum of exp(x - max)) over its strided elements (online softmax, one read pass),
// then a shared-memory tree merges the pairs, so the result is deterministic.
// Masked elements may be -inf; a row with no finite element gives NaN.

struct Params {
  rows: u32,
  cols: u32,
}

const WG: u32 = 256u;
const LOWEST: f32 = -3.4028234663852886e38;

@group(0) @binding(0) var<uniform> p: Params;

var<workgroup> scratch: array<vec2f, WG>;

{{WORKGROUP_REDUCE}}

fn row_index(wid: vec3u, nwg: vec3u) -> u32 {
  return wid.x + wid.y * nwg.x;
}

// (max, sum) of two partial softmax states over disjoint elements.
fn merge(a: vec2f, b: vec2f) -> vec2f {
  let m = max(a.x, b.x);
  return vec2f(m, a.y * exp(a.x - m) + b.y * exp(b.x - m));
}

@group(0) @binding(1) var<storage, read> fx: array<f32>;
@group(0) @binding(2) var<storage, read_write> fy: array<f32>;

@compute @workgroup_size(WG)
fn forward(
  @builtin(local_invocation_index) lid: u32,
  @builtin(workgroup_id) wid: vec3u,
  @builtin(num_workgroups) nwg: vec3u,
) {
  let row = row_index(wid, nwg);
  if (row >= p.rows) { return; }
  let base = row * p.cols;
  var state = vec2f(LOWEST, 0.0);
  for (var c = lid; c < p.cols; c += WG) {
    let v = fx[base + c];
    if (v > state.x) {
      state = vec2f(v, state.y * exp(state.x - v) + 1.0);
    } else {
      state.y += exp(v - state.x);
    }
  }
  scratch[lid] = state;
  workgroupBarrier();
  for (var s = WG / 2u; s > 0u; s >>= 1u) {
    if (lid < s) { scratch[lid] = merge(scratch[lid], scratch[lid + s]); }
    workgroupBarrier();
  }
  let total = scratch[0];
  let inv_sum = 1.0 / total.y;
  for (var c = lid; c < p.cols; c += WG) {
    fy[base + c] = exp(fx[base + c] - total.x) * inv_sum;
  }
}

// dx = y * (dy - Σ dy * y) over the row.
@group(0) @binding(1) var<storage, read> by: array<f32>;
@group(0) @binding(2) var<storage, read> bdy: array<f32>;
@group(0) @binding(3) var<storage, read_write> bdx: array<f32>;

@compute @workgroup_size(WG)
fn backward(
  @builtin(local_invocation_index) lid: u32,
  @builtin(workgroup_id) wid: vec3u,
  @builtin(num_workgroups) nwg: vec3u,
) {
  let row = row_index(wid, nwg);
  if (row >= p.rows) { return; }
  let base = row * p.cols;
  var dot = 0.0;
  for (var c = lid; c < p.cols; c += WG) { dot += bdy[base + c] * by[base + c]; }
  let total = workgroup_sum(dot, lid);
  for (var c = lid; c < p.cols; c += WG) {
    bdx[base + c] = by[base + c] * (bdy[base + c] - total);
  }
}
