// Cross-entropy kernels. A logits chunk [N, cols] covers vocabulary columns v0..v0+cols-1; per-row running
// (max, sum of exp, label logit) live in `state` [3, N] and are merged chunk by chunk (online logsumexp), so
// the full [N, V] logits never exist at once. Rows whose label is outside [0, V) (-100) are ignored.
// Row reductions use one 256-thread workgroup per row with a shared-memory tree: deterministic, no atomics.

struct Params {
  N: u32,
  V: u32,
  cols: u32,
  v0: u32,
  first: u32,
}

@group(0) @binding(0) var<uniform> p: Params;

const WG: u32 = 256u;
const NEG_BIG: f32 = -3.0e38;

{{WORKGROUP_REDUCE}}

fn row_of(wid: vec3u, nwg: vec3u) -> u32 {
  return wid.x + wid.y * nwg.x;
}

fn is_valid(label: i32) -> bool {
  return label >= 0 && u32(label) < p.V;
}

// A row of logits (ce_chunk, log_softmax: binding 1 of both).
@group(0) @binding(1) var<storage, read> row_in: array<f32>;

// (max, sum of exp(x - max)) of row_in[base .. base + p.cols), reduced over the workgroup.
fn row_max_sumexp(tid: u32, base: u32) -> vec2f {
  var local_max = NEG_BIG;
  for (var j = tid; j < p.cols; j += WG) { local_max = max(local_max, row_in[base + j]); }
  let row_max = workgroup_max(local_max, tid);
  var local_sum = 0.0;
  for (var j = tid; j < p.cols; j += WG) { local_sum += exp(row_in[base + j] - row_max); }
  return vec2f(row_max, workgroup_sum(local_sum, tid));
}

// ---- merge one logits chunk into the running row state; one workgroup per row ----
@group(0) @binding(2) var<storage, read> chunk_targets: array<i32>;
@group(0) @binding(3) var<storage, read_write> chunk_state: array<f32>;

@compute @workgroup_size(WG)
fn ce_chunk(
  @builtin(local_invocation_index) tid: u32,
  @builtin(workgroup_id) wid: vec3u,
  @builtin(num_workgroups) nwg: vec3u,
) {
  let n = row_of(wid, nwg);
  if (n >= p.N) { return; }
  let base = n * p.cols;
  let stats = row_max_sumexp(tid, base);
  let chunk_max = stats.x;
  let chunk_sum = stats.y;
  if (tid != 0u) { return; }
  var run_max = NEG_BIG;
  var run_sum = 0.0;
  var target_logit = 0.0;
  if (p.first == 0u) {
    run_max = chunk_state[n];
    run_sum = chunk_state[p.N + n];
    target_logit = chunk_state[2u * p.N + n];
  }
  let new_max = max(run_max, chunk_max);
  run_sum = run_sum * exp(run_max - new_max) + chunk_sum * exp(chunk_max - new_max);
  let label = chunk_targets[n];
  if (label >= i32(p.v0) && label < i32(p.v0 + p.cols)) {
    target_logit = row_in[base + u32(label) - p.v0];
  }
  chunk_state[n] = new_max;
  chunk_state[p.N + n] = run_sum;
  chunk_state[2u * p.N + n] = target_logit;
}

// ---- per-row logsumexp, valid count and mean loss; one workgroup for all rows ----
@group(0) @binding(1) var<storage, read> fin_targets: array<i32>;
@group(0) @binding(2) var<storage, read> fin_state: array<f32>;
@group(0) @binding(3) var<storage, read_write> fin_lse: array<f32>;
@group(0) @binding(4) var<storage, read_write> fin_loss: array<f32>;
@group(0) @binding(5) var<storage, read_write> fin_count: array<f32>;

@compute @workgroup_size(WG)
fn ce_finish(@builtin(local_invocation_index) tid: u32) {
  var loss_sum = 0.0;
  var count = 0.0;
  for (var n = tid; n < p.N; n += WG) {
    let lse = fin_state[n] + log(fin_state[p.N + n]);
    fin_lse[n] = lse;
    if (is_valid(fin_targets[n])) {
      loss_sum += lse - fin_state[2u * p.N + n];
      count += 1.0;
    }
  }
  let sums = workgroup_sum2(vec2f(loss_sum, count), tid);
  if (tid == 0u) {
    let total = sums.x;
    let valid = sums.y;
    // No valid label: loss 0 (the trainer reports it), never 0/0.
    fin_loss[0] = select(0.0, total / max(valid, 1.0), valid > 0.0);
    fin_count[0] = valid;
  }
}

// ---- in place: logits chunk -> dloss/dlogits = (softmax - onehot) * grad / count, 0 for ignored rows ----
@group(0) @binding(1) var<storage, read> grad_targets: array<i32>;
@group(0) @binding(2) var<storage, read> grad_lse: array<f32>;
@group(0) @binding(3) var<storage, read> grad_count: array<f32>;
@group(0) @binding(4) var<storage, read> grad_upstream: array<f32>;
@group(0) @binding(5) var<storage, read_write> grad_logits: array<f32>;

@compute @workgroup_size(WG)
fn ce_grad(@builtin(global_invocation_id) gid: vec3u, @builtin(num_workgroups) nwg: vec3u) {
  let i = gid.x + gid.y * nwg.x * WG;
  if (i >= p.N * p.cols) { return; }
  let n = i / p.cols;
  let j = i % p.cols;
  let label = grad_targets[n];
  var d = 0.0;
  if (is_valid(label)) {
    let onehot = select(0.0, 1.0, u32(label) == p.v0 + j);
    d = (exp(grad_logits[i] - grad_lse[n]) - onehot) * (grad_upstream[0] / grad_count[0]);
  }
  grad_logits[i] = d;
}

// ---- log-softmax over rows of [N, cols]; one workgroup per row ----
@group(0) @binding(2) var<storage, read_write> ls_out: array<f32>;

@compute @workgroup_size(WG)
fn log_softmax(
  @builtin(local_invocation_index) tid: u32,
  @builtin(workgroup_id) wid: vec3u,
  @builtin(num_workgroups) nwg: vec3u,
) {
  let n = row_of(wid, nwg);
  if (n >= p.N) { return; }
  let base = n * p.cols;
  let stats = row_max_sumexp(tid, base);
  let lse = stats.x + log(stats.y);
  for (var j = tid; j < p.cols; j += WG) { ls_out[base + j] = row_in[base + j] - lse; }
}

// ---- log-softmax backward: dx = dy - softmax * rowsum(dy) ----
@group(0) @binding(1) var<storage, read> lsg_y: array<f32>;
@group(0) @binding(2) var<storage, read> lsg_dy: array<f32>;
@group(0) @binding(3) var<storage, read_write> lsg_dx: array<f32>;

@compute @workgroup_size(WG)
fn log_softmax_grad(
  @builtin(local_invocation_index) tid: u32,
  @builtin(workgroup_id) wid: vec3u,
  @builtin(num_workgroups) nwg: vec3u,
) {
  let n = row_of(wid, nwg);
  if (n >= p.N) { return; }
  let base = n * p.cols;
  var local_sum = 0.0;
  for (var j = tid; j < p.cols; j += WG) { local_sum += lsg_dy[base + j]; }
  let total = workgroup_sum(local_sum, tid);
  for (var j = tid; j < p.cols; j += WG) {
    lsg_dx[base + j] = lsg_dy[base + j] - exp(lsg_y[base + j]) * total;
  }
}
