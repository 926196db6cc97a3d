// Matrix-vector product for decoding: y[n] = sum_k x[k] * W[n, k] (+ bias[n]) with W [N, K] row-major (PyTorch's
// Linear layout) stored as f32, f16 or NF4. Memory-bound: each workgroup streams ROWS rows with 16-byte loads
// (4 f32, 8 f16 or 32 NF4 codes), each thread strides over the row, and the partial sums meet in a
// workgroup-memory tree. K is a multiple of 8 (f32, f16) or 32 (NF4): the wrapper checks.
// W_DECL declares the weight buffers and `row_dot(row, t) -> f32`: thread t's partial dot product of a row.

struct Params {
  N: u32,
  K: u32,
  has_bias: u32,
  accumulate: u32,
}

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> x: array<vec4f>;
@group(0) @binding(3) var<storage, read> bias: array<f32>;
@group(0) @binding(4) var<storage, read_write> y: array<f32>;

const WG: u32 = 256u;
const ROWS: u32 = {{ROWS}}u;
const LANES: u32 = WG / ROWS;

{{W_DECL}}

var<workgroup> partial: array<f32, WG>;

@compute @workgroup_size(WG)
fn main(@builtin(local_invocation_index) tid: u32, @builtin(workgroup_id) wid: vec3u, @builtin(num_workgroups) nwg: vec3u) {
  let group = wid.x + wid.y * nwg.x;
  let lane = tid % LANES;
  let row = group * ROWS + tid / LANES;
  var sum = 0.0;
  if (row < p.N) { sum = row_dot(row, lane); }
  partial[tid] = sum;
  workgroupBarrier();
  for (var stride = LANES / 2u; stride > 0u; stride >>= 1u) {
    if (lane < stride) { partial[tid] += partial[tid + stride]; }
    workgroupBarrier();
  }
  if (lane == 0u && row < p.N) {
    var v = partial[tid];
    if (p.has_bias != 0u) { v += bias[row]; }
    if (p.accumulate != 0u) { v += y[row]; }
    y[row] = v;
  }
}
