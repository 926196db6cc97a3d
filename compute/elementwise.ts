/**
 * Elementwise ops with autograd: add / sub / mul with numpy broadcasting, scale, SiLU, GELU (tanh, GPT-2's
 * gelu_new), fills and in-place accumulation.
 */
import { needsGrad, record, registerGradKernels } from "./autograd.ts";
import { ACTIVATION_FNS_WGSL } from "./activation_fns.ts";
import { type KernelSpec, Params, rt } from "./runtime.ts";
import { assertDType, empty, shapeString, Tensor } from "./tensor.ts";

const FILE = new URL("./elementwise.wgsl", import.meta.url);
const MAX_DIMS = 8;
const NO_OP = { BINARY_OP: "a", UNARY_OP: "x", UNARY_GRAD: "dy" };

function spec(
  entry: string,
  bindings: KernelSpec["bindings"],
  defines: Partial<typeof NO_OP> = {},
): KernelSpec {
  return { file: FILE, entry, bindings, defines: { ...NO_OP, ACTIVATIONS: ACTIVATION_FNS_WGSL, ...defines } };
}

function groups(n: number): number {
  return Math.ceil(n / 256);
}

function packDims(params: Params, values: number[]): void {
  const padded = [...values, ...new Array(MAX_DIMS - values.length).fill(0)];
  params.u32(...padded);
}

function header(n: number, ndim: number, count = 0, alpha = 0, beta = 0): Params {
  if (ndim > MAX_DIMS) throw new RangeError(`elementwise ops support up to ${MAX_DIMS} dims, got ${ndim}`);
  return new Params().u32(n, ndim, count, 0).f32(alpha, beta).u32(0, 0);
}

/** numpy broadcast of two shapes (right-aligned); throws naming both shapes when incompatible. */
export function broadcastShapes(op: string, a: readonly number[], b: readonly number[]): number[] {
  const ndim = Math.max(a.length, b.length);
  const out: number[] = [];
  for (let i = 0; i < ndim; i++) {
    const da = a[a.length - ndim + i] ?? 1;
    const db = b[b.length - ndim + i] ?? 1;
    if (da !== db && da !== 1 && db !== 1) {
      throw new RangeError(`${op}: shapes ${shapeString(a)} and ${shapeString(b)} do not broadcast`);
    }
    out.push(da === 1 ? db : da);
  }
  return out;
}

/** Strides of `shape` seen from a broadcast `out` shape (0 along broadcast dims). */
function broadcastStrides(shape: readonly number[], out: readonly number[]): number[] {
  const strides = new Array(out.length).fill(0);
  let stride = 1;
  for (let i = shape.length - 1; i >= 0; i--) {
    const o = out.length - shape.length + i;
    strides[o] = shape[i] === 1 && out[o] !== 1 ? 0 : stride;
    stride *= shape[i];
  }
  return strides;
}

function binaryRaw(op: string, expr: string, a: Tensor, b: Tensor): Tensor {
  assertDType(op, a, "f32");
  assertDType(op, b, "f32");
  const shape = broadcastShapes(op, a.shape, b.shape);
  const out = empty(shape);
  const params = header(out.size, shape.length);
  packDims(params, shape);
  packDims(params, broadcastStrides(a.shape, shape));
  packDims(params, broadcastStrides(b.shape, shape));
  rt().dispatch(spec("binary", ["read", "read", "write"], { BINARY_OP: expr }), params, [
    a.range,
    b.range,
    out.range,
  ], groups(out.size));
  return out;
}

/** Workgroups a column sum aims for (an H100 has 132 SMs): fewer column blocks than this split the rows. */
const SUM_ROWS_TARGET_GROUPS = 264;
/** Rows a chunk of a split column sum covers at least (16 per thread), so the split pays for its second pass. */
const SUM_ROWS_MIN_CHUNK = 64;

/** out [cols] = column sums of grad viewed as [rows, cols], in two passes when the rows are split in chunks. */
function sumRows(grad: Tensor, rows: number, cols: number, out: Tensor): void {
  const blocks = Math.ceil(cols / 64);
  const chunks = Math.max(
    1,
    Math.min(Math.ceil(SUM_ROWS_TARGET_GROUPS / blocks), Math.floor(rows / SUM_ROWS_MIN_CHUNK)),
  );
  const perChunk = Math.ceil(rows / chunks);
  const used = Math.ceil(rows / perChunk);
  const partials = used === 1 ? out : empty([used, cols]); // partials: [chunks, cols]
  const params = header(cols, 0, perChunk);
  packDims(params, [rows]);
  rt().dispatch(spec("sum_rows", ["read", "write"]), params, [grad.range, partials.range], [blocks, used, 1]);
  if (used > 1) {
    sumRows(partials, used, cols, out);
    partials.dispose();
  }
}

/** Sums `grad` down to `shape` (the reverse of broadcasting `shape` up to grad.shape). */
export function sumTo(grad: Tensor, shape: readonly number[]): Tensor {
  if (grad.shape.length === shape.length && grad.shape.every((d, i) => d === shape[i])) return copy(grad);
  const ndim = grad.shape.length;
  const size = shape.reduce((x, y) => x * y, 1);
  const lead = ndim - shape.length;
  // Reducing only leading dims (a bias broadcast over rows): a column sum, parallel over the rows too.
  if (lead >= 0 && shape.every((d, i) => d === grad.shape[lead + i])) {
    const out = empty(shape);
    sumRows(grad, grad.size / size, size, out);
    return out;
  }
  const padded = [...new Array(ndim - shape.length).fill(1), ...shape];
  const kept = padded.map((d, i) => (d === grad.shape[i] ? d : 1));
  const reduced = padded.map((d, i) => (d === grad.shape[i] ? 1 : grad.shape[i]));
  if (padded.some((d, i) => d !== grad.shape[i] && d !== 1)) {
    throw new RangeError(`sumTo: ${shapeString(grad.shape)} does not reduce to ${shapeString(shape)}`);
  }
  const out = empty(shape);
  const count = reduced.reduce((x, y) => x * y, 1);
  const params = header(out.size, ndim, count);
  packDims(params, kept);
  packDims(params, broadcastStrides(grad.shape, grad.shape));
  packDims(params, reduced);
  rt().dispatch(spec("sum_to", ["read", "write"]), params, [grad.range, out.range], groups(out.size));
  return out;
}

/** a + b with broadcasting. */
export function add(a: Tensor, b: Tensor): Tensor {
  const out = binaryRaw("add", "a + b", a, b);
  if (needsGrad(a, b)) {
    record(
      out,
      [a, b],
      [],
      (g) => [a.requiresGrad ? sumTo(g, a.shape) : null, b.requiresGrad ? sumTo(g, b.shape) : null],
    );
  }
  return out;
}

/** a - b with broadcasting. */
export function sub(a: Tensor, b: Tensor): Tensor {
  const out = binaryRaw("sub", "a - b", a, b);
  if (needsGrad(a, b)) {
    record(out, [a, b], [], (g) => {
      if (!b.requiresGrad) return [sumTo(g, a.shape), null];
      const gb = sumTo(g, b.shape);
      return [a.requiresGrad ? sumTo(g, a.shape) : null, scale(gb, -1)];
    });
  }
  return out;
}

/** a * b with broadcasting. */
export function mul(a: Tensor, b: Tensor): Tensor {
  const out = binaryRaw("mul", "a * b", a, b);
  if (needsGrad(a, b)) {
    record(out, [a, b], [a, b], (g, [sa, sb]) => [
      a.requiresGrad ? sumTo(binaryRaw("mul", "a * b", g, sb), a.shape) : null,
      b.requiresGrad ? sumTo(binaryRaw("mul", "a * b", g, sa), b.shape) : null,
    ]);
  }
  return out;
}

function unaryRaw(entry: string, defines: Partial<typeof NO_OP>, x: Tensor, alpha = 0, beta = 0): Tensor {
  assertDType(entry, x, "f32");
  const out = empty(x.shape);
  rt().dispatch(spec("unary", ["read", "write"], defines), header(x.size, 0, 0, alpha, beta), [
    x.range,
    out.range,
  ], groups(x.size));
  return out;
}

function unaryGrad(defines: Partial<typeof NO_OP>, x: Tensor, dy: Tensor): Tensor {
  const dx = empty(x.shape);
  rt().dispatch(spec("unary_grad", ["read", "read", "write"], defines), header(x.size, 0), [
    x.range,
    dy.range,
    dx.range,
  ], groups(x.size));
  return dx;
}

/** x * s. */
export function scale(x: Tensor, s: number): Tensor {
  const out = unaryRaw("scale", { UNARY_OP: "x * p.alpha" }, x, s);
  if (needsGrad(x)) record(out, [x], [], (g) => [scale(g, s)]);
  return out;
}

const SILU = { UNARY_OP: "silu(x)", UNARY_GRAD: "dy * silu_grad(x)" };
const GELU = { UNARY_OP: "gelu(x)", UNARY_GRAD: "dy * gelu_grad(x)" };

/** x * sigmoid(x). */
export function silu(x: Tensor): Tensor {
  const out = unaryRaw("silu", SILU, x);
  if (needsGrad(x)) record(out, [x], [x], (g, [sx]) => [unaryGrad(SILU, sx, g)]);
  return out;
}

/** GELU, tanh approximation (GPT-2's gelu_new). */
export function gelu(x: Tensor): Tensor {
  const out = unaryRaw("gelu", GELU, x);
  if (needsGrad(x)) record(out, [x], [x], (g, [sx]) => [unaryGrad(GELU, sx, g)]);
  return out;
}

/** A new tensor with the same contents. */
export function copy(x: Tensor): Tensor {
  return unaryRaw("copy", {}, x);
}

/** Fills a tensor in place. */
export function fill(t: Tensor, value: number): Tensor {
  assertDType("fill", t, "f32");
  rt().dispatch(spec("fill", ["write"]), header(t.size, 0, 0, value), [t.range], groups(t.size));
  return t;
}

export function zeros(shape: readonly number[], tag = "activations"): Tensor {
  return fill(empty(shape, "f32", tag), 0);
}

export function full(shape: readonly number[], value: number, tag = "activations"): Tensor {
  return fill(empty(shape, "f32", tag), value);
}

/** dst = alpha * dst + beta * src, in place. */
export function axpby(dst: Tensor, src: Tensor, alpha: number, beta: number): void {
  if (dst.size !== src.size) {
    throw new RangeError(`axpby: ${shapeString(dst.shape)} and ${shapeString(src.shape)} differ in size`);
  }
  assertDType("axpby", dst, "f32");
  assertDType("axpby", src, "f32");
  rt().dispatch(spec("accumulate", ["read", "write"]), header(dst.size, 0, 0, alpha, beta), [
    src.range,
    dst.range,
  ], groups(dst.size));
}

/** Fills the raw 32-bit words of a tensor with `bits` (NaN poisoning in tests). */
export function fillBits(t: Tensor, bits: number): void {
  const words = Math.ceil(t.bytes / 4);
  rt().dispatch(spec("fill_bits", ["write"]), header(words, 0, bits), [t.range], groups(words));
}

registerGradKernels({
  accumulate: (dst, src) => axpby(dst, src, 1, 1),
  onesLike: (t) => full(t.shape, 1),
  copy,
});
