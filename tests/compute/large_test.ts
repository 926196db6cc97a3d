/**
 * The kernels at model-like sizes (many workgroups, partial tiles, long reductions, real head widths and a
 * real vocabulary). Slow on a CPU driver, so they run only with OSTROTA_LARGE_TESTS=1 — on the GPU machine.
 */
import { attention } from "../../compute/attention.ts";
import { linearCrossEntropy } from "../../compute/loss.ts";
import { matmul } from "../../compute/matmul.ts";
import { rmsNorm } from "../../compute/norm.ts";
import { tensor } from "../../compute/tensor.ts";
import { checkOp, gpuTest, randn } from "./harness.ts";

const enabled = Deno.env.get("OSTROTA_LARGE_TESTS") === "1";

function largeTest(name: string, fn: () => Promise<void>): void {
  if (enabled) gpuTest(`large: ${name}`, fn);
  else Deno.test({ name: `large: ${name} [IGNORED: set OSTROTA_LARGE_TESTS=1 on a GPU]`, ignore: true, fn });
}

largeTest("matmul 517x1030x777 with bias, x @ Wᵀ (the linear layers' form)", async () => {
  const [m, n, k] = [517, 1030, 777];
  await checkOp(
    "matmul large",
    [{ data: randn(m * k, 1), shape: [m, k] }, { data: randn(n * k, 2), shape: [n, k] }, {
      data: randn(n, 3),
      shape: [n],
    }],
    (a, b, bias) => matmul(a, b, { transB: true, bias }),
    (a, b, bias) => {
      const out = new Float64Array(m * n);
      for (let i = 0; i < m; i++) {
        for (let j = 0; j < n; j++) {
          let s = bias[j];
          for (let p = 0; p < k; p++) s += a[i * k + p] * b[j * k + p];
          out[i * n + j] = s;
        }
      }
      return out;
    },
    { forward: 1e-5, grad: 1e-4, fdSamples: 12 },
  );
});

largeTest("causal GQA attention B=2 T=150 Hq=8 Hkv=2 D=64", async () => {
  const [b, t, hq, hkv, d] = [2, 150, 8, 2, 64];
  const ref = (q: Float64Array, k: Float64Array, v: Float64Array) => {
    const out = new Float64Array(b * t * hq * d);
    const scale = 1 / Math.sqrt(d);
    for (let z = 0; z < b; z++) {
      for (let h = 0; h < hq; h++) {
        const g = Math.floor(h / (hq / hkv));
        for (let i = 0; i < t; i++) {
          const scores: number[] = [];
          for (let j = 0; j <= i; j++) {
            let s = 0;
            for (let c = 0; c < d; c++) {
              s += q[((z * t + i) * hq + h) * d + c] * k[((z * t + j) * hkv + g) * d + c];
            }
            scores.push(s * scale);
          }
          const max = Math.max(...scores);
          const w = scores.map((s) => Math.exp(s - max));
          const total = w.reduce((x, y) => x + y, 0);
          for (let c = 0; c < d; c++) {
            let acc = 0;
            for (let j = 0; j <= i; j++) acc += w[j] * v[((z * t + j) * hkv + g) * d + c];
            out[((z * t + i) * hq + h) * d + c] = acc / total;
          }
        }
      }
    }
    return out;
  };
  await checkOp(
    "attention large",
    [
      { data: randn(b * t * hq * d, 4), shape: [b, t, hq, d] },
      { data: randn(b * t * hkv * d, 5), shape: [b, t, hkv, d] },
      { data: randn(b * t * hkv * d, 6), shape: [b, t, hkv, d] },
    ],
    (q, k, v) => attention(q, k, v, { causal: true }),
    ref,
    { forward: 1e-5, grad: 1e-4, fdSamples: 8 },
  );
});

largeTest("rmsNorm over 3584-wide rows", async () => {
  const [rows, c] = [37, 3584];
  await checkOp(
    "rmsNorm large",
    [{ data: randn(rows * c, 7), shape: [rows, c] }, { data: randn(c, 8), shape: [c] }],
    (x, w) => rmsNorm(x, w, 1e-6),
    (x, w) => {
      const out = new Float64Array(rows * c);
      for (let r = 0; r < rows; r++) {
        let ss = 0;
        for (let i = 0; i < c; i++) ss += x[r * c + i] ** 2;
        const inv = 1 / Math.sqrt(ss / c + 1e-6);
        for (let i = 0; i < c; i++) out[r * c + i] = x[r * c + i] * inv * w[i];
      }
      return out;
    },
    { forward: 1e-5, grad: 1e-4, fdSamples: 24 },
  );
});

largeTest("linear cross-entropy over a 50257-token vocabulary in chunks", async () => {
  const [n, c, v] = [64, 48, 50257];
  const targets = Array.from({ length: n }, (_, i) => (i % 7 === 3 ? -100 : (i * 7919) % v));
  await checkOp(
    "linearCrossEntropy large",
    [
      { data: randn(n * c, 9), shape: [n, c] },
      { data: randn(v * c, 10, 0.3), shape: [v, c] },
    ],
    (h, w) => linearCrossEntropy(h, w, tensor(Int32Array.from(targets), [n], "i32"), { chunk: 8192 }),
    (h, w) => {
      let total = 0, count = 0;
      for (let i = 0; i < n; i++) {
        if (targets[i] === -100) continue;
        let max = -Infinity;
        const logits = new Float64Array(v);
        for (let j = 0; j < v; j++) {
          let s = 0;
          for (let p = 0; p < c; p++) s += h[i * c + p] * w[j * c + p];
          logits[j] = s;
          max = Math.max(max, s);
        }
        let se = 0;
        for (let j = 0; j < v; j++) se += Math.exp(logits[j] - max);
        total += Math.log(se) + max - logits[targets[i]];
        count++;
      }
      return Float64Array.of(total / count);
    },
    { forward: 1e-5, grad: 1e-4, fdSamples: 4 },
  );
});
