/**
 * WGSL of RoPE's rotation, shared by compute/rope.wgsl and the decode attention kernel (which rotates the new
 * token's q and k itself). cos/sin are computed here rather than with the WGSL built-ins, whose accuracy is only
 * specified on [-π, π]: angles reach tens of thousands of radians at long positions, where a GPU's fast sin/cos
 * loses digits.
 */
export const ROPE_FNS_WGSL =
  `// π/2 as a sum of five f32 parts of 8 significant bits each (Cody–Waite), so k * part is exact for |k| < 2^16:
// the reduction below stays accurate for |a| up to about 1e5 radians.
const PIO2_1: f32 = 1.5703125;
const PIO2_2: f32 = 4.825592041015625e-4;
const PIO2_3: f32 = 1.2665987014770508e-6;
const PIO2_4: f32 = 9.89530235528946e-10;
const PIO2_5: f32 = 2.5579538487363607e-12;
const TWO_OVER_PI: f32 = 0.6366197723675814;

// (cos a, sin a): reduce a to r in about [-π/4, π/4] with a = k π/2 + r, evaluate minimax polynomials (Cephes
// sinf/cosf, about 1 ulp), then pick by the quadrant k mod 4.
fn cos_sin(a: f32) -> vec2f {
  let k = round(a * TWO_OVER_PI);
  // a - k*PIO2_1 and the next step are exact (the operands are within a factor of two); the small tail is
  // summed first so the remaining subtraction rounds once.
  let r1 = (a - k * PIO2_1) - k * PIO2_2;
  let r = r1 - (k * PIO2_3 + (k * PIO2_4 + k * PIO2_5));
  let z = r * r;
  let s = r + r * z * (-1.6666654611e-1 + z * (8.3321608736e-3 + z * -1.9515295891e-4));
  let c = 1.0 - 0.5 * z + z * z * (4.166664568298827e-2 + z * (-1.388731625493765e-3 + z * 2.443315711809948e-5));
  switch (i32(k) & 3) {
    case 0: { return vec2f(c, s); }
    case 1: { return vec2f(-s, c); }
    case 2: { return vec2f(-c, -s); }
    default: { return vec2f(s, -c); }
  }
}

// (x1, x2) rotated by \`angle\`: (x1 cos a - x2 sin a, x2 cos a + x1 sin a).
fn rotate_pair(x1: f32, x2: f32, angle: f32) -> vec2f {
  let cs = cos_sin(angle);
  return vec2f(x1 * cs.x - x2 * cs.y, x2 * cs.x + x1 * cs.y);
}`;
