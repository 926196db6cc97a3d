/**
 * WGSL shared by the kernels that reduce a value over one workgroup of WG threads (norm, softmax, loss, gemv):
 * a shared-memory tree, deterministic, no atomics. The including kernel defines `const WG: u32`. Each function
 * must be called in uniform control flow and returns the result to every thread.
 */
export const WORKGROUP_REDUCE_WGSL = `var<workgroup> reduce_scratch: array<vec2f, WG>;

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
