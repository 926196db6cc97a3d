// Attention kernels: flash-attention forward (online softmax over key tiles, per-query logsumexp saved for
// backward), its backward (delta = rowsum(dO * O), dQ over query tiles, dK/dV over key tiles looping over the
// queries and query heads of a kv head's group: deterministic, no atomics) and the KV-cache append copy.
// Layouts: q, o [B, T, Hq, D]; k, v [B, kv_rows, Hkv, D] of which the first S rows are keys; lse, delta
// [B, Hq, T]; key_mask i32 [B, mask_stride] (1 = attend). Query t sits at absolute position S - T + t.
// The forward and dQ kernels work per kv head: their query tiles run over the "rows" rho = t * group + g of
// the group's query heads, so one K/V tile serves every query head that reads it (and decoding, T = 1, still
// fills a tile). The forward may also split the keys among workgroups (flash-decoding) when too few query
// tiles exist to fill the GPU; attn_combine then merges the per-split outputs by their logsumexps.
// HEAD_DIM, the tile sizes BQ (query rows) / BK (keys) and the workgroup array sizes are text defines.

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
}

@group(0) @binding(0) var<uniform> p: Params;

const WG: u32 = 256u;
const D: u32 = {{HEAD_DIM}}u;
// Shared-memory rows are padded by one word so threads reading different rows at the same column hit
// different banks.
const DP: u32 = D + 1u;
const BQ: u32 = {{BQ}}u;
const BK: u32 = {{BK}}u;
// Threads sharing one query row (forward, dQ) or one key row (dK/dV); each owns every LANES-th column.
const Q_LANES: u32 = WG / BQ;
const K_LANES: u32 = WG / BK;
const DL_Q: u32 = (D + Q_LANES - 1u) / Q_LANES;
const DL_K: u32 = (D + K_LANES - 1u) / K_LANES;
// Score of a key a query may not see; finite so that exp(MASKED - MASKED) stays 1 while nothing is seen.
const MASKED: f32 = -1.0e30;

var<workgroup> sh_q: array<f32, {{SIZE_Q}}>;
var<workgroup> sh_do: array<f32, {{SIZE_DO}}>;
var<workgroup> sh_k: array<f32, {{SIZE_K}}>;
var<workgroup> sh_v: array<f32, {{SIZE_V}}>;
var<workgroup> sh_p: array<f32, {{SIZE_P}}>;
var<workgroup> sh_ds: array<f32, {{SIZE_DS}}>;
var<workgroup> sh_row: array<f32, {{SIZE_ROW}}>;

@group(0) @binding(1) var<storage, read> q_in: array<f32>;
@group(0) @binding(2) var<storage, read> k_in: array<f32>;
@group(0) @binding(3) var<storage, read> v_in: array<f32>;
@group(0) @binding(4) var<storage, read> key_mask: array<i32>;

fn q_index(b: u32, t: u32, h: u32) -> u32 {
  return ((b * p.T + t) * p.Hq + h) * D;
}

fn kv_index(b: u32, s: u32, hk: u32) -> u32 {
  return ((b * p.kv_rows + s) * p.Hkv + hk) * D;
}

fn row_index(b: u32, h: u32, t: u32) -> u32 {
  return (b * p.Hq + h) * p.T + t;
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

// One past the last key any row of the tile starting at row r0 may see.
fn keys_end(r0: u32) -> u32 {
  if (p.causal == 0u) { return p.S; }
  let t_last = (min(r0 + BQ, p.T * p.group) - 1u) / p.group;
  return min(p.S, p.S - p.T + t_last + 1u);
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
  let r0 = (wid.x / p.splits) * BQ;
  let rows = p.T * p.group;
  let r = tid / Q_LANES;
  let lane = tid % Q_LANES;
  let rho = r0 + r;
  let t = row_query(rho);

  for (var i = tid; i < BQ * D; i += WG) {
    let row = i / D;
    var x = 0.0;
    if (r0 + row < rows) { x = q_in[q_index(b, row_query(r0 + row), row_head(hk, r0 + row)) + i % D]; }
    sh_q[row * DP + i % D] = x;
  }
  var m = MASKED;
  var l = 0.0;
  var acc: array<f32, DL_Q>;
  for (var i = 0u; i < DL_Q; i++) { acc[i] = 0.0; }

  let k_begin = split * p.split_len;
  let kv_end = min(keys_end(r0), k_begin + p.split_len);
  for (var k0 = k_begin; k0 < kv_end; k0 += BK) {
    for (var i = tid; i < BK * D; i += WG) {
      let row = i / D;
      var x = 0.0;
      if (k0 + row < p.S) { x = k_in[kv_index(b, k0 + row, hk) + i % D]; }
      sh_k[row * DP + i % D] = x;
    }
    workgroupBarrier();
    for (var c = lane; c < BK; c += Q_LANES) {
      var s = MASKED;
      if (rho < rows && key_visible(b, t, k0 + c)) {
        var dot = 0.0;
        for (var d = 0u; d < D; d++) { dot = fma(sh_q[r * DP + d], sh_k[c * DP + d], dot); }
        s = dot * p.scale;
      }
      sh_p[r * BK + c] = s;
    }
    workgroupBarrier();
    // V reuses the K tile's memory (the scores are done with it).
    for (var i = tid; i < BK * D; i += WG) {
      let row = i / D;
      var x = 0.0;
      if (k0 + row < p.S) { x = v_in[kv_index(b, k0 + row, hk) + i % D]; }
      sh_k[row * DP + i % D] = x;
    }
    var m_new = m;
    for (var c = 0u; c < BK; c++) { m_new = max(m_new, sh_p[r * BK + c]); }
    workgroupBarrier();
    let rescale = exp(m - m_new);
    l *= rescale;
    for (var i = 0u; i < DL_Q; i++) { acc[i] *= rescale; }
    m = m_new;
    for (var c = 0u; c < BK; c++) {
      let s = sh_p[r * BK + c];
      var pr = 0.0;
      if (s != MASKED) { pr = exp(s - m); }
      l += pr;
      for (var i = 0u; i < DL_Q; i++) {
        let d = lane + i * Q_LANES;
        if (d < D) { acc[i] = fma(pr, sh_k[c * DP + d], acc[i]); }
      }
    }
    workgroupBarrier();
  }

  if (rho < rows) {
    let h = row_head(hk, rho);
    // A query that sees no key (all padding) outputs zeros.
    var inv = 0.0;
    if (l > 0.0) { inv = 1.0 / l; }
    let base = split * p.n + q_index(b, t, h);
    for (var i = 0u; i < DL_Q; i++) {
      let d = lane + i * Q_LANES;
      if (d < D) { fwd_out[base + d] = acc[i] * inv; }
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

@group(0) @binding(5) var<storage, read> grad_out: array<f32>;
@group(0) @binding(6) var<storage, read> lse_in: array<f32>;
@group(0) @binding(7) var<storage, read> delta_in: array<f32>;

// ---- backward, step 2: dQ, one workgroup per (query-row tile, kv head, batch) ----
@group(0) @binding(8) var<storage, read_write> dq_out: array<f32>;

@compute @workgroup_size(WG)
fn attn_bwd_dq(@builtin(local_invocation_index) tid: u32, @builtin(workgroup_id) wid: vec3u) {
  let b = wid.z;
  let hk = wid.y;
  let r0 = wid.x * BQ;
  let rows = p.T * p.group;
  let r = tid / Q_LANES;
  let lane = tid % Q_LANES;
  let rho = r0 + r;
  let t = row_query(rho);
  let h = row_head(hk, rho);

  for (var i = tid; i < BQ * D; i += WG) {
    let row = i / D;
    var x = 0.0;
    var g = 0.0;
    if (r0 + row < rows) {
      let at = q_index(b, row_query(r0 + row), row_head(hk, r0 + row)) + i % D;
      x = q_in[at];
      g = grad_out[at];
    }
    sh_q[row * DP + i % D] = x;
    sh_do[row * DP + i % D] = g;
  }
  var lse = 0.0;
  var delta = 0.0;
  if (rho < rows) {
    lse = lse_in[row_index(b, h, t)];
    delta = delta_in[row_index(b, h, t)];
  }
  var acc: array<f32, DL_Q>;
  for (var i = 0u; i < DL_Q; i++) { acc[i] = 0.0; }

  let kv_end = keys_end(r0);
  for (var k0 = 0u; k0 < kv_end; k0 += BK) {
    for (var i = tid; i < BK * D; i += WG) {
      let row = i / D;
      var x = 0.0;
      var y = 0.0;
      if (k0 + row < p.S) {
        x = k_in[kv_index(b, k0 + row, hk) + i % D];
        y = v_in[kv_index(b, k0 + row, hk) + i % D];
      }
      sh_k[row * DP + i % D] = x;
      sh_v[row * DP + i % D] = y;
    }
    workgroupBarrier();
    for (var c = lane; c < BK; c += Q_LANES) {
      var ds = 0.0;
      if (rho < rows && key_visible(b, t, k0 + c)) {
        var dot = 0.0;
        var dp = 0.0;
        for (var d = 0u; d < D; d++) {
          dot = fma(sh_q[r * DP + d], sh_k[c * DP + d], dot);
          dp = fma(sh_do[r * DP + d], sh_v[c * DP + d], dp);
        }
        ds = exp(dot * p.scale - lse) * (dp - delta);
      }
      sh_ds[r * BK + c] = ds;
    }
    workgroupBarrier();
    for (var c = 0u; c < BK; c++) {
      let ds = sh_ds[r * BK + c];
      for (var i = 0u; i < DL_Q; i++) {
        let d = lane + i * Q_LANES;
        if (d < D) { acc[i] = fma(ds, sh_k[c * DP + d], acc[i]); }
      }
    }
    workgroupBarrier();
  }

  if (rho < rows) {
    let base = q_index(b, t, h);
    for (var i = 0u; i < DL_Q; i++) {
      let d = lane + i * Q_LANES;
      if (d < D) { dq_out[base + d] = acc[i] * p.scale; }
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
  let k0 = wid.x * BK;
  let j = tid / K_LANES;
  let lane = tid % K_LANES;
  let s = k0 + j;

  for (var i = tid; i < BK * D; i += WG) {
    let row = i / D;
    var x = 0.0;
    var y = 0.0;
    if (k0 + row < p.S) {
      x = k_in[kv_index(b, k0 + row, hk) + i % D];
      y = v_in[kv_index(b, k0 + row, hk) + i % D];
    }
    sh_k[row * DP + i % D] = x;
    sh_v[row * DP + i % D] = y;
  }
  var dk: array<f32, DL_K>;
  var dv: array<f32, DL_K>;
  for (var i = 0u; i < DL_K; i++) {
    dk[i] = 0.0;
    dv[i] = 0.0;
  }
  // Causal: the first query that can see key k0 sits at position k0, i.e. t = k0 - (S - T).
  var t_start = 0u;
  if (p.causal != 0u && k0 + p.T > p.S) { t_start = k0 + p.T - p.S; }
  if (k0 >= p.S) { t_start = p.T; }

  for (var g = 0u; g < p.group; g++) {
    let h = hk * p.group + g;
    for (var q0 = t_start; q0 < p.T; q0 += BQ) {
      for (var i = tid; i < BQ * D; i += WG) {
        let row = i / D;
        let tq = q0 + row;
        var x = 0.0;
        var y = 0.0;
        if (tq < p.T) {
          x = q_in[q_index(b, tq, h) + i % D];
          y = grad_out[q_index(b, tq, h) + i % D];
        }
        sh_q[row * DP + i % D] = x;
        sh_do[row * DP + i % D] = y;
      }
      for (var i = tid; i < BQ; i += WG) {
        var lse = 0.0;
        var delta = 0.0;
        if (q0 + i < p.T) {
          lse = lse_in[row_index(b, h, q0 + i)];
          delta = delta_in[row_index(b, h, q0 + i)];
        }
        sh_row[i] = lse;
        sh_row[BQ + i] = delta;
      }
      workgroupBarrier();
      for (var c = lane; c < BQ; c += K_LANES) {
        var pr = 0.0;
        var ds = 0.0;
        if (q0 + c < p.T && key_visible(b, q0 + c, s)) {
          var dot = 0.0;
          var dp = 0.0;
          for (var d = 0u; d < D; d++) {
            dot = fma(sh_k[j * DP + d], sh_q[c * DP + d], dot);
            dp = fma(sh_v[j * DP + d], sh_do[c * DP + d], dp);
          }
          pr = exp(dot * p.scale - sh_row[c]);
          ds = pr * (dp - sh_row[BQ + c]);
        }
        sh_p[j * BQ + c] = pr;
        sh_ds[j * BQ + c] = ds;
      }
      workgroupBarrier();
      for (var c = 0u; c < BQ; c++) {
        let pr = sh_p[j * BQ + c];
        let ds = sh_ds[j * BQ + c];
        for (var i = 0u; i < DL_K; i++) {
          let d = lane + i * K_LANES;
          if (d < D) {
            dv[i] = fma(pr, sh_do[c * DP + d], dv[i]);
            dk[i] = fma(ds, sh_q[c * DP + d], dk[i]);
          }
        }
      }
      workgroupBarrier();
    }
  }

  // Rows past the S keys (unused cache rows) get zero gradients.
  if (s < p.kv_rows) {
    let base = kv_index(b, s, hk);
    for (var i = 0u; i < DL_K; i++) {
      let d = lane + i * K_LANES;
      if (d < D) {
        dk_out[base + d] = dk[i] * p.scale;
        dv_out[base + d] = dv[i];
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
