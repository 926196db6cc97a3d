/**
 * Models on the engine: load a Hugging Face folder (Qwen2 or GPT-2) onto the GPU.
 */
import { loadModelConfig, type ModelConfig, openCheckpoint } from "../checkpoint/mod.ts";
import { Gpt2Model } from "./gpt2.ts";
import { type LoadOptions, Qwen2Model } from "./qwen2.ts";
import type { CausalLM } from "./types.ts";
import { WeightLoader } from "./weights.ts";

export { Gpt2Model } from "./gpt2.ts";
export { Qwen2Model } from "./qwen2.ts";
export type { LoadOptions } from "./qwen2.ts";
export * from "./linear.ts";
export type * from "./types.ts";
export { WeightLoader } from "./weights.ts";

/** Reads config.json and the weights of a model folder and builds the matching architecture on the GPU. */
export async function loadModel(dir: string, options: LoadOptions = {}): Promise<CausalLM> {
  const config: ModelConfig = await loadModelConfig(dir);
  const checkpoint = await openCheckpoint(dir);
  try {
    const loader = new WeightLoader(checkpoint, dir);
    return config.architecture === "qwen2"
      ? await Qwen2Model.load(loader, config, options)
      : await Gpt2Model.load(loader, config, options);
  } finally {
    checkpoint.close();
  }
}
