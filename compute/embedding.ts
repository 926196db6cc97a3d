/**
 * Embedding lookup with autograd: out[..., :] = table[ids[...], :]. The table may be f16 (frozen); the output
 * is f32. The backward scatter-adds into a [V, C] f32 gradient for the table without atomics: a first kernel
 * chains the tokens that share a row, a second sums each chain in token order (deterministic). Ids outside
 * [0, V) are clamped to the nearest row in the kernels (never out of bounds); callers validate ids on the host.
 */
import { needsGrad, record } from "./autograd.ts";
import { zeros } from "./elementwise.ts";
import { type KernelSpec, Params, rt } from "./runtime.ts";
import { assertDType, empty, shapeString, type Tensor } from "./tensor.ts";

const FILE = new URL("./embedding.wgsl", import.meta.url);
const WG = 256;

function kernel(entry: string, bindings: KernelSpec["bindings"], tableType = "f32"): KernelSpec {
  return { file: FILE, entry, bindings, defines: { T_TYPE: tableType } };
}

/** ids: i32 [...]; table: [V, C] f32 or f16. Returns [..., C] f32; the gradient flows to the table only. */
export function embedding(ids: Tensor, table: Tensor): Tensor {
  assertDType("embedding ids", ids, "i32");
  assertDType("embedding table", table, "f32", "f16");
  if (table.ndim !== 2 || (table.shape[0] === 0 && ids.size > 0)) {
    throw new RangeError(
      `embedding: table must be [V, C] with V > 0, got ${shapeString(table.shape)} for ids ${
        shapeString(ids.shape)
      }`,
    );
  }
  const [vocab, cols] = table.shape;
  const tokens = ids.size;
  const params = new Params().u32(tokens, vocab, cols);
  const out = empty([...ids.shape, cols]); // out: [..., C]
  rt().dispatch(
    kernel("gather", ["read", "read", "write"], table.dtype),
    params,
    [ids.range, table.range, out.range],
    Math.ceil((tokens * cols) / WG),
  );
  if (needsGrad(table)) {
    record(out, [ids, table], [ids], (gy, [sids]) => [null, tableGrad(sids, gy, vocab, cols)]);
  }
  return out;
}

function tableGrad(ids: Tensor, gy: Tensor, vocab: number, cols: number): Tensor {
  const tokens = ids.size;
  const params = new Params().u32(tokens, vocab, cols);
  const links = empty([tokens], "u32"); // links: [T]
  rt().dispatch(kernel("chain", ["read", "write"]), params, [ids.range, links.range], Math.ceil(tokens / WG));
  const dtable = zeros([vocab, cols]); // dtable: [V, C]
  rt().dispatch(
    kernel("scatter", ["read", "read", "read", "write"]),
    params,
    [ids.range, links.range, gy.range, dtable.range],
    Math.ceil((tokens * cols) / WG),
  );
  links.dispose();
  return dtable;
}
