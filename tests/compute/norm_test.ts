import assert from "node:assert/strict";
import { noGrad } from "../../compute/autograd.ts";
import { layerNorm, rmsNorm } from "../../compute/norm.ts";
import { tensor, tidy } from "../../compute/tensor.ts";
import { assertClose, checkOp, gpuTestSubgroupVariants, randn, runtime } from "./harness.ts";

/** Forward within 1e-5 norm-wise; gradients within 1e-5 (rows of at most 300 elements). */
const TOL = { forward: 1e-5, grad: 1e-5 };

function rmsRef(x: Float64Array, w: Float64Array, eps: number): Float64Array {
  const cols = w.length;
  const out = new Float64Array(x.length);
  for (let base = 0; base < x.length; base += cols) {
    let sq = 0;
    for (let c = 0; c < cols; c++) sq += x[base + c] ** 2;
    const rstd = 1 / Math.sqrt(sq / cols + eps);
    for (let c = 0; c < cols; c++) out[base + c] = x[base + c] * rstd * w[c];
  }
  return out;
}

function layerRef(x: Float64Array, w: Float64Array, b: Float64Array, eps: number): Float64Array {
  const cols = w.length;
  const out = new Float64Array(x.length);
  for (let base = 0; base < x.length; base += cols) {
    let mean = 0;
    for (let c = 0; c < cols; c++) mean += x[base + c];
    mean /= cols;
    let variance = 0;
    for (let c = 0; c < cols; c++) variance += (x[base + c] - mean) ** 2;
    const rstd = 1 / Math.sqrt(variance / cols + eps);
    for (let c = 0; c < cols; c++) out[base + c] = (x[base + c] - mean) * rstd * w[c] + b[c];
  }
  return out;
}

/** Shapes of x: rows below and above the 32-row chunk, columns below and above the 256-thread workgroup. */
const SHAPES = [[3, 5, 37], [4, 300], [70, 9], [1, 3]];

gpuTestSubgroupVariants("norm: rmsNorm forward and backward (x and weight)", async () => {
  for (const [i, shape] of SHAPES.entries()) {
    const cols = shape.at(-1)!;
    const n = shape.reduce((a, b) => a * b, 1);
    const eps = 1e-6;
    await checkOp(
      `rmsNorm ${JSON.stringify(shape)}`,
      [{ data: randn(n, 1 + i, 2), shape }, { data: randn(cols, 11 + i), shape: [cols] }],
      (x, w) => rmsNorm(x, w, eps),
      (x, w) => rmsRef(x, w, eps),
      TOL,
    );
  }
});

gpuTestSubgroupVariants("norm: layerNorm forward and backward (x, weight and bias)", async () => {
  for (const [i, shape] of SHAPES.entries()) {
    const cols = shape.at(-1)!;
    const n = shape.reduce((a, b) => a * b, 1);
    const eps = 1e-5;
    // An offset mean checks that the variance is taken about the mean (two-pass), not as E[x²] - E[x]².
    const x = randn(n, 21 + i).map((v) => Math.fround(v + 3));
    await checkOp(
      `layerNorm ${JSON.stringify(shape)}`,
      [
        { data: x, shape },
        { data: randn(cols, 31 + i), shape: [cols] },
        { data: randn(cols, 41 + i), shape: [cols] },
      ],
      (x, w, b) => layerNorm(x, w, b, eps),
      (x, w, b) => layerRef(x, w, b, eps),
      TOL,
    );
  }
});

/** Rounds to f16 and returns the values and the raw bits for upload. */
function toF16(values: Float64Array): { values: Float64Array; bits: Uint16Array } {
  const half = Float16Array.from(values);
  return { values: Float64Array.from(half), bits: new Uint16Array(half.buffer) };
}

gpuTestSubgroupVariants("norm: f16 weights (frozen) in rmsNorm and layerNorm, gradient to x", async () => {
  const shape = [6, 261];
  const cols = shape[1];
  const w = toF16(randn(cols, 51));
  const b = toF16(randn(cols, 52));
  const w16 = tensor(w.bits, [cols], "f16");
  const b16 = tensor(b.bits, [cols], "f16");
  try {
    await checkOp(
      "rmsNorm f16 weight",
      [{ data: randn(cols * 6, 53), shape }, { data: w.values, shape: [cols], grad: false }],
      (x) => rmsNorm(x, w16, 1e-6),
      (x) => rmsRef(x, w.values, 1e-6),
      TOL,
    );
    await checkOp(
      "layerNorm f16 weight and bias",
      [{ data: randn(cols * 6, 54), shape }],
      (x) => layerNorm(x, w16, b16, 1e-5),
      (x) => layerRef(x, w.values, b.values, 1e-5),
      TOL,
    );
  } finally {
    w16.dispose();
    b16.dispose();
  }
});

gpuTestSubgroupVariants(
  "norm: long rows (4099 columns) and over 65535 rows (a folded 2-D grid) stay within tolerance",
  async () => {
    for (const shape of [[2, 4099], [70000, 3]]) {
      const [rows, cols] = shape;
      const x = randn(rows * cols, 61, 3);
      const w = randn(cols, 62);
      const out = tidy(() =>
        noGrad(() => rmsNorm(tensor(Float32Array.from(x), shape), tensor(Float32Array.from(w), [cols]), 1e-6))
      );
      assertClose(`rmsNorm ${shape}`, await out.toArray(), rmsRef(x, w, 1e-6), 1e-5);
      out.dispose();
    }
  },
);

gpuTestSubgroupVariants("norm: shape and dtype mismatches throw before any dispatch", () => {
  tidy(() => {
    const x = tensor(new Float32Array(12), [3, 4]);
    const ids = tensor(new Int32Array(12), [3, 4], "i32");
    const w5 = tensor(new Float32Array(5), [5]);
    const w4 = tensor(new Float32Array(4), [4]);
    const before = runtime().dispatchCount;
    assert.throws(() => rmsNorm(x, w5, 1e-6), { name: "RangeError", message: /\[5\].*\[3, 4\]/ });
    assert.throws(() => layerNorm(x, w4, w5, 1e-5), { name: "RangeError", message: /\[5\].*\[3, 4\]/ });
    assert.throws(() => rmsNorm(ids, w4, 1e-6), TypeError);
    assert.throws(() => rmsNorm(x, ids, 1e-6), TypeError);
    assert.throws(() => rmsNorm(x, w4, -1), RangeError);
    assert.equal(runtime().dispatchCount, before, "a rejected call dispatched work");
  });
  return Promise.resolve();
});
