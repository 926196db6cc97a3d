/**
 * Cross-entropy losses with autograd. `linearCrossEntropy` fuses the lm_head matmul with the loss and walks the
 * vocabulary in chunks (online logsumexp), so [tokens x vocab] logits are never materialised; its backward
 * recomputes each chunk's logits. Targets are i32; -100 (or anything outside [0, V)) is ignored, and the mean
 * is over the rest, counted on the GPU (a batch with none gives loss 0, never NaN).
 */
import { needsGrad, record } from "./autograd.ts";
import { copy } from "./elementwise.ts";
import { matmulInto } from "./matmul.ts";
import { type KernelSpec, Params, rt } from "./runtime.ts";
import { assertDType, DTYPE_BYTES, empty, shapeString, type Tensor } from "./tensor.ts";

const FILE = new URL("./loss.wgsl", import.meta.url);
const WG = 256;
/** Bytes of one logits chunk when the caller does not choose a chunk. */
const CHUNK_BYTES = 64 << 20;
/**
 * Logits up to this size are kept from the forward pass for the backward instead of recomputed (a vocabulary
 * matmul saved: 6 % of a rugpt3small full fine-tuning step); larger ones (the 7B's 8 x 256 tokens: 1.25 GB)
 * are recomputed chunk by chunk.
 */
const SAVED_LOGITS_BYTES = 512 << 20;

function kernel(entry: string, bindings: KernelSpec["bindings"]): KernelSpec {
  return { file: FILE, entry, bindings };
}

function lossParams(N: number, V: number, cols: number, v0: number, first: boolean): Params {
  return new Params().u32(N, V, cols, v0, first ? 1 : 0);
}

function checkTargets(op: string, targets: Tensor, N: number, other: string): void {
  assertDType(`${op} targets`, targets, "i32");
  if (targets.ndim !== 1 || targets.shape[0] !== N) {
    throw new RangeError(`${op}: targets ${shapeString(targets.shape)} do not match ${other} (want [${N}])`);
  }
}

/** Merges logits [N, cols] for vocabulary columns v0.. into the running row state [3, N]. */
function mergeChunk(logits: Tensor, targets: Tensor, state: Tensor, V: number, v0: number, first: boolean) {
  const [N, cols] = logits.shape;
  rt().dispatch(
    kernel("ce_chunk", ["read", "read", "write"]),
    lossParams(N, V, cols, v0, first),
    [logits.range, targets.range, state.range],
    N,
  );
}

/** Row logsumexp [N], mean loss [] and valid-target count [1] from the merged state. */
function finish(targets: Tensor, state: Tensor, N: number, V: number) {
  const lse = empty([N]);
  const loss = empty([]);
  const count = empty([1]);
  rt().dispatch(
    kernel("ce_finish", ["read", "read", "write", "write", "write"]),
    lossParams(N, V, 0, 0, true),
    [targets.range, state.range, lse.range, loss.range, count.range],
    1,
  );
  return { lse, loss, count };
}

/** In place: logits [N, cols] (columns v0..) become d(loss)/d(logits) scaled by the upstream gradient. */
function logitsGrad(
  logits: Tensor,
  targets: Tensor,
  lse: Tensor,
  count: Tensor,
  gradOut: Tensor,
  V: number,
  v0: number,
) {
  const [N, cols] = logits.shape;
  rt().dispatch(
    kernel("ce_grad", ["read", "read", "read", "read", "write"]),
    lossParams(N, V, cols, v0, false),
    [targets.range, lse.range, count.range, gradOut.range, logits.range],
    Math.ceil((N * cols) / WG),
  );
}

/**
 * Vocabulary rows per chunk: the requested (or memory-derived) count, rounded to a multiple that keeps every
 * chunk's row view of the weight (and of its f32 gradient) at a storage-binding-aligned offset.
 */
function chunkRows(N: number, V: number, C: number, weightDType: "f32" | "f16", requested?: number): number {
  const align = rt().gpu.storageAlign;
  const rowBytes = C * DTYPE_BYTES[weightDType];
  const gcd = (a: number, b: number): number => (b === 0 ? a : gcd(b, a % b));
  const multiple = align / gcd(rowBytes, align);
  const wanted = requested ?? Math.floor(CHUNK_BYTES / 4 / Math.max(N, 1));
  const rows = Math.max(multiple, Math.ceil(wanted / multiple) * multiple);
  return Math.min(rows, V);
}

export interface LinearCrossEntropyOptions {
  /** Vocabulary rows per chunk (rounded up to the storage alignment); default: 64 MiB of logits. */
  chunk?: number;
  /** Largest logits (bytes) the backward reuses from the forward rather than recomputes; default 512 MiB. */
  savedLogitsBytes?: number;
}

/**
 * mean over non-ignored rows of cross_entropy(h @ weightᵀ, targets), never materialising more than a chunk of
 * the logits at once unless the backward keeps them (up to `savedLogitsBytes`).
 * h [N, C] f32, weight [V, C] f32 or f16 (gradient only for f32), targets i32 [N] (-100 = ignore).
 * Returns a scalar (shape []).
 */
export function linearCrossEntropy(
  h: Tensor,
  weight: Tensor,
  targets: Tensor,
  opts: LinearCrossEntropyOptions = {},
): Tensor {
  assertDType("linearCrossEntropy h", h, "f32");
  assertDType("linearCrossEntropy weight", weight, "f32", "f16");
  if (h.ndim !== 2 || weight.ndim !== 2 || h.shape[1] !== weight.shape[1]) {
    throw new RangeError(
      `linearCrossEntropy: h ${shapeString(h.shape)} and weight ${
        shapeString(weight.shape)
      } must be [N, C], [V, C]`,
    );
  }
  const [N, C] = h.shape;
  const V = weight.shape[0];
  checkTargets("linearCrossEntropy", targets, N, `h ${shapeString(h.shape)}`);
  if (weight.requiresGrad && weight.dtype !== "f32") {
    throw new TypeError(`linearCrossEntropy: a trainable weight must be f32, got ${weight}`);
  }
  if (opts.chunk !== undefined && !(Number.isInteger(opts.chunk) && opts.chunk > 0)) {
    throw new RangeError(`linearCrossEntropy: chunk must be a positive integer, got ${opts.chunk}`);
  }
  const savedBytes = opts.savedLogitsBytes;
  if (savedBytes !== undefined && !(savedBytes >= 0)) {
    throw new RangeError(`linearCrossEntropy: savedLogitsBytes must be a number >= 0, got ${savedBytes}`);
  }
  const rows = chunkRows(N, V, C, weight.dtype as "f32" | "f16", opts.chunk);
  const state = empty([3, N]); // state: [max, sumexp, target logit] x N
  const grad = needsGrad(h, weight);
  const keepLogits = grad && N * V * 4 <= (savedBytes ?? SAVED_LOGITS_BYTES);
  const chunks: Tensor[] = []; // each chunk's logits [N, v1 - v0], when the backward reuses them
  for (let v0 = 0; v0 < V; v0 += rows) {
    const v1 = Math.min(V, v0 + rows);
    const w = weight.rows(v0, v1); // w: [v1 - v0, C]
    const logits = empty([N, v1 - v0]); // logits: [N, v1 - v0]
    matmulInto(logits, h, w, { transB: true });
    mergeChunk(logits, targets, state, V, v0, v0 === 0);
    if (keepLogits) chunks.push(logits);
    else logits.dispose();
    w.dispose();
  }
  const { lse, loss, count } = finish(targets, state, N, V);
  state.dispose();
  if (grad) {
    record(
      loss,
      [h, weight, targets],
      [h, weight, targets, lse, count, ...chunks],
      (gradOut, [sh, sw, st, slse, scount, ...saved]) => {
        const dh = h.requiresGrad ? empty([N, C]) : null; // dh: [N, C]
        const dw = weight.requiresGrad ? empty([V, C]) : null; // dw: [V, C]
        for (let v0 = 0, c = 0; v0 < V; v0 += rows, c++) {
          const v1 = Math.min(V, v0 + rows);
          const w = sw.rows(v0, v1);
          // dlogits: [N, v1 - v0], the logits first (kept from the forward or recomputed), made the gradient in
          // place.
          const dlogits = saved[c] ?? empty([N, v1 - v0]);
          if (!saved[c]) matmulInto(dlogits, sh, w, { transB: true });
          logitsGrad(dlogits, st, slse, scount, gradOut, V, v0);
          if (dh) matmulInto(dh, dlogits, w, {}, v0 > 0);
          if (dw) {
            const dwChunk = dw.rows(v0, v1); // dwChunk: [v1 - v0, C] = dlogitsᵀ @ h
            matmulInto(dwChunk, dlogits, sh, { transA: true });
            dwChunk.dispose();
          }
          if (!saved[c]) dlogits.dispose();
          w.dispose();
        }
        return [dh, dw, null];
      },
    );
  }
  for (const logits of chunks) logits.dispose();
  lse.dispose();
  count.dispose();
  return loss;
}

/** mean over non-ignored rows of cross_entropy(logits [N, V], targets i32 [N]); a scalar (shape []). */
export function crossEntropy(logits: Tensor, targets: Tensor): Tensor {
  assertDType("crossEntropy logits", logits, "f32");
  if (logits.ndim !== 2) {
    throw new RangeError(`crossEntropy: logits ${shapeString(logits.shape)} must be [N, V]`);
  }
  const [N, V] = logits.shape;
  checkTargets("crossEntropy", targets, N, `logits ${shapeString(logits.shape)}`);
  const state = empty([3, N]); // state: [max, sumexp, target logit] x N
  mergeChunk(logits, targets, state, V, 0, true);
  const { lse, loss, count } = finish(targets, state, N, V);
  state.dispose();
  if (needsGrad(logits)) {
    record(loss, [logits, targets], [logits, targets, lse, count], (gradOut, [sx, st, slse, scount]) => {
      const dlogits = copy(sx); // dlogits: [N, V]
      logitsGrad(dlogits, st, slse, scount, gradOut, V, 0);
      return [dlogits, null];
    });
  }
  lse.dispose();
  count.dispose();
  return loss;
}

/** log(softmax(x)) over the last dim of x [..., V]. */
export function logSoftmax(x: Tensor): Tensor {
  assertDType("logSoftmax", x, "f32");
  if (x.ndim < 1) throw new RangeError(`logSoftmax: input ${shapeString(x.shape)} has no last dim`);
  const V = x.shape[x.ndim - 1];
  const N = V === 0 ? 0 : x.size / V;
  const out = empty(x.shape);
  rt().dispatch(
    kernel("log_softmax", ["read", "write"]),
    lossParams(N, V, V, 0, true),
    [x.range, out.range],
    N,
  );
  if (needsGrad(x)) {
    record(out, [x], [out], (gradOut, [y]) => {
      const dx = empty(x.shape);
      rt().dispatch(
        kernel("log_softmax_grad", ["read", "read", "write"]),
        lossParams(N, V, V, 0, true),
        [y.range, gradOut.range, dx.range],
        N,
      );
      return [dx];
    });
  }
  return out;
}
