/**
 * Reverse-mode autograd on a tape. Ops call `record()` after encoding their forward; `backward()` walks the
 * tape from the loss in reverse creation order (a valid topological order), accumulating gradients, and then
 * releases the graph. Leaves that require gradients receive `.grad`, accumulated across backward calls
 * (gradient accumulation) until the optimizer zeroes them.
 */
import { type GradNode, keep, setReshapeHook, type Tensor, tidy } from "./tensor.ts";

/** Computes the gradients of an op's inputs from its output gradient; null where an input needs none. */
export type BackwardFn = (gradOutput: Tensor, saved: Tensor[]) => (Tensor | null)[];

class Node implements GradNode {
  constructor(
    readonly output: Tensor,
    readonly inputs: Tensor[],
    public saved: Tensor[],
    readonly backward: BackwardFn,
  ) {}
  release(): void {
    for (const t of this.saved) t.dispose();
    this.saved = [];
  }
}

let gradEnabled = true;
const tapes: Node[][] = [[]];

/** Runs fn without recording gradients (inference, optimizer updates). */
export function noGrad<T>(fn: () => T): T {
  const before = gradEnabled;
  gradEnabled = false;
  try {
    return fn();
  } finally {
    gradEnabled = before;
  }
}

function withGrad<T>(fn: () => T): T {
  const before = gradEnabled;
  gradEnabled = true;
  try {
    return fn();
  } finally {
    gradEnabled = before;
  }
}

/** True when an op on these inputs must be recorded. */
export function needsGrad(...inputs: (Tensor | null | undefined)[]): boolean {
  return gradEnabled && inputs.some((t) => t?.requiresGrad);
}

/**
 * Records an op. `saved` tensors are retained (as views) until backward or clearTape(); pass what the backward
 * needs and nothing more, since everything saved stays on the GPU.
 */
export function record(output: Tensor, inputs: Tensor[], saved: Tensor[], backward: BackwardFn): void {
  if (!needsGrad(...inputs)) return;
  const node = new Node(output, inputs, saved.map((t) => keep(t.view())), backward);
  output.requiresGrad = true;
  output.node = node;
  tapes.at(-1)!.push(node);
}

/** Records an op whose backward needs no input to require grad (e.g. a checkpointed block with parameters). */
function recordAlways(output: Tensor, inputs: Tensor[], saved: Tensor[], backward: BackwardFn): void {
  const node = new Node(output, inputs, saved, backward);
  output.requiresGrad = true;
  output.node = node;
  tapes.at(-1)!.push(node);
}

setReshapeHook((from, to) => record(to, [from], [], (g) => [g.reshape(from.shape)]));

/** Drops the recorded graph without computing gradients (e.g. after an evaluation forward with grad on). */
export function clearTape(): void {
  const tape = tapes.at(-1)!;
  for (const node of tape) {
    node.release();
    if (node.output.node === node) node.output.node = null;
  }
  tape.length = 0;
}

/** In-place accumulation `dst += src`, provided by the ops layer (set once at import time). */
let accumulate: (dst: Tensor, src: Tensor) => void = () => {
  throw new Error("autograd: no accumulate kernel registered");
};
let onesLike: (t: Tensor) => Tensor = () => {
  throw new Error("autograd: no fill kernel registered");
};
let copyOf: (t: Tensor) => Tensor = () => {
  throw new Error("autograd: no copy kernel registered");
};

export function registerGradKernels(
  kernels: { accumulate: typeof accumulate; onesLike: typeof onesLike; copy: typeof copyOf },
): void {
  accumulate = kernels.accumulate;
  onesLike = kernels.onesLike;
  copyOf = kernels.copy;
}

/**
 * Backpropagates from `loss` (a scalar unless `gradOutput` is given), then releases the graph. Gradients of
 * leaves accumulate into `.grad` (tagged "grads").
 */
export function backward(loss: Tensor, gradOutput?: Tensor): void {
  if (!loss.requiresGrad) throw new Error(`backward: ${loss} does not require grad (nothing was recorded)`);
  const tape = tapes.at(-1)!;
  noGrad(() => {
    const grads = new Map<Tensor, Tensor>();
    const seed = gradOutput ? copyOf(gradOutput) : onesLike(loss);
    keep(seed);
    const addGrad = (target: Tensor, g: Tensor) => {
      if (!target.requiresGrad) {
        g.dispose();
        return;
      }
      if (target.node) {
        const existing = grads.get(target);
        if (existing) {
          accumulate(existing, g);
          g.dispose();
        } else grads.set(target, g);
      } else if (target.grad) {
        accumulate(target.grad, g);
        g.dispose();
      } else {
        target.grad = g.retag("grads");
      }
    };
    if (loss.node) grads.set(loss, seed);
    else addGrad(loss, seed);
    for (let i = tape.length - 1; i >= 0; i--) {
      const node = tape[i];
      const g = grads.get(node.output);
      if (!g) continue;
      grads.delete(node.output);
      const inputGrads = tidy(() => node.backward(g, node.saved));
      const seen = new Set<Tensor>();
      inputGrads.forEach((gi, k) => {
        if (!gi) return;
        // A backward may hand the same tensor (or the incoming gradient) to several inputs; each needs its own.
        const own = gi === g || seen.has(gi) ? keep(copyOf(gi)) : keep(gi);
        seen.add(gi);
        addGrad(node.inputs[k], own);
      });
      if (!seen.has(g)) g.dispose();
    }
    for (const g of grads.values()) g.dispose();
  });
  clearTape();
}

/** RNG draws (dropout seeds) come from this counter so a recomputed block draws the same masks. */
let rngCounter = 0;
export function nextSeed(): number {
  return rngCounter++;
}
export function getRngCounter(): number {
  return rngCounter;
}
export function setRngCounter(value: number): void {
  rngCounter = value;
}

/**
 * Gradient checkpointing: runs `block` without keeping its activations; backward recomputes it with gradients
 * on, so only the block's inputs stay alive between forward and backward. Parameters used inside receive their
 * gradients during the recompute.
 */
export function checkpoint(block: (...inputs: Tensor[]) => Tensor, inputs: Tensor[]): Tensor {
  if (!gradEnabled) return block(...inputs);
  const rngAtForward = rngCounter;
  const output = noGrad(() => tidy(() => block(...inputs)));
  const savedInputs = inputs.map((t) => keep(t.view()));
  recordAlways(output, inputs, savedInputs, (gradOutput, saved) => {
    tapes.push([]);
    const rngAfter = rngCounter;
    rngCounter = rngAtForward;
    try {
      const detached = saved.map((t, k) => {
        const d = keep(t.view());
        d.requiresGrad = inputs[k].requiresGrad;
        return d;
      });
      const recomputed = withGrad(() => tidy(() => block(...detached)));
      if (recomputed.requiresGrad) backward(recomputed, gradOutput);
      recomputed.dispose();
      return detached.map((d) => {
        const g = d.grad;
        d.grad = null;
        d.dispose();
        return g;
      });
    } finally {
      rngCounter = rngAfter;
      clearTape();
      tapes.pop();
    }
  });
  return output;
}
