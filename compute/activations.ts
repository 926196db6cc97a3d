/**
 * Fused gated activations with autograd. SwiGLU, the Qwen2/Llama MLP's `silu(gate_proj(x)) * up_proj(x)`, in
 * one kernel forward and one backward (both input gradients in one pass), so the MLP's [tokens, 18944]
 * intermediate is read and written once instead of three times.
 */
import { needsGrad, record } from "./autograd.ts";
import { ACTIVATION_FNS_WGSL } from "./activation_fns.ts";
import { type KernelSpec, Params, rt } from "./runtime.ts";
import { assertDType, assertSameShape, empty, type Tensor } from "./tensor.ts";

const FILE = new URL("./activations.wgsl", import.meta.url);
const WG = 256;

function kernel(entry: string, bindings: KernelSpec["bindings"]): KernelSpec {
  return { file: FILE, entry, bindings, defines: { ACTIVATIONS: ACTIVATION_FNS_WGSL } };
}

/** silu(gate) * up, elementwise; gate and up: the same shape, f32. Gradients to both. */
export function swiglu(gate: Tensor, up: Tensor): Tensor {
  assertDType("swiglu gate", gate, "f32");
  assertDType("swiglu up", up, "f32");
  assertSameShape("swiglu", gate, up);
  const n = gate.size;
  const out = empty(gate.shape); // out: [..., F]
  rt().dispatch(
    kernel("swiglu", ["read", "read", "write"]),
    new Params().u32(n),
    [gate.range, up.range, out.range],
    Math.ceil(n / WG),
  );
  if (needsGrad(gate, up)) {
    record(out, [gate, up], [gate, up], (gy, [sgate, sup]) => {
      const dgate = empty(gate.shape); // dgate: [..., F]
      const dup = empty(up.shape); // dup: [..., F]
      rt().dispatch(
        kernel("swiglu_backward", ["read", "read", "read", "write", "write"]),
        new Params().u32(n),
        [sgate.range, sup.range, gy.range, dgate.range, dup.range],
        Math.ceil(n / WG),
      );
      return [gate.requiresGrad ? dgate : null, up.requiresGrad ? dup : null];
    });
  }
  return out;
}
