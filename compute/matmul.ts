/**
 * Matrix multiplication with autograd: batched, either operand transposed, optional bias, B shared across the
 * batch when it has no batch dims (weights), B optionally f16 (frozen weights).
 */
import { needsGrad, record } from "./autograd.ts";
import { sumTo } from "./elementwise.ts";
import { GEMV_MAX_X_ROWS, gemvApplies, gemvRowsInto, type Nf4Scales } from "./gemv.ts";
import { NF4_LEVEL_WGSL } from "./nf4_level.ts";
import { type KernelSpec, Params, rt } from "./runtime.ts";
import { splitSumInto } from "./split_sum.ts";
import { assertDType, empty, shapeString, Tensor } from "./tensor.ts";

const FILE = new URL("./matmul.wgsl", import.meta.url);

export interface MatmulOptions {
  transA?: boolean;
  transB?: boolean;
  bias?: Tensor | null;
  /** Tuning override of the register-blocked tile (bench/gemm_sweep.ts); chosen by size otherwise. */
  tile?: Tile;
}

export interface Tile {
  BM: number;
  BN: number;
  BK: number;
  TM: number;
  TN: number;
}

/** Longest reduction one dispatch performs. */
const K_SPLIT = 16384;

/**
 * Layers of split-K for a product with `tiles` output tiles of `threads` threads each and reduction length k,
 * counting tiles in workgroups of 256 threads: none when the tiles alone fill the GPU (256 or more), else enough
 * for about 512 workgroups, at most 8 and at least 512 of k per layer, and never a layer longer than K_SPLIT.
 * (The 64-thread SHORT tiles of a 16-row product with Qwen's gate, 296 of them, each walked k alone.)
 */
function splitCount(tiles: number, threads: number, k: number): number {
  const full = (tiles * threads) / 256;
  if (full >= 256) return 1;
  const wanted = Math.min(8, Math.ceil(512 / full), Math.floor(k / 512));
  return Math.max(wanted, Math.ceil(k / K_SPLIT), 1);
}

// 8x8 outputs per thread for big products; 4x4 where fewer, smaller tiles keep the GPU's cores busy. The
// defaults follow what compute/matmul_tune.ts chose on an H200 with a warm clock
// (bench/results/h200-2026-11-28m-bench.txt): 128 x 128 tiles wherever 64 or more of them fill the output.
const LARGE: Tile = { BM: 128, BN: 128, BK: 16, TM: 8, TN: 8 };
/** NF4 B tiles cost a dequantisation per element; narrower ones won where 128 x 128 tiles need split-K. */
const LARGE_NF4: Tile = { BM: 128, BN: 64, BK: 16, TM: 8, TN: 4 };
/**
 * Deeper slices: a tuner candidate only. At 4096^3 on an H200 it ran at 34.4 TFLOP/s in two calls, against
 * 33.0 and then 40.2 for LARGE (bench/results/h200-2026-11-28{n,o}-sweeps.txt; BENCHMARKS.md, run o, says what
 * differed between the two kernels).
 */
const LARGE_K32: Tile = { BM: 128, BN: 128, BK: 32, TM: 8, TN: 8 };
const MEDIUM: Tile = { BM: 64, BN: 64, BK: 16, TM: 4, TN: 4 };
const SMALL: Tile = { BM: 32, BN: 32, BK: 16, TM: 4, TN: 4 };
/**
 * NF4 products of 16 rows or fewer, where taller tiles would compute mostly padding: the 7B at 16 rows decoded
 * 1.5x faster in it (540 against 359 tokens/s); f16 weights (rugpt3small) ran 11 % slower in it than in MEDIUM,
 * so they keep that (BENCHMARKS.md, run bl). Such products now take the multi-row GEMV (gemvRowsInto, run bv);
 * SHORT remains for those it cannot take (k not a multiple of 32) and where a tile is asked for.
 */
const SHORT: Tile = { BM: 16, BN: 64, BK: 16, TM: 4, TN: 4 };

/**
 * Tiles a tuner may choose among (every one computes bitwise the same sums: k is accumulated in order, unless a
 * product with few tiles splits its reduction, where the split count follows the tile).
 */
export const TILE_CANDIDATES: readonly Tile[] = [
  LARGE,
  { BM: 128, BN: 128, BK: 8, TM: 8, TN: 8 },
  LARGE_NF4,
  { BM: 64, BN: 128, BK: 16, TM: 4, TN: 8 },
  MEDIUM,
  SMALL,
  LARGE_K32,
  SHORT,
];

/** Threads of a tile's workgroup: one per TM x TN block of outputs. */
function tileThreads(tile: Tile): number {
  return (tile.BM / tile.TM) * (tile.BN / tile.TN);
}

/** Whether this GPU can run a tile: its threads per workgroup and its staged tiles within the device limits. */
export function tileFits(tile: Tile): boolean {
  const { limits } = rt().gpu.device;
  const threads = tileThreads(tile);
  const bytes = tile.BK * (tile.BM + tile.BN) * 4;
  return threads <= limits.maxComputeInvocationsPerWorkgroup &&
    bytes <= limits.maxComputeWorkgroupStorageSize;
}

/** Tiles measured best on this GPU (compute/matmul_tune.ts), by tileKey. */
const tunedTiles = new Map<string, Tile>();

/** The tuning key of a product: transposes, B storage, rows rounded up to a power of two, N and K. */
export function tileKey(
  m: number,
  n: number,
  k: number,
  transA: boolean,
  transB: boolean,
  storage: string,
): string {
  return `${transA ? "t" : "n"}${transB ? "t" : "n"}|${storage}|${
    2 ** Math.ceil(Math.log2(Math.max(m, 1)))
  }|${n}|${k}`;
}

export function setTunedTile(key: string, tile: Tile): void {
  tunedTiles.set(key, tile);
}

/**
 * Large tiles where 64 or more of them cover the output (a 2048 x 768 product ran as fast in 96 of them as in
 * 384 64 x 64 ones), and for outputs of more than 64 rows with a long reduction: split-K then fills the GPU with
 * layers of them (a micro-batch of ~120 tokens times a 7B weight ran 1.2-1.4x faster in 128-row tiles than in
 * 64 x 64 ones on an H200, bench/results/h200-2026-11-27h-split.txt). NF4 weights take 128 x 128 tiles only
 * when those fill the GPU without split-K (256 of them); otherwise the narrower NF4 tile, or the short one for 16
 * rows or fewer.
 */
function tileFor(m: number, n: number, k: number, key: string, storage: string): Tile {
  const tuned = tunedTiles.get(key);
  if (tuned) return tuned;
  if (m <= SHORT.BM && storage === "nf4") return SHORT;
  const largeTiles = Math.ceil(m / LARGE.BM) * Math.ceil(n / LARGE.BN);
  const longReduction = m > 64 && n >= 128 && k >= 2048;
  if (storage === "nf4") {
    if (largeTiles >= 256) return LARGE;
    if (m * n >= 128 * 128 * 128 || longReduction) return LARGE_NF4;
  } else if (largeTiles >= 64 || longReduction) {
    return LARGE;
  }
  return m * n >= 64 * 64 * 64 ? MEDIUM : SMALL;
}

/**
 * The unrolled register block: TM x (TN / 4) vec4 accumulators, the slice's multiply (k unrolled, see
 * matmul.wgsl) and their store.
 */
function registerBlock({ TM, TN, BK }: Tile) {
  const rows = Array.from({ length: TM }, (_, i) => i);
  const cols = Array.from({ length: TN / 4 }, (_, j) => j);
  const decl: string[] = [];
  const multiply: string[] = [];
  const store: string[] = [];
  for (let v = 0; v < TM / 4; v++) decl.push(`  let ia${v} = lid.y + ${v}u * WG_Y;`);
  for (const j of cols) decl.push(`  let ib${j} = lid.x + ${j}u * WG_X;`);
  for (let k = 0; k < BK; k++) {
    for (let v = 0; v < TM / 4; v++) multiply.push(`    let a${v}_${k} = tile_a[${k}u][ia${v}];`);
    for (const j of cols) multiply.push(`    let b${j}_${k} = tile_b[${k}u][ib${j}];`);
    for (const i of rows) {
      for (const j of cols) {
        multiply.push(
          `    acc_${i}_${j} = fma(vec4f(a${i >> 2}_${k}[${i & 3}]), b${j}_${k}, acc_${i}_${j});`,
        );
      }
    }
  }
  for (const i of rows) {
    for (const j of cols) {
      decl.push(`  var acc_${i}_${j} = vec4f(0.0);`);
      store.push(
        `  store_row(gm0 + ${i >> 2}u * WG_Y * 4u + ${
          i & 3
        }u, gn0 + ${j}u * WG_X * 4u, c_base, acc_${i}_${j});`,
      );
    }
  }
  return {
    ACC_DECL: decl.join("\n"),
    MULTIPLY: multiply.join("\n"),
    ACC_STORE: store.join("\n"),
  };
}

/** A frozen NF4 matrix as a GEMM operand: packed codes plus per-64 absmax (see nf4.ts). */
export interface PackedNf4Matrix {
  readonly kind: "nf4";
  readonly shape: readonly [number, number];
  readonly packed: Tensor;
  readonly absmax: Tensor;
}

export type MatmulB = Tensor | PackedNf4Matrix;

/**
 * WGSL declaring B and `load_b(index) -> f32` for each storage of the B operand, or `load_b4(index / 4) ->
 * vec4f` for the vec4-loaded storages (f32x4, and f16x4: four halves in one 8-byte load).
 */
const B_DECLS = {
  f32: `@group(0) @binding(2) var<storage, read> B: array<f32>;
fn load_b(i: u32) -> f32 { return B[i]; }`,
  f32x4: `@group(0) @binding(2) var<storage, read> B: array<vec4f>;
fn load_b4(i: u32) -> vec4f { return B[i]; }`,
  f16x4: `@group(0) @binding(2) var<storage, read> B: array<vec2<u32>>;
fn load_b4(i: u32) -> vec4f { let h = B[i]; return vec4f(unpack2x16float(h.x), unpack2x16float(h.y)); }`,
  f16: `@group(0) @binding(2) var<storage, read> B: array<f16>;
fn load_b(i: u32) -> f32 { return f32(B[i]); }`,
  nf4: `@group(0) @binding(2) var<storage, read> B: array<u32>;
@group(0) @binding(5) var<storage, read> B_absmax: array<f32>;
${NF4_LEVEL_WGSL}
fn load_b(i: u32) -> f32 {
  let shift = ((i / 2u) % 4u) * 8u + select(0u, 4u, (i % 2u) == 0u);
  return nf4_level((B[i / 8u] >> shift) & 15u) * B_absmax[i / 64u];
}`,
  nf4x8: `@group(0) @binding(2) var<storage, read> B: array<u32>;
@group(0) @binding(5) var<storage, read> B_absmax: array<f32>;
${NF4_LEVEL_WGSL}`,
};

function storageOf(b: MatmulB): "f32" | "f16" | "nf4" {
  if (!(b instanceof Tensor)) return "nf4";
  return b.dtype === "f16" ? "f16" : "f32";
}

/**
 * The tile-staging loop of one operand. `vec` loads vec4s along the operand's contiguous dimension (k when the
 * operand is [rows, K] in memory, the row dimension when it is [K, rows]); `contiguousK` says which layout.
 */
function loadTile(operand: "a" | "b", contiguousK: boolean, vec: boolean): string {
  const [tile, rows, limit, origin, base, read] = operand === "a"
    ? ["tile_a", "BM", "p.M", "row0", "a_base", (i: string) => `A[${i}]`]
    : ["tile_b", "BN", "p.N", "col0", "b_base", (i: string) => `load_b(${i})`];
  const stride = operand === "a" ? (contiguousK ? "p.K" : "p.M") : (contiguousK ? "p.K" : "p.N");
  const source = operand === "a" ? "load_a4" : "load_b4";
  if (!vec) {
    const split = contiguousK
      ? `let r = i / BK; let k = i % BK;`
      : `let k = i / ${rows}; let r = i % ${rows};`;
    const index = contiguousK ? `${base} + gr * ${stride} + gk` : `${base} + gk * ${stride} + gr`;
    return `    for (var i = tid; i < ${rows} * BK; i += THREADS) {
      ${split}
      let gr = ${origin} + r;
      let gk = k0 + k;
      var v = 0.0;
      if (gr < ${limit} && gk < k_end) { v = ${read(index)}; }
      ${tile}[k][r / 4u][r % 4u] = v;
    }`;
  }
  if (contiguousK) {
    return `    for (var i = tid; i < ${rows} * BK / 4u; i += THREADS) {
      let r = i / (BK / 4u);
      let k = (i % (BK / 4u)) * 4u;
      let gr = ${origin} + r;
      let gk = k0 + k;
      var v = vec4f(0.0);
      if (gr < ${limit} && gk < k_end) { v = ${source}((${base} + gr * ${stride} + gk) / 4u); }
      ${tile}[k][r / 4u][r % 4u] = v.x;
      ${tile}[k + 1u][r / 4u][r % 4u] = v.y;
      ${tile}[k + 2u][r / 4u][r % 4u] = v.z;
      ${tile}[k + 3u][r / 4u][r % 4u] = v.w;
    }`;
  }
  return `    for (var i = tid; i < ${rows} * BK / 4u; i += THREADS) {
      let k = i / (${rows} / 4u);
      let r = (i % (${rows} / 4u)) * 4u;
      let gr = ${origin} + r;
      let gk = k0 + k;
      var v = vec4f(0.0);
      if (gr < ${limit} && gk < k_end) { v = ${source}((${base} + gk * ${stride} + gr) / 4u); }
      ${tile}[k][r / 4u] = v;
    }`;
}

/**
 * Tile staging of an NF4 B operand one 32-bit word (8 codes, one absmax) at a time: each word is dequantised
 * once instead of once per element. Needs the contiguous dimension (K for a [N, K] weight, N for [K, N]) to be
 * a multiple of 8, so every word holds 8 elements of one row of the tile.
 */
function loadNf4Tile(contiguousK: boolean): string {
  const [split, index, stores] = contiguousK
    ? [
      "let r = i / (BK / 8u); let k = (i % (BK / 8u)) * 8u;",
      "b_base + gr * p.K + gk",
      [0, 1, 2, 3, 4, 5, 6, 7]
        .map((j) => `tile_b[k + ${j}u][r / 4u][r % 4u] = ${j < 4 ? "lo" : "hi"}[${j % 4}];`)
        .join("\n      "),
    ]
    : [
      "let k = i / (BN / 8u); let r = (i % (BN / 8u)) * 8u;",
      "b_base + gk * p.N + gr",
      "tile_b[k][r / 4u] = lo;\n      tile_b[k][r / 4u + 1u] = hi;",
    ];
  return `    for (var i = tid; i < BN * BK / 8u; i += THREADS) {
      ${split}
      let gr = col0 + r;
      let gk = k0 + k;
      var lo = vec4f(0.0);
      var hi = vec4f(0.0);
      if (gr < p.N && gk < k_end) {
        let e = ${index};
        let word = B[e / 8u];
        let s = B_absmax[e / 64u];
        lo = s * vec4f(nf4_level((word >> 4u) & 15u), nf4_level(word & 15u), nf4_level((word >> 12u) & 15u), nf4_level((word >> 8u) & 15u));
        hi = s * vec4f(nf4_level((word >> 20u) & 15u), nf4_level((word >> 16u) & 15u), nf4_level((word >> 28u) & 15u), nf4_level((word >> 24u) & 15u));
      }
      ${stores}
    }`;
}

interface OperandLayout {
  tile: string;
  rows: string;
  limit: string;
  origin: string;
  base: string;
  stride: string;
  source: string;
  contiguousK: boolean;
  /** vec4s each thread stages per slice. */
  perThread: number;
  name: string;
}

function operandLayout(operand: "a" | "b", contiguousK: boolean, tile: Tile): OperandLayout {
  const threads = tileThreads(tile);
  const rows = operand === "a" ? tile.BM : tile.BN;
  return {
    tile: operand === "a" ? "tile_a" : "tile_b",
    rows: operand === "a" ? "BM" : "BN",
    limit: operand === "a" ? "p.M" : "p.N",
    origin: operand === "a" ? "row0" : "col0",
    base: operand === "a" ? "a_base" : "b_base",
    stride: contiguousK ? "p.K" : operand === "a" ? "p.M" : "p.N",
    source: operand === "a" ? "load_a4" : "load_b4",
    contiguousK,
    perThread: (rows * tile.BK) / 4 / threads,
    name: operand === "a" ? "pa" : "pb",
  };
}

/** Row and k of the j-th vec4 a thread stages, and the guard and address of its global load. */
function stagedVec(o: OperandLayout, j: number, k0: string): string {
  const split = o.contiguousK
    ? `let r = i / (BK / 4u); let k = (i % (BK / 4u)) * 4u;`
    : `let k = i / (${o.rows} / 4u); let r = (i % (${o.rows} / 4u)) * 4u;`;
  const index = o.contiguousK ? `${o.base} + gr * ${o.stride} + gk` : `${o.base} + gk * ${o.stride} + gr`;
  return `let i = tid + ${j}u * THREADS; ${split} let gr = ${o.origin} + r; let gk = ${k0} + k;
      ${o.name}${j} = vec4f(0.0);
      if (gr < ${o.limit} && gk < k_end) { ${o.name}${j} = ${o.source}((${index}) / 4u); }`;
}

function storeStaged(o: OperandLayout, j: number): string {
  const split = o.contiguousK
    ? `let r = i / (BK / 4u); let k = (i % (BK / 4u)) * 4u;`
    : `let k = i / (${o.rows} / 4u); let r = (i % (${o.rows} / 4u)) * 4u;`;
  const v = `${o.name}${j}`;
  const store = o.contiguousK
    ? [0, 1, 2, 3].map((c) => `${o.tile}[k + ${c}u][r / 4u][r % 4u] = ${v}[${c}];`).join(" ")
    : `${o.tile}[k][r / 4u] = ${v};`;
  return `    { let i = tid + ${j}u * THREADS; ${split} ${store} }`;
}

/** Register-prefetching stage code for both operands, or null when a thread's share is not whole vec4s. */
function prefetch(tile: Tile, transA: boolean, transB: boolean) {
  const a = operandLayout("a", !transA, tile);
  const b = operandLayout("b", transB, tile);
  if (
    !Number.isInteger(a.perThread) || !Number.isInteger(b.perThread) || a.perThread < 1 || b.perThread < 1
  ) return null;
  const ops = [a, b];
  const decl = ops.flatMap((o) =>
    Array.from({ length: o.perThread }, (_, j) => `  var ${o.name}${j} = vec4f(0.0);`)
  );
  const loads = (k0: string) =>
    ops.flatMap((o) => Array.from({ length: o.perThread }, (_, j) => `    { ${stagedVec(o, j, k0)} }`)).join(
      "\n",
    );
  return {
    PREFETCH_FIRST: `${decl.join("\n")}\n${loads("k_begin")}`,
    PREFETCH_NEXT: `    if (k0 + BK < k_end) {\n${loads("k0 + BK")}\n    }`,
    LOAD_A: Array.from({ length: a.perThread }, (_, j) => storeStaged(a, j)).join("\n"),
    LOAD_B: Array.from({ length: b.perThread }, (_, j) => storeStaged(b, j)).join("\n"),
  };
}

const kernels = new Map<string, KernelSpec>();

/** The kernel spec of a variant, generated once (its unrolled WGSL is long) and kept for the pipeline cache. */
function kernel(
  tile: Tile,
  transA: boolean,
  transB: boolean,
  storage: keyof typeof B_DECLS,
  vecA: boolean,
): KernelSpec {
  const key = `${tile.BM},${tile.BN},${tile.BK},${tile.TM},${tile.TN}|${transA}|${transB}|${storage}|${vecA}`;
  const cached = kernels.get(key);
  if (cached) return cached;
  const vecB = storage === "f32x4" || storage === "f16x4";
  const spec: KernelSpec = {
    file: FILE,
    entry: "main",
    bindings: storage === "nf4" || storage === "nf4x8"
      ? ["read", "read", "read", "write", "read"]
      : ["read", "read", "read", "write"],
    defines: {
      BM: tile.BM,
      BN: tile.BN,
      BK: tile.BK,
      TM: tile.TM,
      TN: tile.TN,
      ...registerBlock(tile),
      A_DECL: vecA
        ? `@group(0) @binding(1) var<storage, read> A: array<vec4f>;\nfn load_a4(i: u32) -> vec4f { return A[i]; }`
        : `@group(0) @binding(1) var<storage, read> A: array<f32>;`,
      B_DECL: B_DECLS[storage],
      ...((vecA && vecB && prefetch(tile, transA, transB)) || {
        PREFETCH_FIRST: "",
        PREFETCH_NEXT: "",
        LOAD_A: loadTile("a", !transA, vecA),
        LOAD_B: storage === "nf4x8" ? loadNf4Tile(transB) : loadTile("b", transB, vecB),
      }),
    },
  };
  kernels.set(key, spec);
  return spec;
}

interface Plan {
  batchShape: number[];
  batch: number;
  m: number;
  n: number;
  k: number;
  aShared: boolean;
  bShared: boolean;
}

function plan(a: Tensor, b: MatmulB, transA: boolean, transB: boolean): Plan {
  if (a.ndim < 2 || b.shape.length < 2) {
    throw new RangeError(`matmul needs matrices, got ${shapeString(a.shape)} and ${shapeString(b.shape)}`);
  }
  const [ar, ac] = a.shape.slice(-2);
  const [br, bc] = b.shape.slice(-2);
  const m = transA ? ac : ar;
  const k = transA ? ar : ac;
  const kb = transB ? bc : br;
  const n = transB ? br : bc;
  const aBatch = a.shape.slice(0, -2);
  const bBatch = b.shape.slice(0, -2);
  const aShared = aBatch.length === 0 && bBatch.length > 0;
  const bShared = bBatch.length === 0;
  const batchShape = aShared ? bBatch : aBatch;
  const describe = () =>
    `matmul: ${shapeString(a.shape)}${transA ? "ᵀ" : ""} @ ${shapeString(b.shape)}${transB ? "ᵀ" : ""}`;
  if (k !== kb) throw new RangeError(`${describe()}: inner dimensions ${k} and ${kb} differ`);
  if (!aShared && !bShared && (bBatch.length !== aBatch.length || bBatch.some((d, i) => d !== aBatch[i]))) {
    throw new RangeError(`${describe()}: batch dimensions differ (they must match, or one operand has none)`);
  }
  return { batchShape, batch: batchShape.reduce((x, y) => x * y, 1), m, n, k, aShared, bShared };
}

/** Encodes C (+)= op(A) @ op(B) (+ bias) into `out` without recording gradients. */
export function matmulInto(
  out: Tensor,
  a: Tensor,
  b: MatmulB,
  { transA = false, transB = false, bias = null, tile: tileOverride }: MatmulOptions,
  accumulate = false,
): void {
  const { batch, m, n, k, aShared, bShared } = plan(a, b, transA, transB);
  assertDType("matmul A", a, "f32");
  const storage = storageOf(b);
  if (b instanceof Tensor) assertDType("matmul B", b, "f32", "f16");
  if (bias && (bias.ndim !== 1 || bias.shape[0] !== n)) {
    throw new RangeError(`matmul: bias ${shapeString(bias.shape)} does not match ${n} output columns`);
  }
  if (out.size !== batch * m * n) {
    throw new RangeError(`matmul: output ${shapeString(out.shape)} does not hold ${batch}x${m}x${n}`);
  }
  // Up to 16 rows times a weight (decoding, evaluation's batches): one pass over the weight, unless a tile is
  // asked for.
  if (
    m <= GEMV_MAX_X_ROWS && batch === 1 && transB && !transA && !tileOverride && gemvApplies(k, storage)
  ) {
    const weight = b instanceof Tensor ? b.range : b.packed.range;
    const scales: Nf4Scales | null = b instanceof Tensor ? null : { kind: "f32", absmax: b.absmax.range };
    gemvRowsInto(
      out.range,
      a.range,
      m,
      { weight, scales, bias: bias?.range ?? null, rows: n },
      storage,
      k,
      accumulate,
    );
    return;
  }
  const tile = tileOverride ?? tileFor(m, n, k, tileKey(m, n, k, transA, transB, storage), storage);
  // vec4 loads need the contiguous dimension to be a multiple of 4 (then every row starts 16-byte aligned).
  const vecA = (transA ? m : k) % 4 === 0;
  const vecB = storage !== "nf4" && (transB ? k : n) % 4 === 0;
  // NF4 weights dequantise a word (8 codes) at a time when the contiguous dimension allows.
  const nf4Words = storage === "nf4" && (transB ? k : n) % 8 === 0;
  const spec = kernel(tile, transA, transB, vecB ? `${storage}x4` : nf4Words ? "nf4x8" : storage, vecA);
  const weight = b instanceof Tensor ? b.range : b.packed.range;
  const extra = b instanceof Tensor ? [] : [b.absmax.range];
  const buffers = [a.range, weight, (bias ?? a).range, out.range, ...extra];
  const tiles = Math.ceil(n / tile.BN) * Math.ceil(m / tile.BM) * batch;
  const splits = batch === 1 ? splitCount(tiles, tileThreads(tile), k) : 1;
  if (splits > 1) {
    // Too few output tiles to fill the GPU (a micro-batch of a few hundred tokens times a weight): the
    // reduction is cut into layers of workgroups that run side by side, then summed.
    const chunk = Math.ceil(k / splits / tile.BK) * tile.BK;
    const layers = Math.ceil(k / chunk);
    const partial = empty([layers, m, n]); // partial: [S, M, N]
    rt().dispatch(
      spec,
      new Params().u32(m, n, k, 0, 0, 0, m * n, 0, 0, k, chunk),
      [a.range, weight, a.range, partial.range, ...extra],
      [Math.ceil(n / tile.BN), Math.ceil(m / tile.BM), layers],
    );
    splitSumInto(partial.range, layers, out.range, m, n, bias?.range ?? null, accumulate);
    partial.dispose();
    return;
  }
  // Reductions longer than K_SPLIT run as several dispatches accumulating into C: Mesa's CPU driver caps a
  // shader loop at 65535 iterations, and shorter dispatches also keep a GPU's watchdog quiet.
  for (let k0 = 0; k0 < Math.max(k, 1); k0 += K_SPLIT) {
    const first = k0 === 0;
    const params = new Params().u32(
      m,
      n,
      k,
      first && bias ? 1 : 0,
      aShared ? 0 : m * k,
      bShared ? 0 : k * n,
      m * n,
      accumulate || !first ? 1 : 0,
      k0,
      Math.min(k, k0 + K_SPLIT),
      0,
    );
    rt().dispatch(spec, params, buffers, [Math.ceil(n / tile.BN), Math.ceil(m / tile.BM), batch]);
  }
}

/**
 * op(A) @ op(B) (+ bias). A: [..., M, K] (or [..., K, M] with transA); B: [K, N] or [..., K, N] (or [N, K] /
 * [..., N, K] with transB). Result: [..., M, N].
 */
export function matmul(a: Tensor, b: Tensor, options: MatmulOptions = {}): Tensor {
  const { transA = false, transB = false, bias = null } = options;
  const { batchShape, m, n, aShared, bShared } = plan(a, b, transA, transB);
  const out = empty([...batchShape, m, n]);
  matmulInto(out, a, b, options);
  if (needsGrad(a, b, bias)) {
    record(out, bias ? [a, b, bias] : [a, b], [a, b], (g, [sa, sb]) => {
      let ga: Tensor | null = null;
      let gb: Tensor | null = null;
      if (a.requiresGrad) {
        ga = transA ? matmul(sb, g, { transA: transB, transB: true }) : matmul(g, sb, { transB: !transB });
        if (aShared) {
          const summed = sumTo(ga, ga.shape.slice(-2));
          ga.dispose();
          ga = summed;
        }
      }
      if (b.requiresGrad) {
        if (bShared && batchShape.length > 0) {
          // Shared B gets the gradient summed over the batch.
          if (transA) {
            // A is [..., K, M]: per-batch products, then summed over the batch.
            const perBatch = transB ? matmul(g, sa, { transA: true, transB: true }) : matmul(sa, g);
            gb = sumTo(perBatch, perBatch.shape.slice(-2));
          } else {
            const rows = batchShape.reduce((x, y) => x * y, 1) * m;
            const a2 = sa.reshape([rows, sa.shape.at(-1)!]);
            const g2 = g.reshape([rows, n]);
            gb = transB ? matmul(g2, a2, { transA: true }) : matmul(a2, g2, { transA: true });
          }
        } else {
          gb = transB ? matmul(g, sa, { transA: true, transB: transA }) : matmul(sa, g, { transA: !transA });
        }
      }
      const grads = [ga, gb];
      if (bias) grads.push(bias.requiresGrad ? sumTo(g, [n]) : null);
      return grads;
    });
  }
  return out;
}
