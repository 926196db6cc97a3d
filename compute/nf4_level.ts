/** NF4's levels and the WGSL shared by the kernels that read NF4 codes (GEMM tiles and the decode GEMV). */

/** The 16 NormalFloat levels, exactly bitsandbytes' table. */
export const NF4_LEVELS = [
  -1.0,
  -0.6961928009986877,
  -0.5250730514526367,
  -0.39491748809814453,
  -0.28444138169288635,
  -0.18477343022823334,
  -0.09105003625154495,
  0.0,
  0.07958029955625534,
  0.16093020141124725,
  0.24611230194568634,
  0.33791524171829224,
  0.44070982933044434,
  0.5626170039176941,
  0.7229568362236023,
  1.0,
] as const;

/**
 * WGSL `fn name(c: u32) -> type` returning the c-th of 16 literals by a tree of selects on the code's bits. No
 * dynamic index anywhere (neither into a private array nor into a vector), since GPUs may place dynamically
 * indexed values in slow local memory.
 */
function selectTree(name: string, type: "f32" | "u32", literals: readonly string[]): string {
  const vec = type === "f32" ? "vec4f" : "vec4<u32>";
  const quads = [0, 1, 2, 3].map((q) =>
    `  let q${q} = ${vec}(${literals.slice(4 * q, 4 * q + 4).join(", ")});`
  );
  return `fn ${name}(c: u32) -> ${type} {
${quads.join("\n")}
  let b2 = (c & 4u) != 0u;
  let quad = select(select(q0, q1, b2), select(q2, q3, b2), (c & 8u) != 0u);
  let pair = select(quad.xy, quad.zw, (c & 2u) != 0u);
  return select(pair.x, pair.y, (c & 1u) != 0u);
}`;
}

/** `nf4_level(code)`: the NormalFloat level of a 4-bit code. */
export const NF4_LEVEL_WGSL = selectTree(
  "nf4_level",
  "f32",
  NF4_LEVELS.map((l) => (Number.isInteger(l) ? l.toFixed(1) : String(l))),
);

const LEVELS_F16 = Float16Array.from(NF4_LEVELS);

/** The levels rounded to f16 (to nearest, ties to even), as the decode GEMV's level-pair table holds them. */
export const NF4_LEVELS_F16: readonly number[] = Array.from(LEVELS_F16);

/** `nf4_level_f16(code)`: the bits of the code's level rounded to f16, in the low half of a u32. */
export const NF4_LEVEL_F16_WGSL = selectTree(
  "nf4_level_f16",
  "u32",
  Array.from(new Uint16Array(LEVELS_F16.buffer), (bits) => `${bits}u`),
);
