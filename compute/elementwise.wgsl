// Elementwise kernels: broadcasting binary ops, unary activations and their derivatives, fills, in-place
// accumulation and the broadcast-reduction used by the backward of broadcasting ops.
// BINARY_OP / UNARY_OP / UNARY_GRAD (text defines) select the operation. One thread per output element;
// large grids are folded into 2-D.

struct Params {
  n: u32,
  ndim: u32,
  count: u32,
  _pad0: u32,
  alpha: f32,
  beta: f32,
  _pad1: u32,
  _pad2: u32,
  shape: array<vec4u, 2>,
  stride_a: array<vec4u, 2>,
  stride_b: array<vec4u, 2>,
}

@group(0) @binding(0) var<uniform> p: Params;

fn dim(v: array<vec4u, 2>, d: u32) -> u32 {
  return v[d / 4u][d % 4u];
}

fn linear_index(gid: vec3u, nwg: vec3u) -> u32 {
  return gid.x + gid.y * nwg.x * 256u;
}

// Offsets of output element i in the two (possibly broadcast, stride 0) inputs.
fn broadcast_offsets(i: u32) -> vec2u {
  var rem = i;
  var oa = 0u;
  var ob = 0u;
  for (var d = i32(p.ndim) - 1; d >= 0; d--) {
    let size = dim(p.shape, u32(d));
    let k = rem % size;
    rem = rem / size;
    oa += k * dim(p.stride_a, u32(d));
    ob += k * dim(p.stride_b, u32(d));
  }
  return vec2u(oa, ob);
}

{{ACTIVATIONS}}

fn silu(x: f32) -> f32 {
  return x * sigmoid(x);
}

fn silu_grad(x: f32) -> f32 {
  let s = sigmoid(x);
  return s * (1.0 + x * (1.0 - s));
}

fn apply_binary(a: f32, b: f32) -> f32 {
  return {{BINARY_OP}};
}

fn apply_unary(x: f32) -> f32 {
  return {{UNARY_OP}};
}

fn apply_unary_grad(x: f32, dy: f32) -> f32 {
  return {{UNARY_GRAD}};
}

// out = a (op) b with broadcasting.
@group(0) @binding(1) var<storage, read> bin_a: array<f32>;
@group(0) @binding(2) var<storage, read> bin_b: array<f32>;
@group(0) @binding(3) var<storage, read_write> bin_out: array<f32>;

@compute @workgroup_size(256)
fn binary(@builtin(global_invocation_id) gid: vec3u, @builtin(num_workgroups) nwg: vec3u) {
  let i = linear_index(gid, nwg);
  if (i >= p.n) { return; }
  let o = broadcast_offsets(i);
  bin_out[i] = apply_binary(bin_a[o.x], bin_b[o.y]);
}

// out = f(x); alpha and beta are available to the expression.
@group(0) @binding(1) var<storage, read> un_x: array<f32>;
@group(0) @binding(2) var<storage, read_write> un_out: array<f32>;

@compute @workgroup_size(256)
fn unary(@builtin(global_invocation_id) gid: vec3u, @builtin(num_workgroups) nwg: vec3u) {
  let i = linear_index(gid, nwg);
  if (i >= p.n) { return; }
  un_out[i] = apply_unary(un_x[i]);
}

// dst = alpha * dst + beta * src, in place (gradient accumulation, AXPY).
@group(0) @binding(1) var<storage, read> acc_src: array<f32>;
@group(0) @binding(2) var<storage, read_write> acc_dst: array<f32>;

@compute @workgroup_size(256)
fn accumulate(@builtin(global_invocation_id) gid: vec3u, @builtin(num_workgroups) nwg: vec3u) {
  let i = linear_index(gid, nwg);
  if (i >= p.n) { return; }
  acc_dst[i] = p.alpha * acc_dst[i] + p.beta * acc_src[i];
}

// out = alpha (fill).
@group(0) @binding(1) var<storage, read_write> fill_out: array<f32>;

@compute @workgroup_size(256)
fn fill(@builtin(global_invocation_id) gid: vec3u, @builtin(num_workgroups) nwg: vec3u) {
  let i = linear_index(gid, nwg);
  if (i >= p.n) { return; }
  fill_out[i] = p.alpha;
}

// dx = dy * f'(x) for the unary op.
@group(0) @binding(1) var<storage, read> ug_x: array<f32>;
@group(0) @binding(2) var<storage, read> ug_dy: array<f32>;
@group(0) @binding(3) var<storage, read_write> ug_dx: array<f32>;

@compute @workgroup_size(256)
fn unary_grad(@builtin(global_invocation_id) gid: vec3u, @builtin(num_workgroups) nwg: vec3u) {
  let i = linear_index(gid, nwg);
  if (i >= p.n) { return; }
  ug_dx[i] = apply_unary_grad(ug_x[i], ug_dy[i]);
}

// Broadcast reduction (backward of broadcasting): out[j] = sum of grad[i] over every i that j broadcast to.
// `shape` is the output shape padded to the grad's rank, stride_a the grad's strides, stride_b the extent of
// each reduced dim (1 for kept dims); `count` is the product of the reduced extents.
@group(0) @binding(1) var<storage, read> red_grad: array<f32>;
@group(0) @binding(2) var<storage, read_write> red_out: array<f32>;

@compute @workgroup_size(256)
fn sum_to(@builtin(global_invocation_id) gid: vec3u, @builtin(num_workgroups) nwg: vec3u) {
  let j = linear_index(gid, nwg);
  if (j >= p.n) { return; }
  var rem = j;
  var base = 0u;
  for (var d = i32(p.ndim) - 1; d >= 0; d--) {
    let size = dim(p.shape, u32(d));
    base += (rem % size) * dim(p.stride_a, u32(d));
    rem = rem / size;
  }
  var total = 0.0;
  for (var k = 0u; k < p.count; k++) {
    var r = k;
    var off = base;
    for (var d = i32(p.ndim) - 1; d >= 0; d--) {
      let extent = dim(p.stride_b, u32(d));
      off += (r % extent) * dim(p.stride_a, u32(d));
      r = r / extent;
    }
    total += red_grad[off];
  }
  red_out[j] = total;
}

// Column sums of grad viewed as [rows, n] (a broadcast reduced over its leading dims: bias gradients). A
// workgroup owns 64 columns and p.count rows (a chunk; chunk wid.y writes its partial sums at row wid.y of
// red_out); four threads per column take every fourth row, then add their sums in a fixed order.
const SUM_COLS: u32 = 64u;
var<workgroup> col_partial: array<f32, 256>;

@compute @workgroup_size(256)
fn sum_rows(@builtin(local_invocation_index) tid: u32, @builtin(workgroup_id) wid: vec3u) {
  let c = wid.x * SUM_COLS + tid % SUM_COLS;
  let lane = tid / SUM_COLS;
  let rows = dim(p.shape, 0u);
  let r_end = min(rows, (wid.y + 1u) * p.count);
  var total = 0.0;
  if (c < p.n) {
    for (var r = wid.y * p.count + lane; r < r_end; r += 4u) { total += red_grad[r * p.n + c]; }
  }
  col_partial[tid] = total;
  workgroupBarrier();
  if (lane == 0u && c < p.n) {
    red_out[wid.y * p.n + c] = (col_partial[tid] + col_partial[tid + 64u]) +
      (col_partial[tid + 128u] + col_partial[tid + 192u]);
  }
}

// Raw 32-bit fill (tests poison fresh outputs with NaN bits so unwritten elements fail).
@group(0) @binding(1) var<storage, read_write> bits_out: array<u32>;

@compute @workgroup_size(256)
fn fill_bits(@builtin(global_invocation_id) gid: vec3u, @builtin(num_workgroups) nwg: vec3u) {
  let i = linear_index(gid, nwg);
  if (i >= p.n) { return; }
  bits_out[i] = p.count;
}
