/**
 * One training step, shared by the trainer and the benchmark (no npm imports): the forward + chunked loss of a
 * micro-batch, the optimizer (AdamW with f32 states or bitsandbytes-style 8-bit states), and a whole optimizer
 * step over accumulated micro-batches.
 */
import {
  adam8bitMaps,
  type Adam8bitState,
  adam8bitState,
  adamw8bitStep,
  disposeAdam8bitState,
} from "../../compute/adam8bit.ts";
import { backward } from "../../compute/autograd.ts";
import { axpby, scale } from "../../compute/elementwise.ts";
import { linearCrossEntropy } from "../../compute/loss.ts";
import { type AdamWState, adamwStates, adamwStep, gradClip, zeroGrads } from "../../compute/optim.ts";
import { rt } from "../../compute/runtime.ts";
import { empty, keep, type Tensor, tensor, tidy } from "../../compute/tensor.ts";
import type { CausalLM } from "../models/types.ts";
import type { Batch } from "./batches.ts";
import type { OptimizerKind } from "./config.ts";

/** AdamW for the trainable tensors, with f32 moments or 8-bit blockwise ones. */
export class Optimizer {
  private f32: AdamWState[] = [];
  private q8: Adam8bitState[] = [];
  private maps: Tensor | null = null;

  constructor(readonly params: Tensor[], readonly kind: OptimizerKind, readonly weightDecay: number) {
    if (kind === "adamw") this.f32 = adamwStates(params);
    else {
      this.maps = adam8bitMaps();
      this.q8 = params.map((p) => adam8bitState(p));
    }
  }

  /** One update from the parameters' gradients, each multiplied first by `clip[0]` when given (gradClip). */
  step(lr: number, step: number, clip: Tensor | null = null): void {
    const o = { lr, beta1: 0.9, beta2: 0.999, eps: 1e-8, weightDecay: this.weightDecay, step };
    if (this.maps) this.params.forEach((p, i) => adamw8bitStep(p, this.q8[i], this.maps!, o, clip));
    else adamwStep(this.params, this.f32, o, clip);
  }

  /** State tensors by name, for checkpoints. */
  tensors(): [string, Tensor][] {
    if (this.maps) {
      return this.q8.flatMap((s, i) =>
        [
          [`optim.${i}.qm`, s.qm],
          [`optim.${i}.qv`, s.qv],
          [`optim.${i}.absmax_m`, s.absmaxM],
          [`optim.${i}.absmax_v`, s.absmaxV],
        ] as [string, Tensor][]
      );
    }
    return this.f32.flatMap((s, i) => [[`optim.${i}.m`, s.m], [`optim.${i}.v`, s.v]] as [string, Tensor][]);
  }

  dispose(): void {
    for (const s of this.f32) {
      s.m.dispose();
      s.v.dispose();
    }
    for (const s of this.q8) disposeAdam8bitState(s);
    this.maps?.dispose();
  }
}

/** Forward + loss for one micro-batch; returns the mean loss over its trainable targets (recorded for backward). */
export function microBatchLoss(model: CausalLM, batch: Batch, checkpointing: boolean): Tensor {
  return tidy(() => {
    const ids = tensor(batch.ids, [batch.batch, batch.seq], "i32");
    const positions = tensor(
      Int32Array.from(batch.ids, (_, i) => i % batch.seq),
      [batch.batch, batch.seq],
      "i32",
    );
    const hidden = model.hidden(ids, { positions, checkpointing }); // hidden: [B, T, C]
    const targets = tensor(batch.targets, [batch.batch * batch.seq], "i32");
    return linearCrossEntropy(
      hidden.reshape([batch.batch * batch.seq, model.hiddenSize]),
      model.lmHead(),
      targets,
    );
  });
}

export interface StepResult {
  /** Mean of the micro-batches' losses. */
  loss: number;
  /** Global gradient norm before clipping. */
  gradNorm: number;
}

export interface StepOptions {
  lr: number;
  /** 1-based optimizer step (Adam's bias correction). */
  step: number;
  maxGradNorm: number;
  checkpointing: boolean;
}

/**
 * One optimizer step over `batches` (gradient accumulation): each micro-batch's loss, scaled by 1 / batches, is
 * backpropagated; the gradients are clipped to `maxGradNorm`, the optimizer steps and the gradients are zeroed.
 * The step is encoded and submitted when this returns; the promise resolves with its mean loss and gradient
 * norm, read back together. Callers may encode the next step before awaiting it (see lib/train/trainer.ts).
 */
export function optimizerStep(
  model: CausalLM,
  params: Tensor[],
  optimizer: Optimizer,
  batches: readonly Batch[],
  o: StepOptions,
): Promise<StepResult> {
  let meanLoss: Tensor | null = null;
  for (const batch of batches) {
    const loss = keep(microBatchLoss(model, batch, o.checkpointing));
    const scaled = keep(scale(loss, 1 / batches.length));
    loss.dispose();
    backward(scaled);
    if (meanLoss) {
      axpby(meanLoss, scaled, 1, 1);
      scaled.dispose();
    } else meanLoss = scaled;
  }
  const clip = keep(gradClip(params, o.maxGradNorm)); // clip: [coef, norm]
  optimizer.step(o.lr, o.step, clip);
  zeroGrads(params);
  const both = keep(empty([2]));
  rt().copy(meanLoss!.range, { ...both.range, size: 4 }, 4);
  rt().copy({ ...clip.range, offset: clip.range.offset + 4, size: 4 }, {
    ...both.range,
    offset: both.range.offset + 4,
    size: 4,
  }, 4);
  meanLoss!.dispose();
  clip.dispose();
  // The copy to the host is encoded (and submitted) by read() before it first awaits, so the buffer can go back
  // to the pool now: later work that reuses it runs after the copy.
  const values = both.read() as Promise<Float32Array>;
  both.dispose();
  return values.then(([loss, gradNorm]) => ({ loss, gradNorm }));
}
