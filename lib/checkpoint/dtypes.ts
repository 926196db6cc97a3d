/**
 * Element types of checkpoint tensors and bit-exact conversions between the float formats.
 *
 * WGSL has f32 and f16 but no bf16, so bf16 weights are widened to f32 on load and f16 weights may be kept
 * as raw IEEE binary16 bits (Uint16Array) for upload. Narrowing (f32 -> f16, f32 -> bf16) rounds to
 * nearest, ties to even, as PyTorch's `.to(torch.float16)` / `.to(torch.bfloat16)` do.
 */

/** Element types a checkpoint tensor can have, named as in WGSL/PyTorch shorthand. */
export type DType = "f64" | "f32" | "f16" | "bf16" | "i64" | "i32" | "i16" | "i8" | "u8" | "bool";

/** The typed array that holds each dtype's elements; f16 and bf16 are raw bit patterns. */
export interface DTypeArrays {
  f64: Float64Array;
  f32: Float32Array;
  f16: Uint16Array;
  bf16: Uint16Array;
  i64: BigInt64Array;
  i32: Int32Array;
  i16: Int16Array;
  i8: Int8Array;
  u8: Uint8Array;
  bool: Uint8Array;
}

export type HostData = DTypeArrays[DType];

/** A tensor in host memory: row-major (C-contiguous) elements of `shape`. */
export interface HostTensor<D extends DType = DType> {
  dtype: D;
  shape: number[];
  data: DTypeArrays[D];
}

/** Bytes per element. */
export const DTYPE_BYTES: Readonly<Record<DType, number>> = {
  f64: 8,
  f32: 4,
  f16: 2,
  bf16: 2,
  i64: 8,
  i32: 4,
  i16: 2,
  i8: 1,
  u8: 1,
  bool: 1,
};

/** Whether the dtype holds floating-point values (the ones `read(..., {as})` converts). */
export function isFloatDType(dtype: DType): dtype is "f64" | "f32" | "f16" | "bf16" {
  return dtype === "f64" || dtype === "f32" || dtype === "f16" || dtype === "bf16";
}

/** safetensors' dtype names <-> ours. */
export const SAFETENSORS_DTYPES: Readonly<Record<string, DType>> = {
  F64: "f64",
  F32: "f32",
  F16: "f16",
  BF16: "bf16",
  I64: "i64",
  I32: "i32",
  I16: "i16",
  I8: "i8",
  U8: "u8",
  BOOL: "bool",
};

export function toSafetensorsDType(dtype: DType): string {
  for (const [name, ours] of Object.entries(SAFETENSORS_DTYPES)) {
    if (ours === dtype) return name;
  }
  throw new TypeError(`dtype ${JSON.stringify(dtype)} has no safetensors name; use one of ${DTYPE_LIST}`);
}

const DTYPE_LIST = Object.keys(DTYPE_BYTES).join(", ");

/** Number of elements of a shape (1 for a scalar). */
export function numel(shape: readonly number[]): number {
  let n = 1;
  for (const d of shape) n *= d;
  return n;
}

/** Views little-endian bytes as the dtype's typed array; copies when `bytes` is not aligned for it. */
export function viewBytes<D extends DType>(dtype: D, bytes: Uint8Array): DTypeArrays[D] {
  const size = DTYPE_BYTES[dtype];
  if (bytes.byteLength % size !== 0) {
    throw new RangeError(
      `${bytes.byteLength} bytes is not a whole number of ${dtype} elements (${size} bytes)`,
    );
  }
  const aligned = bytes.byteOffset % size === 0 ? bytes : bytes.slice();
  const { buffer, byteOffset } = aligned;
  const length = aligned.byteLength / size;
  const views: { [K in DType]: () => DTypeArrays[K] } = {
    f64: () => new Float64Array(buffer, byteOffset, length),
    f32: () => new Float32Array(buffer, byteOffset, length),
    f16: () => new Uint16Array(buffer, byteOffset, length),
    bf16: () => new Uint16Array(buffer, byteOffset, length),
    i64: () => new BigInt64Array(buffer, byteOffset, length),
    i32: () => new Int32Array(buffer, byteOffset, length),
    i16: () => new Int16Array(buffer, byteOffset, length),
    i8: () => new Int8Array(buffer, byteOffset, length),
    u8: () => new Uint8Array(buffer, byteOffset, length),
    bool: () => new Uint8Array(buffer, byteOffset, length),
  };
  return views[dtype]() as DTypeArrays[D];
}

/** Allocates a zeroed typed array for `n` elements of `dtype`. */
export function allocData<D extends DType>(dtype: D, n: number): DTypeArrays[D] {
  return viewBytes(dtype, new Uint8Array(n * DTYPE_BYTES[dtype]));
}

if (new Uint8Array(new Uint16Array([1]).buffer)[0] !== 1) {
  throw new RangeError("checkpoint: this host is big-endian; safetensors and torch files are little-endian");
}

const f32Scratch = new Float32Array(1);
const u32Scratch = new Uint32Array(f32Scratch.buffer);

/** binary16 bits -> binary32 bits, exact for every input (subnormals, infinities, NaN payloads). */
function halfBitsToFloatBits(h: number): number {
  const sign = (h & 0x8000) << 16;
  const exponent = (h >> 10) & 0x1f;
  let mantissa = h & 0x3ff;
  if (exponent === 0x1f) return (sign | 0x7f800000 | (mantissa << 13)) >>> 0;
  if (exponent !== 0) return (sign | ((exponent + 112) << 23) | (mantissa << 13)) >>> 0;
  if (mantissa === 0) return sign >>> 0;
  // Subnormal half: shift the mantissa up until its leading one reaches the implicit bit.
  let e = 113;
  while ((mantissa & 0x400) === 0) {
    mantissa <<= 1;
    e--;
  }
  return (sign | (e << 23) | ((mantissa & 0x3ff) << 13)) >>> 0;
}

/** Lookup table: f16 bits -> f32 value (bit-exact). Built once, 256 KiB. */
const HALF_TO_FLOAT_BITS: Uint32Array = (() => {
  const table = new Uint32Array(65536);
  for (let h = 0; h < 65536; h++) table[h] = halfBitsToFloatBits(h);
  return table;
})();

/** f16 bits -> f32 values. */
export function f16ToF32(bits: Uint16Array, out: Float32Array = new Float32Array(bits.length)): Float32Array {
  const outBits = new Uint32Array(out.buffer, out.byteOffset, out.length);
  for (let i = 0; i < bits.length; i++) outBits[i] = HALF_TO_FLOAT_BITS[bits[i]];
  return out;
}

/** bf16 bits -> f32 values (bf16 is the top half of an f32). */
export function bf16ToF32(
  bits: Uint16Array,
  out: Float32Array = new Float32Array(bits.length),
): Float32Array {
  const outBits = new Uint32Array(out.buffer, out.byteOffset, out.length);
  for (let i = 0; i < bits.length; i++) outBits[i] = bits[i] << 16;
  return out;
}

/** One f32 value's bits -> bf16 bits, round to nearest even; NaN stays a quiet NaN. */
export function f32BitsToBf16Bits(f: number): number {
  if ((f & 0x7fffffff) > 0x7f800000) return ((f >>> 16) | 0x0040) & 0xffff;
  return ((f + 0x7fff + ((f >>> 16) & 1)) >>> 16) & 0xffff;
}

/** One f32 value's bits -> f16 bits, round to nearest even; overflow gives infinity, NaN a quiet NaN. */
export function f32BitsToF16Bits(f: number): number {
  const sign = (f >>> 16) & 0x8000;
  const absBits = f & 0x7fffffff;
  if (absBits >= 0x7f800000) {
    if (absBits === 0x7f800000) return sign | 0x7c00;
    return sign | 0x7e00 | ((absBits >>> 13) & 0x3ff);
  }
  // 0x477ff000 is the midpoint between 65504 (largest half) and 65536: from there up, RNE overflows.
  if (absBits >= 0x477ff000) return sign | 0x7c00;
  const exponent = absBits >>> 23;
  if (exponent < 113) {
    // Result is a half subnormal (or zero): value = m * 2^-24 with m = mantissa * 2^(exponent - 126 - 23 + 24).
    if (exponent < 102) return sign; // below half the smallest subnormal (2^-25): rounds to zero
    const mantissa = (absBits & 0x7fffff) | 0x800000;
    const shift = 126 - exponent; // 14..24 bits dropped from the 24-bit mantissa
    const kept = mantissa >>> shift;
    const rest = mantissa & ((1 << shift) - 1);
    const half = 1 << (shift - 1);
    const roundUp = rest > half || (rest === half && (kept & 1) === 1);
    return sign | (kept + (roundUp ? 1 : 0));
  }
  const kept = ((exponent - 112) << 10) | ((absBits >>> 13) & 0x3ff);
  const rest = absBits & 0x1fff;
  const roundUp = rest > 0x1000 || (rest === 0x1000 && (kept & 1) === 1);
  // A carry out of the mantissa correctly bumps the exponent (and reaches 0x7c00 = inf only above 65504).
  return sign | (kept + (roundUp ? 1 : 0));
}

/** f32 values -> f16 bits (round to nearest even). */
export function f32ToF16(
  values: Float32Array,
  out: Uint16Array = new Uint16Array(values.length),
): Uint16Array {
  const bits = new Uint32Array(values.buffer, values.byteOffset, values.length);
  for (let i = 0; i < bits.length; i++) out[i] = f32BitsToF16Bits(bits[i]);
  return out;
}

/** f32 values -> bf16 bits (round to nearest even). */
export function f32ToBf16(
  values: Float32Array,
  out: Uint16Array = new Uint16Array(values.length),
): Uint16Array {
  const bits = new Uint32Array(values.buffer, values.byteOffset, values.length);
  for (let i = 0; i < bits.length; i++) out[i] = f32BitsToBf16Bits(bits[i]);
  return out;
}

/** One f16 bit pattern -> its value. */
export function f16BitsToNumber(bits: number): number {
  u32Scratch[0] = HALF_TO_FLOAT_BITS[bits & 0xffff];
  return f32Scratch[0];
}

/** One number -> f16 bits, after rounding it to f32 first (as a Float32Array would). */
export function numberToF16Bits(value: number): number {
  f32Scratch[0] = value;
  return f32BitsToF16Bits(u32Scratch[0]);
}

/**
 * Converts stored elements to the representation a reader asked for:
 * "f32" widens f16/bf16 (and narrows f64) to Float32Array; "f16" gives f16 bits (rounding f32/bf16/f64
 * to nearest even); "raw" returns the stored dtype unchanged. Non-float dtypes are always returned raw.
 */
export function convertFloat(tensor: HostTensor, as: "f32" | "f16" | "raw"): HostTensor {
  const { dtype, shape } = tensor;
  if (as === "raw" || !isFloatDType(dtype) || dtype === as) return tensor;
  const data = tensor.data;
  if (as === "f32") {
    if (dtype === "f16") return { dtype: "f32", shape, data: f16ToF32(data as Uint16Array) };
    if (dtype === "bf16") return { dtype: "f32", shape, data: bf16ToF32(data as Uint16Array) };
    return { dtype: "f32", shape, data: Float32Array.from(data as Float64Array) };
  }
  const f32 = convertFloat(tensor, "f32").data as Float32Array;
  return { dtype: "f16", shape, data: f32ToF16(f32) };
}
