/**
 * Scaled dot-product attention with autograd: grouped-query heads, causal masking with a query offset (decoding
 * against a cache), key padding masks, and a KV cache for generation. Forward and backward are flash-attention
 * style kernels: the [T x S] score matrix never exists in memory, and the backward is deterministic (no atomics).
 */
import { needsGrad, record } from "./autograd.ts";
import { checkQueryKey, invFreqBuffer } from "./rope.ts";
import { ROPE_FNS_WGSL } from "./rope_fns.ts";
import { type BindingKind, type BufferRange, type KernelSpec, Params, rt } from "./runtime.ts";
import { assertDType, empty, keep, shapeString, type Tensor } from "./tensor.ts";

const FILE = new URL("./attention.wgsl", import.meta.url);
const WG = 256;

export interface AttentionOptions {
  causal: boolean;
  /** Multiplies q·k; default 1/sqrt(D). */
  scale?: number;
  /** i32 [B, S'] with S' ≥ the key count: 1 = attend, 0 = padding. */
  keyMask?: Tensor | null;
  /**
   * Number of keys: attention reads the first kvLength rows of k/v's second dim. Default: the cache's length
   * when k is a KVCache's keys() buffer, else all rows. This lets a [B, maxLen, Hkv, D] cache buffer be used
   * without copying.
   */
  kvLength?: number;
}

type KernelName = "attn_fwd" | "attn_bwd_dq" | "attn_bwd_dkv";

/**
 * Tile geometry: LANES threads share a row and own two vec4 column groups each, so a 256-thread workgroup
 * owns ROWS = 256 / LANES rows (query rows in the forward and dQ, keys in dK/dV); TILE rows of the other
 * operand are staged per step.
 */
interface Tiles {
  LANES: number;
  TILE: number;
}

/** Steps of the other operand, largest first. */
const TILE_CHOICES = [64, 32, 16, 8];

/** Threads per row: a power of two covering D with 8 columns each, at least 4 (at most 64 rows). */
function lanesFor(headDim: number): number {
  let lanes = 4;
  while (lanes * 8 < headDim && lanes < 256) lanes *= 2;
  return lanes;
}

/** Workgroup arrays each kernel uses (vec4s for rows, f32 for scores); unused ones get one element. */
function sharedSizes(kernel: KernelName, { LANES, TILE }: Tiles): Record<string, number> {
  const rowVec4s = 2 * LANES + 1;
  const owned = (256 / LANES) * rowVec4s;
  const staged = TILE * rowVec4s;
  const scores = (256 / LANES) * TILE;
  switch (kernel) {
    case "attn_fwd":
      return {
        SIZE_Q: owned,
        SIZE_DO: 1,
        SIZE_K: staged,
        SIZE_V: 1,
        SIZE_P: scores,
        SIZE_DS: 1,
        SIZE_ROW: 1,
      };
    case "attn_bwd_dq":
      return {
        SIZE_Q: owned,
        SIZE_DO: owned,
        SIZE_K: staged,
        SIZE_V: staged,
        SIZE_P: 1,
        SIZE_DS: scores,
        SIZE_ROW: 1,
      };
    case "attn_bwd_dkv":
      return {
        SIZE_Q: staged,
        SIZE_DO: staged,
        SIZE_K: owned,
        SIZE_V: owned,
        SIZE_P: scores,
        SIZE_DS: scores,
        SIZE_ROW: 2 * TILE,
      };
  }
}

function sharedBytes(sizes: Record<string, number>): number {
  const { SIZE_P, SIZE_DS, SIZE_ROW, ...vec4s } = sizes;
  return 16 * Object.values(vec4s).reduce((a, b) => a + b, 0) + 4 * (SIZE_P + SIZE_DS + SIZE_ROW);
}

const tileCache = new Map<string, Tiles>();

/** The largest step whose workgroup arrays fit the device. */
function chooseTiles(kernel: KernelName, headDim: number): Tiles {
  const key = `${kernel}|${headDim}`;
  const cached = tileCache.get(key);
  if (cached) return cached;
  const limit = rt().gpu.device.limits.maxComputeWorkgroupStorageSize;
  const LANES = lanesFor(headDim);
  const TILE = TILE_CHOICES.find((TILE) => sharedBytes(sharedSizes(kernel, { LANES, TILE })) <= limit);
  if (TILE === undefined) {
    throw new RangeError(
      `attention: head dim ${headDim} needs more workgroup memory than this device's ${limit} bytes`,
    );
  }
  const tiles = { LANES, TILE };
  tileCache.set(key, tiles);
  return tiles;
}

function kernelSpec(
  entry: string,
  bindings: KernelSpec["bindings"],
  headDim: number,
  tiles: Tiles,
  sizes: Record<string, number>,
  decode: Decode = noDecode(headDim),
): KernelSpec {
  return { file: FILE, entry, bindings, defines: { HEAD_DIM: headDim, ...tiles, ...sizes, ...decode } };
}

/**
 * The decode kernel's defines: query heads per workgroup, keys per split, and its per-head code unrolled (see
 * decodeDefines); the other kernels leave them empty.
 */
interface Decode {
  HEADS: number;
  SPAN: number;
  KEY_THREADS: number;
  DECODE_STAGE: string;
  DECODE_KV: string;
  ROPE_FNS: string;
  K_NEXT: string;
  K_ADVANCE: string;
  SCORE_DECL: string;
  SCORE_UPDATE: string;
  SCORE_STORE: string;
  ACC_DECL: string;
  ACC_UPDATE: string;
  HEAD_OUTPUTS: string;
}

/** Threads of a decode workgroup that share one key's dot products (reading its row together). */
const DECODE_KEY_THREADS = 8;

/** attn_decode's queries staged as given (the first pass's key loads, above, already in flight). */
const PLAIN_STAGE =
  `  // sh_q: the block's queries [HEADS, DQ]; sh_p: scores, then probabilities [HEADS, SPAN].
  for (var i = tid; i < HEADS * DQ; i += WG) {
    let g = i / DQ;
    sh_q[i] = load_q4(q_index(b, 0u, h0 + g), i % DQ);
  }
  workgroupBarrier();`;

/**
 * The fused stages' last step: the kv head's first head block appends the new token's row from workgroup memory
 * to the cache, where later dispatches read it (see fusedKv for this one). It follows the stage's barrier, so
 * every load of the stage has been issued before any store.
 */
const APPEND_WRITE = `  if (has_new && h0 % p.group == 0u) {
    for (var c = tid; c < D; c += WG) {
      fused_cache_k[new_base + c] = sh_new_k[c];
      fused_cache_v[new_base + c] = sh_new_v[c];
    }
  }`;

/**
 * With the cache append fused (GPT-2: no rotation): a workgroup whose split holds the new token's row (S − 1)
 * keeps its k and v in workgroup memory (sh_new_k, sh_new_v) and the queries are staged as given. The results
 * are KVCache.append's, then attention's.
 */
const APPEND_STAGE = `  let new_row = p.S - 1u;
  let has_new = new_row >= k_begin && new_row - k_begin < keys;
  if (has_new) {
    new_base = kv_index(b, new_row, hk);
    let src = (b * p.Hkv + hk) * D;
    for (var c = tid; c < D; c += WG) {
      sh_new_k[c] = new_k[src + c];
      sh_new_v[c] = new_v[src + c];
    }
  }
${PLAIN_STAGE}
${APPEND_WRITE}`;

/**
 * With RoPE fused: the block's queries are rotated as they are staged, and a workgroup whose split holds the new
 * token's row (S − 1) rotates its k and keeps it with its v in workgroup memory. The rotation is rope.wgsl's, at
 * the same angle, so the results are ropeAppend's.
 */
const ROPE_STAGE = `  let angle_pos = f32(positions[p.pos_offset + b]);
  let half = D / 2u;
  // sh_q: the block's queries [HEADS, DQ], rotated; sh_p: scores, then probabilities [HEADS, SPAN].
  for (var i = tid; i < HEADS * half; i += WG) {
    let g = i / half;
    let c = i % half;
    let base = q_index(b, 0u, h0 + g);
    let r = rotate_pair(q_in[base + c], q_in[base + c + half], angle_pos * inv_freq[c]);
    sh_q[g * DQ + c / 4u][c % 4u] = r.x;
    sh_q[g * DQ + (c + half) / 4u][(c + half) % 4u] = r.y;
  }
  let new_row = p.S - 1u;
  let has_new = new_row >= k_begin && new_row - k_begin < keys;
  if (has_new) {
    new_base = kv_index(b, new_row, hk);
    let src = (b * p.Hkv + hk) * D;
    for (var c = tid; c < half; c += WG) {
      let r = rotate_pair(new_k[src + c], new_k[src + c + half], angle_pos * inv_freq[c]);
      sh_new_k[c] = r.x;
      sh_new_k[c + half] = r.y;
    }
    for (var c = tid; c < D; c += WG) { sh_new_v[c] = new_v[src + c]; }
  }
  workgroupBarrier();
${APPEND_WRITE}`;

/** attn_decode's key and value loads from the cache as bound (read only), zero past D. */
const PLAIN_KV = `fn decode_k4(base: u32, j: u32) -> vec4f { return load_k4(base, j); }
fn decode_v4(base: u32, j: u32) -> vec4f { return load_v4(base, j); }`;

/**
 * The fused kernels' decode_k4/decode_v4, from the cache bound for writing (D is a multiple of 4 there), zero
 * past D. A workgroup that takes the kv head's whole group of query heads is the one that appended the new row,
 * so it reads the row back from the cache after a storage barrier. Where a kv head's heads are spread over
 * several workgroups, the others cannot see that append within the dispatch: each reads the new row (at
 * new_base) from its own copy in workgroup memory, loading both and selecting one, so the cache loads never
 * wait on a branch (what is loaded from the row's place in the cache, being written, is discarded).
 */
function fusedKv(wholeGroup: boolean): string {
  const load = (name: "k" | "v") => {
    const cached = [0, 1, 2, 3].map((i) => `fused_cache_${name}[base + c + ${i}u]`).join(", ");
    const fresh = [0, 1, 2, 3].map((i) => `sh_new_${name}[c + ${i}u]`).join(", ");
    return `fn decode_${name}4(base: u32, j: u32) -> vec4f {
  let c = 4u * min(j, DQ - 1u);
  let cached = vec4f(${cached});
` + (wholeGroup
        ? `  return select(vec4f(0.0), cached, j < DQ);
}`
        : `  let fresh = vec4f(${fresh});
  return select(vec4f(0.0), select(cached, fresh, base == new_base), j < DQ);
}`);
  };
  return `var<workgroup> sh_new_k: array<f32, D>;
var<workgroup> sh_new_v: array<f32, D>;
// Where the new token's row starts in the cache, if this workgroup's split holds it.
var<private> new_base: u32 = 0xffffffffu;
${load("k")}
${load("v")}`;
}

/**
 * What attn_decode does besides attention: nothing, the new token's cache append (GPT-2), or RoPE's rotation of
 * its q and k with the append (Qwen2).
 */
export type DecodeFusion = "none" | "append" | "rope";

/**
 * attn_decode's per-head code for `queryHeads` heads a workgroup at `headDim`, unrolled into named variables;
 * `wholeGroup` when they are their kv head's whole group (see fusedKv).
 */
function decodeDefines(
  queryHeads: number,
  span: number,
  headDim: number,
  fusion: DecodeFusion,
  wholeGroup: boolean,
): Decode {
  const heads = Array.from({ length: queryHeads }, (_, g) => g);
  const lines = (f: (g: number) => string) => heads.map(f).join("\n");
  // A key thread's vec4s of a key row, unrolled into named registers k0, k1, ... (and nk0, ... for the next pass).
  const chunks = Array.from({ length: Math.ceil(Math.ceil(headDim / 4) / DECODE_KEY_THREADS) }, (_, i) => i);
  const column = (i: number) => `key_lane + ${i}u * KEY_THREADS`;
  return {
    HEADS: queryHeads,
    SPAN: span,
    KEY_THREADS: DECODE_KEY_THREADS,
    DECODE_STAGE: [
      ...(fusion === "rope" ? [ROPE_STAGE] : fusion === "append" ? [APPEND_STAGE] : []),
      ...(fusion !== "none" && wholeGroup ? ["  storageBarrier();"] : []),
      "  let first_keys = kv_index(b, k_begin + min(tid / KEY_THREADS, keys - 1u), hk);",
      ...chunks.map((i) => `  var k${i} = decode_k4(first_keys, ${column(i)});`),
      ...(fusion === "none" ? [PLAIN_STAGE] : []),
    ].join("\n"),
    DECODE_KV: fusion === "none" ? PLAIN_KV : fusedKv(wholeGroup),
    ROPE_FNS: fusion === "rope" ? ROPE_FNS_WGSL : "",
    K_NEXT: chunks.map((i) => `    let nk${i} = decode_k4(next_keys, ${column(i)});`).join("\n"),
    K_ADVANCE: chunks.map((i) => `    k${i} = nk${i};`).join("\n"),
    SCORE_DECL: lines((g) => `    var score${g} = 0.0;`),
    SCORE_UPDATE: chunks.map((i) =>
      `    if (${column(i)} < DQ) {\n` +
      lines((g) => `      score${g} += dot(sh_q[${g}u * DQ + ${column(i)}], k${i});`) + "\n    }"
    ).join("\n"),
    SCORE_STORE: lines((g) => `    sh_ds[tid * HEADS + ${g}u] = score${g};`),
    ACC_DECL: lines((g) => `  var acc${g} = vec4f(0.0);`),
    ACC_UPDATE: lines((g) =>
      `      acc${g} = fma(vec4f(sh_p[${g}u * SPAN + c0]), v0, acc${g});\n` +
      [1, 2, 3].map((i) =>
        `      acc${g} = fma(vec4f(select(0.0, sh_p[${g}u * SPAN + c${i}], in${i})), v${i}, acc${g});`
      ).join("\n")
    ),
    HEAD_OUTPUTS: lines((g) =>
      `  if (part < PARTS) { sh_k[part * DQ + j] = acc${g}; }\n  workgroupBarrier();\n` +
      `  if (tid < DQ) { decode_output(${g}u, tid, b, h0, split); }\n  workgroupBarrier();`
    ),
  };
}

const noDecodes = new Map<number, Decode>();

/** What the other kernels of the file fill attn_decode's placeholders with (it is compiled along with them). */
function noDecode(headDim: number): Decode {
  let decode = noDecodes.get(headDim);
  if (decode === undefined) noDecodes.set(headDim, decode = decodeDefines(1, 1, headDim, "none", true));
  return decode;
}

/** A tiled kernel's spec and its tiles; `rows` (owned rows per workgroup) is 256 / LANES. */
function tiledSpec(kernel: KernelName, bindings: KernelSpec["bindings"], headDim: number) {
  const tiles = chooseTiles(kernel, headDim);
  return {
    spec: kernelSpec(kernel, bindings, headDim, tiles, sharedSizes(kernel, tiles)),
    rows: 256 / tiles.LANES,
    step: tiles.TILE,
  };
}

const NO_SHARED = { SIZE_Q: 1, SIZE_DO: 1, SIZE_K: 1, SIZE_V: 1, SIZE_P: 1, SIZE_DS: 1, SIZE_ROW: 1 };

/** Specs of the one-thread-per-element kernels (no workgroup arrays in use, tiles irrelevant). */
function flatSpec(entry: string, bindings: KernelSpec["bindings"], headDim: number): KernelSpec {
  return kernelSpec(entry, bindings, headDim, { LANES: 4, TILE: 8 }, NO_SHARED);
}

interface Geometry {
  B: number;
  T: number;
  S: number;
  Hq: number;
  Hkv: number;
  D: number;
  kvRows: number;
  scale: number;
}

function validate(q: Tensor, k: Tensor, v: Tensor, opts: AttentionOptions): Geometry {
  const shapes = `q ${shapeString(q.shape)}, k ${shapeString(k.shape)}, v ${shapeString(v.shape)}`;
  if (q.ndim !== 4 || k.ndim !== 4 || v.ndim !== 4) {
    throw new RangeError(`attention: q, k, v must be [B, T, H, D]; got ${shapes}`);
  }
  if (k.shape.some((d, i) => d !== v.shape[i])) throw new RangeError(`attention: k and v differ: ${shapes}`);
  const [B, T, Hq, D] = q.shape;
  const [kb, kvRows, Hkv, kd] = k.shape;
  if (kb !== B || kd !== D) throw new RangeError(`attention: batch or head dim differ: ${shapes}`);
  if (Hkv === 0 || Hq % Hkv !== 0) {
    throw new RangeError(`attention: ${Hq} query heads are not a multiple of ${Hkv} kv heads: ${shapes}`);
  }
  const S = opts.kvLength ?? cacheOfKeys.get(k)?.length ?? kvRows;
  if (!Number.isInteger(S) || S < 0 || S > kvRows) {
    throw new RangeError(`attention: kvLength ${S} is outside 0..${kvRows} (${shapes})`);
  }
  if (opts.causal && T > S) {
    throw new RangeError(`attention: causal with ${T} queries but only ${S} keys (${shapes})`);
  }
  for (const [name, t] of [["q", q], ["k", k], ["v", v]] as const) assertDType(`attention ${name}`, t, "f32");
  const mask = opts.keyMask;
  if (mask) {
    assertDType("attention keyMask", mask, "i32");
    if (mask.ndim !== 2 || mask.shape[0] !== B || mask.shape[1] < S) {
      throw new RangeError(
        `attention: keyMask ${shapeString(mask.shape)} must be [${B}, ≥${S}] for ${shapes}`,
      );
    }
  }
  return { B, T, S, Hq, Hkv, D, kvRows, scale: opts.scale ?? 1 / Math.sqrt(D) };
}

/**
 * Attention over q [B, T, Hq, D], k/v [B, S, Hkv, D] (or the first kvLength rows of a longer buffer):
 * softmax(scale · q kᵀ) v per head, query head h reading kv head floor(h / (Hq / Hkv)). With `causal`, query
 * t sits at position S − T + t and sees keys up to it. Queries that see no key output zeros. Result
 * [B, T, Hq, D].
 */
export function attention(q: Tensor, k: Tensor, v: Tensor, opts: AttentionOptions): Tensor {
  const g = validate(q, k, v, opts);
  const mask = opts.keyMask ?? null;
  const causal = opts.causal;
  const out = empty(q.shape);
  const lse = empty([g.B, g.Hq, g.T]); // lse: [B, Hq, T]
  attentionForward(g, causal, q, k, v, mask, out, lse);
  if (needsGrad(q, k, v)) {
    const saved = mask ? [q, k, v, out, lse, mask] : [q, k, v, out, lse];
    record(out, [q, k, v], saved, (gradOut, [sq, sk, sv, so, slse, smask]) => {
      return attentionBackward(g, causal, sq, sk, sv, so, slse, smask ?? null, gradOut, [
        q.requiresGrad,
        k.requiresGrad || v.requiresGrad,
      ]);
    });
  }
  lse.dispose();
  return out;
}

/** The fused decode's kernel and what it binds besides attention's own buffers. */
interface FusedDecode {
  kernel: DecodeKernel;
  inputs: BufferRange[];
  posOffset: number;
}

/**
 * Decoding one token with RoPE and the cache append fused into attention (one dispatch where ropeAppend, then
 * attention, take two): q [B, 1, Hq, D], k and v [B, 1, Hkv, D] as projected, positions i32 [B, 1], theta the
 * RoPE base. Rotates q and k as rope() does, appends k and v to `cache` and returns attention over the cache
 * (causal; `keyMask` as for attention) [B, 1, Hq, D], equal to ropeAppend then attention. Null, with nothing
 * done, where the fused kernel does not apply (T > 1, D not a multiple of 4, gradients wanted, a device without
 * room for it): the caller takes those two ops.
 */
export function attentionWithRope(
  q: Tensor,
  k: Tensor,
  v: Tensor,
  positions: Tensor,
  theta: number,
  cache: KVCache,
  keyMask?: Tensor,
): Tensor | null {
  checkQueryKey("attentionWithRope", q, k, positions, theta);
  return fusedDecode(q, k, v, cache, keyMask, "rope", () => {
    const invFreq = invFreqBuffer(theta, q.shape[3]);
    return {
      inputs: [k.range, v.range, positions.wholeBuffer, { buffer: invFreq, offset: 0, size: invFreq.size }],
      posOffset: positions.offset,
    };
  });
}

/**
 * Decoding one token with the cache append fused into attention (GPT-2, no rotation: one dispatch where
 * KVCache.append, then attention, take two): q [B, 1, Hq, D], k and v [B, 1, Hkv, D]. Appends k and v to `cache`
 * and returns attention over the cache (causal; `keyMask` as for attention) [B, 1, Hq, D]. Null, with nothing
 * done, where the fused kernel does not apply (as attentionWithRope): the caller takes those two ops.
 */
export function attentionWithAppend(
  q: Tensor,
  k: Tensor,
  v: Tensor,
  cache: KVCache,
  keyMask?: Tensor,
): Tensor | null {
  return fusedDecode(q, k, v, cache, keyMask, "append", () => ({ inputs: [k.range, v.range], posOffset: 0 }));
}

/** The fused decode of one token, `fusion` done with attention; `extra` gives what it binds besides. */
function fusedDecode(
  q: Tensor,
  k: Tensor,
  v: Tensor,
  cache: KVCache,
  keyMask: Tensor | undefined,
  fusion: "append" | "rope",
  extra: () => Omit<FusedDecode, "kernel">,
): Tensor | null {
  const [batch, tokens, hq, headDim] = q.shape;
  if (tokens !== 1 || headDim % 4 !== 0 || needsGrad(q, k, v)) return null;
  cache.check(k, v);
  const g = validate(q, cache.keys(), cache.values(), { causal: true, keyMask, kvLength: cache.length + 1 });
  const kernel = decodeKernel(g, fusion);
  if (!kernel) return null;
  cache.claim(k, v);
  const out = empty(q.shape); // out: [B, 1, Hq, D]
  const lse = empty([batch, hq, 1]); // lse: [B, Hq, 1]
  attentionForward(g, true, q, cache.keys(), cache.values(), keyMask ?? null, out, lse, {
    kernel,
    ...extra(),
  });
  lse.dispose();
  return out;
}

/** Enough workgroups to fill a large GPU (an H100 has 132 SMs); fewer query tiles than this split the keys. */
const TARGET_WORKGROUPS = 264;
/** Key tiles a split covers at least, so splitting pays for its merge. */
const MIN_TILES_PER_SPLIT = 2;

/** Scores a decode workgroup keeps in workgroup memory at most (HEADS × SPAN of them). */
const DECODE_SCORES = 4096;

/** attn_decode's spec, the keys each of its splits takes and the query heads each workgroup takes. */
interface DecodeKernel {
  spec: KernelSpec;
  span: number;
  heads: number;
}

const decodeSpecs = new Map<string, DecodeKernel | null>();

/**
 * attn_decode for this geometry (with RoPE and the cache append fused, or not). A workgroup takes the kv head's
 * whole group of query heads (each key read once for all of them) where that gives TARGET_WORKGROUPS
 * workgroups, else one query head, so that decoding a few rows still spreads over the GPU (the group's
 * workgroups read the same keys, mostly from L2): the 7B's 28 heads at batch 1 take 28 workgroups, not 4. Null
 * when even one head's workgroup arrays or the bindings do not fit the device.
 */
function decodeKernel(g: Geometry, fusion: DecodeFusion): DecodeKernel | null {
  const group = g.Hq / g.Hkv;
  const whole = decodeKernelFor(g.D, group, true, fusion);
  if (group === 1 || (whole && Math.ceil(g.S / whole.span) * g.Hkv * g.B >= TARGET_WORKGROUPS)) return whole;
  return decodeKernelFor(g.D, 1, false, fusion);
}

/**
 * Query heads per workgroup of the decode kernel for one query over `keys` keys, as attention() and the fused
 * decodes choose them; null where the kernel does not fit the device (the tiled forward runs).
 */
export function decodeQueryHeads(
  batch: number,
  keys: number,
  queryHeads: number,
  kvHeads: number,
  headDim: number,
  fusion: DecodeFusion = "none",
): number | null {
  const g = { B: batch, T: 1, S: keys, Hq: queryHeads, Hkv: kvHeads, D: headDim, kvRows: keys, scale: 1 };
  return decodeKernel(g, fusion)?.heads ?? null;
}

/**
 * attn_decode with `heads` query heads a workgroup (`wholeGroup` when they are their kv head's whole group);
 * null when its arrays or bindings do not fit the device.
 */
function decodeKernelFor(
  headDim: number,
  heads: number,
  wholeGroup: boolean,
  fusion: DecodeFusion,
): DecodeKernel | null {
  const span = Math.min(WG, Math.floor(DECODE_SCORES / heads));
  const key = `${headDim}|${heads}|${wholeGroup}|${span}|${fusion}`;
  let kernel = decodeSpecs.get(key);
  if (kernel === undefined) {
    const sizes = {
      SIZE_Q: heads * Math.ceil(headDim / 4),
      SIZE_DO: 1,
      SIZE_K: WG,
      SIZE_V: 1,
      SIZE_P: heads * span,
      SIZE_DS: WG * heads,
      SIZE_ROW: 2 * heads,
    };
    const limits = rt().gpu.device.limits;
    // q, the cache's keys and values (written when the append is fused), the mask, out and lse; then the new
    // token's k and v (fused append), and its positions and RoPE's frequencies (fused RoPE).
    const cache: BindingKind = fusion === "none" ? "read" : "write";
    const bindings: BindingKind[] = [
      "read",
      cache,
      cache,
      "read",
      "write",
      "write",
      ...(fusion === "none" ? [] : ["read", "read"] as const),
      ...(fusion === "rope" ? ["read", "read"] as const : []),
    ];
    // The fused kernels keep the new token's k and v row in workgroup memory too (fusedKv).
    const newRow = fusion === "none" ? 0 : 2 * 4 * headDim;
    const fits = sharedBytes(sizes) + newRow <= limits.maxComputeWorkgroupStorageSize &&
      bindings.length <= limits.maxStorageBuffersPerShaderStage;
    const tiles = { LANES: 4, TILE: 8 };
    kernel = fits
      ? {
        spec: kernelSpec(
          "attn_decode",
          bindings,
          headDim,
          tiles,
          sizes,
          decodeDefines(heads, span, headDim, fusion, wholeGroup),
        ),
        span,
        heads,
      }
      : null;
    decodeSpecs.set(key, kernel);
  }
  return kernel;
}

/**
 * Writes out [B, T, Hq, D] and lse [B, Hq, T]. One query per row (decoding) takes attn_decode: a workgroup per
 * (split of at most SPAN keys, block of query heads, batch row). Otherwise attn_fwd,
 * splitting the keys among workgroups when the grid is small. Several splits are merged by attn_combine.
 */
function attentionForward(
  g: Geometry,
  causal: boolean,
  q: Tensor,
  k: Tensor,
  v: Tensor,
  mask: Tensor | null,
  out: Tensor,
  lse: Tensor,
  fused: FusedDecode | null = null,
): void {
  const inputs = [q.range, k.range, v.range, (mask ?? q).range];
  let spec: KernelSpec;
  let splits: number;
  let splitLen: number;
  let grid: (splits: number) => [number, number, number];
  const decode = fused ? fused.kernel : g.T === 1 ? decodeKernel(g, "none") : null;
  // The fused decode's inputs after its outputs: the new token's k and v (and its positions, RoPE's frequencies).
  const fusedInputs = fused ? fused.inputs : [];
  if (decode) {
    spec = decode.spec;
    splitLen = decode.span;
    splits = Math.max(1, Math.ceil(g.S / splitLen));
    const blocks = g.Hq / decode.heads;
    grid = (splits) => [splits, blocks, g.B];
  } else {
    const rows = g.T * (g.Hq / g.Hkv);
    const fwd = tiledSpec("attn_fwd", ["read", "read", "read", "read", "write", "write"], g.D);
    const queryTiles = Math.ceil(rows / fwd.rows);
    const keyTiles = Math.ceil(g.S / fwd.step);
    const wanted = Math.floor(TARGET_WORKGROUPS / Math.max(1, queryTiles * g.Hkv * g.B));
    splits = Math.max(1, Math.min(wanted, Math.floor(keyTiles / MIN_TILES_PER_SPLIT)));
    splitLen = Math.ceil(keyTiles / splits) * fwd.step;
    splits = Math.max(1, Math.ceil(g.S / splitLen));
    spec = fwd.spec;
    grid = (splits) => [queryTiles * splits, g.Hkv, g.B];
  }
  const n = out.size;
  const params = attnParams(g, mask, causal, n, 0, splits, splitLen, fused?.posOffset ?? 0);
  if (splits === 1) {
    rt().dispatch(spec, params, [...inputs, out.range, lse.range, ...fusedInputs], grid(1));
    return;
  }
  const parts = empty([splits, ...out.shape]); // parts: [splits, B, T, Hq, D], each normalised by its own sum
  const partLse = empty([splits, ...lse.shape]); // partLse: [splits, B, Hq, T]
  rt().dispatch(spec, params, [...inputs, parts.range, partLse.range, ...fusedInputs], grid(splits));
  rt().dispatch(
    flatSpec("attn_combine", ["read", "read", "write", "write"], g.D),
    params,
    [parts.range, partLse.range, out.range, lse.range],
    Math.ceil(n / WG),
  );
  parts.dispose();
  partLse.dispose();
}

function attnParams(
  g: Geometry,
  mask: Tensor | null,
  causal: boolean,
  n = 0,
  length = 0,
  splits = 1,
  splitLen = 0,
  posOffset = 0,
): Params {
  return new Params()
    .u32(
      g.T,
      g.S,
      g.Hq,
      g.Hkv,
      g.kvRows,
      g.Hq / g.Hkv,
      causal ? 1 : 0,
      mask ? 1 : 0,
      mask ? mask.shape[1] : 0,
    )
    .f32(g.scale)
    .u32(n, length, splits, splitLen, posOffset);
}

function attentionBackward(
  g: Geometry,
  causal: boolean,
  q: Tensor,
  k: Tensor,
  v: Tensor,
  out: Tensor,
  lse: Tensor,
  mask: Tensor | null,
  gradOut: Tensor,
  [wantQ, wantKV]: boolean[],
): (Tensor | null)[] {
  const delta = empty([g.B, g.Hq, g.T]); // delta: [B, Hq, T] = rowsum(dO ∘ O)
  const rows = g.B * g.T * g.Hq;
  rt().dispatch(
    flatSpec("attn_bwd_delta", ["read", "read", "write"], g.D),
    attnParams(g, mask, causal, rows),
    [out.range, gradOut.range, delta.range],
    Math.ceil(rows / WG),
  );
  const common = [q.range, k.range, v.range, (mask ?? q).range, gradOut.range, lse.range, delta.range];
  let dq: Tensor | null = null;
  let dk: Tensor | null = null;
  let dv: Tensor | null = null;
  if (wantQ) {
    dq = empty(q.shape); // dq: [B, T, Hq, D]
    const bwd = tiledSpec("attn_bwd_dq", [...READS_7, "write"], g.D);
    rt().dispatch(bwd.spec, attnParams(g, mask, causal), [...common, dq.range], [
      Math.ceil((g.T * (g.Hq / g.Hkv)) / bwd.rows),
      g.Hkv,
      g.B,
    ]);
  }
  if (wantKV) {
    dk = empty(k.shape); // dk, dv: [B, kvRows, Hkv, D]
    dv = empty(v.shape);
    const bwd = tiledSpec("attn_bwd_dkv", [...READS_7, "write", "write"], g.D);
    rt().dispatch(bwd.spec, attnParams(g, mask, causal), [...common, dk.range, dv.range], [
      Math.ceil(g.kvRows / bwd.rows),
      g.Hkv,
      g.B,
    ]);
  }
  delta.dispose();
  return [dq, dk, dv];
}

const READS_7: KernelSpec["bindings"] = ["read", "read", "read", "read", "read", "read", "read"];

/** The cache that owns a key buffer, so attention() reads only its filled rows by default. */
const cacheOfKeys = new WeakMap<Tensor, KVCache>();

/**
 * Keys and values of past positions for decoding, [B, maxLen, Hkv, D] each (tagged "kvcache").
 * attention(q, cache.keys(), cache.values(), ...) reads the first `length` rows (kvLength defaults to it);
 * rows past `length` are never read.
 */
export class KVCache {
  readonly batch: number;
  readonly maxLen: number;
  readonly kvHeads: number;
  readonly headDim: number;
  /** Positions written so far. */
  length = 0;
  private k: Tensor;
  private v: Tensor;

  constructor(batch: number, maxLen: number, kvHeads: number, headDim: number) {
    this.batch = batch;
    this.maxLen = maxLen;
    this.kvHeads = kvHeads;
    this.headDim = headDim;
    const shape = [batch, maxLen, kvHeads, headDim];
    this.k = keep(empty(shape, "f32", "kvcache"));
    this.v = keep(empty(shape, "f32", "kvcache"));
    cacheOfKeys.set(this.k, this);
  }

  /** Writes k, v [B, T, Hkv, D] at positions length..length+T−1 and advances length. */
  append(k: Tensor, v: Tensor): void {
    const start = this.claim(k, v);
    const T = k.shape[1];
    const g: Geometry = {
      B: this.batch,
      T,
      S: start + T,
      Hq: this.kvHeads,
      Hkv: this.kvHeads,
      D: this.headDim,
      kvRows: this.maxLen,
      scale: 1,
    };
    rt().dispatch(
      flatSpec("kv_append", ["read", "read", "write", "write"], this.headDim),
      attnParams(g, null, false, k.size, start),
      [k.range, v.range, this.k.range, this.v.range],
      Math.ceil(k.size / WG),
    );
  }

  /** Checks k, v [B, T, Hkv, D] against the cache and its room for their T positions. */
  check(k: Tensor, v: Tensor): void {
    const want = `[${this.batch}, T, ${this.kvHeads}, ${this.headDim}]`;
    for (const t of [k, v]) {
      if (
        t.ndim !== 4 || t.shape[0] !== this.batch || t.shape[2] !== this.kvHeads ||
        t.shape[3] !== this.headDim
      ) {
        throw new RangeError(`KVCache.append: got ${shapeString(t.shape)}, want ${want}`);
      }
      assertDType("KVCache.append", t, "f32");
    }
    if (k.shape[1] !== v.shape[1]) {
      throw new RangeError(`KVCache.append: k ${shapeString(k.shape)} and v ${shapeString(v.shape)} differ`);
    }
    const T = k.shape[1];
    if (this.length + T > this.maxLen) {
      throw new RangeError(
        `KVCache.append: ${T} more positions after ${this.length} exceed the cache's ${this.maxLen}`,
      );
    }
  }

  /**
   * Checks k, v [B, T, Hkv, D] against the cache, reserves their T positions and returns the first; the caller
   * writes them (append, rope.ts's ropeAppend, which rotates k on the way in, or attentionWithRope).
   */
  claim(k: Tensor, v: Tensor): number {
    this.check(k, v);
    const start = this.length;
    this.length += k.shape[1];
    return start;
  }

  /** The key buffer [B, maxLen, Hkv, D]; owned by the cache (do not dispose). */
  keys(): Tensor {
    return this.k;
  }

  /** The value buffer [B, maxLen, Hkv, D]; owned by the cache (do not dispose). */
  values(): Tensor {
    return this.v;
  }

  /** Forgets the cached positions (the buffers are reused). */
  reset(): void {
    this.length = 0;
  }

  dispose(): void {
    this.k.dispose();
    this.v.dispose();
  }
}
