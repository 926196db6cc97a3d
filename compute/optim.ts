/**
 * Optimizer steps on the GPU, without readbacks: AdamW with PyTorch's semantics, global gradient-norm clipping
 * (torch.nn.utils.clip_grad_norm_), and gradient reset. Parameters without a gradient are skipped, as in torch.
 */
import { zeros } from "./elementwise.ts";
import { type KernelSpec, Params, rt } from "./runtime.ts";
import { assertDType, assertSameShape, empty, keep, type Tensor } from "./tensor.ts";

const FILE = new URL("./optim.wgsl", import.meta.url);
const WG = 256;
/** At most this many workgroups (partials) per gradient in the norm's first stage. */
const MAX_NORM_GROUPS = 256;
/** Elements each thread sums before more workgroups are worth launching. */
const ELEMENTS_PER_THREAD = 16;

function kernel(entry: string, bindings: KernelSpec["bindings"]): KernelSpec {
  return { file: FILE, entry, bindings };
}

export interface AdamWOptions {
  lr: number;
  beta1: number;
  beta2: number;
  eps: number;
  weightDecay: number;
  /** 1-based step number (bias corrections use it). */
  step: number;
}

/** First and second moment buffers of one parameter. */
export interface AdamWState {
  m: Tensor;
  v: Tensor;
}

/** Zeroed AdamW moments for each parameter (tagged "optimizer"). */
export function adamwStates(params: Tensor[]): AdamWState[] {
  return params.map((p) => ({ m: keep(zeros(p.shape, "optimizer")), v: keep(zeros(p.shape, "optimizer")) }));
}

/**
 * One AdamW step (torch.optim.AdamW, foreach=False, amsgrad=False, maximize=False): p *= 1 − lr·wd;
 * m = lerp(m, g, 1 − β1); v = β2·v + (1 − β2)·g²; p −= lr/(1 − β1ᵗ) · m / (√v / √(1 − β2ᵗ) + eps).
 * One kernel per parameter that has a gradient.
 */
export function adamwStep(
  params: Tensor[],
  states: AdamWState[],
  opts: AdamWOptions,
  clipCoef: Tensor | null = null,
): void {
  const { lr, beta1, beta2, eps, weightDecay, step } = opts;
  if (states.length !== params.length) {
    throw new RangeError(`adamwStep: ${params.length} parameters but ${states.length} states`);
  }
  if (!Number.isInteger(step) || step < 1) throw new RangeError(`adamwStep: step must be ≥ 1, got ${step}`);
  params.forEach((p, i) => {
    assertDType("adamwStep", p, "f32");
    assertSameShape("adamwStep m", p, states[i].m);
    assertSameShape("adamwStep v", p, states[i].v);
    if (p.grad) assertSameShape("adamwStep grad", p, p.grad);
  });
  const bc1 = 1 - beta1 ** step;
  const bc2 = 1 - beta2 ** step;
  params.forEach((p, i) => {
    if (!p.grad) return;
    const update = new Params()
      .u32(p.size, clipCoef ? 1 : 0, 0, 0)
      .f32(1 - lr * weightDecay, beta1, beta2, 1 - beta1, 1 - beta2, lr / bc1, Math.sqrt(bc2), eps);
    const { m, v } = states[i];
    rt().dispatch(
      kernel("adamw", ["read", "write", "write", "write", "read"]),
      update,
      [p.grad.range, p.range, m.range, v.range, (clipCoef ?? p.grad).range],
      Math.ceil(p.size / WG),
    );
  });
}

/**
 * Global-norm clipping as torch.nn.utils.clip_grad_norm_ computes it, left on the GPU: [coef, norm], the L2
 * norm of all gradients together and coef = min(1, maxNorm / (norm + 1e-6)). The optimizer steps multiply
 * each gradient by coef as they read it (adamwStep, adamw8bitStep), so clipping costs no pass of its own.
 */
export function gradClip(params: Tensor[], maxNorm: number): Tensor {
  if (!(maxNorm > 0)) throw new RangeError(`gradClip: maxNorm must be > 0, got ${maxNorm}`);
  const grads = params.flatMap((p) => (p.grad ? [p.grad] : []));
  for (const g of grads) assertDType("gradClip", g, "f32");
  const groups = grads.map((g) =>
    Math.max(1, Math.min(MAX_NORM_GROUPS, Math.ceil(g.size / (WG * ELEMENTS_PER_THREAD))))
  );
  const partialCount = groups.reduce((a, b) => a + b, 0);
  const partials = empty([Math.max(partialCount, 1)]); // partials: one sum of squares per workgroup
  const clip = empty([2]); // clip: [coef, norm]
  let base = 0;
  grads.forEach((g, i) => {
    rt().dispatch(
      kernel("sum_squares", ["read", "write"]),
      new Params().u32(g.size, base, groups[i]),
      [g.range, partials.range],
      groups[i],
    );
    base += groups[i];
  });
  rt().dispatch(
    kernel("total_norm", ["read", "write"]),
    new Params().u32(partialCount, 0, 0, 0).f32(0, 0, 0, 0, 0, 0, 0, 0, maxNorm),
    [partials.range, clip.range],
    1,
  );
  partials.dispose();
  return clip;
}

/** Drops every gradient (torch's zero_grad(set_to_none=True)); the next backward starts fresh. */
export function zeroGrads(params: Tensor[]): void {
  for (const p of params) {
    p.grad?.dispose();
    p.grad = null;
  }
}
