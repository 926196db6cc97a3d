import assert from "node:assert/strict";
import { backward, checkpoint, getRngCounter, noGrad, setRngCounter } from "../../compute/autograd.ts";
import { dropout, dropThreshold } from "../../compute/dropout.ts";
import { keep, type Tensor, tensor, tidy } from "../../compute/tensor.ts";
import { gpuTest, randn, runtime } from "./harness.ts";

/** The kernel's PCG hash, on the host. */
function pcg(v: number): number {
  const state = (Math.imul(v >>> 0, 747796405) + 2891336453) >>> 0;
  const word = Math.imul(((state >>> ((state >>> 28) + 4)) ^ state) >>> 0, 277803737) >>> 0;
  return ((word >>> 22) ^ word) >>> 0;
}

function keptMask(n: number, seed: number, p: number): boolean[] {
  const base = pcg(seed);
  const threshold = dropThreshold(p);
  return Array.from({ length: n }, (_, i) => pcg((base + i) >>> 0) >= threshold);
}

/** Exact expected output: kept elements times the f32 scale, rounded to f32 as the kernel does. */
function masked(x: ArrayLike<number>, keep: boolean[], p: number): number[] {
  const scale = Math.fround(1 / (1 - p));
  return keep.map((k, i) => (k ? Math.fround(x[i] * scale) : 0));
}

gpuTest(
  "dropout: mask statistics, exact host-replicated mask, and the backward uses the same mask",
  async () => {
    const n = 100_003;
    for (const p of [0.1, 0.5]) {
      const x = Float32Array.from(randn(n, 1));
      const dy = Float32Array.from(randn(n, 2));
      const xt = keep(tensor(x, [n]));
      xt.requiresGrad = true;
      const seed = getRngCounter();
      const out = keep(tidy(() => dropout(xt, p)));
      const got = await out.toArray();
      tidy(() => backward(out, tensor(dy, [n])));
      const dx = await xt.grad!.toArray();
      out.dispose();
      xt.dispose();

      const dropped = got.filter((v) => v === 0).length / n;
      const sigma = Math.sqrt((p * (1 - p)) / n);
      assert.ok(Math.abs(dropped - p) < 4 * sigma, `dropped fraction ${dropped} for p = ${p} (σ ${sigma})`);
      const mask = keptMask(n, seed, p);
      assert.deepEqual(got, masked(x, mask, p));
      assert.deepEqual(dx, masked(dy, mask, p));
    }
  },
);

async function run(x: Tensor, seed: number, p: number): Promise<number[]> {
  setRngCounter(seed);
  const out = tidy(() => noGrad(() => dropout(x, p)));
  const values = await out.toArray();
  out.dispose();
  return values;
}

gpuTest("dropout: the same seed gives the same mask, another seed another", async () => {
  const x = tensor(Float32Array.from(randn(5000, 3)), [50, 100]);
  const first = await run(x, 7, 0.3);
  assert.deepEqual(await run(x, 7, 0.3), first);
  const other = await run(x, 8, 0.3);
  const agree = other.filter((v, i) => (v === 0) === (first[i] === 0)).length / other.length;
  // Independent masks agree on p² + (1 - p)² = 58 % of elements.
  assert.ok(Math.abs(agree - 0.58) < 0.03, `masks of seeds 7 and 8 agree on ${agree}`);
  x.dispose();
});

gpuTest("dropout: a checkpointed block recomputes the same mask in its backward", async () => {
  const n = 3001;
  const p = 0.25;
  const x = keep(tensor(Float32Array.from(randn(n, 4)), [n]));
  x.requiresGrad = true;
  const dy = Float32Array.from(randn(n, 5));
  const out = keep(tidy(() => checkpoint((input) => dropout(input, p), [x])));
  const got = await out.toArray();
  // Draws between the forward and the backward must not change the recomputed mask.
  setRngCounter(getRngCounter() + 10);
  tidy(() => backward(out, tensor(dy, [n])));
  const dx = await x.grad!.toArray();
  out.dispose();
  x.dispose();
  const keptInForward = got.map((v) => v !== 0);
  assert.deepEqual(dx, masked(dy, keptInForward, p));
});

gpuTest(
  "dropout: p = 0 or not training returns x itself; p outside [0, 1) throws before any dispatch",
  () => {
    tidy(() => {
      const x = tensor(new Float32Array(6), [2, 3]);
      const ids = tensor(new Int32Array(6), [2, 3], "i32");
      const before = runtime().dispatchCount;
      assert.equal(dropout(x, 0), x);
      assert.equal(dropout(x, 0.5, false), x);
      for (const p of [-0.1, 1, 1.5, NaN]) assert.throws(() => dropout(x, p), RangeError);
      assert.throws(() => dropout(ids, 0.5), TypeError);
      assert.equal(runtime().dispatchCount, before, "dispatched work");
    });
    return Promise.resolve();
  },
);
