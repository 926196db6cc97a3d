/** WGSL activation functions shared by the kernels that apply them: elementwise ops, SwiGLU, the GEMV epilogue. */
export const ACTIVATION_FNS_WGSL = `const GELU_C: f32 = 0.7978845608028654; // sqrt(2 / pi)

// GPT-2's gelu_new (tanh approximation) and its derivative.
fn gelu(x: f32) -> f32 {
  let u = GELU_C * (x + 0.044715 * x * x * x);
  return 0.5 * x * (1.0 + tanh(u));
}

fn gelu_grad(x: f32) -> f32 {
  let u = GELU_C * (x + 0.044715 * x * x * x);
  let t = tanh(u);
  return 0.5 * (1.0 + t) + 0.5 * x * (1.0 - t * t) * GELU_C * (1.0 + 3.0 * 0.044715 * x * x);
}

// exp(-x) overflows to +inf for x < -88, giving sigmoid 0 and silu -0: the limits, with no NaN.
fn sigmoid(x: f32) -> f32 {
  return 1.0 / (1.0 + exp(-x));
}`;
