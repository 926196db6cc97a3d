/**
 * `deno run -A bench/gemm_sweep.ts`: GPU time (timestamp queries) of the GEMM at several register-blocked tile
 * shapes, for choosing matmul.ts's tiles on a new GPU. Prints TFLOP/s per (shape, tile). --quick: one small
 * shape (a smoke test on the CPU driver); --nf4-m M: the Qwen2.5-7B products with NF4 weights at M rows (the
 * seed recipe's micro-batches have about 120), both orientations (x·Wᵀ forward, g·W input gradient); --shape I:
 * only the I-th shape (one process per shape gives steadier figures on the H200).
 */
import {
  type MatmulB,
  matmulInto,
  type PackedNf4Matrix,
  type Tile,
  TILE_CANDIDATES,
  tileFits,
} from "../compute/matmul.ts";
import { disposeNf4, quantizeNf4 } from "../compute/nf4.ts";
import { fillNormal } from "../compute/random.ts";
import { initRuntime } from "../compute/runtime.ts";
import { empty, keep } from "../compute/tensor.ts";
import { timeCalls } from "../compute/timing.ts";

const TILES: Tile[] = [
  ...TILE_CANDIDATES,
  { BM: 128, BN: 128, BK: 8, TM: 8, TN: 16 },
  { BM: 64, BN: 64, BK: 8, TM: 4, TN: 4 },
  { BM: 128, BN: 64, BK: 32, TM: 8, TN: 4 },
  { BM: 64, BN: 64, BK: 32, TM: 4, TN: 4 },
  { BM: 64, BN: 128, BK: 32, TM: 4, TN: 8 },
  // Products of 16 rows (evaluation's batched decoding): all rows in one tile, wider or deeper than SHORT.
  { BM: 16, BN: 128, BK: 16, TM: 4, TN: 8 },
  { BM: 16, BN: 64, BK: 32, TM: 4, TN: 4 },
  { BM: 16, BN: 128, BK: 32, TM: 4, TN: 8 },
  { BM: 16, BN: 128, BK: 16, TM: 8, TN: 4 },
  { BM: 16, BN: 256, BK: 16, TM: 16, TN: 4 },
  { BM: 16, BN: 128, BK: 16, TM: 16, TN: 4 },
];
const args = Deno.args;
const nf4M = args.includes("--nf4-m") ? Number(args[args.indexOf("--nf4-m") + 1]) : null;
const only = args.includes("--shape") ? Number(args[args.indexOf("--shape") + 1]) : null;

/** [m, n, k, transB, nf4] */
type Shape = [number, number, number, boolean, boolean];
const SHAPES: Shape[] = args.includes("--quick")
  ? [[256, 256, 256, true, false], [64, 256, 128, true, true]]
  : nf4M
  ? [
    [nf4M, 18944, 3584, true, true],
    [nf4M, 3584, 18944, true, true],
    [nf4M, 3584, 3584, true, true],
    [nf4M, 512, 3584, true, true],
    [nf4M, 3584, 18944, false, true],
    [nf4M, 18944, 3584, false, true],
    [nf4M, 3584, 3584, false, true],
    [nf4M, 3584, 512, false, true],
  ]
  : [
    [4096, 4096, 4096, false, false],
    [2048, 18944, 3584, true, false],
    [2048, 3584, 3584, true, false],
    [2048, 768, 768, true, false],
  ];

const rt = await initRuntime();
console.log(`adapter: ${rt.gpu.adapter.description}`);
for (const [m, n, k, transB, nf4] of only === null ? SHAPES : [SHAPES[only]]) {
  const a = fillNormal(keep(empty([m, k])), 1, 1);
  const dense = fillNormal(keep(empty(transB ? [n, k] : [k, n])), 2, 0.05);
  const q = nf4 ? await quantizeNf4(dense) : null;
  const b: MatmulB = q
    ? { kind: "nf4", shape: q.shape, packed: q.packed, absmax: q.absmax! } satisfies PackedNf4Matrix
    : dense;
  const c = keep(empty([m, n]));
  for (const tile of TILES) {
    if (!tileFits(tile)) continue;
    const run = () => matmulInto(c, a, b, { transB, tile });
    const ms = await timeCalls(rt, run, 3);
    console.log(
      `${m}x${n}x${k}${transB ? " Bt" : ""}${nf4 ? " nf4" : ""}  tile ${tile.BM}x${tile.BN}x${tile.BK} ` +
        `${tile.TM}x${tile.TN}: ${ms.toFixed(3)} ms ${(2 * m * n * k / ms / 1e9).toFixed(2)} TFLOP/s`,
    );
  }
  if (q) disposeNf4(q);
  for (const t of [a, dense, c]) t.dispose();
}
