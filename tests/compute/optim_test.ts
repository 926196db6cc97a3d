import assert from "node:assert/strict";
import { fill } from "../../compute/elementwise.ts";
import { adamwStates, adamwStep, gradClip, zeroGrads } from "../../compute/optim.ts";
import { rt } from "../../compute/runtime.ts";
import { empty, keep, parameter, type Tensor, tensor } from "../../compute/tensor.ts";
import { assertClose, gpuTestSubgroupVariants, randn } from "./harness.ts";

interface AdamWConfig {
  lr: number;
  beta1: number;
  beta2: number;
  eps: number;
  weightDecay: number;
}

/** float64 reference of torch.optim.AdamW's single-tensor step (amsgrad off), in place. */
function adamwRef(
  p: Float64Array,
  g: Float64Array,
  m: Float64Array,
  v: Float64Array,
  c: AdamWConfig,
  t: number,
) {
  const bc1 = 1 - c.beta1 ** t;
  const bc2 = 1 - c.beta2 ** t;
  for (let i = 0; i < p.length; i++) {
    p[i] *= 1 - c.lr * c.weightDecay;
    m[i] += (1 - c.beta1) * (g[i] - m[i]);
    v[i] = c.beta2 * v[i] + (1 - c.beta2) * g[i] * g[i];
    p[i] -= (c.lr / bc1) * m[i] / (Math.sqrt(v[i]) / Math.sqrt(bc2) + c.eps);
  }
}

/** Sets a parameter's gradient to the given values. */
function setGrad(p: Tensor, values: Float64Array): void {
  p.grad?.dispose();
  p.grad = keep(tensor(Float32Array.from(values), p.shape, "f32", "grads"));
}

for (const weightDecay of [0, 0.1]) {
  gpuTestSubgroupVariants(
    `adamwStep: 3 steps match torch's AdamW in float64 (weight decay ${weightDecay})`,
    async () => {
      const config = { lr: 0.05, beta1: 0.9, beta2: 0.999, eps: 1e-8, weightDecay };
      const shapes = [[1000], [37, 13], [5]];
      const data = shapes.map((s, i) => randn(s.reduce((a, b) => a * b, 1), 100 + i));
      const params = shapes.map((s, i) => parameter(Float32Array.from(data[i]), s, `p${i}`));
      const states = adamwStates(params);
      const ref = data.map((d) => ({
        p: Float64Array.from(d),
        m: new Float64Array(d.length),
        v: new Float64Array(d.length),
      }));
      try {
        for (let step = 1; step <= 3; step++) {
          // The last parameter has no gradient: it must stay untouched.
          for (let i = 0; i < 2; i++) {
            const g = randn(data[i].length, 1000 * step + i, step === 2 ? 1e-3 : 1);
            setGrad(params[i], g);
            adamwRef(ref[i].p, g, ref[i].m, ref[i].v, config, step);
          }
          adamwStep(params, states, { ...config, step });
        }
        for (let i = 0; i < 2; i++) {
          const got = await params[i].toArray();
          assertClose(`param ${i}`, got, ref[i].p, 1e-6);
          assertClose(
            `update of param ${i}`,
            got.map((x, j) => x - data[i][j]),
            ref[i].p.map((x, j) => x - data[i][j]),
            1e-5,
          );
          assertClose(`m ${i}`, await states[i].m.toArray(), ref[i].m, 1e-6);
          assertClose(`v ${i}`, await states[i].v.toArray(), ref[i].v, 1e-6);
        }
        assert.deepEqual(await params[2].toArray(), Array.from(Float32Array.from(data[2])));
      } finally {
        for (const p of params) p.dispose();
        for (const { m, v } of states) {
          m.dispose();
          v.dispose();
        }
      }
    },
  );
}

gpuTestSubgroupVariants(
  "gradClip: global norm over all grads and torch's clip coefficient, applied by adamwStep as it reads them",
  async () => {
    const config = { lr: 0.05, beta1: 0.9, beta2: 0.999, eps: 1e-8, weightDecay: 0.1, step: 1 };
    const shapes = [[700], [50, 100], [3]];
    const data = shapes.map((s, i) => randn(s.reduce((a, b) => a * b, 1), 300 + i));
    const params = shapes.map((s, i) => parameter(Float32Array.from(data[i]), s, `p${i}`));
    const noGradParam = parameter(new Float32Array(4), [4]);
    const states = adamwStates(params);
    try {
      // Above the limit (coefficient < 1), then below it (coefficient 1: the gradients pass unchanged).
      for (const maxNorm of [1.5, 1e4]) {
        const grads = shapes.map((s, i) => randn(s.reduce((a, b) => a * b, 1), 200 + i));
        params.forEach((p, i) => setGrad(p, grads[i]));
        const expectedNorm = Math.sqrt(grads.reduce((s, g) => s + g.reduce((a, x) => a + x * x, 0), 0));
        const coef = Math.min(1, maxNorm / (expectedNorm + 1e-6));
        const before = await Promise.all(params.map((p) => p.toArray()));
        const clip = gradClip([...params, noGradParam], maxNorm);
        const [gotCoef, gotNorm] = await clip.toArray();
        assertClose("total norm", [gotNorm], [expectedNorm], 1e-6);
        assertClose(`clip coefficient (max ${maxNorm})`, [gotCoef], [coef], 1e-6);
        for (const s of states) {
          for (const t of [s.m, s.v]) fill(t, 0);
        }
        adamwStep(params, states, config, clip);
        clip.dispose();
        for (let i = 0; i < params.length; i++) {
          const ref = {
            p: Float64Array.from(before[i]),
            m: new Float64Array(grads[i].length),
            v: new Float64Array(grads[i].length),
          };
          adamwRef(ref.p, grads[i].map((x) => x * coef), ref.m, ref.v, config, 1);
          assertClose(
            `m ${i} from the clipped gradient (max ${maxNorm})`,
            await states[i].m.toArray(),
            ref.m,
            1e-6,
          );
          assertClose(`param ${i} (max ${maxNorm})`, await params[i].toArray(), ref.p, 1e-6);
        }
      }
      zeroGrads(params);
      assert.ok(params.every((p) => p.grad === null));
      assert.throws(
        () => gradClip(params, 0),
        (e: Error) => e instanceof RangeError && /maxNorm/.test(e.message),
      );
    } finally {
      for (const p of [...params, noGradParam]) p.dispose();
      for (const { m, v } of states) {
        m.dispose();
        v.dispose();
      }
    }
  },
);

gpuTestSubgroupVariants("adamwStep: mismatched state shapes throw before any dispatch", async () => {
  const p = parameter(new Float32Array(6), [2, 3]);
  setGrad(p, new Float64Array(6));
  const good = adamwStates([p]);
  const bad = { m: empty([3, 2]), v: empty([2, 3]) };
  const before = rt().dispatchCount;
  const opts = { lr: 1e-3, beta1: 0.9, beta2: 0.999, eps: 1e-8, weightDecay: 0, step: 1 };
  assert.throws(
    () => adamwStep([p], [bad], opts),
    (e: unknown) => e instanceof RangeError && e.message.includes("[3, 2]") && e.message.includes("[2, 3]"),
  );
  assert.throws(() => adamwStep([p], [], opts), RangeError);
  assert.throws(() => adamwStep([p], good, { ...opts, step: 0 }), RangeError);
  assert.equal(rt().dispatchCount, before, "a failing call dispatched work");
  for (const t of [p, good[0].m, good[0].v, bad.m, bad.v]) t.dispose();
  await rt().sync();
});
