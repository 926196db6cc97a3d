/**
 * A frozen linear layer whose weight is stored in NF4 (QLoRA's base layers). Forward and the gradient to its
 * input read the packed 4-bit codes directly; the weight itself never trains.
 */
import {
  disposeNf4,
  type Nf4DecodeScales,
  nf4GemvScales,
  nf4Linear,
  type Nf4Weight,
  quantizeNf4,
} from "../../compute/nf4.ts";
import type { Tensor } from "../../compute/tensor.ts";
import type { GemvOperand, LinearLike } from "./linear.ts";

export class Nf4Linear implements LinearLike {
  readonly inFeatures: number;
  readonly outFeatures: number;

  constructor(
    readonly weight: Nf4Weight,
    readonly bias: Tensor | null,
    readonly name = "",
    readonly decodeScales: Nf4DecodeScales = "widened",
  ) {
    [this.outFeatures, this.inFeatures] = weight.shape;
  }

  /** Quantises an f32 weight [out, in] on the GPU and releases the f32 copy. */
  static async fromF32(
    weight: Tensor,
    bias: Tensor | null,
    doubleQuant: boolean,
    name = "",
    decodeScales: Nf4DecodeScales = "widened",
  ): Promise<Nf4Linear> {
    const quantized = await quantizeNf4(weight, doubleQuant);
    weight.dispose();
    if (bias) bias.requiresGrad = false;
    return new Nf4Linear(quantized, bias, name, decodeScales);
  }

  forward(x: Tensor): Tensor {
    return nf4Linear(x, this.weight, this.bias, this.decodeScales);
  }

  gemvOperand(): GemvOperand {
    return {
      storage: "nf4",
      weight: this.weight.packed.range,
      scales: nf4GemvScales(this.weight, this.decodeScales),
      bias: this.bias,
    };
  }

  /** Frozen: nothing trains here. */
  parameters(): Tensor[] {
    return [];
  }

  dispose(): void {
    disposeNf4(this.weight);
    this.bias?.dispose();
  }
}
