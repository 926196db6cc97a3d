/** Seeded normal(0, std) initialisation on the GPU, for f32 and f16 tensors. */
import { Params, rt } from "./runtime.ts";
import { assertDType, type Tensor } from "./tensor.ts";

const FILE = new URL("./random.wgsl", import.meta.url);

export function fillNormal(t: Tensor, seed: number, std: number): Tensor {
  assertDType("fillNormal", t, "f32", "f16");
  const words = t.dtype === "f32" ? t.size : Math.ceil(t.size / 2);
  rt().dispatch(
    { file: FILE, entry: t.dtype === "f32" ? "normal_f32" : "normal_f16", bindings: ["write"] },
    new Params().u32(words, seed >>> 0).f32(std).u32(0),
    [t.range],
    Math.ceil(words / 256),
  );
  return t;
}
