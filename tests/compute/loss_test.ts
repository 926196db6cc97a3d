import assert from "node:assert/strict";
import { backward } from "../../compute/autograd.ts";
import { crossEntropy, linearCrossEntropy, logSoftmax } from "../../compute/loss.ts";
import { rt } from "../../compute/runtime.ts";
import { empty, keep, parameter, tensor, tidy } from "../../compute/tensor.ts";
import { f16ToF32, f32ToF16 } from "../../lib/checkpoint/dtypes.ts";
import { assertClose, checkOp, gpuTestSubgroupVariants, randn, rng } from "./harness.ts";

const IGNORE = -100;

/** float64 reference: mean over targets ≠ −100 of logsumexp(row) − row[target]; 0 when none is valid. */
function crossEntropyRef(logits: Float64Array, targets: Int32Array, V: number): Float64Array {
  let sum = 0;
  let count = 0;
  for (let n = 0; n < targets.length; n++) {
    if (targets[n] === IGNORE) continue;
    const row = logits.subarray(n * V, (n + 1) * V);
    let max = -Infinity;
    for (const x of row) max = Math.max(max, x);
    let s = 0;
    for (const x of row) s += Math.exp(x - max);
    sum += max + Math.log(s) - row[targets[n]];
    count++;
  }
  return Float64Array.of(count === 0 ? 0 : sum / count);
}

/** h [N, C] @ w [V, C]ᵀ in float64. */
function logitsRef(h: Float64Array, w: Float64Array, N: number, C: number, V: number): Float64Array {
  const out = new Float64Array(N * V);
  for (let n = 0; n < N; n++) {
    for (let v = 0; v < V; v++) {
      let s = 0;
      for (let c = 0; c < C; c++) s += h[n * C + c] * w[v * C + c];
      out[n * V + v] = s;
    }
  }
  return out;
}

function makeTargets(N: number, V: number, seed: number, ignored: number[]): Int32Array {
  const next = rng(seed);
  const out = Int32Array.from({ length: N }, () => Math.floor(next() * V));
  for (const i of ignored) out[i] = IGNORE;
  out[1] = V - 1; // the last vocabulary column, in the short final chunk
  return out;
}

const TOL = { forward: 1e-5, grad: 1e-5 };

gpuTestSubgroupVariants(
  "linearCrossEntropy: several vocab chunks (V not a multiple), ignored rows, grads of h and weight",
  async () => {
    const N = 13, C = 24, V = 50;
    const targets = makeTargets(N, V, 3, [0, 5, 12]);
    const targetTensor = tensor(targets, [N], "i32");
    try {
      for (const chunk of [16, 7, undefined]) {
        await checkOp(
          `linearCrossEntropy chunk=${chunk}`,
          [{ data: randn(N * C, 1, 2), shape: [N, C] }, { data: randn(V * C, 2), shape: [V, C] }],
          (h, w) => linearCrossEntropy(h, w, targetTensor, { chunk }),
          (h, w) => crossEntropyRef(logitsRef(h, w, N, C, V), targets, V),
          TOL,
        );
      }
    } finally {
      targetTensor.dispose();
    }
  },
);

gpuTestSubgroupVariants("linearCrossEntropy: f16 weight (forward, h gradient)", async () => {
  const N = 9, C = 40, V = 77;
  const targets = makeTargets(N, V, 4, [3]);
  const wBits = f32ToF16(Float32Array.from(randn(V * C, 5)));
  const wRounded = Float64Array.from(f16ToF32(wBits));
  const targetTensor = tensor(targets, [N], "i32");
  const weight = tensor(wBits, [V, C], "f16");
  try {
    await checkOp(
      "linearCrossEntropy f16",
      [{ data: randn(N * C, 6, 2), shape: [N, C] }],
      (h) => linearCrossEntropy(h, weight, targetTensor, { chunk: 20 }),
      (h) => crossEntropyRef(logitsRef(h, wRounded, N, C, V), targets, V),
      TOL,
    );
  } finally {
    targetTensor.dispose();
    weight.dispose();
  }
});

gpuTestSubgroupVariants(
  "linearCrossEntropy: tied weight accumulates into one gradient; no valid target gives 0, no NaN",
  async () => {
    const N = 6, C = 16, V = 30;
    const h = parameter(Float32Array.from(randn(N * C, 7)), [N, C]);
    const w = parameter(Float32Array.from(randn(V * C, 8)), [V, C]);
    const none = tensor(new Int32Array(N).fill(IGNORE), [N], "i32");
    const some = tensor(makeTargets(N, V, 9, []), [N], "i32");
    try {
      const loss = keep(tidy(() => linearCrossEntropy(h, w, none, { chunk: 8 })));
      assert.equal(await loss.item(), 0);
      backward(loss);
      loss.dispose();
      for (const g of [h.grad!, w.grad!]) {
        const values = await g.toArray();
        assert.ok(values.every((x) => x === 0), "ignored rows must give zero gradients");
      }
      // A second loss on the same weight adds to w.grad (as a tied embedding would).
      const before = await w.grad!.toArray();
      const loss2 = keep(tidy(() => linearCrossEntropy(h, w, some, { chunk: 8 })));
      backward(loss2);
      loss2.dispose();
      const single = keep(tidy(() => linearCrossEntropy(h, w, some)));
      const accumulated = await w.grad!.toArray();
      w.grad!.dispose();
      w.grad = null;
      backward(single);
      single.dispose();
      const fresh = await w.grad!.toArray();
      assertClose("accumulated weight gradient", accumulated, fresh.map((x, i) => x + before[i]), 1e-6);
    } finally {
      for (const t of [h, w, none, some]) t.dispose();
    }
  },
);

gpuTestSubgroupVariants(
  "linearCrossEntropy: logits kept from the forward give the gradients of recomputed ones, bit for bit",
  async () => {
    const N = 9, C = 16, V = 45;
    const h = parameter(Float32Array.from(randn(N * C, 17)), [N, C]);
    const w = parameter(Float32Array.from(randn(V * C, 18)), [V, C]);
    const targets = tensor(makeTargets(N, V, 19, [3]), [N], "i32");
    const grads = async (savedLogitsBytes: number) => {
      const loss = keep(tidy(() => linearCrossEntropy(h, w, targets, { chunk: 16, savedLogitsBytes })));
      backward(loss);
      const out = [await loss.item(), ...await h.grad!.toArray(), ...await w.grad!.toArray()];
      loss.dispose();
      for (const p of [h, w]) {
        p.grad!.dispose();
        p.grad = null;
      }
      return out;
    };
    try {
      assert.deepEqual(await grads(N * V * 4), await grads(0));
      assert.throws(
        () => linearCrossEntropy(h, w, targets, { savedLogitsBytes: -1 }),
        (e: Error) => e instanceof RangeError && /savedLogitsBytes/.test(e.message),
      );
    } finally {
      for (const t of [h, w, targets]) t.dispose();
    }
  },
);

gpuTestSubgroupVariants("crossEntropy and logSoftmax: forward and backward", async () => {
  const N = 11, V = 300;
  const targets = makeTargets(N, V, 11, [2, 7]);
  const targetTensor = tensor(targets, [N], "i32");
  try {
    await checkOp(
      "crossEntropy",
      [{ data: randn(N * V, 12, 4), shape: [N, V] }],
      (x) => crossEntropy(x, targetTensor),
      (x) => crossEntropyRef(x, targets, V),
      TOL,
    );
  } finally {
    targetTensor.dispose();
  }
  await checkOp(
    "logSoftmax",
    [{ data: randn(3 * 5 * 70, 13, 4), shape: [3, 5, 70] }],
    (x) => logSoftmax(x),
    (x) => {
      const out = new Float64Array(x.length);
      for (let r = 0; r < x.length / 70; r++) {
        const row = x.subarray(r * 70, (r + 1) * 70);
        const max = Math.max(...row);
        const lse = max + Math.log(row.reduce((s, v) => s + Math.exp(v - max), 0));
        for (let j = 0; j < 70; j++) out[r * 70 + j] = row[j] - lse;
      }
      return out;
    },
    TOL,
  );
});

gpuTestSubgroupVariants("losses: shape and dtype errors throw before any dispatch", async () => {
  const h = empty([4, 8]);
  const w = empty([10, 8]);
  const wBad = empty([10, 6]);
  const targets = empty([4], "i32");
  const targetsBad = empty([5], "i32");
  const targetsF32 = empty([4]);
  const before = rt().dispatchCount;
  const throwsWith = (fn: () => unknown, type: ErrorConstructor, text: string) =>
    assert.throws(fn, (e: unknown) => e instanceof type && e.message.includes(text));
  throwsWith(() => linearCrossEntropy(h, wBad, targets), RangeError, "[10, 6]");
  throwsWith(() => linearCrossEntropy(h, w, targetsBad), RangeError, "[5]");
  throwsWith(() => linearCrossEntropy(h, w, targetsF32), TypeError, "i32");
  throwsWith(() => linearCrossEntropy(h, w, targets, { chunk: 0 }), RangeError, "chunk");
  throwsWith(() => crossEntropy(w, targets), RangeError, "[10, 8]");
  assert.equal(rt().dispatchCount, before, "a failing call dispatched work");
  for (const t of [h, w, wBad, targets, targetsBad, targetsF32]) t.dispose();
  await rt().sync();
});
