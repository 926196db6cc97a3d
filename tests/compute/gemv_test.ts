import assert from "node:assert/strict";
import {
  GEMV_LAYOUTS,
  GEMV_MAX_X_ROWS,
  type GemvEpilogue,
  gemvInto,
  type GemvLayout,
  gemvLayout,
  type GemvNorm,
  gemvRowsInto,
  type GemvSource,
  gemvStackInto,
  gemvSwigluInto,
  type GemvWeight,
} from "../../compute/gemv.ts";
import { dequantizeNf4, disposeNf4, nf4Scales, type Nf4Weight, quantizeNf4 } from "../../compute/nf4.ts";
import { rt } from "../../compute/runtime.ts";
import { keep, type Tensor, tensor, tidy } from "../../compute/tensor.ts";
import { f16ToF32, f32ToF16 } from "../../lib/checkpoint/mod.ts";
import { assertClose, gpuTest, gpuTestSubgroupVariants, randn, withF16Levels } from "./harness.ts";

/** float64 reference: y = W x + bias + y0. */
function gemvRef(w: ArrayLike<number>, x: Float64Array, bias: Float64Array, y0: Float64Array): Float64Array {
  const n = bias.length;
  const k = x.length;
  return Float64Array.from({ length: n }, (_, r) => {
    let s = bias[r] + y0[r];
    for (let i = 0; i < k; i++) s += w[r * k + i] * x[i];
    return s;
  });
}

/** LayerNorm of one row in f64: (x - mean) / sqrt(var + eps) * w + b. */
function layerNormRef(
  x: Float64Array,
  w: ArrayLike<number>,
  b: ArrayLike<number>,
  eps: number,
): Float64Array {
  const mean = x.reduce((s, v) => s + v, 0) / x.length;
  const std = 1 / Math.sqrt(x.reduce((s, v) => s + (v - mean) ** 2, 0) / x.length + eps);
  return x.map((v, i) => (v - mean) * std * w[i] + b[i]);
}

/** x RMS-normalised with weight w, in f64. */
function rmsNormed(x: Float64Array, w: Float64Array, eps: number): Float64Array {
  const rstd = 1 / Math.sqrt(x.reduce((s, v) => s + v * v, 0) / x.length + eps);
  return x.map((v, i) => v * rstd * w[i]);
}

/**
 * A fused norm's inputs from seeds seed.. seed + 3: x [1, k] with a mean (so LayerNorm's centring matters), the
 * norm's weight and bias [k], a product bias [n]; as data and as tensors.
 */
function normInputs(n: number, k: number, seed: number) {
  const xData = randn(k, seed, 3).map((v) => v + 0.5);
  const wData = randn(k, seed + 1);
  const bData = randn(k, seed + 2);
  const biasData = randn(n, seed + 3);
  const x = keep(tensor(Float32Array.from(xData), [1, k]));
  const w = keep(tensor(Float32Array.from(wData), [k]));
  const b = keep(tensor(Float32Array.from(bData), [k]));
  const bias = keep(tensor(Float32Array.from(biasData), [n]));
  return {
    xData,
    wData,
    bData,
    biasData,
    x,
    w,
    b,
    bias,
    dispose: () => [x, w, b, bias].forEach((t) => t.dispose()),
  };
}

/** SwiGLU's gate activation, in f64. */
function silu(v: number): number {
  return v / (1 + Math.exp(-v));
}

interface Case {
  storage: GemvWeight | "nf4-double";
  weight: Tensor | Nf4Weight;
  /** The weight as the kernel sees it, in f64 (rounded to f16, or dequantised). */
  exact: ArrayLike<number>;
  /** NF4: the weight dequantised with its levels rounded to f16, as the kernel reads it with a pair table. */
  exactF16Levels?: ArrayLike<number>;
}

/** The weight as a dispatch in this layout sees it. */
function seen(c: Case, layout: GemvLayout): ArrayLike<number> {
  return layout.pairCopies ? c.exactF16Levels! : c.exact;
}

async function makeCases(n: number, k: number, seed: number): Promise<Case[]> {
  const w = Float32Array.from(randn(n * k, seed));
  const f32 = keep(tensor(w, [n, k]));
  const half = f32ToF16(w);
  const cases: Case[] = [
    { storage: "f32", weight: f32, exact: w },
    { storage: "f16", weight: keep(tensor(half, [n, k], "f16")), exact: f16ToF32(half) },
  ];
  for (const double of [false, true]) {
    const q = await quantizeNf4(f32, double);
    const deq = dequantizeNf4(q);
    const exact = await deq.read();
    cases.push({
      storage: double ? "nf4-double" : "nf4",
      weight: q,
      exact,
      exactF16Levels: withF16Levels(exact),
    });
    deq.dispose();
  }
  return cases;
}

/** The cases decoding uses (f16 weights and double-quantised NF4); the others are released. */
async function decodeCases(n: number, k: number, seed: number): Promise<Case[]> {
  const all = await makeCases(n, k, seed);
  const cases = all.filter((c) => c.storage === "f16" || c.storage === "nf4-double");
  for (const c of all) if (!cases.includes(c)) dispose(c);
  return cases;
}

function storageOf(c: Case): GemvWeight {
  return c.storage === "nf4-double" ? "nf4" : c.storage;
}

/** A case's weight as one source of a GEMV dispatch. */
function sourceOf(c: Case, bias: Tensor | null, rows: number): GemvSource {
  const bound = bias?.range ?? null;
  if (c.storage === "f32" || c.storage === "f16") {
    return { weight: (c.weight as Tensor).range, scales: null, bias: bound, rows };
  }
  const w = c.weight as Nf4Weight;
  return { weight: w.packed.range, scales: nf4Scales(w), bias: bound, rows };
}

function run(
  c: Case,
  x: Tensor,
  bias: Tensor,
  y: Tensor,
  n: number,
  k: number,
  layout?: GemvLayout,
  epilogue?: GemvEpilogue,
  accumulate = true,
  norm: GemvNorm | null = null,
): void {
  const { weight, scales } = sourceOf(c, bias, n);
  gemvInto(
    y.range,
    x.range,
    weight,
    storageOf(c),
    n,
    k,
    bias.range,
    accumulate,
    scales,
    layout,
    epilogue,
    norm,
  );
}

function dispose(c: Case): void {
  if ("packed" in c.weight) disposeNf4(c.weight);
  else (c.weight as Tensor).dispose();
}

gpuTestSubgroupVariants(
  "gemv: every layout, every weight storage (f32, f16, NF4, double-quantised NF4; NF4 with the f16 level-pair " +
    "table and with f32 levels) vs f64, with bias and accumulation",
  async () => {
    // 77 rows: no layout's rows per workgroup divides it; K = 1024: 32 NF4 chunks, uneven over most lane counts.
    const [n, k] = [77, 1024];
    const cases = await makeCases(n, k, 11);
    const xData = randn(k, 12);
    const biasData = randn(n, 13);
    const y0 = randn(n, 14);
    const x = keep(tensor(Float32Array.from(xData), [1, k]));
    const bias = keep(tensor(Float32Array.from(biasData), [n]));
    for (const c of cases) {
      for (const pairCopies of c.exactF16Levels ? [0, 1, 8] : [undefined]) {
        const want = gemvRef(pairCopies ? c.exactF16Levels! : c.exact, xData, biasData, y0);
        for (const layout of [...GEMV_LAYOUTS, gemvLayout(n, k, storageOf(c))]) {
          const y = keep(tidy(() => tensor(Float32Array.from(y0), [n])));
          run(c, x, bias, y, n, k, { ...layout, pairCopies });
          assertClose(
            `${c.storage} lanes ${layout.lanes} rows ${layout.rowsPerThread} pair copies ${pairCopies ?? 0}`,
            await y.toArray(),
            want,
            1e-5,
          );
          y.dispose();
        }
      }
      dispose(c);
    }
    x.dispose();
    bias.dispose();
  },
);

gpuTestSubgroupVariants(
  "gemv: several rows of x in one pass (3 and 16), every storage and several layouts, x in one staged segment " +
    "and in several, the reduction whole and split, vs f64 with bias and accumulation",
  async () => {
    // K = 8192 with 16 rows of x leaves room for a few chunks a segment only; 77 rows fill no workgroup evenly.
    for (const [n, k] of [[77, 1024], [20, 8192]]) {
      const cases = await makeCases(n, k, n + k + 1);
      const biasData = randn(n, 31);
      const bias = keep(tensor(Float32Array.from(biasData), [n]));
      for (const xRows of [3, GEMV_MAX_X_ROWS]) {
        const xData = randn(xRows * k, 32 + xRows);
        const y0 = randn(xRows * n, 33 + xRows);
        const x = keep(tensor(Float32Array.from(xData), [xRows, k]));
        for (const c of cases) {
          const want = new Float64Array(xRows * n);
          for (let r = 0; r < xRows; r++) {
            const row = gemvRef(
              c.exact,
              xData.subarray(r * k, (r + 1) * k),
              biasData,
              y0.subarray(r * n, (r + 1) * n),
            );
            want.set(row, r * n);
          }
          // Split-K in layers that do not divide the chunks evenly (the last layer shorter).
          const layouts = [
            undefined,
            { threads: 512, lanes: 8, rowsPerThread: 4 },
            { threads: 256, lanes: 4, rowsPerThread: 2, splits: 3 },
            { threads: 256, lanes: 8, rowsPerThread: 1, splits: 5 },
          ];
          for (const layout of layouts) {
            const y = keep(tensor(Float32Array.from(y0), [xRows, n]));
            gemvRowsInto(y.range, x.range, xRows, sourceOf(c, bias, n), storageOf(c), k, true, layout);
            assertClose(
              `${c.storage} ${n}x${k}, ${xRows} rows of x, lanes ${layout?.lanes ?? "default"} splits ${
                layout ? layout.splits ?? 1 : "default"
              }`,
              await y.toArray(),
              want,
              1e-5,
            );
            y.dispose();
          }
        }
        x.dispose();
      }
      cases.forEach(dispose);
      bias.dispose();
    }
  },
);

gpuTest(
  "gemv: more than 16 rows of x, a layout whose staged rows of x exceed the workgroup memory, and split-K " +
    "layers that are not whole or whose grid is too wide are refused",
  async () => {
    // 16 rows of NF4 x take 2 KiB a chunk; a given layout with more lanes than the memory holds chunks for must
    // throw (wgpu does not check a shader's workgroup memory, and a GPU may hang on it), the default must fit.
    const limit = rt().gpu.device.limits.maxComputeWorkgroupStorageSize;
    const lanes = 2 ** Math.ceil(Math.log2(limit / 2048 + 1));
    const [n, k] = [4, lanes * 32];
    const dense = keep(tensor(Float32Array.from(randn(n * k, 41)), [n, k]));
    const q = await quantizeNf4(dense);
    dense.dispose();
    const x = keep(tensor(Float32Array.from(randn(GEMV_MAX_X_ROWS * k, 42)), [GEMV_MAX_X_ROWS, k]));
    const y = keep(tensor(new Float32Array(GEMV_MAX_X_ROWS * n), [GEMV_MAX_X_ROWS, n]));
    const source: GemvSource = { weight: q.packed.range, scales: nf4Scales(q), bias: null, rows: n };
    const layout = { threads: Math.max(256, lanes), lanes, rowsPerThread: 1 };
    assert.throws(
      () => gemvRowsInto(y.range, x.range, GEMV_MAX_X_ROWS, source, "nf4", k, false, layout),
      /workgroup memory: use fewer lanes/,
    );
    gemvRowsInto(y.range, x.range, GEMV_MAX_X_ROWS, source, "nf4", k, false);
    await y.read();
    assert.throws(
      () => gemvRowsInto(y.range, x.range, GEMV_MAX_X_ROWS + 1, source, "nf4", k, false),
      /17 rows of x.*GEMM/,
    );
    // Split-K takes whole layers, and several rows of x.
    const fits = { threads: 256, lanes: 1, rowsPerThread: 1 };
    for (const [rows, splits] of [[GEMV_MAX_X_ROWS, 0], [GEMV_MAX_X_ROWS, 1.5], [1, 2]]) {
      assert.throws(
        () => gemvRowsInto(y.range, x.range, rows, source, "nf4", k, false, { ...fits, splits }),
        new RegExp(`${splits} layers of split-K`),
      );
    }
    // A split grid is 3-D: one workgroup a row of W, more rows than a grid dimension holds, is refused.
    const wide = rt().gpu.device.limits.maxComputeWorkgroupsPerDimension + 1;
    const w = keep(tensor(new Float32Array(wide * 8), [wide, 8]));
    const yWide = keep(tensor(new Float32Array(2 * wide), [2, wide]));
    const oneRowGroups = { threads: 1, lanes: 1, rowsPerThread: 1, splits: 2 };
    const wideSource: GemvSource = { weight: w.range, scales: null, bias: null, rows: wide };
    assert.throws(
      () => gemvRowsInto(yWide.range, x.range, 2, wideSource, "f32", 8, false, oneRowGroups),
      new RegExp(`${wide} workgroups a layer of split-K`),
    );
    for (const t of [x, y, w, yWide]) t.dispose();
    disposeNf4(q);
  },
);

gpuTestSubgroupVariants(
  "gemv: the default layout of short rows, and of rows longer than one staged segment of x",
  async () => {
    for (const [n, k] of [[300, 32], [5, 8192], [1000, 96]]) {
      const cases = await makeCases(n, k, n + k);
      const xData = randn(k, 21);
      const biasData = randn(n, 22);
      const y0 = randn(n, 23);
      const x = keep(tensor(Float32Array.from(xData), [1, k]));
      const bias = keep(tensor(Float32Array.from(biasData), [n]));
      for (const c of cases) {
        const y = keep(tensor(Float32Array.from(y0), [n]));
        run(c, x, bias, y, n, k);
        const want = gemvRef(seen(c, gemvLayout(n, k, storageOf(c))), xData, biasData, y0);
        assertClose(`${c.storage} ${n}x${k}`, await y.toArray(), want, 1e-5);
        y.dispose();
        dispose(c);
      }
      x.dispose();
      bias.dispose();
    }
  },
);

gpuTestSubgroupVariants(
  "gemv: epilogues (residual add, SwiGLU gating, GELU) vs f64, for f16 and double-quantised NF4, with x in one " +
    "staged segment and in several",
  async () => {
    for (const [n, k] of [[45, 256], [45, 16384]]) {
      const cases = await decodeCases(n, k, 31);
      const xData = randn(k, 32);
      const biasData = randn(n, 33);
      const auxData = randn(n, 34, 3);
      const x = keep(tensor(Float32Array.from(xData), [1, k]));
      const bias = keep(tensor(Float32Array.from(biasData), [n]));
      const aux = keep(tensor(Float32Array.from(auxData), [n]));
      const zeros = new Float64Array(n);
      const gelu = (v: number) => 0.5 * v * (1 + Math.tanh(Math.sqrt(2 / Math.PI) * (v + 0.044715 * v ** 3)));
      const epilogues: [GemvEpilogue, (v: number, r: number) => number][] = [
        [{ kind: "residual", residual: aux.range }, (v, r) => v + auxData[r]],
        [{ kind: "silu-gate", gate: aux.range }, (v, r) => silu(auxData[r]) * v],
        [{ kind: "gelu" }, (v) => gelu(v)],
      ];
      for (const c of cases) {
        const product = gemvRef(seen(c, gemvLayout(n, k, storageOf(c))), xData, biasData, zeros);
        for (const [epilogue, apply] of epilogues) {
          const y = keep(tensor(new Float32Array(n), [n]));
          run(c, x, bias, y, n, k, undefined, epilogue, false);
          const want = product.map((v, r) => apply(v, r));
          assertClose(`${c.storage} ${n}x${k} ${epilogue.kind}`, await y.toArray(), want, 1e-5);
          y.dispose();
        }
        dispose(c);
      }
      for (const t of [x, bias, aux]) t.dispose();
    }
  },
);

gpuTestSubgroupVariants(
  "gemv: RMSNorm and LayerNorm of x fused ahead of the product vs f64, for f16 and double-quantised NF4, with " +
    "a bias, x in one staged segment and in several",
  async () => {
    for (const [n, k] of [[40, 512], [21, 16384]]) {
      const cases = await decodeCases(n, k, 41);
      const inputs = normInputs(n, k, 42);
      const { xData, wData, bData, biasData, x, w, b, bias } = inputs;
      const eps = 1e-6;
      const norms: [GemvNorm, Float64Array][] = [
        [{ kind: "rms", weight: w.range, eps }, rmsNormed(xData, wData, eps)],
        [{ kind: "layer", weight: w.range, bias: b.range, eps }, layerNormRef(xData, wData, bData, eps)],
      ];
      const zeros = new Float64Array(n);
      for (const c of cases) {
        for (const [norm, normed] of norms) {
          const y = keep(tensor(new Float32Array(n), [n]));
          run(c, x, bias, y, n, k, undefined, undefined, false, norm);
          assertClose(
            `${c.storage} ${n}x${k} ${norm.kind}`,
            await y.toArray(),
            gemvRef(seen(c, gemvLayout(n, k, storageOf(c))), normed, biasData, zeros),
            1e-5,
          );
          y.dispose();
        }
        dispose(c);
      }
      inputs.dispose();
    }
  },
);

gpuTestSubgroupVariants(
  "gemv: stacked sources (q, k, v) in one dispatch vs f64: every storage and layout, uneven rows, a source " +
    "without bias, fused RMSNorm; five sources split into dispatches the kernel takes",
  async () => {
    const k = 256;
    const rows = [77, 16, 40, 9, 33];
    const perRows = await Promise.all(rows.map((n, s) => makeCases(n, k, 50 + s)));
    const xData = randn(k, 60);
    const normData = randn(k, 61);
    const x = keep(tensor(Float32Array.from(xData), [1, k]));
    const normWeight = keep(tensor(Float32Array.from(normData), [k]));
    const biasData = rows.map((n, s) => randn(n, 70 + s));
    // The second source has no bias.
    const biases = rows.map((n, s) => s === 1 ? null : keep(tensor(Float32Array.from(biasData[s]), [n])));
    const norm: GemvNorm = { kind: "rms", weight: normWeight.range, eps: 1e-6 };
    const normed = rmsNormed(xData, normData, 1e-6);
    for (const [i, storage] of perRows[0].map((c) => c.storage).entries()) {
      const cases = perRows.map((cs) => cs[i]);
      const want = cases.map((c, s) =>
        gemvRef(c.exact, normed, biasData[s].map((b) => s === 1 ? 0 : b), new Float64Array(rows[s]))
      );
      const sources = cases.map((c, s) => sourceOf(c, biases[s], rows[s]));
      const check = async (count: number, label: string, layout?: GemvLayout) => {
        const ys = rows.slice(0, count).map((n) => keep(tensor(new Float32Array(n), [n])));
        gemvStackInto(x.range, k, sources.slice(0, count), ys.map((y) => y.range), {
          storage: storageOf(cases[0]),
          norm,
          layout,
        });
        for (const [s, y] of ys.entries()) {
          assertClose(`${storage} ${label} source ${s}`, await y.toArray(), want[s], 1e-5);
          y.dispose();
        }
      };
      for (const layout of GEMV_LAYOUTS) {
        await check(3, `lanes ${layout.lanes} rows ${layout.rowsPerThread}`, layout);
      }
      await check(5, "five sources");
      cases.forEach(dispose);
    }
    for (const t of [x, normWeight, ...biases]) t?.dispose();
  },
);

gpuTestSubgroupVariants(
  "gemv: SwiGLU pair silu(gate) * up in one dispatch vs f64: every storage and layout, fused LayerNorm, a bias on " +
    "the gate only",
  async () => {
    const [n, k] = [45, 256];
    const gates = await makeCases(n, k, 80);
    const ups = await makeCases(n, k, 81);
    const inputs = normInputs(n, k, 82);
    const { xData, wData, bData, biasData, x, w, b, bias } = inputs;
    const eps = 1e-5;
    const normed = layerNormRef(xData, wData, bData, eps);
    const zeros = new Float64Array(n);
    for (const [i, gate] of gates.entries()) {
      const up = ups[i];
      const g = gemvRef(gate.exact, normed, biasData, zeros);
      const u = gemvRef(up.exact, normed, zeros, zeros);
      const want = g.map((v, r) => silu(v) * u[r]);
      for (const layout of GEMV_LAYOUTS) {
        const y = keep(tensor(new Float32Array(n), [n]));
        gemvSwigluInto(y.range, x.range, k, sourceOf(gate, bias, n), sourceOf(up, null, n), {
          storage: storageOf(gate),
          norm: { kind: "layer", weight: w.range, bias: b.range, eps },
          layout,
        });
        assertClose(
          `${gate.storage} lanes ${layout.lanes} rows ${layout.rowsPerThread}`,
          await y.toArray(),
          want,
          1e-5,
        );
        y.dispose();
      }
      dispose(gate);
      dispose(up);
    }
    inputs.dispose();
  },
);

gpuTest(
  "gemv: a pair table of copies that are not a power of two up to 32, or that leave x no room, is refused",
  async () => {
    const [n, k] = [8, 256];
    const [unused, c] = await decodeCases(n, k, 140);
    dispose(unused);
    const x = keep(tensor(new Float32Array(k), [1, k]));
    const bias = keep(tensor(new Float32Array(n), [n]));
    const y = keep(tensor(new Float32Array(n), [n]));
    const layout = { threads: 256, lanes: 16, rowsPerThread: 1 };
    for (const pairCopies of [3, 0.5, -2, 64]) {
      assert.throws(() => run(c, x, bias, y, n, k, { ...layout, pairCopies }), /power of two up to 32/);
    }
    // A table as big as the device's whole workgroup memory leaves x no room.
    const tooMany = 2 ** Math.ceil(Math.log2(rt().gpu.device.limits.maxComputeWorkgroupStorageSize / 1024));
    if (tooMany <= 32) {
      assert.throws(
        () => run(c, x, bias, y, n, k, { ...layout, pairCopies: tooMany }),
        /leave no room for x/,
      );
    }
    dispose(c);
    for (const t of [x, bias, y]) t.dispose();
  },
);
