/**
 * Shared test support for GPU kernels: a leak-checked, NaN-poisoned test wrapper, seeded random data, norm-wise
 * comparison against float64 references, and a gradient check against central finite differences of a float64
 * reference forward.
 */
import { backward, clearTape } from "../../compute/autograd.ts";
import { fill, fillBits } from "../../compute/elementwise.ts";
import { NF4_BLOCK } from "../../compute/nf4.ts";
import { NF4_LEVELS, NF4_LEVELS_F16 } from "../../compute/nf4_level.ts";
import { initRuntime, rt } from "../../compute/runtime.ts";
import { seededRandom } from "../../lib/generate/sampling.ts";
import { empty, keep, setPoisonOnAlloc, type Tensor, tensor, tidy } from "../../compute/tensor.ts";

const NAN_BITS = 0x7fc00000;
const poison = (t: Tensor) => fillBits(t, NAN_BITS);

/** Runs `fn` with fresh outputs left unpoisoned, so that the dispatches it issues are only its own. */
export function unpoisoned<T>(fn: () => T): T {
  setPoisonOnAlloc(null);
  try {
    return fn();
  } finally {
    setPoisonOnAlloc(poison);
  }
}

/** A GPU test: runs on the real adapter with fresh outputs poisoned and checks that no GPU memory leaks. */
export function gpuTest(name: string, fn: () => Promise<void>): void {
  Deno.test({
    name,
    sanitizeResources: false,
    sanitizeOps: false,
    fn: async () => {
      const runtime = await initRuntime();
      setPoisonOnAlloc(poison);
      const before = runtime.pool.stats().liveBytes;
      try {
        await fn();
      } finally {
        clearTape();
        setPoisonOnAlloc(null);
      }
      await runtime.sync();
      const after = runtime.pool.stats().liveBytes;
      if (after !== before) {
        throw new Error(
          `GPU memory leak: ${after - before} live bytes more after the test (${
            JSON.stringify(runtime.pool.stats().byTag)
          })`,
        );
      }
    },
  });
}

/**
 * A GPU test of kernels written both with subgroup operations and without (workgroup reductions and the decode
 * GEMV): runs as the device runs them (with subgroups where it has them) and again with subgroups off.
 */
export function gpuTestSubgroupVariants(name: string, fn: () => Promise<void>): void {
  gpuTest(name, fn);
  gpuTest(`${name} [without subgroups]`, async () => {
    rt().useSubgroups(false);
    try {
      await fn();
    } finally {
      rt().useSubgroups(true);
    }
  });
}

/** Deterministic PRNG (the sampler's mulberry32). */
export const rng = seededRandom;

/** Uniform values in [-scale, scale), never exactly zero, rounded to f32 so the f64 reference sees the same inputs. */
export function randn(n: number, seed: number, scale = 1): Float64Array {
  const next = rng(seed);
  const out = new Float64Array(n);
  for (let i = 0; i < n; i++) {
    let v = (next() * 2 - 1) * scale;
    if (Math.abs(v) < 1e-3 * scale) v = 1e-3 * scale;
    out[i] = Math.fround(v);
  }
  return out;
}

/** ‖a − b‖ / ‖b‖ (norm-wise relative error); NaN anywhere fails. */
export function relError(actual: ArrayLike<number>, expected: ArrayLike<number>): number {
  if (actual.length !== expected.length) throw new Error(`length ${actual.length} vs ${expected.length}`);
  let num = 0;
  let den = 0;
  for (let i = 0; i < actual.length; i++) {
    const a = actual[i];
    if (!Number.isFinite(a)) return Infinity;
    num += (a - expected[i]) ** 2;
    den += expected[i] ** 2;
  }
  return den === 0 ? Math.sqrt(num) : Math.sqrt(num / den);
}

export function assertClose(
  label: string,
  actual: ArrayLike<number>,
  expected: ArrayLike<number>,
  tol: number,
) {
  const err = relError(actual, expected);
  if (!(err <= tol)) {
    const firstBad = Array.from(actual).findIndex((a, i) =>
      !(Math.abs(a - expected[i]) <= tol * (1 + Math.abs(expected[i])))
    );
    throw new Error(
      `${label}: relative error ${err.toExponential(3)} > ${tol} (first bad index ${firstBad}: got ${
        actual[firstBad]
      }, want ${expected[firstBad]})`,
    );
  }
}

export interface GradInput {
  data: Float64Array;
  shape: number[];
  /** false for inputs whose gradient is not checked (ids, masks). */
  grad?: boolean;
}

/**
 * Checks an op's forward against a float64 reference and its backward against central finite differences of
 * that reference: loss = Σ out · R for a random R, so every output element's gradient path is exercised.
 */
export async function checkOp(
  label: string,
  inputs: GradInput[],
  gpu: (...xs: Tensor[]) => Tensor,
  ref: (...xs: Float64Array[]) => Float64Array,
  tol: { forward: number; grad: number; fdSamples?: number },
): Promise<void> {
  const expected = ref(...inputs.map((i) => i.data));
  const weights = randn(expected.length, 9999);
  const params = inputs.map((i) => {
    const t = keep(tensor(Float32Array.from(i.data), i.shape));
    t.requiresGrad = i.grad !== false;
    return t;
  });
  try {
    const out = keep(tidy(() => gpu(...params)));
    assertClose(`${label} forward`, await out.toArray(), expected, tol.forward);
    const gradOut = keep(tensor(Float32Array.from(weights), out.shape));
    backward(out, gradOut);
    gradOut.dispose();
    out.dispose();
    for (let k = 0; k < inputs.length; k++) {
      if (inputs[k].grad === false) continue;
      const grad = params[k].grad;
      if (!grad) throw new Error(`${label}: input ${k} got no gradient`);
      const analytic = await grad.toArray();
      const picks = sampleIndices(inputs[k].data.length, tol.fdSamples ?? FD_SAMPLES, 77 + k);
      const numeric = finiteDifference(inputs, k, ref, weights, picks);
      assertClose(`${label} grad of input ${k}`, picks.map((i) => analytic[i]), numeric, tol.grad);
    }
  } finally {
    for (const p of params) p.dispose();
  }
}

/** Gradient elements checked by finite differences per input (all of them for small inputs). */
const FD_SAMPLES = 160;

function sampleIndices(n: number, count: number, seed: number): number[] {
  if (n <= count) return Array.from({ length: n }, (_, i) => i);
  const next = rng(seed);
  const picked = new Set<number>([0, n - 1]);
  while (picked.size < count) picked.add(Math.floor(next() * n));
  return [...picked].sort((a, b) => a - b);
}

function finiteDifference(
  inputs: GradInput[],
  k: number,
  ref: (...xs: Float64Array[]) => Float64Array,
  weights: Float64Array,
  picks: number[],
): Float64Array {
  const xs = inputs.map((i) => Float64Array.from(i.data));
  const loss = () => {
    const out = ref(...xs);
    let s = 0;
    for (let i = 0; i < out.length; i++) s += out[i] * weights[i];
    return s;
  };
  return Float64Array.from(picks, (i) => {
    const x0 = xs[k][i];
    const h = 1e-6 * Math.max(1, Math.abs(x0));
    xs[k][i] = x0 + h;
    const up = loss();
    xs[k][i] = x0 - h;
    const down = loss();
    xs[k][i] = x0;
    return (up - down) / (2 * h);
  });
}

/** The runtime, for tests that need memory stats or to sync. */
export function runtime() {
  return rt();
}

/**
 * A kept accumulator x = 0 and addend y = 1 of n elements: `axpby(x, y, 1, 1)` counts its runs in x, so tests of
 * the runtime can check that every dispatch ran.
 */
export function counterPair(n: number): [Tensor, Tensor] {
  const x = keep(empty([n]));
  const y = keep(empty([n]));
  fill(x, 0);
  fill(y, 1);
  return [x, y];
}

/**
 * A dequantised NF4 weight with its levels rounded to f16, as the GEMV's level-pair table reads them. A block's
 * scale is its largest magnitude (its absmax element's code is ±1); each element's level is the one nearest to
 * element / scale.
 */
export function withF16Levels(dequantised: ArrayLike<number>): Float64Array {
  const out = new Float64Array(dequantised.length);
  for (let b = 0; b < out.length; b += NF4_BLOCK) {
    const block = Array.from({ length: Math.min(NF4_BLOCK, out.length - b) }, (_, i) => dequantised[b + i]);
    const scale = Math.max(...block.map(Math.abs));
    for (const [i, v] of block.entries()) {
      if (scale === 0) continue;
      const distance = (c: number) => Math.abs(v / scale - NF4_LEVELS[c]);
      const code = NF4_LEVELS.reduce<number>((best, _, c) => (distance(c) < distance(best) ? c : best), 0);
      out[b + i] = NF4_LEVELS_F16[code] * scale;
    }
  }
  return out;
}
