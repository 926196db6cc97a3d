import {
  ADAM8_BLOCK,
  adam8bitMaps,
  adam8bitState,
  adamw8bitStep,
  disposeAdam8bitState,
  readAdam8bitMoments,
} from "../../compute/adam8bit.ts";
import { dynamicMap } from "../../compute/nf4.ts";
import { keep, tensor } from "../../compute/tensor.ts";
import { assertClose, gpuTest, randn } from "./harness.ts";

const OPTIONS = { lr: 1e-2, beta1: 0.9, beta2: 0.999, eps: 1e-8, weightDecay: 0.01 };

/** float64 reference of bitsandbytes' blockwise 8-bit AdamW (nearest-code requantisation every step). */
function reference(param: Float64Array, grads: Float64Array[], steps: number) {
  const signed = dynamicMap(true), unsigned = dynamicMap(false);
  const nearest = (map: Float32Array, x: number) => {
    let best = 0;
    for (let c = 1; c < 256; c++) if (Math.abs(map[c] - x) < Math.abs(map[best] - x)) best = c;
    return map[best];
  };
  const p = Float64Array.from(param);
  const m = new Float64Array(p.length), v = new Float64Array(p.length);
  const exactM = new Float64Array(p.length), exactV = new Float64Array(p.length);
  for (let t = 1; t <= steps; t++) {
    const g = grads[t - 1];
    const c1 = 1 - OPTIONS.beta1 ** t, c2 = Math.sqrt(1 - OPTIONS.beta2 ** t);
    for (let i = 0; i < p.length; i++) {
      m[i] = OPTIONS.beta1 * m[i] + (1 - OPTIONS.beta1) * g[i];
      v[i] = OPTIONS.beta2 * v[i] + (1 - OPTIONS.beta2) * g[i] * g[i];
      exactM[i] = OPTIONS.beta1 * exactM[i] + (1 - OPTIONS.beta1) * g[i];
      exactV[i] = OPTIONS.beta2 * exactV[i] + (1 - OPTIONS.beta2) * g[i] * g[i];
      p[i] = p[i] * (1 - OPTIONS.lr * OPTIONS.weightDecay) -
        (OPTIONS.lr * c2 / c1) * m[i] / (Math.sqrt(v[i]) + OPTIONS.eps * c2);
    }
    for (let start = 0; start < p.length; start += ADAM8_BLOCK) {
      const end = Math.min(start + ADAM8_BLOCK, p.length);
      let am = 0, av = 0;
      for (let i = start; i < end; i++) {
        am = Math.max(am, Math.abs(m[i]));
        av = Math.max(av, v[i]);
      }
      for (let i = start; i < end; i++) {
        m[i] = am > 0 ? nearest(signed, m[i] / am) * am : 0;
        v[i] = av > 0 ? nearest(unsigned, v[i] / av) * av : 0;
      }
    }
  }
  return { p, m, v, exactM, exactV };
}

gpuTest(
  "adamw 8-bit: three steps match the blockwise reference; quantised moments stay near exact ones",
  async () => {
    const n = 700; // three blocks, the last partial
    const initial = randn(n, 1);
    const grads = [randn(n, 2, 0.5), randn(n, 3, 0.5), randn(n, 4, 0.5)];
    const param = keep(tensor(Float32Array.from(initial), [n], "f32", "weights"));
    const maps = adam8bitMaps();
    const state = adam8bitState(param);
    for (let t = 1; t <= 3; t++) {
      param.grad?.dispose();
      param.grad = keep(tensor(Float32Array.from(grads[t - 1]), [n], "f32", "grads"));
      adamw8bitStep(param, state, maps, { ...OPTIONS, step: t });
    }
    const ref = reference(initial, grads, 3);
    assertClose("parameters after 3 steps", await param.toArray(), ref.p, 1e-5);
    const [m, v] = await readAdam8bitMoments(state, n);
    assertClose("m (quantised) vs reference", Array.from(m), ref.m, 1e-3);
    assertClose("v (quantised) vs reference", Array.from(v), ref.v, 1e-3);
    // The dynamic maps keep the 8-bit moments within a few percent of unquantised AdamW's (norm-wise).
    assertClose("m vs exact AdamW", Array.from(m), ref.exactM, 0.05);
    assertClose("v vs exact AdamW", Array.from(v), ref.exactV, 0.05);
    disposeAdam8bitState(state);
    maps.dispose();
    param.dispose();
  },
);

gpuTest("adamw 8-bit: a parameter without a gradient or a bad step is refused", async () => {
  const param = keep(tensor(new Float32Array(10), [10], "f32", "weights"));
  const maps = adam8bitMaps();
  const state = adam8bitState(param);
  let message = "";
  try {
    adamw8bitStep(param, state, maps, { ...OPTIONS, step: 1 });
  } catch (err) {
    message = (err as Error).message;
  }
  if (!message.includes("no gradient")) throw new Error(`unexpected: ${message}`);
  disposeAdam8bitState(state);
  maps.dispose();
  param.dispose();
  await Promise.resolve();
});

gpuTest(
  "adamw 8-bit: a clip coefficient on the GPU scales the gradient as it is read, bit for bit",
  async () => {
    const n = 2 * ADAM8_BLOCK + 17;
    const start = Float32Array.from(randn(n, 41));
    const grad = Float32Array.from(randn(n, 42));
    const coef = Math.fround(0.37);
    const run = async (g: Float32Array, clip: number | null) => {
      const param = keep(tensor(start, [n], "f32", "weights"));
      param.grad = keep(tensor(g, [n], "f32", "grads"));
      const maps = adam8bitMaps();
      const state = adam8bitState(param);
      const clipTensor = clip === null ? null : keep(tensor(Float32Array.of(clip, 0), [2]));
      adamw8bitStep(param, state, maps, { ...OPTIONS, step: 1 }, clipTensor);
      const out = await param.toArray();
      for (const t of [param.grad, param, maps, clipTensor]) t?.dispose();
      disposeAdam8bitState(state);
      return out;
    };
    const prescaled = grad.map((x) => Math.fround(x * coef));
    const expected = await run(prescaled, null);
    const got = await run(grad, coef);
    if (got.some((x, i) => x !== expected[i])) throw new Error("clipped step differs from the prescaled one");
    if (got.every((x, i) => x === start[i])) throw new Error("the step did not move the parameter");
  },
);
