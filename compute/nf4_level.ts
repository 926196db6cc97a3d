/** WGSL shared by the kernels that read NF4 codes (GEMM tiles and the decode GEMV). */

/**
 * `nf4_level(code)`: the NormalFloat level of a 4-bit code, by a tree of selects on the code's bits. No dynamic
 * index anywhere (neither into a private array nor into a vector), since GPUs may place dynamically indexed
 * values in slow local memory.
 */
export const NF4_LEVEL_WGSL = `fn nf4_level(c: u32) -> f32 {
  let q0 = vec4f(-1.0, -0.6961928009986877, -0.5250730514526367, -0.39491748809814453);
  let q1 = vec4f(-0.28444138169288635, -0.18477343022823334, -0.09105003625154495, 0.0);
  let q2 = vec4f(0.07958029955625534, 0.16093020141124725, 0.24611230194568634, 0.33791524171829224);
  let q3 = vec4f(0.44070982933044434, 0.5626170039176941, 0.7229568362236023, 1.0);
  let b2 = (c & 4u) != 0u;
  let quad = select(select(q0, q1, b2), select(q2, q3, b2), (c & 8u) != 0u);
  let pair = select(quad.xy, quad.zw, (c & 2u) != 0u);
  return select(pair.x, pair.y, (c & 1u) != 0u);
}`;
