/**
 * `deno run -A bench/gemm_sweep.ts`: GPU time (timestamp queries) of the f32 GEMM at several register-blocked
 * tile shapes, for choosing matmul.ts's tiles on a new GPU. Prints TFLOP/s per (shape, tile); --quick: one
 * small shape (a smoke test on the CPU driver).
 */
import { matmulInto, type Tile } from "../compute/matmul.ts";
import { fillNormal } from "../compute/random.ts";
import { initRuntime } from "../compute/runtime.ts";
import { empty, keep } from "../compute/tensor.ts";

const TILES: Tile[] = [
  { BM: 128, BN: 128, BK: 8, TM: 8, TN: 8 },
  { BM: 128, BN: 128, BK: 16, TM: 8, TN: 8 },
  { BM: 128, BN: 64, BK: 16, TM: 8, TN: 4 },
  { BM: 64, BN: 128, BK: 16, TM: 4, TN: 8 },
  { BM: 64, BN: 64, BK: 16, TM: 4, TN: 4 },
  { BM: 64, BN: 64, BK: 8, TM: 4, TN: 4 },
  { BM: 128, BN: 128, BK: 8, TM: 8, TN: 16 },
];
const SHAPES: [number, number, number, boolean][] = Deno.args.includes("--quick")
  ? [[256, 256, 256, true]]
  : [
    [4096, 4096, 4096, false],
    [2048, 18944, 3584, true],
    [2048, 3584, 3584, true],
    [2048, 768, 768, true],
  ];

const rt = await initRuntime();
console.log(`adapter: ${rt.gpu.adapter.description}`);
for (const [m, n, k, transB] of SHAPES) {
  const a = fillNormal(keep(empty([m, k])), 1, 1);
  const b = fillNormal(keep(empty(transB ? [n, k] : [k, n])), 2, 1);
  const c = keep(empty([m, n]));
  for (const tile of TILES) {
    const threads = (tile.BM / tile.TM) * (tile.BN / tile.TN);
    if (threads > rt.gpu.device.limits.maxComputeInvocationsPerWorkgroup) continue;
    const run = () => matmulInto(c, a, b, { transB, tile });
    run();
    await rt.sync();
    const samples: number[] = [];
    for (let r = 0; r < 3; r++) {
      const ms = await rt.gpuTime(() => {
        for (let i = 0; i < 3; i++) run();
      });
      samples.push((ms ?? NaN) / 3);
    }
    const ms = samples.sort((x, y) => x - y)[1];
    console.log(
      `${m}x${n}x${k}${transB ? " Bt" : ""}  tile ${tile.BM}x${tile.BN}x${tile.BK} ${tile.TM}x${tile.TN}: ` +
        `${ms.toFixed(3)} ms ${(2 * m * n * k / ms / 1e9).toFixed(2)} TFLOP/s`,
    );
  }
  for (const t of [a, b, c]) t.dispose();
}
