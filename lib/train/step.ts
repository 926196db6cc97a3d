/**
 * One training step's parts, shared by the trainer and the benchmark (no npm imports): the forward + chunked
 * loss of a micro-batch, and the optimizer (AdamW with f32 states or bitsandbytes-style 8-bit states).
 */
import {
  adam8bitMaps,
  type Adam8bitState,
  adam8bitState,
  adamw8bitStep,
  disposeAdam8bitState,
} from "../../compute/adam8bit.ts";
import { linearCrossEntropy } from "../../compute/loss.ts";
import { type AdamWState, adamwStates, adamwStep } from "../../compute/optim.ts";
import { type Tensor, tensor, tidy } from "../../compute/tensor.ts";
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

  step(lr: number, step: number): void {
    const o = { lr, beta1: 0.9, beta2: 0.999, eps: 1e-8, weightDecay: this.weightDecay, step };
    if (this.maps) this.params.forEach((p, i) => adamw8bitStep(p, this.q8[i], this.maps!, o));
    else adamwStep(this.params, this.f32, o);
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

export /** Forward + loss for one micro-batch; returns the mean loss over its trainable targets (recorded for backward). */
function microBatchLoss(model: CausalLM, batch: Batch, checkpointing: boolean): Tensor {
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
