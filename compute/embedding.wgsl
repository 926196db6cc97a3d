// Embedding lookup (gather) and its backward, a scatter-add into the table gradient done without atomics.
// T_TYPE is the table's storage type (f32, or f16 for a frozen table). An id outside [0, V) is clamped to the
// nearest valid row, in the gather and in the scatter alike, so no id can read or write out of bounds; the
// model validates ids on the host before upload, and the clamp is only the last line of defence.

struct Params {
  tokens: u32,
  vocab: u32,
  cols: u32,
}

const WG: u32 = 256u;
// Marks the first occurrence of a row in links[t]; the low bits hold the next token with the same row.
const FIRST: u32 = 0x80000000u;
const NEXT_MASK: u32 = 0x7fffffffu;

@group(0) @binding(0) var<uniform> p: Params;

fn linear_index(gid: vec3u, nwg: vec3u) -> u32 {
  return gid.x + gid.y * nwg.x * WG;
}

fn row_of(id: i32) -> u32 {
  return u32(clamp(id, 0, i32(p.vocab) - 1));
}

// out[t, c] = table[id[t], c].
@group(0) @binding(1) var<storage, read> g_ids: array<i32>;
@group(0) @binding(2) var<storage, read> g_table: array<{{T_TYPE}}>;
@group(0) @binding(3) var<storage, read_write> g_out: array<f32>;

@compute @workgroup_size(WG)
fn gather(@builtin(global_invocation_id) gid: vec3u, @builtin(num_workgroups) nwg: vec3u) {
  let i = linear_index(gid, nwg);
  if (i >= p.tokens * p.cols) { return; }
  let t = i / p.cols;
  let c = i % p.cols;
  g_out[i] = f32(g_table[row_of(g_ids[t]) * p.cols + c]);
}

// Chains the tokens that share a row: links[t] = next token after t with the same row (tokens if none), with
// FIRST set on the row's first token. One thread per token scans the ids (read in the same order by every
// thread of a workgroup, so the loads broadcast).
@group(0) @binding(1) var<storage, read> l_ids: array<i32>;
@group(0) @binding(2) var<storage, read_write> l_links: array<u32>;

@compute @workgroup_size(WG)
fn chain(@builtin(global_invocation_id) gid: vec3u, @builtin(num_workgroups) nwg: vec3u) {
  let t = linear_index(gid, nwg);
  if (t >= p.tokens) { return; }
  let row = row_of(l_ids[t]);
  var first = FIRST;
  var next = p.tokens;
  for (var u = 0u; u < p.tokens; u++) {
    if (u != t && row_of(l_ids[u]) == row) {
      if (u < t) {
        first = 0u;
      } else {
        next = u;
        break;
      }
    }
  }
  l_links[t] = first | next;
}

// dtable[row, c] = Σ dy[t, c] over the tokens t of that row, summed along the chain in token order by the
// thread of the row's first token (deterministic). Rows no token uses keep the zeros written before.
@group(0) @binding(1) var<storage, read> s_ids: array<i32>;
@group(0) @binding(2) var<storage, read> s_links: array<u32>;
@group(0) @binding(3) var<storage, read> s_dy: array<f32>;
@group(0) @binding(4) var<storage, read_write> s_dtable: array<f32>;

@compute @workgroup_size(WG)
fn scatter(@builtin(global_invocation_id) gid: vec3u, @builtin(num_workgroups) nwg: vec3u) {
  let i = linear_index(gid, nwg);
  if (i >= p.tokens * p.cols) { return; }
  let t = i / p.cols;
  let c = i % p.cols;
  let head = s_links[t];
  if ((head & FIRST) == 0u) { return; }
  var total = s_dy[i];
  var next = head & NEXT_MASK;
  while (next < p.tokens) {
    total += s_dy[next * p.cols + c];
    next = s_links[next] & NEXT_MASK;
  }
  s_dtable[row_of(s_ids[t]) * p.cols + c] = total;
}
