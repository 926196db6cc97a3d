import assert from "node:assert/strict";
import {
  bf16ToF32,
  convertFloat,
  f16BitsToNumber,
  f16ToF32,
  f32BitsToBf16Bits,
  f32BitsToF16Bits,
  f32ToBf16,
  f32ToF16,
  numberToF16Bits,
} from "../../../lib/checkpoint/mod.ts";

const ALL_U16 = Uint16Array.from({ length: 65536 }, (_, i) => i);

/** Float16Array (V8's own binary16, rounding to nearest even) as an independent oracle. */
function oracleF16Bits(x: number): number {
  return new Uint16Array(new Float16Array([x]).buffer)[0];
}

function f32Bits(x: number): number {
  return new Uint32Array(new Float32Array([x]).buffer)[0];
}

function f32FromBits(bits: number): number {
  return new Float32Array(new Uint32Array([bits >>> 0]).buffer)[0];
}

/** Deterministic 32-bit patterns (xorshift32). */
function* randomBits(count: number, seed = 0x9e3779b9): Generator<number> {
  let s = seed >>> 0;
  for (let i = 0; i < count; i++) {
    s ^= s << 13;
    s >>>= 0;
    s ^= s >>> 17;
    s ^= s << 5;
    s >>>= 0;
    yield s;
  }
}

Deno.test("f16 -> f32 is exact for all 65536 bit patterns", () => {
  const widened = f16ToF32(ALL_U16);
  const widenedBits = new Uint32Array(widened.buffer);
  const oracle = new Float16Array(ALL_U16.buffer);
  for (let h = 0; h < 65536; h++) {
    const expected = oracle[h];
    if (Number.isNaN(expected)) {
      assert.ok(Number.isNaN(widened[h]), `f16 ${h.toString(16)} should be NaN`);
      // The payload survives: the top 10 mantissa bits of the f32 are the f16 mantissa.
      assert.equal((widenedBits[h] >>> 13) & 0x3ff, h & 0x3ff);
    } else {
      assert.ok(Object.is(widened[h], expected), `f16 ${h.toString(16)}: ${widened[h]} != ${expected}`);
    }
    assert.ok(Object.is(f16BitsToNumber(h), widened[h]) || Number.isNaN(widened[h]));
  }
});

Deno.test("f32 -> f16 -> f32 round trips every f16 value; NaN stays NaN", () => {
  const back = f32ToF16(f16ToF32(ALL_U16));
  for (let h = 0; h < 65536; h++) {
    const isNaN = (h & 0x7c00) === 0x7c00 && (h & 0x3ff) !== 0;
    if (isNaN) assert.ok((back[h] & 0x7c00) === 0x7c00 && (back[h] & 0x3ff) !== 0, `NaN ${h.toString(16)}`);
    else assert.equal(back[h], h, `f16 ${h.toString(16)} came back as ${back[h].toString(16)}`);
  }
});

Deno.test("f32 -> f16 rounds to nearest even: midpoints, their neighbours and random patterns", () => {
  const values = f16ToF32(ALL_U16);
  let checked = 0;
  for (let h = 0; h < 0x7bff; h++) {
    // Adjacent positive finite halves; their midpoint is exact in f32.
    const mid = (values[h] + values[h + 1]) / 2;
    const midBits = f32Bits(mid);
    for (const bits of [midBits - 1, midBits, midBits + 1]) {
      for (const sign of [0, 0x80000000]) {
        const x = f32FromBits(bits | sign);
        assert.equal(f32BitsToF16Bits((bits | sign) >>> 0), oracleF16Bits(x), `f32 ${x}`);
        checked++;
      }
    }
  }
  for (const bits of randomBits(300_000)) {
    const x = f32FromBits(bits);
    if (Number.isNaN(x)) continue;
    assert.equal(f32BitsToF16Bits(bits), oracleF16Bits(x), `f32 bits ${bits.toString(16)}`);
    checked++;
  }
  for (
    const x of [65504, 65519.99, 65520, 65536, 1e9, Infinity, -Infinity, 2 ** -24, 2 ** -25, 2 ** -26, 0, -0]
  ) {
    assert.equal(numberToF16Bits(x), oracleF16Bits(Math.fround(x)), `value ${x}`);
  }
  assert.ok(checked > 400_000);
});

/** bf16 value from its fields, without bit tricks (the independent oracle for bf16). */
function bf16Value(b: number): number {
  const sign = b & 0x8000 ? -1 : 1;
  const exponent = (b >> 7) & 0xff;
  const mantissa = b & 0x7f;
  if (exponent === 0xff) return mantissa === 0 ? sign * Infinity : NaN;
  if (exponent === 0) return sign * mantissa * 2 ** -133;
  return sign * (1 + mantissa / 128) * 2 ** (exponent - 127);
}

Deno.test("bf16 -> f32 is exact for all 65536 bit patterns", () => {
  const widened = bf16ToF32(ALL_U16);
  for (let b = 0; b < 65536; b++) {
    const expected = bf16Value(b);
    if (Number.isNaN(expected)) assert.ok(Number.isNaN(widened[b]));
    else assert.ok(Object.is(widened[b], expected), `bf16 ${b.toString(16)}: ${widened[b]} != ${expected}`);
  }
  const back = f32ToBf16(widened);
  for (let b = 0; b < 65536; b++) {
    if (!Number.isNaN(widened[b])) assert.equal(back[b], b);
    else assert.ok(Number.isNaN(bf16Value(back[b])), `NaN ${b.toString(16)} must stay NaN`);
  }
});

/** Nearest bf16 by comparing distances in float64 (exact here), ties to the even pattern. */
function oracleBf16Bits(bits: number): number {
  const x = f32FromBits(bits);
  const lo = bits >>> 16;
  const hi = (lo + 1) & 0xffff;
  const dLo = Math.abs(x - bf16Value(lo));
  const dHi = Math.abs(bf16Value(hi) - x);
  if (!Number.isFinite(bf16Value(hi)) && (lo & 0x7fff) === 0x7f7f) {
    // Above the largest finite bf16, RNE still decides by the would-be next value 2^128.
    const next = Math.sign(x) * 2 ** 128;
    const dNext = Math.abs(next - x);
    return dLo < dNext || (dLo === dNext && (lo & 1) === 0) ? lo : hi;
  }
  if (dLo < dHi) return lo;
  if (dHi < dLo) return hi;
  return (lo & 1) === 0 ? lo : hi;
}

Deno.test("f32 -> bf16 rounds to nearest even (random patterns, ties, overflow)", () => {
  let checked = 0;
  for (const bits of randomBits(300_000, 12345)) {
    if (Number.isNaN(f32FromBits(bits)) || (bits & 0x7fffffff) >= 0x7f800000) continue;
    assert.equal(f32BitsToBf16Bits(bits), oracleBf16Bits(bits), `f32 bits ${bits.toString(16)}`);
    checked++;
  }
  for (const bits of [0x3f808000, 0x3f818000, 0x3f807fff, 0x3f808001, 0x7f7fffff, 0xff7fffff, 0x7f7f8000]) {
    assert.equal(f32BitsToBf16Bits(bits >>> 0), oracleBf16Bits(bits >>> 0), `f32 bits ${bits.toString(16)}`);
  }
  assert.equal(f32BitsToBf16Bits(0x7fc00001) & 0x7fc0, 0x7fc0, "NaN stays a quiet NaN");
  assert.ok(checked > 250_000);
});

Deno.test("convertFloat: f16/bf16 widen to f32, f32 narrows to f16 bits, integers stay raw", () => {
  const half = { dtype: "f16" as const, shape: [2], data: Uint16Array.of(0x3c00, 0xc000) };
  assert.deepEqual([...convertFloat(half, "f32").data as Float32Array], [1, -2]);
  assert.equal(convertFloat(half, "f16"), half);
  const bf = { dtype: "bf16" as const, shape: [1], data: Uint16Array.of(0x3f80) };
  assert.deepEqual([...convertFloat(bf, "f16").data as Uint16Array], [0x3c00]);
  const ints = { dtype: "i64" as const, shape: [1], data: BigInt64Array.of(7n) };
  assert.equal(convertFloat(ints, "f32"), ints);
  const wide = { dtype: "f64" as const, shape: [1], data: Float64Array.of(0.1) };
  assert.deepEqual([...convertFloat(wide, "f32").data as Float32Array], [Math.fround(0.1)]);
});
