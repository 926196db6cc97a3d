// Argmax over the last dim: logits [rows, cols] f32 -> i32 [rows], the first index of the largest value (as
// lib/generate/sampling.ts `argmax`), so greedy decoding keeps the chosen token on the GPU. One workgroup of WG
// threads per row: each thread scans its elements in increasing index order, four consecutive ones per step (four
// independent loads in flight), keeping the first best; then a workgroup-memory tree merges the (value, index)
// pairs, preferring the larger value and, on ties, the smaller index. Rows holding NaN give an unspecified index.

struct Params {
  rows: u32,
  cols: u32,
}

const WG: u32 = 256u;
// The index of a thread that saw no element; it loses to any real one.
const NONE: u32 = 0xffffffffu;

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> logits: array<f32>;
@group(0) @binding(2) var<storage, read_write> out: array<i32>;

var<workgroup> best_value: array<f32, WG>;
var<workgroup> best_index: array<u32, WG>;

// Whether (w, j) beats (v, i).
fn beats(w: f32, j: u32, v: f32, i: u32) -> bool {
  return j != NONE && (i == NONE || w > v || (w == v && j < i));
}

@compute @workgroup_size(WG)
fn main(
  @builtin(local_invocation_index) lid: u32,
  @builtin(workgroup_id) wid: vec3u,
  @builtin(num_workgroups) nwg: vec3u,
) {
  let row = wid.x + wid.y * nwg.x;
  if (row >= p.rows) { return; }
  let base = row * p.cols;
  var value = 0.0;
  var index = NONE;
  for (var c = 4u * lid; c < p.cols; c += 4u * WG) {
    // Elements past the row read index 0 of the row instead and are never taken.
    let v = vec4f(
      logits[base + c],
      logits[base + select(0u, c + 1u, c + 1u < p.cols)],
      logits[base + select(0u, c + 2u, c + 2u < p.cols)],
      logits[base + select(0u, c + 3u, c + 3u < p.cols)],
    );
    for (var k = 0u; k < 4u; k++) {
      if (c + k < p.cols && (index == NONE || v[k] > value)) {
        value = v[k];
        index = c + k;
      }
    }
  }
  best_value[lid] = value;
  best_index[lid] = index;
  workgroupBarrier();
  for (var s = WG / 2u; s > 0u; s >>= 1u) {
    if (lid < s && beats(best_value[lid + s], best_index[lid + s], best_value[lid], best_index[lid])) {
      best_value[lid] = best_value[lid + s];
      best_index[lid] = best_index[lid + s];
    }
    workgroupBarrier();
  }
  if (lid == 0u) { out[row] = i32(best_index[0]); }
}
