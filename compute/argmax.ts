/**
 * Greedy token choice on the GPU: the index of each row's largest logit, the first on ties (as
 * lib/generate/sampling.ts `argmax`). Decoding writes it straight into the next step's input ids, so no logits
 * come back to the host. Not differentiable (the output is integer).
 */
import { type KernelSpec, Params, rt } from "./runtime.ts";
import { assertDType, empty, shapeString, type Tensor } from "./tensor.ts";

const FILE = new URL("./argmax.wgsl", import.meta.url);
const SCAN: KernelSpec = { file: FILE, entry: "scan", bindings: ["read", "write", "write", "write"] };
const MERGE: KernelSpec = { file: FILE, entry: "merge", bindings: ["read", "read", "write"] };

/** Columns one workgroup scans: 16 per thread, so a 152k vocabulary spreads over ~37 workgroups. */
const SPAN = 4096;

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
  const groups = Math.ceil(cols / SPAN);
  const params = new Params().u32(rows, cols, SPAN, groups);
  if (groups === 1) {
    rt().dispatch(SCAN, params, [logits.range, out.range, out.range, out.range], [1, rows, 1]);
    return out;
  }
  const value = empty([rows, groups]); // value, index: [B, groups], each span's best
  const index = empty([rows, groups], "u32");
  rt().dispatch(SCAN, params, [logits.range, out.range, value.range, index.range], [groups, rows, 1]);
  rt().dispatch(MERGE, params, [value.range, index.range, out.range], [1, rows, 1]);
  value.dispose();
  index.dispose();
  return out;
}
