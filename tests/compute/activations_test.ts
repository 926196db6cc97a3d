import assert from "node:assert/strict";
import { noGrad } from "../../compute/autograd.ts";
import { swiglu } from "../../compute/activations.ts";
import { tensor, tidy } from "../../compute/tensor.ts";
import { checkOp, gpuTest, randn, runtime } from "./harness.ts";

const silu = (x: number) => x / (1 + Math.exp(-x));

function swigluRef(gate: Float64Array, up: Float64Array): Float64Array {
  return gate.map((g, i) => silu(g) * up[i]);
}

gpuTest("activations: swiglu forward and backward (gate and up)", async () => {
  for (const [i, shape] of [[1037], [3, 5, 67], [2, 300]].entries()) {
    const n = shape.reduce((a, b) => a * b, 1);
    await checkOp(
      `swiglu ${JSON.stringify(shape)}`,
      [{ data: randn(n, 1 + i, 6), shape }, { data: randn(n, 11 + i, 2), shape }],
      (gate, up) => swiglu(gate, up),
      swigluRef,
      { forward: 1e-6, grad: 1e-5 },
    );
  }
});

gpuTest("activations: swiglu saturates without NaN at large |gate|", async () => {
  const gate = [-1000, -100, -89, 89, 100, 1000];
  const out = tidy(() => noGrad(() => swiglu(tensor(gate, [6]), tensor(new Float32Array(6).fill(2), [6]))));
  const got = await out.toArray();
  out.dispose();
  // Negative gates give -0; adding 0 folds it to 0 for the comparison.
  assert.deepEqual(got.map((v) => v + 0), [0, 0, 0, 178, 200, 2000]);
});

gpuTest("activations: swiglu shape and dtype mismatches throw before any dispatch", () => {
  tidy(() => {
    const a = tensor(new Float32Array(6), [2, 3]);
    const b = tensor(new Float32Array(6), [3, 2]);
    const ids = tensor(new Int32Array(6), [2, 3], "i32");
    const before = runtime().dispatchCount;
    assert.throws(() => swiglu(a, b), { name: "RangeError", message: /\[2, 3\].*\[3, 2\]/ });
    assert.throws(() => swiglu(a, ids), TypeError);
    assert.equal(runtime().dispatchCount, before, "a rejected call dispatched work");
  });
  return Promise.resolve();
});
