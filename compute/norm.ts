/**
 * Row normalisation over the last dim with autograd: RMSNorm (Qwen2/Llama) and LayerNorm (GPT-2). Weights may
 * be f16 (frozen); their gradients are f32. The forward saves x and per-row (mean, rstd), so the backward does
 * not recompute the row statistics. Weight and bias gradients are column sums over rows, taken in two
 * deterministic stages (partial sums over chunks of rows, then over chunks) instead of atomics.
 */
import { needsGrad, record } from "./autograd.ts";
import { type KernelSpec, Params, rt } from "./runtime.ts";
import { assertDType, empty, shapeString, type Tensor } from "./tensor.ts";

const FILE = new URL("./norm.wgsl", import.meta.url);
const WG = 256;
/** Rows per partial column sum: enough (chunk, column) threads to fill a GPU, short loops per thread. */
const ROWS_PER_CHUNK = 32;

function kernel(entry: string, bindings: KernelSpec["bindings"], center: boolean, wType: string): KernelSpec {
  return {
    file: FILE,
    entry,
    bindings,
    defines: { CENTER: String(center), W_TYPE: wType },
  };
}

function params(rows: number, cols: number, eps = 0, chunks = 0, group = 0): Params {
  return new Params().u32(rows, cols).f32(eps).u32(ROWS_PER_CHUNK, chunks, group);
}

function validate(op: string, x: Tensor, weight: Tensor, bias: Tensor | null, eps: number): void {
  assertDType(op, x, "f32");
  assertDType(op, weight, "f32", "f16");
  if (x.ndim < 1) throw new RangeError(`${op}: input must have a last dim, got ${shapeString(x.shape)}`);
  const cols = x.shape[x.ndim - 1];
  for (const [name, t] of [["weight", weight], ["bias", bias]] as const) {
    if (!t) continue;
    if (t.ndim !== 1 || t.shape[0] !== cols) {
      throw new RangeError(
        `${op}: ${name} ${shapeString(t.shape)} does not match input ${shapeString(x.shape)}`,
      );
    }
  }
  if (bias && bias.dtype !== weight.dtype) {
    throw new TypeError(`${op}: bias is ${bias.dtype} but weight is ${weight.dtype}; they must match`);
  }
  if (!(eps >= 0 && Number.isFinite(eps))) {
    throw new RangeError(`${op}: eps must be finite and >= 0, got ${eps}`);
  }
}

/** Shared by rmsNorm (bias null: no centring) and layerNorm. */
function rowNorm(op: string, x: Tensor, weight: Tensor, bias: Tensor | null, eps: number): Tensor {
  validate(op, x, weight, bias, eps);
  const center = bias !== null;
  const cols = x.shape[x.ndim - 1];
  const rows = cols === 0 ? 0 : x.size / cols;
  const y = empty(x.shape); // y: [..., C]
  const stats = empty([rows, 2]); // stats: [rows, (mean, rstd)]
  rt().dispatch(
    kernel("forward", ["read", "read", "read", "write", "write"], center, weight.dtype),
    params(rows, cols, eps),
    [x.range, weight.range, (bias ?? weight).range, y.range, stats.range],
    rows,
  );
  const inputs = bias ? [x, weight, bias] : [x, weight];
  if (needsGrad(...inputs)) {
    record(y, inputs, [x, weight, stats], (gy, [sx, sw, sstats]) => {
      const dx = x.requiresGrad ? gradInput(sx, sw, sstats, gy, center) : null;
      const wantParams = weight.requiresGrad || (bias?.requiresGrad ?? false);
      const [dw, db] = wantParams ? gradParams(sx, sstats, gy, center) : [null, null];
      const grads = [dx, weight.requiresGrad ? dw : null];
      if (bias) grads.push(bias.requiresGrad ? db : null);
      return grads;
    });
  }
  stats.dispose();
  return y;
}

function gradInput(x: Tensor, weight: Tensor, stats: Tensor, gy: Tensor, center: boolean): Tensor {
  const cols = x.shape[x.ndim - 1];
  const rows = stats.shape[0];
  const dx = empty(x.shape); // dx: [..., C]
  rt().dispatch(
    kernel("backward_x", ["read", "read", "read", "read", "write"], center, weight.dtype),
    params(rows, cols),
    [x.range, weight.range, stats.range, gy.range, dx.range],
    rows,
  );
  return dx;
}

/** Column sums Σ_rows dy * xhat (weight) and, when centring, Σ_rows dy (bias). */
function gradParams(x: Tensor, stats: Tensor, gy: Tensor, center: boolean): [Tensor, Tensor | null] {
  const cols = x.shape[x.ndim - 1];
  const rows = stats.shape[0];
  const chunks = Math.ceil(rows / ROWS_PER_CHUNK);
  const groups = center ? 2 : 1;
  const partials = empty([groups, chunks, cols]); // partials: [G, chunks, C]
  rt().dispatch(
    kernel("param_grad_partial", ["read", "read", "read", "write"], center, "f32"),
    params(rows, cols, 0, chunks),
    [x.range, stats.range, gy.range, partials.range],
    Math.ceil((chunks * cols) / WG),
  );
  const sums: Tensor[] = [];
  for (let group = 0; group < groups; group++) {
    const out = empty([cols]); // out: [C]
    rt().dispatch(
      kernel("param_grad_reduce", ["read", "write"], center, "f32"),
      params(rows, cols, 0, chunks, group),
      [partials.range, out.range],
      Math.ceil(cols / WG),
    );
    sums.push(out);
  }
  partials.dispose();
  return [sums[0], sums[1] ?? null];
}

/**
 * RMSNorm as Qwen2/Llama define it: y = x / sqrt(mean(x²) + eps) * weight over the last dim.
 * x: [..., C] f32; weight: [C] f32 or f16. Gradients to x and weight.
 */
export function rmsNorm(x: Tensor, weight: Tensor, eps: number): Tensor {
  return rowNorm("rmsNorm", x, weight, null, eps);
}

/**
 * LayerNorm as GPT-2 (torch.nn.LayerNorm) defines it: y = (x - mean) / sqrt(var + eps) * weight + bias, with
 * the biased variance, over the last dim. x: [..., C] f32; weight, bias: [C], both f32 or both f16.
 */
export function layerNorm(x: Tensor, weight: Tensor, bias: Tensor, eps: number): Tensor {
  return rowNorm("layerNorm", x, weight, bias, eps);
}
