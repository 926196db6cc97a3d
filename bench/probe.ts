/** Quick probe of GEMM and attention throughput on the current kernels (ad hoc; the real suite is bench.ts). */
import { initRuntime } from "../compute/runtime.ts";
import { matmulInto } from "../compute/matmul.ts";
import { empty, keep } from "../compute/tensor.ts";
import { fill } from "../compute/elementwise.ts";

const rt = await initRuntime();
console.log("adapter:", rt.gpu.adapter.description, rt.gpu.adapter.isFallback ? "(fallback)" : "");
for (const [m, n, k] of [[4096, 4096, 4096], [2048, 3584, 3584], [2048, 18944, 3584], [2048, 3584, 18944]]) {
  const a = keep(fill(empty([m, k]), 0.5));
  const b = keep(fill(empty([n, k]), 0.25));
  const c = keep(empty([m, n]));
  for (const transB of [false, true]) {
    const bb = transB ? b : b.reshape([k, n]);
    matmulInto(c, a, bb, { transB });
    await rt.sync();
    const reps = 5;
    const t0 = performance.now();
    for (let i = 0; i < reps; i++) matmulInto(c, a, bb, { transB });
    await rt.sync();
    const ms = (performance.now() - t0) / reps;
    console.log(
      `gemm ${m}x${n}x${k} transB=${transB}: ${ms.toFixed(2)} ms, ${
        (2 * m * n * k / ms / 1e9).toFixed(2)
      } TFLOP/s`,
    );
  }
  for (const t of [a, b, c]) t.dispose();
}
