// Attention kernels: flash-attention forward (online softmax over key tiles, per-query logsumexp saved for
// backward), its backward (delta = rowsum(dO * O), dQ over query tiles, dK/dV over key tiles looping over the
// queries and query heads of a kv head's group: deterministic, no atomics) and the KV-cache append copy.
// Layouts: q, o [B, T, Hq, D]; k, v [B, kv_rows, Hkv, D] of which the first S rows are keys; lse, delta
// [B, Hq, T]; key_mask i32 [B, mask_stride] (1 = attend). Query t sits at absolute position S - T + t.
// The forward and dQ kernels work per kv head: their query tiles run over the "rows" rho = t * group + g of
// the group's query heads, so one K/V tile serves every query head that reads it. The forward may also split
// the keys among workgroups (flash-decoding) when too few query tiles exist to fill the GPU; attn_combine then
// merges the per-split outputs by their logsumexps. One query per row (decoding) takes attn_decode instead, at
// the end of this file.
// Tiles: ROWS rows owned by threads (query rows in the forward and dQ, keys in dK/dV), LANES threads per row,
// each accumulating two vec4 column groups in registers (named variables, not arrays: GPU compilers keep
// loop-indexed arrays in slow local memory); TILE rows of the other operand per step. Rows live in workgroup
// memory as vec4s, padded to D4 = 2 * LANES columns (zeros past D) plus one vec4 to spread rows over banks.
// HEAD_DIM, LANES, TILE and the workgroup array sizes are text defines.

struct Params {
  T: u32,
  S: u32,
  Hq: u32,
  Hkv: u32,
  kv_rows: u32,
  group: u32,
  causal: u32,
  has_mask: u32,
  mask_stride: u32,
  scale: f32,
  n: u32,
  length: u32,
  splits: u32,
  split_len: u32,
  // attn_decode with RoPE fused: where positions[0] is in the bound buffer.
  pos_offset: u32,
}

@group(0) @binding(0) var<uniform> p: Params;

const WG: u32 = 256u;
const D: u32 = {{HEAD_DIM}}u;
const LANES: u32 = {{LANES}}u;
const ROWS: u32 = WG / LANES;
const TILE: u32 = {{TILE}}u;
const D4: u32 = 2u * LANES;
const DP4: u32 = D4 + 1u;
// vec4 columns holding data (the rest of D4 is zero padding).
const DV4: u32 = (D + 3u) / 4u;
// Score of a key a query may not see; finite so that exp(MASKED - MASKED) stays 1 while nothing is seen.
const MASKED: f32 = -1.0e30;

var<workgroup> sh_q: array<vec4f, {{SIZE_Q}}>;
var<workgroup> sh_do: array<vec4f, {{SIZE_DO}}>;
var<workgroup> sh_k: array<vec4f, {{SIZE_K}}>;
var<workgroup> sh_v: array<vec4f, {{SIZE_V}}>;
var<workgroup> sh_p: array<f32, {{SIZE_P}}>;
var<workgroup> sh_ds: array<f32, {{SIZE_DS}}>;
var<workgroup> sh_row: array<f32, {{SIZE_ROW}}>;

@group(0) @binding(1) var<storage, read> q_in: array<f32>;
@group(0) @binding(2) var<storage, read> k_in: array<f32>;
@group(0) @binding(3) var<storage, read> v_in: array<f32>;
@group(0) @binding(4) var<storage, read> key_mask: array<i32>;
@group(0) @binding(5) var<storage, read> grad_out: array<f32>;

fn q_index(b: u32, t: u32, h: u32) -> u32 {
  return ((b * p.T + t) * p.Hq + h) * D;
}

fn kv_index(b: u32, s: u32, hk: u32) -> u32 {
  return ((b * p.kv_rows + s) * p.Hkv + hk) * D;
}

fn row_index(b: u32, h: u32, t: u32) -> u32 {
  return (b * p.Hq + h) * p.T + t;
}

// Element c of a row at `base` (clamped inside the row, zero past D).
fn col(c: u32) -> u32 {
  return min(c, D - 1u);
}

// Columns 4j..4j+3 of the row at `base` of each input, zero past D.
fn load_q4(base: u32, j: u32) -> vec4f {
  let c = 4u * j;
  return select(vec4f(0.0), vec4f(q_in[base + col(c)], q_in[base + col(c + 1u)], q_in[base + col(c + 2u)],
    q_in[base + col(c + 3u)]), vec4<bool>(c < D, c + 1u < D, c + 2u < D, c + 3u < D));
}

fn load_k4(base: u32, j: u32) -> vec4f {
  let c = 4u * j;
  return select(vec4f(0.0), vec4f(k_in[base + col(c)], k_in[base + col(c + 1u)], k_in[base + col(c + 2u)],
    k_in[base + col(c + 3u)]), vec4<bool>(c < D, c + 1u < D, c + 2u < D, c + 3u < D));
}

fn load_v4(base: u32, j: u32) -> vec4f {
  let c = 4u * j;
  return select(vec4f(0.0), vec4f(v_in[base + col(c)], v_in[base + col(c + 1u)], v_in[base + col(c + 2u)],
    v_in[base + col(c + 3u)]), vec4<bool>(c < D, c + 1u < D, c + 2u < D, c + 3u < D));
}

fn load_do4(base: u32, j: u32) -> vec4f {
  let c = 4u * j;
  return select(vec4f(0.0), vec4f(grad_out[base + col(c)], grad_out[base + col(c + 1u)],
    grad_out[base + col(c + 2u)], grad_out[base + col(c + 3u)]),
    vec4<bool>(c < D, c + 1u < D, c + 2u < D, c + 3u < D));
}

// Whether query t (t < T) of batch b attends to key s.
fn key_visible(b: u32, t: u32, s: u32) -> bool {
  if (s >= p.S) { return false; }
  if (p.causal != 0u && s + p.T > p.S + t) { return false; }
  if (p.has_mask != 0u && key_mask[b * p.mask_stride + s] == 0) { return false; }
  return true;
}

// Query position and head of packed row rho of kv head hk.
fn row_query(rho: u32) -> u32 {
  return rho / p.group;
}

fn row_head(hk: u32, rho: u32) -> u32 {
  return hk * p.group + rho % p.group;
}

// One past the last key any row of the query-row tile starting at r0 may see.
fn keys_end(r0: u32) -> u32 {
  if (p.causal == 0u) { return p.S; }
  let t_last = (min(r0 + ROWS, p.T * p.group) - 1u) / p.group;
  return min(p.S, p.S - p.T + t_last + 1u);
}

// Dot product of two workgroup rows over their data columns.
fn dot_qk(qa: u32, kb: u32) -> f32 {
  var sum = 0.0;
  for (var j = 0u; j < DV4; j++) { sum += dot(sh_q[qa + j], sh_k[kb + j]); }
  return sum;
}

fn dot_dov(da: u32, vb: u32) -> f32 {
  var sum = 0.0;
  for (var j = 0u; j < DV4; j++) { sum += dot(sh_do[da + j], sh_v[vb + j]); }
  return sum;
}

// ---- forward: one workgroup per (query-row tile x key split, kv head, batch) ----
// With splits > 1, split i writes its normalised partial output at offset i * n of fwd_out and its logsumexp
// (MASKED where it saw no key) at offset i * n / D of fwd_lse.
@group(0) @binding(5) var<storage, read_write> fwd_out: array<f32>;
@group(0) @binding(6) var<storage, read_write> fwd_lse: array<f32>;

@compute @workgroup_size(WG)
fn attn_fwd(@builtin(local_invocation_index) tid: u32, @builtin(workgroup_id) wid: vec3u) {
  let b = wid.z;
  let hk = wid.y;
  let split = wid.x % p.splits;
  let r0 = (wid.x / p.splits) * ROWS;
  let rows = p.T * p.group;
  let r = tid / LANES;
  let lane = tid % LANES;
  let rho = r0 + r;
  let t = row_query(rho);

  for (var i = tid; i < ROWS * D4; i += WG) {
    let row = i / D4;
    var x = vec4f(0.0);
    if (r0 + row < rows) { x = load_q4(q_index(b, row_query(r0 + row), row_head(hk, r0 + row)), i % D4); }
    sh_q[row * DP4 + i % D4] = x;
  }
  var m = MASKED;
  var l = 0.0;
  var acc_lo = vec4f(0.0);
  var acc_hi = vec4f(0.0);

  let k_begin = split * p.split_len;
  let kv_end = min(keys_end(r0), k_begin + p.split_len);
  for (var k0 = k_begin; k0 < kv_end; k0 += TILE) {
    for (var i = tid; i < TILE * D4; i += WG) {
      let row = i / D4;
      var x = vec4f(0.0);
      if (k0 + row < p.S) { x = load_k4(kv_index(b, k0 + row, hk), i % D4); }
      sh_k[row * DP4 + i % D4] = x;
    }
    workgroupBarrier();
    for (var c = lane; c < TILE; c += LANES) {
      var s = MASKED;
      if (rho < rows && key_visible(b, t, k0 + c)) { s = dot_qk(r * DP4, c * DP4) * p.scale; }
      sh_p[r * TILE + c] = s;
    }
    workgroupBarrier();
    // V reuses the K tile's memory (the scores are done with it).
    for (var i = tid; i < TILE * D4; i += WG) {
      let row = i / D4;
      var x = vec4f(0.0);
      if (k0 + row < p.S) { x = load_v4(kv_index(b, k0 + row, hk), i % D4); }
      sh_k[row * DP4 + i % D4] = x;
    }
    var m_new = m;
    for (var c = 0u; c < TILE; c++) { m_new = max(m_new, sh_p[r * TILE + c]); }
    workgroupBarrier();
    let rescale = exp(m - m_new);
    l *= rescale;
    acc_lo *= rescale;
    acc_hi *= rescale;
    m = m_new;
    for (var c = 0u; c < TILE; c++) {
      let s = sh_p[r * TILE + c];
      var pr = 0.0;
      if (s != MASKED) { pr = exp(s - m); }
      l += pr;
      acc_lo = fma(vec4f(pr), sh_k[c * DP4 + lane], acc_lo);
      acc_hi = fma(vec4f(pr), sh_k[c * DP4 + lane + LANES], acc_hi);
    }
    workgroupBarrier();
  }

  if (rho < rows) {
    let h = row_head(hk, rho);
    // A query that sees no key (all padding) outputs zeros.
    var inv = 0.0;
    if (l > 0.0) { inv = 1.0 / l; }
    let base = split * p.n + q_index(b, t, h);
    let lo = acc_lo * inv;
    let hi = acc_hi * inv;
    for (var e = 0u; e < 4u; e++) {
      if (4u * lane + e < D) { fwd_out[base + 4u * lane + e] = lo[e]; }
      if (4u * (lane + LANES) + e < D) { fwd_out[base + 4u * (lane + LANES) + e] = hi[e]; }
    }
    if (lane == 0u) {
      var lse = MASKED;
      if (l > 0.0) { lse = m + log(l); }
      fwd_lse[split * (p.n / D) + row_index(b, h, t)] = lse;
    }
  }
}

// ---- merge of key splits: out = sum_i w_i O_i / sum_i w_i with w_i = exp(lse_i - max lse), one thread per
// output element (p.n of them) ----
@group(0) @binding(1) var<storage, read> comb_parts: array<f32>;
@group(0) @binding(2) var<storage, read> comb_lse_parts: array<f32>;
@group(0) @binding(3) var<storage, read_write> comb_out: array<f32>;
@group(0) @binding(4) var<storage, read_write> comb_lse: array<f32>;

@compute @workgroup_size(WG)
fn attn_combine(@builtin(global_invocation_id) gid: vec3u, @builtin(num_workgroups) nwg: vec3u) {
  let i = gid.x + gid.y * nwg.x * WG;
  if (i >= p.n) { return; }
  // i enumerates [B, T, Hq, D] in the layout of O.
  let h = (i / D) % p.Hq;
  let t = (i / (D * p.Hq)) % p.T;
  let b = i / (D * p.Hq * p.T);
  let row = row_index(b, h, t);
  let rows = p.n / D;
  var top = MASKED;
  for (var k = 0u; k < p.splits; k++) { top = max(top, comb_lse_parts[k * rows + row]); }
  var weight_sum = 0.0;
  var value = 0.0;
  if (top != MASKED) {
    for (var k = 0u; k < p.splits; k++) {
      let lse = comb_lse_parts[k * rows + row];
      if (lse != MASKED) {
        let w = exp(lse - top);
        weight_sum += w;
        value = fma(w, comb_parts[k * p.n + i], value);
      }
    }
  }
  var lse_total = MASKED;
  if (weight_sum > 0.0) {
    value /= weight_sum;
    lse_total = top + log(weight_sum);
  }
  comb_out[i] = value;
  if (i % D == 0u) { comb_lse[row] = lse_total; }
}

// ---- backward, step 1: delta[b, h, t] = sum_d dO * O, one thread per query row ----
@group(0) @binding(1) var<storage, read> delta_o: array<f32>;
@group(0) @binding(2) var<storage, read> delta_do: array<f32>;
@group(0) @binding(3) var<storage, read_write> delta_out: array<f32>;

@compute @workgroup_size(WG)
fn attn_bwd_delta(@builtin(global_invocation_id) gid: vec3u, @builtin(num_workgroups) nwg: vec3u) {
  let i = gid.x + gid.y * nwg.x * WG;
  if (i >= p.n) { return; }
  // i enumerates [B, T, Hq] rows in the layout of O.
  let h = i % p.Hq;
  let t = (i / p.Hq) % p.T;
  let b = i / (p.Hq * p.T);
  var sum = 0.0;
  for (var d = 0u; d < D; d++) { sum = fma(delta_o[i * D + d], delta_do[i * D + d], sum); }
  delta_out[row_index(b, h, t)] = sum;
}

@group(0) @binding(6) var<storage, read> lse_in: array<f32>;
@group(0) @binding(7) var<storage, read> delta_in: array<f32>;

// ---- backward, step 2: dQ, one workgroup per (query-row tile, kv head, batch) ----
@group(0) @binding(8) var<storage, read_write> dq_out: array<f32>;

@compute @workgroup_size(WG)
fn attn_bwd_dq(@builtin(local_invocation_index) tid: u32, @builtin(workgroup_id) wid: vec3u) {
  let b = wid.z;
  let hk = wid.y;
  let r0 = wid.x * ROWS;
  let rows = p.T * p.group;
  let r = tid / LANES;
  let lane = tid % LANES;
  let rho = r0 + r;
  let t = row_query(rho);
  let h = row_head(hk, rho);

  for (var i = tid; i < ROWS * D4; i += WG) {
    let row = i / D4;
    var x = vec4f(0.0);
    var g = vec4f(0.0);
    if (r0 + row < rows) {
      let at = q_index(b, row_query(r0 + row), row_head(hk, r0 + row));
      x = load_q4(at, i % D4);
      g = load_do4(at, i % D4);
    }
    sh_q[row * DP4 + i % D4] = x;
    sh_do[row * DP4 + i % D4] = g;
  }
  var lse = 0.0;
  var delta = 0.0;
  if (rho < rows) {
    lse = lse_in[row_index(b, h, t)];
    delta = delta_in[row_index(b, h, t)];
  }
  var acc_lo = vec4f(0.0);
  var acc_hi = vec4f(0.0);

  let kv_end = keys_end(r0);
  for (var k0 = 0u; k0 < kv_end; k0 += TILE) {
    for (var i = tid; i < TILE * D4; i += WG) {
      let row = i / D4;
      var x = vec4f(0.0);
      var y = vec4f(0.0);
      if (k0 + row < p.S) {
        x = load_k4(kv_index(b, k0 + row, hk), i % D4);
        y = load_v4(kv_index(b, k0 + row, hk), i % D4);
      }
      sh_k[row * DP4 + i % D4] = x;
      sh_v[row * DP4 + i % D4] = y;
    }
    workgroupBarrier();
    for (var c = lane; c < TILE; c += LANES) {
      var ds = 0.0;
      if (rho < rows && key_visible(b, t, k0 + c)) {
        let pr = exp(dot_qk(r * DP4, c * DP4) * p.scale - lse);
        ds = pr * (dot_dov(r * DP4, c * DP4) - delta);
      }
      sh_ds[r * TILE + c] = ds;
    }
    workgroupBarrier();
    for (var c = 0u; c < TILE; c++) {
      let ds = sh_ds[r * TILE + c];
      acc_lo = fma(vec4f(ds), sh_k[c * DP4 + lane], acc_lo);
      acc_hi = fma(vec4f(ds), sh_k[c * DP4 + lane + LANES], acc_hi);
    }
    workgroupBarrier();
  }

  if (rho < rows) {
    let base = q_index(b, t, h);
    let lo = acc_lo * p.scale;
    let hi = acc_hi * p.scale;
    for (var e = 0u; e < 4u; e++) {
      if (4u * lane + e < D) { dq_out[base + 4u * lane + e] = lo[e]; }
      if (4u * (lane + LANES) + e < D) { dq_out[base + 4u * (lane + LANES) + e] = hi[e]; }
    }
  }
}

// ---- backward, step 3: dK and dV, one workgroup per (key tile, kv head, batch) ----
@group(0) @binding(8) var<storage, read_write> dk_out: array<f32>;
@group(0) @binding(9) var<storage, read_write> dv_out: array<f32>;

@compute @workgroup_size(WG)
fn attn_bwd_dkv(@builtin(local_invocation_index) tid: u32, @builtin(workgroup_id) wid: vec3u) {
  let b = wid.z;
  let hk = wid.y;
  let k0 = wid.x * ROWS;
  let j = tid / LANES;
  let lane = tid % LANES;
  let s = k0 + j;

  for (var i = tid; i < ROWS * D4; i += WG) {
    let row = i / D4;
    var x = vec4f(0.0);
    var y = vec4f(0.0);
    if (k0 + row < p.S) {
      x = load_k4(kv_index(b, k0 + row, hk), i % D4);
      y = load_v4(kv_index(b, k0 + row, hk), i % D4);
    }
    sh_k[row * DP4 + i % D4] = x;
    sh_v[row * DP4 + i % D4] = y;
  }
  var dk_lo = vec4f(0.0);
  var dk_hi = vec4f(0.0);
  var dv_lo = vec4f(0.0);
  var dv_hi = vec4f(0.0);
  // Causal: the first query that can see key k0 sits at position k0, i.e. t = k0 - (S - T).
  var t_start = 0u;
  if (p.causal != 0u && k0 + p.T > p.S) { t_start = k0 + p.T - p.S; }
  if (k0 >= p.S) { t_start = p.T; }

  for (var g = 0u; g < p.group; g++) {
    let h = hk * p.group + g;
    for (var q0 = t_start; q0 < p.T; q0 += TILE) {
      for (var i = tid; i < TILE * D4; i += WG) {
        let row = i / D4;
        var x = vec4f(0.0);
        var y = vec4f(0.0);
        if (q0 + row < p.T) {
          x = load_q4(q_index(b, q0 + row, h), i % D4);
          y = load_do4(q_index(b, q0 + row, h), i % D4);
        }
        sh_q[row * DP4 + i % D4] = x;
        sh_do[row * DP4 + i % D4] = y;
      }
      for (var i = tid; i < TILE; i += WG) {
        var lse = 0.0;
        var delta = 0.0;
        if (q0 + i < p.T) {
          lse = lse_in[row_index(b, h, q0 + i)];
          delta = delta_in[row_index(b, h, q0 + i)];
        }
        sh_row[i] = lse;
        sh_row[TILE + i] = delta;
      }
      workgroupBarrier();
      for (var c = lane; c < TILE; c += LANES) {
        var pr = 0.0;
        var ds = 0.0;
        if (q0 + c < p.T && key_visible(b, q0 + c, s)) {
          pr = exp(dot_qk(c * DP4, j * DP4) * p.scale - sh_row[c]);
          ds = pr * (dot_dov(c * DP4, j * DP4) - sh_row[TILE + c]);
        }
        sh_p[j * TILE + c] = pr;
        sh_ds[j * TILE + c] = ds;
      }
      workgroupBarrier();
      for (var c = 0u; c < TILE; c++) {
        let pr = vec4f(sh_p[j * TILE + c]);
        let ds = vec4f(sh_ds[j * TILE + c]);
        dv_lo = fma(pr, sh_do[c * DP4 + lane], dv_lo);
        dv_hi = fma(pr, sh_do[c * DP4 + lane + LANES], dv_hi);
        dk_lo = fma(ds, sh_q[c * DP4 + lane], dk_lo);
        dk_hi = fma(ds, sh_q[c * DP4 + lane + LANES], dk_hi);
      }
      workgroupBarrier();
    }
  }

  // Rows past the S keys (unused cache rows) get zero gradients.
  if (s < p.kv_rows) {
    let base = kv_index(b, s, hk);
    dk_lo *= p.scale;
    dk_hi *= p.scale;
    for (var e = 0u; e < 4u; e++) {
      if (4u * lane + e < D) {
        dk_out[base + 4u * lane + e] = dk_lo[e];
        dv_out[base + 4u * lane + e] = dv_lo[e];
      }
      if (4u * (lane + LANES) + e < D) {
        dk_out[base + 4u * (lane + LANES) + e] = dk_hi[e];
        dv_out[base + 4u * (lane + LANES) + e] = dv_hi[e];
      }
    }
  }
}

// ---- KV cache: copy new rows [B, T, Hkv, D] into rows length..length+T-1 of [B, kv_rows, Hkv, D] ----
@group(0) @binding(1) var<storage, read> append_k: array<f32>;
@group(0) @binding(2) var<storage, read> append_v: array<f32>;
@group(0) @binding(3) var<storage, read_write> cache_k: array<f32>;
@group(0) @binding(4) var<storage, read_write> cache_v: array<f32>;

@compute @workgroup_size(WG)
fn kv_append(@builtin(global_invocation_id) gid: vec3u, @builtin(num_workgroups) nwg: vec3u) {
  let i = gid.x + gid.y * nwg.x * WG;
  if (i >= p.n) { return; }
  let row = p.Hkv * D;
  let per_batch = p.T * row;
  let b = i / per_batch;
  let dst = (b * p.kv_rows + p.length) * row + i % per_batch;
  cache_k[dst] = append_k[i];
  cache_v[dst] = append_v[i];
}

// ---- decoding (one query per row): a workgroup per (key split, block of HEADS query heads, batch). HEADS is
// the kv head's whole group where that already fills the GPU (each key is read once for all of them), else one
// (the group's heads in parallel, each reading the keys again, from L2). Eight threads score one key against
// every head (the key read once, the heads' queries from workgroup memory), 32 threads per head reduce the
// softmax statistics, and DQ column threads × PARTS key slices accumulate P·V for every head at once. HEADS and
// SPAN (keys per split, at most WG) are text defines; the wrapper unrolls the heads into named scores and
// accumulators (arrays indexed in loops leave registers). With several splits attn_combine merges them as for
// the tiled forward. DECODE_STAGE either stages the queries as given, or first appends the new token's k and v
// to the cache (attentionWithAppend; with attentionWithRope, rotating its q and k on the way): the first head
// block of each kv head writes the cache row; a block that is the whole group reads it back after a storage
// barrier, while split groups' blocks read their own copy in workgroup memory, since another workgroup's
// writes are not visible within the dispatch (DECODE_KV). ----
const HEADS: u32 = {{HEADS}}u;
const SPAN: u32 = {{SPAN}}u;
const DQ: u32 = (D + 3u) / 4u;
// Key slices of the P·V step: WG threads as PARTS slices of DQ column threads.
const PARTS: u32 = WG / DQ;
// Threads sharing one key's dot products, and the keys a pass of the workgroup scores.
const KEY_THREADS: u32 = {{KEY_THREADS}}u;
const KEYS_PER_PASS: u32 = WG / KEY_THREADS;

// attn_decode with the cache append fused (DECODE_STAGE): the new token's q (q_in, as projected), k and v
// [B, 1, Hkv, D], and with RoPE fused its positions and RoPE's inverse frequencies; the cache is written in place.
@group(0) @binding(2) var<storage, read_write> fused_cache_k: array<f32>;
@group(0) @binding(3) var<storage, read_write> fused_cache_v: array<f32>;
@group(0) @binding(7) var<storage, read> new_k: array<f32>;
@group(0) @binding(8) var<storage, read> new_v: array<f32>;
@group(0) @binding(9) var<storage, read> positions: array<i32>;
@group(0) @binding(10) var<storage, read> inv_freq: array<f32>;

{{ROPE_FNS}}

{{DECODE_KV}}

@compute @workgroup_size(WG)
fn attn_decode(@builtin(local_invocation_index) tid: u32, @builtin(workgroup_id) wid: vec3u) {
  let b = wid.z;
  // The workgroup's first query head, and the kv head its block reads.
  let h0 = wid.y * HEADS;
  let hk = h0 / p.group;
  let split = wid.x;
  let k_begin = split * p.split_len;
  let keys = min(p.S, k_begin + p.split_len) - k_begin;
  // Scores: KEY_THREADS threads per key, each taking every KEY_THREADS-th column (the threads of a key read
  // consecutive vec4s, a pass's loads all in flight together), KEYS_PER_PASS keys a pass; the threads'
  // partial dot products meet in sh_ds [WG, HEADS]. Each pass's key rows are loaded during the pass before (the
  // first pass's while the queries are staged, unless the new key is appended first), so memory latency
  // overlaps the work instead of adding to it. (Subgroup reductions here measured slower than these trees in
  // decoding: 26.3 against 23.4 us a layer, run aj.)
  let key_lane = tid % KEY_THREADS;
{{DECODE_STAGE}}
  for (var c0 = 0u; c0 < keys; c0 += KEYS_PER_PASS) {
    let next_keys = kv_index(b, k_begin + min(c0 + KEYS_PER_PASS + tid / KEY_THREADS, keys - 1u), hk);
{{K_NEXT}}
{{SCORE_DECL}}
{{SCORE_UPDATE}}
{{K_ADVANCE}}
{{SCORE_STORE}}
    workgroupBarrier();
    if (tid < KEYS_PER_PASS * HEADS) {
      let key = tid / HEADS;
      let g = tid % HEADS;
      if (c0 + key < keys) {
        var score = 0.0;
        for (var t = 0u; t < KEY_THREADS; t++) { score += sh_ds[(key * KEY_THREADS + t) * HEADS + g]; }
        let s = k_begin + c0 + key;
        sh_p[g * SPAN + c0 + key] = select(MASKED, score * p.scale, key_visible(b, 0u, s));
      }
    }
    workgroupBarrier();
  }
  // P·V: thread (part, column j) sums keys part, part + PARTS, ... for every head, four keys a step (keys past
  // the split weigh zero). The first step's value rows are loaded before the softmax statistics, each next
  // step's during the step before.
  let part = tid / DQ;
  let j = tid % DQ;
  let last = keys - 1u;
  var v0 = decode_v4(kv_index(b, k_begin + min(part, last), hk), j);
  var v1 = decode_v4(kv_index(b, k_begin + min(part + PARTS, last), hk), j);
  var v2 = decode_v4(kv_index(b, k_begin + min(part + 2u * PARTS, last), hk), j);
  var v3 = decode_v4(kv_index(b, k_begin + min(part + 3u * PARTS, last), hk), j);
  // Softmax statistics: 32 threads per head, heads 8 at a time; sh_ds holds the tree, sh_row (max, sum) per head.
  let lane = tid % 32u;
  for (var g0 = 0u; g0 < HEADS; g0 += 8u) {
    let g = g0 + tid / 32u;
    var m = MASKED;
    if (g < HEADS) {
      for (var c = lane; c < keys; c += 32u) { m = max(m, sh_p[g * SPAN + c]); }
    }
    sh_ds[tid] = m;
    workgroupBarrier();
    for (var w = 16u; w > 0u; w >>= 1u) {
      if (lane < w) { sh_ds[tid] = max(sh_ds[tid], sh_ds[tid + w]); }
      workgroupBarrier();
    }
    m = sh_ds[tid - lane];
    var l = 0.0;
    if (g < HEADS) {
      for (var c = lane; c < keys; c += 32u) {
        let s = sh_p[g * SPAN + c];
        var e = 0.0;
        if (s != MASKED) { e = exp(s - m); }
        sh_p[g * SPAN + c] = e;
        l += e;
      }
    }
    workgroupBarrier();
    sh_ds[tid] = l;
    workgroupBarrier();
    for (var w = 16u; w > 0u; w >>= 1u) {
      if (lane < w) { sh_ds[tid] += sh_ds[tid + w]; }
      workgroupBarrier();
    }
    if (lane == 0u && g < HEADS) {
      sh_row[2u * g] = m;
      sh_row[2u * g + 1u] = sh_ds[tid];
    }
    workgroupBarrier();
  }
{{ACC_DECL}}
  if (part < PARTS) {
    for (var c0 = part; c0 < keys; c0 += 4u * PARTS) {
      let c1 = min(c0 + PARTS, last);
      let c2 = min(c0 + 2u * PARTS, last);
      let c3 = min(c0 + 3u * PARTS, last);
      let in1 = c0 + PARTS < keys;
      let in2 = c0 + 2u * PARTS < keys;
      let in3 = c0 + 3u * PARTS < keys;
      let n0 = c0 + 4u * PARTS;
      let w0 = decode_v4(kv_index(b, k_begin + min(n0, last), hk), j);
      let w1 = decode_v4(kv_index(b, k_begin + min(n0 + PARTS, last), hk), j);
      let w2 = decode_v4(kv_index(b, k_begin + min(n0 + 2u * PARTS, last), hk), j);
      let w3 = decode_v4(kv_index(b, k_begin + min(n0 + 3u * PARTS, last), hk), j);
{{ACC_UPDATE}}
      v0 = w0;
      v1 = w1;
      v2 = w2;
      v3 = w3;
    }
  }
  // The slices meet in workgroup memory (sh_k, [PARTS, DQ]), one head at a time.
{{HEAD_OUTPUTS}}
}

// Head g's output of a decode workgroup: its PARTS slices (in sh_k) summed and normalised, and its logsumexp.
fn decode_output(g: u32, tid: u32, b: u32, h0: u32, split: u32) {
  var o = vec4f(0.0);
  for (var q = 0u; q < PARTS; q++) { o += sh_k[q * DQ + tid]; }
  let l = sh_row[2u * g + 1u];
  // A query that sees no key (all padding) outputs zeros.
  var inv = 0.0;
  if (l > 0.0) { inv = 1.0 / l; }
  let h = h0 + g;
  let base = split * p.n + q_index(b, 0u, h);
  for (var e = 0u; e < 4u; e++) {
    if (4u * tid + e < D) { fwd_out[base + 4u * tid + e] = o[e] * inv; }
  }
  if (tid == 0u) {
    var lse = MASKED;
    if (l > 0.0) { lse = sh_row[2u * g] + log(l); }
    fwd_lse[split * (p.n / D) + row_index(b, h, 0u)] = lse;
  }
}
