import assert from "node:assert/strict";
import { noGrad } from "../../compute/autograd.ts";
import { softmax } from "../../compute/softmax.ts";
import { tensor, tidy } from "../../compute/tensor.ts";
import { assertClose, checkOp, gpuTestSubgroupVariants, randn, runtime } from "./harness.ts";

function softmaxRef(x: Float64Array, cols: number): Float64Array {
  const out = new Float64Array(x.length);
  for (let base = 0; base < x.length; base += cols) {
    let max = -Infinity;
    for (let c = 0; c < cols; c++) max = Math.max(max, x[base + c]);
    let sum = 0;
    for (let c = 0; c < cols; c++) sum += Math.exp(x[base + c] - max);
    for (let c = 0; c < cols; c++) out[base + c] = Math.exp(x[base + c] - max) / sum;
  }
  return out;
}

gpuTestSubgroupVariants("softmax: forward and backward over the last dim", async () => {
  for (const [i, shape] of [[3, 5, 37], [2, 300], [40, 1], [1, 7]].entries()) {
    const cols = shape.at(-1)!;
    const n = shape.reduce((a, b) => a * b, 1);
    // Logits in [-3, 3): near one-hot rows make dy - Σ dy·y cancel, and the saved f32 output then limits the
    // gradient to about 2e-5 (as in PyTorch, which also differentiates through the output).
    await checkOp(
      `softmax ${JSON.stringify(shape)}`,
      [{ data: randn(n, 1 + i, 3), shape }],
      (x) => softmax(x),
      (x) => softmaxRef(x, cols),
      { forward: 1e-6, grad: 1e-5 },
    );
  }
});

gpuTestSubgroupVariants(
  "softmax: large logits, a long row (152064, Qwen's vocab) and -inf masks",
  async () => {
    const cases: [Float64Array, number][] = [
      [randn(2 * 1000, 3, 80).map((v) => Math.fround(v + 1e4)), 1000],
      [randn(152064, 4, 20), 152064],
    ];
    for (const [x, cols] of cases) {
      const out = tidy(() => noGrad(() => softmax(tensor(Float32Array.from(x), [x.length / cols, cols]))));
      // exp(x - max) of f32 inputs near 1e4 carries the inputs' rounding: 1e-5 norm-wise.
      assertClose(`softmax [${x.length / cols}, ${cols}]`, await out.toArray(), softmaxRef(x, cols), 1e-5);
      out.dispose();
    }
    const masked = [0.5, -Infinity, 2, -Infinity];
    const out = tidy(() => noGrad(() => softmax(tensor(masked, [1, 4]))));
    assertClose("masked row", await out.toArray(), softmaxRef(Float64Array.from(masked), 4), 1e-6);
    out.dispose();
  },
);

gpuTestSubgroupVariants("softmax: a non-f32 input throws before any dispatch", () => {
  tidy(() => {
    const ids = tensor(new Int32Array(6), [2, 3], "i32");
    const before = runtime().dispatchCount;
    assert.throws(() => softmax(ids), TypeError);
    assert.equal(runtime().dispatchCount, before, "a rejected call dispatched work");
  });
  return Promise.resolve();
});
