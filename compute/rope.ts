/**
 * Rotary position embedding (rotate-half convention of HF Qwen2/Llama) with autograd. Positions come from an
 * i32 tensor so decoding with a KV cache passes past_length + t. The frequencies are computed on the host in f32
 * exactly as transformers computes `inv_freq`, and the angle position * inv_freq is taken in f32 on the GPU as
 * transformers does, so results match it at long positions, not only a float64 formula at short ones.
 */
import { needsGrad, record } from "./autograd.ts";
import type { KVCache } from "./attention.ts";
import { ROPE_FNS_WGSL } from "./rope_fns.ts";
import { type KernelSpec, Params, rt } from "./runtime.ts";
import { assertDType, empty, shapeString, type Tensor } from "./tensor.ts";

const FILE = new URL("./rope.wgsl", import.meta.url);
const DEFINES = { ROPE_FNS: ROPE_FNS_WGSL };
const KERNEL: KernelSpec = {
  file: FILE,
  entry: "main",
  bindings: ["read", "read", "read", "write"],
  defines: DEFINES,
};
const APPEND_KERNEL: KernelSpec = {
  file: FILE,
  entry: "rope_append",
  bindings: ["read", "read", "read", "write", "read", "read", "write", "write"],
  defines: DEFINES,
};
const WG = 256;

/**
 * inv_freq[i] = 1 / theta^(2i / D), each step rounded to f32 as in transformers'
 * `1.0 / (base ** (torch.arange(0, dim, 2).float() / dim))`.
 */
export function ropeInvFreq(theta: number, headDim: number): Float32Array {
  const out = new Float32Array(headDim / 2);
  for (let i = 0; i < out.length; i++) {
    const exponent = Math.fround((2 * i) / headDim);
    out[i] = 1 / Math.fround(theta ** exponent);
  }
  return out;
}

/**
 * inv_freq tables by (theta, D), kept for the process like compiled pipelines: a few hundred bytes each, held
 * outside the tensor pool so they neither count as live tensors nor need a flush to upload.
 */
const invFreqBuffers = new Map<string, GPUBuffer>();

/** RoPE's inverse frequencies for (theta, headDim) on the GPU, made once. */
export function invFreqBuffer(theta: number, headDim: number): GPUBuffer {
  const key = `${theta}/${headDim}`;
  let buffer = invFreqBuffers.get(key);
  if (!buffer) {
    const values = ropeInvFreq(theta, headDim);
    buffer = rt().gpu.device.createBuffer({
      size: Math.max(4, values.byteLength),
      usage: GPUBufferUsage.STORAGE,
      mappedAtCreation: true,
      label: `rope-inv-freq-${key}`,
    });
    new Float32Array(buffer.getMappedRange()).set(values);
    buffer.unmap();
    invFreqBuffers.set(key, buffer);
  }
  return buffer;
}

function rotate(x: Tensor, positions: Tensor, theta: number, sign: number): Tensor {
  const [, , heads, headDim] = x.shape;
  const out = empty(x.shape); // out: [B, T, H, D]
  const pairs = x.size / 2;
  const invFreq = invFreqBuffer(theta, headDim);
  rt().dispatch(
    KERNEL,
    new Params().u32(pairs, heads, headDim / 2).f32(sign).u32(0, 0, 0, 0, 0, positions.offset),
    [x.range, positions.wholeBuffer, { buffer: invFreq, offset: 0, size: invFreq.size }, out.range],
    Math.ceil(pairs / WG),
  );
  return out;
}

/**
 * Inference with a KV cache, in one dispatch: q [B, T, Hq, D] and k [B, T, Hkv, D] rotated at `positions`, the
 * rotated k and v [B, T, Hkv, D] appended to the cache; returns the rotated q. Records no gradients (decoding
 * only), so it refuses inputs that need them.
 */
export function ropeAppend(
  q: Tensor,
  k: Tensor,
  v: Tensor,
  positions: Tensor,
  theta: number,
  cache: KVCache,
): Tensor {
  if (needsGrad(q, k, v)) {
    throw new TypeError("ropeAppend records no gradients: use rope() and KVCache.append");
  }
  checkQueryKey("ropeAppend", q, k, positions, theta);
  const [, tokens, heads, headDim] = q.shape;
  const start = cache.claim(k, v);
  const out = empty(q.shape); // out: [B, T, Hq, D]
  const half = headDim / 2;
  const pairs = q.size / 2;
  const pairsK = k.size / 2;
  const invFreq = invFreqBuffer(theta, headDim);
  rt().dispatch(
    APPEND_KERNEL,
    new Params().u32(pairs, heads, half).f32(1).u32(
      pairsK,
      k.shape[2],
      tokens,
      cache.maxLen,
      start,
      positions.offset,
    ),
    [
      q.range,
      positions.wholeBuffer,
      { buffer: invFreq, offset: 0, size: invFreq.size },
      out.range,
      k.range,
      v.range,
      cache.keys().range,
      cache.values().range,
    ],
    Math.ceil((pairs + pairsK) / WG),
  );
  return out;
}

/** Checks q [B, T, Hq, D] and k [B, T, Hkv, D] for rotation at `positions` together (`op` names the caller). */
export function checkQueryKey(op: string, q: Tensor, k: Tensor, positions: Tensor, theta: number): void {
  checkRope(q, positions, theta);
  checkRope(k, positions, theta);
  if (k.shape[3] !== q.shape[3]) {
    throw new RangeError(`${op}: q ${shapeString(q.shape)} and k ${shapeString(k.shape)} head sizes differ`);
  }
}

/** Checks a rotation's input x [B, T, H, D] (D even), its i32 positions [B, T] and theta. */
function checkRope(x: Tensor, positions: Tensor, theta: number): void {
  assertDType("rope", x, "f32");
  assertDType("rope positions", positions, "i32");
  const [batch, tokens, , headDim] = x.shape;
  if (x.ndim !== 4 || headDim % 2 !== 0 || headDim === 0) {
    throw new RangeError(`rope: x must be [B, T, H, D] with D even and > 0, got ${shapeString(x.shape)}`);
  }
  if (positions.ndim !== 2 || positions.shape[0] !== batch || positions.shape[1] !== tokens) {
    throw new RangeError(
      `rope: positions ${shapeString(positions.shape)} do not match x ${shapeString(x.shape)} (want [B, T])`,
    );
  }
  if (!(theta > 0 && Number.isFinite(theta))) throw new RangeError(`rope: theta must be > 0, got ${theta}`);
}

/**
 * x: [B, T, H, D] f32 (D even); positions: i32 [B, T]; theta: the RoPE base (Qwen2.5: 1e6). Returns the rotated
 * x; the backward rotates the gradient by the negative angle. Accurate for angles up to about 1e5 radians
 * (positions up to 1e5), beyond the 32k context of the models here.
 */
export function rope(x: Tensor, positions: Tensor, theta: number): Tensor {
  checkRope(x, positions, theta);
  const out = rotate(x, positions, theta, 1);
  if (needsGrad(x)) {
    record(out, [x, positions], [positions], (gy, [sp]) => [rotate(gy, sp, theta, -1), null]);
  }
  return out;
}
