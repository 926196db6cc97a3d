/**
 * Names the CLI and the lab accept in place of paths: the built-in tiny models ("tiny-qwen2", "tiny-gpt2",
 * created under the lab's home on first use) and the shipped sample dataset ("sample").
 */
import { ensureDefaultModels } from "../models/presets.ts";
import { labHome, PROJECT_ROOT } from "../paths.ts";

export const BUILTIN_MODELS = ["tiny-qwen2", "tiny-gpt2"];
export const SAMPLE_DATASET = `${PROJECT_ROOT}/data/anekdots_sample.jsonl`;

/** The folder of a model argument: a built-in name or a path. */
export async function resolveModel(model: string): Promise<string> {
  if (!BUILTIN_MODELS.includes(model)) return model;
  const dirs = await ensureDefaultModels(`${labHome()}/models`);
  return dirs[BUILTIN_MODELS.indexOf(model)];
}

export function resolveDataset(dataset: string): string {
  return dataset === "sample" ? SAMPLE_DATASET : dataset;
}
