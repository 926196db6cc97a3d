/**
 * WGSL shared by the kernels that reduce a value over one workgroup of WG threads (norm, softmax, loss, optim,
 * gemv): with subgroups, each subgroup reduces its lanes in registers and one barrier joins the subgroups'
 * results; without, a shared-memory tree (ten barriers for 256 threads). Deterministic, no atomics. The runtime
 * fills a kernel's `{{WORKGROUP_REDUCE}}` with the variant its device runs; the kernel defines `const WG: u32`.
 * Each function must be called in uniform control flow and returns the same result to every thread.
 */
export function workgroupReduceWgsl(subgroupSize: number | null): string {
  if (subgroupSize === null) return TREE;
  // One string per width: the runtime keys pipelines by it on every dispatch of an uncached spec.
  let text = BY_SUBGROUPS.get(subgroupSize);
  if (text === undefined) BY_SUBGROUPS.set(subgroupSize, text = bySubgroups(subgroupSize));
  return text;
}

const BY_SUBGROUPS = new Map<number, string>();

const TREE = `var<workgroup> reduce_scratch: array<vec2f, WG>;

// Sum of two values at once over the workgroup.
fn workgroup_sum2(v: vec2f, lid: u32) -> vec2f {
  reduce_scratch[lid] = v;
  workgroupBarrier();
  for (var s = WG / 2u; s > 0u; s >>= 1u) {
    if (lid < s) { reduce_scratch[lid] += reduce_scratch[lid + s]; }
    workgroupBarrier();
  }
  let total = reduce_scratch[0];
  workgroupBarrier();
  return total;
}

fn workgroup_sum(v: f32, lid: u32) -> f32 {
  return workgroup_sum2(vec2f(v, 0.0), lid).x;
}

fn workgroup_max(v: f32, lid: u32) -> f32 {
  reduce_scratch[lid] = vec2f(v, 0.0);
  workgroupBarrier();
  for (var s = WG / 2u; s > 0u; s >>= 1u) {
    if (lid < s) { reduce_scratch[lid].x = max(reduce_scratch[lid].x, reduce_scratch[lid + s].x); }
    workgroupBarrier();
  }
  let total = reduce_scratch[0].x;
  workgroupBarrier();
  return total;
}`;

function bySubgroups(size: number): string {
  return `const REDUCE_SUBGROUP: u32 = ${size}u;
// One slot per subgroup of the workgroup.
const REDUCE_SLOTS: u32 = (WG + REDUCE_SUBGROUP - 1u) / REDUCE_SUBGROUP;
var<workgroup> reduce_scratch: array<vec2f, REDUCE_SLOTS>;

// Sum of two values at once over the workgroup: each subgroup's sum in one slot, every thread adds the slots in
// the same order.
fn workgroup_sum2(v: vec2f, lid: u32) -> vec2f {
  let part = subgroupAdd(v);
  if (lid % REDUCE_SUBGROUP == 0u) { reduce_scratch[lid / REDUCE_SUBGROUP] = part; }
  workgroupBarrier();
  var total = reduce_scratch[0];
  for (var i = 1u; i < REDUCE_SLOTS; i++) { total += reduce_scratch[i]; }
  workgroupBarrier();
  return total;
}

fn workgroup_sum(v: f32, lid: u32) -> f32 {
  return workgroup_sum2(vec2f(v, 0.0), lid).x;
}

fn workgroup_max(v: f32, lid: u32) -> f32 {
  let part = subgroupMax(v);
  if (lid % REDUCE_SUBGROUP == 0u) { reduce_scratch[lid / REDUCE_SUBGROUP].x = part; }
  workgroupBarrier();
  var total = reduce_scratch[0].x;
  for (var i = 1u; i < REDUCE_SLOTS; i++) { total = max(total, reduce_scratch[i].x); }
  workgroupBarrier();
  return total;
}`;
}
