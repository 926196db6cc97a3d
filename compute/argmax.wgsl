// Argmax over the last dim: logits [rows, cols] f32 -> i32 [rows], the first index of the largest value (as
// lib/generate/sampling.ts `argmax`), so greedy decoding keeps the chosen token on the GPU. A row is split into
// p.groups spans of p.span columns, one workgroup of WG threads each (`scan`): each thread scans its elements in
// increasing index order, four consecutive ones per step (four independent loads in flight), keeping the first
// best; then a workgroup-memory tree merges the (value, index) pairs, preferring the larger value and, on ties,
// the smaller index. One span writes the row's id; several write their bests, which `merge` reduces the same
// way (a 152k-entry vocabulary takes one workgroup ~120 us on an H200, dozens a few us). Rows holding NaN give
// an unspecified index.

struct Params {
  rows: u32,
  cols: u32,
  span: u32,
  groups: u32,
}

const WG: u32 = 256u;
// The index of a thread that saw no element; it loses to any real one.
const NONE: u32 = 0xffffffffu;

@group(0) @binding(0) var<uniform> p: Params;

var<workgroup> best_value: array<f32, WG>;
var<workgroup> best_index: array<u32, WG>;

// Whether (w, j) beats (v, i).
fn beats(w: f32, j: u32, v: f32, i: u32) -> bool {
  return j != NONE && (i == NONE || w > v || (w == v && j < i));
}

// Merges the workgroup's (value, index) pairs into best_value[0], best_index[0].
fn reduce(lid: u32, value: f32, index: u32) {
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
}

@group(0) @binding(1) var<storage, read> logits: array<f32>;
@group(0) @binding(2) var<storage, read_write> out: array<i32>;
// The spans' bests [rows, groups] when a row takes several.
@group(0) @binding(3) var<storage, read_write> span_value: array<f32>;
@group(0) @binding(4) var<storage, read_write> span_index: array<u32>;

@compute @workgroup_size(WG)
fn scan(@builtin(local_invocation_index) lid: u32, @builtin(workgroup_id) wid: vec3u) {
  let row = wid.y;
  let begin = wid.x * p.span;
  let end = min(begin + p.span, p.cols);
  let base = row * p.cols;
  var value = 0.0;
  var index = NONE;
  for (var c = begin + 4u * lid; c < end; c += 4u * WG) {
    // Elements past the span read its first element instead and are never taken.
    let v = vec4f(
      logits[base + c],
      logits[base + select(begin, c + 1u, c + 1u < end)],
      logits[base + select(begin, c + 2u, c + 2u < end)],
      logits[base + select(begin, c + 3u, c + 3u < end)],
    );
    for (var k = 0u; k < 4u; k++) {
      if (c + k < end && (index == NONE || v[k] > value)) {
        value = v[k];
        index = c + k;
      }
    }
  }
  reduce(lid, value, index);
  if (lid == 0u) {
    if (p.groups == 1u) {
      out[row] = i32(best_index[0]);
    } else {
      span_value[row * p.groups + wid.x] = best_value[0];
      span_index[row * p.groups + wid.x] = best_index[0];
    }
  }
}

@group(0) @binding(1) var<storage, read> merge_value: array<f32>;
@group(0) @binding(2) var<storage, read> merge_index: array<u32>;
@group(0) @binding(3) var<storage, read_write> merge_out: array<i32>;

@compute @workgroup_size(WG)
fn merge(@builtin(local_invocation_index) lid: u32, @builtin(workgroup_id) wid: vec3u) {
  let row = wid.y;
  var value = 0.0;
  var index = NONE;
  // Spans in increasing order, so a thread keeps the first of equal values.
  for (var g = lid; g < p.groups; g += WG) {
    let i = row * p.groups + g;
    if (beats(merge_value[i], merge_index[i], value, index)) {
      value = merge_value[i];
      index = merge_index[i];
    }
  }
  reduce(lid, value, index);
  if (lid == 0u) { merge_out[row] = i32(best_index[0]); }
}
