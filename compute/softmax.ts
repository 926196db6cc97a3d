/**
 * Softmax over the last dim with autograd. Numerically stable (the row max is subtracted) in one read pass
 * (online softmax); the backward uses the saved output: dx = y * (dy - Σ dy * y).
 */
import { needsGrad, record } from "./autograd.ts";
import { type KernelSpec, Params, rt } from "./runtime.ts";
import { assertDType, empty, shapeString, type Tensor } from "./tensor.ts";

const FILE = new URL("./softmax.wgsl", import.meta.url);

function kernel(entry: string, bindings: KernelSpec["bindings"]): KernelSpec {
  return { file: FILE, entry, bindings };
}

/** x: [..., N] f32 → softmax over N. Masked entries may be -inf (a fully masked row gives NaN). */
export function softmax(x: Tensor): Tensor {
  assertDType("softmax", x, "f32");
  if (x.ndim < 1) throw new RangeError(`softmax: input must have a last dim, got ${shapeString(x.shape)}`);
  const cols = x.shape[x.ndim - 1];
  const rows = cols === 0 ? 0 : x.size / cols;
  const y = empty(x.shape); // y: [..., N]
  rt().dispatch(kernel("forward", ["read", "write"]), new Params().u32(rows, cols), [x.range, y.range], rows);
  if (needsGrad(x)) {
    record(y, [x], [y], (gy, [sy]) => {
      const dx = empty(sy.shape); // dx: [..., N]
      rt().dispatch(
        kernel("backward", ["read", "read", "write"]),
        new Params().u32(rows, cols),
        [sy.range, gy.range, dx.range],
        rows,
      );
      return [dx];
    });
  }
  return y;
}
