import {
  matmul,
  type MatmulB,
  matmulInto,
  type PackedNf4Matrix,
  TILE_CANDIDATES,
} from "../../compute/matmul.ts";
import { dequantizeNf4, disposeNf4, quantizeNf4 } from "../../compute/nf4.ts";
import { empty, keep, Tensor, tensor, tidy } from "../../compute/tensor.ts";
import { f16ToF32, f32ToF16 } from "../../lib/checkpoint/mod.ts";
import assert from "node:assert/strict";
import { assertClose, checkOp, gpuTest, randn, runtime, unpoisoned } from "./harness.ts";

/** float64 reference: C[b] = op(A[b]) @ op(B[b or shared]) + bias. */
function matmulRef(
  a: Float64Array,
  b: Float64Array,
  bias: Float64Array | null,
  batch: number,
  m: number,
  n: number,
  k: number,
  transA: boolean,
  transB: boolean,
  bShared: boolean,
): Float64Array {
  const out = new Float64Array(batch * m * n);
  for (let z = 0; z < batch; z++) {
    const ao = z * m * k;
    const bo = bShared ? 0 : z * k * n;
    for (let i = 0; i < m; i++) {
      for (let j = 0; j < n; j++) {
        let s = bias ? bias[j] : 0;
        for (let p = 0; p < k; p++) {
          const av = transA ? a[ao + p * m + i] : a[ao + i * k + p];
          const bv = transB ? b[bo + j * k + p] : b[bo + p * n + j];
          s += av * bv;
        }
        out[z * m * n + i * n + j] = s;
      }
    }
  }
  return out;
}

const TOL = { forward: 1e-5, grad: 1e-5 };

for (const transA of [false, true]) {
  for (const transB of [false, true]) {
    gpuTest(`matmul: transA=${transA} transB=${transB}, batched and shared B, with bias`, async () => {
      for (
        const [batch, m, n, k, bShared, withBias] of [
          [1, 37, 29, 53, true, true],
          [3, 17, 70, 33, false, false],
          [2, 65, 9, 40, true, false],
          [2, 5, 3, 6, true, true],
          [1, 130, 131, 19, true, true],
          [2, 64, 36, 44, false, true],
          [1, 132, 68, 20, true, false],
        ] as const
      ) {
        const aShape = batch === 1 ? (transA ? [k, m] : [m, k]) : [batch, ...(transA ? [k, m] : [m, k])];
        const bMat = transB ? [n, k] : [k, n];
        const bShape = bShared ? bMat : [batch, ...bMat];
        const inputs = [
          { data: randn(batch * m * k, 1 + m), shape: aShape },
          { data: randn((bShared ? 1 : batch) * k * n, 2 + n), shape: bShape },
        ];
        if (withBias) inputs.push({ data: randn(n, 3), shape: [n] });
        await checkOp(
          `matmul b${batch} ${m}x${n}x${k}`,
          inputs,
          (a, b, bias) => matmul(a, b, { transA, transB, bias }),
          (a, b, bias) => matmulRef(a, b, bias ?? null, batch, m, n, k, transA, transB, bShared),
          TOL,
        );
      }
    });
  }
}

gpuTest("matmul: a reduction longer than one dispatch's split (K = 70001) stays exact", async () => {
  const [m, n, k] = [3, 5, 70001];
  const a = randn(m * k, 31);
  const b = randn(k * n, 32);
  const want = matmulRef(a, b, null, 1, m, n, k, false, false, true);
  const out = keep(
    tidy(() => matmul(tensor(Float32Array.from(a), [m, k]), tensor(Float32Array.from(b), [k, n]))),
  );
  assertClose("long-K matmul", await out.toArray(), want, 1e-5);
  out.dispose();
});

gpuTest("matmul: the 128x128 register-blocked tile (1500 x 1450 output, edges partial)", async () => {
  const [m, n, k] = [1500, 1452, 8];
  await checkOp(
    "matmul large tile",
    [{ data: randn(m * k, 41), shape: [m, k] }, { data: randn(n * k, 42), shape: [n, k] }, {
      data: randn(n, 43),
      shape: [n],
    }],
    (a, b, bias) => matmul(a, b, { transB: true, bias }),
    (a, b, bias) => matmulRef(a, b, bias, 1, m, n, k, false, true, true),
    { forward: 1e-5, grad: 1e-5, fdSamples: 6 },
  );
});

gpuTest(
  "matmul: the decode GEMV (one row times Wᵀ) for f32 and f16 weights, with bias and accumulation",
  async () => {
    for (const [n, k] of [[37, 24], [300, 1032], [5, 4096]]) {
      const x = randn(k, n + 1);
      const w = randn(n * k, n + 2);
      const bias = randn(n, n + 3);
      for (const dtype of ["f32", "f16"] as const) {
        const wq = dtype === "f16" ? Float64Array.from(w, (v) => f16Round(v)) : w;
        const want = matmulRef(x, wq, bias, 1, 1, n, k, false, true, true);
        const out = keep(tidy(() => {
          const weight = dtype === "f16"
            ? tensor(f32ToF16(Float32Array.from(w)), [n, k], "f16")
            : tensor(Float32Array.from(w), [n, k]);
          return matmul(tensor(Float32Array.from(x), [1, k]), weight, {
            transB: true,
            bias: tensor(Float32Array.from(bias), [n]),
          });
        }));
        assertClose(`gemv ${dtype} ${n}x${k}`, await out.toArray(), want, 1e-5);
        out.dispose();
      }
    }
  },
);

gpuTest(
  "matmul: f16 B (frozen weights) through the vec4 loads with and without prefetch and the scalar loads",
  async () => {
    // [m, n, k, transB]: both operands vec4-loaded (prefetch), only B (k odd: A scalar), neither (n, k odd).
    for (
      const [m, n, k, transB] of [
        [70, 36, 44, true],
        [70, 36, 44, false],
        [33, 20, 17, false],
        [33, 21, 19, true],
      ] as const
    ) {
      const a = randn(m * k, m + 5);
      const w = randn(n * k, m + 6);
      const wq = Float64Array.from(w, (v) => f16Round(v));
      const want = matmulRef(a, wq, null, 1, m, n, k, false, transB, true);
      for (const tile of TILE_CANDIDATES) {
        const out = keep(tidy(() =>
          matmul(
            tensor(Float32Array.from(a), [m, k]),
            tensor(f32ToF16(Float32Array.from(w)), transB ? [n, k] : [k, n], "f16"),
            { transB, tile },
          )
        ));
        assertClose(
          `f16 B ${m}x${n}x${k} transB=${transB} tile ${JSON.stringify(tile)}`,
          await out.toArray(),
          want,
          1e-5,
        );
        out.dispose();
      }
    }
  },
);

/** f32 -> nearest f16 value (as a number). */
function f16Round(v: number): number {
  return f16ToF32(f32ToF16(Float32Array.of(v)))[0];
}

gpuTest(
  "matmul: the 64x64 tile with register prefetch, every transpose (520 x 516 output, K = 12)",
  async () => {
    const [m, n, k] = [520, 516, 12];
    for (const transA of [false, true]) {
      for (const transB of [false, true]) {
        await checkOp(
          `matmul medium tile transA=${transA} transB=${transB}`,
          [
            { data: randn(m * k, 51), shape: transA ? [k, m] : [m, k] },
            { data: randn(n * k, 52), shape: transB ? [n, k] : [k, n] },
          ],
          (a, b) => matmul(a, b, { transA, transB }),
          (a, b) => matmulRef(a, b, null, 1, m, n, k, transA, transB, true),
          { forward: 1e-5, grad: 1e-5, fdSamples: 4 },
        );
      }
    }
  },
);

gpuTest(
  "matmul: every tuning candidate tile gives bitwise the same result (k accumulates in order)",
  async () => {
    for (const [m, n, k, transB] of [[100, 72, 36, true], [37, 29, 53, false]] as const) {
      const a = randn(m * k, 61);
      const b = randn(n * k, 62);
      const want = matmulRef(a, b, null, 1, m, n, k, false, transB, true);
      let first: number[] | null = null;
      for (const tile of TILE_CANDIDATES) {
        const out = keep(tidy(() =>
          matmul(
            tensor(Float32Array.from(a), [m, k]),
            tensor(Float32Array.from(b), transB ? [n, k] : [k, n]),
            { transB, tile },
          )
        ));
        const got = await out.toArray();
        out.dispose();
        assertClose(`tile ${JSON.stringify(tile)}`, got, want, 1e-5);
        if (
          first && got.some((v, i) => v !== first![i])
        ) throw new Error(`tile ${JSON.stringify(tile)} differs bitwise`);
        first ??= got;
      }
    }
  },
);

gpuTest(
  "matmul: NF4 B through every tuning candidate tile, both layouts, matches the dequantised weight",
  async () => {
    const [m, n, k] = [70, 40, 96];
    const w = keep(tensor(Float32Array.from(randn(n * k, 71)), [n, k]));
    const q = await quantizeNf4(w);
    const deq = dequantizeNf4(q);
    const wd = Float64Array.from(await deq.read());
    deq.dispose();
    const a = randn(m * k, 72);
    const packed: PackedNf4Matrix = { kind: "nf4", shape: [n, k], packed: q.packed, absmax: q.absmax! };
    for (const tile of TILE_CANDIDATES) {
      const out = keep(empty([m, n]));
      tidy(() => matmulInto(out, tensor(Float32Array.from(a), [m, k]), packed, { transB: true, tile }));
      assertClose(
        `nf4 Bt tile ${JSON.stringify(tile)}`,
        await out.toArray(),
        matmulRef(a, wd, null, 1, m, n, k, false, true, true),
        1e-5,
      );
      out.dispose();
      // The same codes as a [K, N] operand (the input gradient's product: g [m, n] @ W [n, k]).
      const out2 = keep(empty([m, k]));
      const x = Float64Array.from(randn(m * n, 73));
      tidy(() => matmulInto(out2, tensor(Float32Array.from(x), [m, n]), packed, { tile }));
      assertClose(
        `nf4 B tile ${JSON.stringify(tile)}`,
        await out2.toArray(),
        matmulRef(x, wd, null, 1, m, k, n, false, false, true),
        1e-5,
      );
      out2.dispose();
    }
    w.dispose();
    disposeNf4(q);
  },
);

gpuTest(
  "matmul: split-K (few output tiles, long reduction) with bias and accumulation, f32 and NF4 B",
  async () => {
    const [m, n, k] = [130, 70, 3000]; // 3 x 2 tiles of 64: the reduction is split into 5 layers
    const a = randn(m * k, 101);
    const w = randn(n * k, 102, 0.1);
    const bias = randn(n, 103);
    const c0 = randn(m * n, 104);
    const dense = keep(tensor(Float32Array.from(w), [n, k]));
    const q = await quantizeNf4(dense);
    const deq = dequantizeNf4(q);
    const wq = Float64Array.from(await deq.read());
    deq.dispose();
    const weights: [string, MatmulB, Float64Array][] = [
      ["f32", dense, w],
      ["nf4", { kind: "nf4", shape: q.shape, packed: q.packed, absmax: q.absmax! }, wq],
    ];
    for (const [name, b, exact] of weights) {
      const want = matmulRef(a, exact, bias, 1, m, n, k, false, true, true).map((v, i) => v + c0[i]);
      const out = keep(tensor(Float32Array.from(c0), [m, n]));
      tidy(() =>
        matmulInto(out, tensor(Float32Array.from(a), [m, k]), b, {
          transB: true,
          bias: tensor(Float32Array.from(bias), [n]),
          tile: { BM: 64, BN: 64, BK: 16, TM: 4, TN: 4 },
        }, true)
      );
      assertClose(`split-K ${name}`, await out.toArray(), want, 1e-5);
      out.dispose();
      if (b instanceof Tensor) b.dispose();
    }
    disposeNf4(q);
  },
);

gpuTest(
  "matmul: split-K counts a tile's threads, so a 16-row NF4 product in 256 short tiles splits its reduction",
  async () => {
    // 16 rows times a wide NF4 weight in SHORT tiles (16 x 64, 64 threads each; asked for, since such products
    // take the GEMV by default): 256 tiles are 64 workgroups' worth of 256 threads, too few to fill a GPU, so the
    // 1024 of k is cut in two layers.
    const [m, n, k] = [16, 16384, 1024];
    const a = randn(m * k, 111);
    const dense = keep(tensor(Float32Array.from(randn(n * k, 112, 0.05)), [n, k]));
    const q = await quantizeNf4(dense);
    dense.dispose();
    const deq = dequantizeNf4(q);
    const wq = Float64Array.from(await deq.read());
    deq.dispose();
    const want = matmulRef(a, wq, null, 1, m, n, k, false, true, true);
    const out = keep(empty([m, n]));
    const x = keep(tensor(Float32Array.from(a), [m, k]));
    const b: PackedNf4Matrix = { kind: "nf4", shape: q.shape, packed: q.packed, absmax: q.absmax! };
    // Unpoisoned: the tests' NaN fill of new tensors (the layers' partial sums) would count as a dispatch.
    const before = runtime().dispatchCount;
    const short = { BM: 16, BN: 64, BK: 16, TM: 4, TN: 4 };
    unpoisoned(() => matmulInto(out, x, b, { transB: true, tile: short }));
    assert.equal(runtime().dispatchCount - before, 2, "the layers' product and their sum");
    assertClose("16-row NF4 split-K", await out.toArray(), want, 1e-5);
    out.dispose();
    x.dispose();
    disposeNf4(q);
  },
);
