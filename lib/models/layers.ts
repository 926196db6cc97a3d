/** The decoder-stack loop shared by the architectures, with optional gradient checkpointing per layer. */
import { checkpoint } from "../../compute/autograd.ts";
import type { Tensor } from "../../compute/tensor.ts";
import type { ForwardOptions } from "./types.ts";

/**
 * Runs `layer(x, options, index)` for each layer. With checkpointing, every tensor a layer reads is passed as a
 * checkpoint input (positions included) so it is kept for the recompute in backward.
 */
export function runLayers<L>(
  layers: readonly L[],
  x: Tensor,
  options: ForwardOptions,
  layer: (layer: L, x: Tensor, options: ForwardOptions, index: number) => Tensor,
): Tensor {
  layers.forEach((l, i) => {
    x = options.checkpointing
      ? checkpoint((input, positions) => layer(l, input, { ...options, positions }, i), [
        x,
        options.positions,
      ])
      : layer(l, x, options, i);
  });
  return x;
}
