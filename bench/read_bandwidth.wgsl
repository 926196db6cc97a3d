// A streaming read of a buffer with 16-byte loads: the memory ceiling as WGSL through wgpu reaches it, against
// which the bench sets the NF4 GEMV. Each thread reads UNROLL vec4s a step, a grid's width apart (consecutive
// threads read consecutive vec4s), and folds them into one value so the loads are not optimised away.

struct Params {
  n: u32,
}

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> src: array<vec4<u32>>;
@group(0) @binding(2) var<storage, read_write> sink: array<u32>;

const WG: u32 = {{WG}}u;
const UNROLL: u32 = {{UNROLL}}u;

@compute @workgroup_size(WG)
fn main(@builtin(global_invocation_id) gid: vec3u, @builtin(num_workgroups) nwg: vec3u) {
  let threads = nwg.x * WG;
  var acc = vec4<u32>(0u);
  for (var i = gid.x; i < p.n; i += threads * UNROLL) {
{{LOADS}}
  }
  // A fold no buffer of the bench produces in practice: the store keeps the loads, and almost never happens.
  if (acc.x == 0x9e3779b9u && acc.y == acc.z) { sink[gid.x] = acc.w; }
}
