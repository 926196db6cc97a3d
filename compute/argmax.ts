/**
 * Greedy token choice on the GPU: the index of each row's largest logit, the first on ties (as
 * lib/generate/sampling.ts `argmax`). Decoding writes it straight into the next step's input ids, so no logits
 * come back to the host. Not differentiable (the output is integer).
 */
import { type KernelSpec, Params, rt } from "./runtime.ts";
import { assertDType, empty, shapeString, type Tensor } from "./tensor.ts";

const SPEC: KernelSpec = {
  file: new URL("./argmax.wgsl", import.meta.url),
  entry: "main",
  bindings: ["read", "write"],
};

/**
 * logits: f32 [B, V] with V ≥ 1 -> i32 [B]. With `into` (an i32 tensor of B elements, e.g. a view of a decoding
 * buffer) the ids are written there and it is returned; otherwise a new tensor is.
 */
export function argmax(logits: Tensor, into?: Tensor): Tensor {
  assertDType("argmax logits", logits, "f32");
  if (logits.ndim !== 2 || logits.shape[1] === 0) {
    throw new RangeError(`argmax: logits must be [B, V] with V > 0, got ${shapeString(logits.shape)}`);
  }
  const [rows, cols] = logits.shape;
  if (into) {
    assertDType("argmax output", into, "i32");
    if (into.size !== rows) {
      throw new RangeError(`argmax: output ${shapeString(into.shape)} does not hold ${rows} ids`);
    }
  }
  const out = into ?? empty([rows], "i32");
  rt().dispatch(SPEC, new Params().u32(rows, cols), [
    logits.range,
    out.range,
  ], rows);
  return out;
}
