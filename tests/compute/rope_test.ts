import assert from "node:assert/strict";
import { backward, noGrad } from "../../compute/autograd.ts";
import { KVCache } from "../../compute/attention.ts";
import { rope, ropeAppend, ropeInvFreq } from "../../compute/rope.ts";
import { keep, type Tensor, tensor, tidy } from "../../compute/tensor.ts";
import { checkOp, gpuTest, randn, rng, runtime } from "./harness.ts";

/** float64 RoPE (rotate-half): inv_freq and angles in float64. `sign` -1 rotates backwards. */
function ropeRef(
  x: Float64Array,
  shape: number[],
  positions: Int32Array,
  invFreq: (i: number) => number,
  angleOf: (position: number, inv: number) => number,
  sign = 1,
): Float64Array {
  const [, , heads, dim] = shape;
  const half = dim / 2;
  const out = new Float64Array(x.length);
  for (let row = 0; row < x.length / dim; row++) {
    const position = positions[Math.floor(row / heads)];
    for (let i = 0; i < half; i++) {
      const angle = angleOf(position, invFreq(i));
      const c = Math.cos(angle);
      const s = sign * Math.sin(angle);
      const x1 = x[row * dim + i];
      const x2 = x[row * dim + i + half];
      out[row * dim + i] = x1 * c - x2 * s;
      out[row * dim + i + half] = x2 * c + x1 * s;
    }
  }
  return out;
}

const f64Freq = (theta: number, dim: number) => (i: number) => theta ** (-(2 * i) / dim);
const f64Angle = (position: number, inv: number) => position * inv;
/** transformers' arithmetic: inv_freq rounded to f32 at each step, then the f32 product position * inv_freq. */
const f32Freq = (theta: number, dim: number) => (i: number) =>
  Math.fround(1 / Math.fround(theta ** Math.fround((2 * i) / dim)));
const f32Angle = (position: number, inv: number) => Math.fround(Math.fround(position) * inv);

function randomPositions(n: number, below: number, seed: number): Int32Array {
  const next = rng(seed);
  return Int32Array.from({ length: n }, () => Math.floor(next() * below));
}

function maxAbsDiff(a: ArrayLike<number>, b: ArrayLike<number>): number {
  let worst = 0;
  for (let i = 0; i < a.length; i++) worst = Math.max(worst, Math.abs(a[i] - b[i]));
  return Number.isNaN(worst) ? Infinity : worst;
}

gpuTest("rope: forward and backward against float64 at short positions", async () => {
  const cases: [number[], number, number][] = [[[2, 5, 3, 10], 10000, 40], [[1, 7, 2, 64], 1e6, 60], [
    [3, 1, 1, 2],
    10000,
    20,
  ]];
  for (const [i, [shape, theta, below]] of cases.entries()) {
    const [batch, tokens] = shape;
    const positions = randomPositions(batch * tokens, below, 3 + i);
    const positionTensor = tensor(positions, [batch, tokens], "i32");
    try {
      await checkOp(
        `rope ${JSON.stringify(shape)} theta ${theta}`,
        [{ data: randn(shape.reduce((a, b) => a * b, 1), 7 + i), shape }],
        (x) => rope(x, positionTensor, theta),
        (x) => ropeRef(x, shape, positions, f64Freq(theta, shape[3]), f64Angle),
        // f32 angles differ from float64 ones by up to position * 6e-8 relative.
        { forward: 1e-5, grad: 1e-5 },
      );
    } finally {
      positionTensor.dispose();
    }
  }
});

gpuTest(
  "rope: matches transformers' f32 angle arithmetic at positions up to 32k (forward and backward)",
  async () => {
    const shape = [2, 8, 2, 128];
    const [theta, dim] = [1e6, 128];
    const positions = Int32Array.from([
      0,
      1,
      4095,
      8191,
      12345,
      20000,
      31999,
      32767,
      ...randomPositions(8, 32768, 5),
    ]);
    const x = randn(shape.reduce((a, b) => a * b, 1), 11);
    const dy = randn(x.length, 12);
    const xt = keep(tensor(Float32Array.from(x), shape));
    xt.requiresGrad = true;
    const out = keep(tidy(() => rope(xt, tensor(positions, [2, 8], "i32"), theta)));
    const got = await out.toArray();
    tidy(() => backward(out, tensor(Float32Array.from(dy), shape)));
    const dx = await xt.grad!.toArray();
    out.dispose();
    xt.dispose();

    const f32Out = ropeRef(x, shape, positions, f32Freq(theta, dim), f32Angle);
    const f32Dx = ropeRef(dy, shape, positions, f32Freq(theta, dim), f32Angle, -1);
    // Inputs lie in [-1, 1): 5e-7 absolute is a few f32 ulps of |x1 cos| + |x2 sin| (measured: 1.2e-7, 1.4e-7).
    const forwardError = maxAbsDiff(got, f32Out);
    const backwardError = maxAbsDiff(dx, f32Dx);
    assert.ok(forwardError <= 5e-7, `forward max |error| ${forwardError} vs the f32-emulated reference`);
    assert.ok(backwardError <= 5e-7, `backward max |error| ${backwardError} vs the f32-emulated reference`);
    // The float64 formula is not what transformers computes there: its angles drift by up to ~1e-3 rad.
    const f64Error = maxAbsDiff(got, ropeRef(x, shape, positions, f64Freq(theta, dim), f64Angle));
    assert.ok(f64Error > 1e-4, `float64 angles unexpectedly close (${f64Error})`);
  },
);

gpuTest("rope: cos/sin accurate for every integer angle up to 100k radians", async () => {
  // D = 2 has inv_freq [1]: x = (1, 0) rotates to (cos p, sin p).
  const count = 100_000;
  const positions = Int32Array.from({ length: count }, (_, i) => i);
  const x = new Float32Array(count * 2).map((_, i) => (i % 2 === 0 ? 1 : 0));
  const out = tidy(() =>
    noGrad(() => rope(tensor(x, [1, count, 1, 2]), tensor(positions, [1, count], "i32"), 10000))
  );
  const got = await out.toArray();
  out.dispose();
  let worst = 0;
  for (let p = 0; p < count; p++) {
    worst = Math.max(worst, Math.abs(got[2 * p] - Math.cos(p)), Math.abs(got[2 * p + 1] - Math.sin(p)));
  }
  assert.ok(worst <= 2.5e-7, `max |error| of cos/sin ${worst}`);
});

gpuTest("rope: inv_freq follows transformers' f32 steps", () => {
  const inv = ropeInvFreq(1e6, 128);
  const ref = f32Freq(1e6, 128);
  assert.equal(inv.length, 64);
  for (let i = 0; i < 64; i++) assert.equal(inv[i], ref(i));
  return Promise.resolve();
});

gpuTest("rope: shape and dtype errors throw before any dispatch", () => {
  tidy(() => {
    const x = tensor(new Float32Array(2 * 3 * 2 * 4), [2, 3, 2, 4]);
    const odd = tensor(new Float32Array(2 * 3 * 2 * 3), [2, 3, 2, 3]);
    const positions = tensor(new Int32Array(6), [2, 3], "i32");
    const wrongPositions = tensor(new Int32Array(6), [3, 2], "i32");
    const floatPositions = tensor(new Float32Array(6), [2, 3]);
    const before = runtime().dispatchCount;
    assert.throws(() => rope(x, wrongPositions, 1e4), {
      name: "RangeError",
      message: /\[3, 2\].*\[2, 3, 2, 4\]/,
    });
    assert.throws(() => rope(odd, positions, 1e4), { name: "RangeError", message: /\[2, 3, 2, 3\]/ });
    assert.throws(() => rope(x.reshape([6, 2, 4]), positions, 1e4), RangeError);
    assert.throws(() => rope(x, floatPositions, 1e4), TypeError);
    assert.throws(() => rope(x, positions, 0), RangeError);
    assert.equal(runtime().dispatchCount, before, "a rejected call dispatched work");
  });
  return Promise.resolve();
});

gpuTest("rope: ropeAppend (one dispatch) equals rope on q and k plus KVCache.append, bitwise", async () => {
  const [batch, tokens, hq, hkv, dim, maxLen] = [2, 3, 4, 2, 8, 9];
  const data = (n: number, seed: number) => Float32Array.from(randn(n, seed));
  const q = keep(tensor(data(batch * tokens * hq * dim, 81), [batch, tokens, hq, dim]));
  const k = keep(tensor(data(batch * tokens * hkv * dim, 82), [batch, tokens, hkv, dim]));
  const v = keep(tensor(data(batch * tokens * hkv * dim, 83), [batch, tokens, hkv, dim]));
  const positions = keep(
    tensor(Int32Array.from({ length: batch * tokens }, (_, i) => 4 + i * 7), [batch, tokens], "i32"),
  );
  const fused = new KVCache(batch, maxLen, hkv, dim);
  const separate = new KVCache(batch, maxLen, hkv, dim);
  // Two appends each, so the second starts past the first (length > 0).
  for (let round = 0; round < 2; round++) {
    const [a, b] = noGrad(() => [
      keep(ropeAppend(q, k, v, positions, 1e6, fused)),
      keep(tidy(() => {
        separate.append(rope(k, positions, 1e6), v);
        return rope(q, positions, 1e6);
      })),
    ]);
    assert.deepEqual(await a.toArray(), await b.toArray());
    a.dispose();
    b.dispose();
  }
  assert.equal(fused.length, 2 * tokens);
  // Only the written rows: the rest of each cache is whatever its buffer held.
  const filled = async (t: Tensor) =>
    (await t.toArray()).filter((_, i) => Math.floor(i / (hkv * dim)) % maxLen < 2 * tokens);
  assert.deepEqual(await filled(fused.keys()), await filled(separate.keys()));
  assert.deepEqual(await filled(fused.values()), await filled(separate.values()));
  q.requiresGrad = true;
  assert.throws(() => ropeAppend(q, k, v, positions, 1e6, fused), /no gradients/);
  for (const t of [q, k, v, positions]) t.dispose();
  fused.dispose();
  separate.dispose();
});
