/**
 * Names the CLI and the lab accept in place of paths: the built-in tiny models ("tiny-qwen2", "tiny-gpt2",
 * created under the lab's home on first use) and the shipped sample dataset ("sample").
 */
import { ensureDefaultModels } from "../models/presets.ts";
import { labHome, PROJECT_ROOT } from "../paths.ts";

export const BUILTIN_MODELS = ["tiny-qwen2", "tiny-gpt2"];
export const SAMPLE_DATASET = `${PROJECT_ROOT}/data/anekdots_sample.jsonl`;

/** The folder of a model argument: a built-in name or a path to a folder. */
export async function resolveModel(model: string): Promise<string> {
  if (!BUILTIN_MODELS.includes(model)) {
    const stat = await Deno.stat(model).catch((err) => {
      if (err instanceof Deno.errors.NotFound) return null;
      throw err;
    });
    if (stat?.isDirectory) return model;
    throw new TypeError(
      `--model ${model}: ${stat ? "is a file, not a folder" : "no such folder"}; give a Hugging Face model ` +
        `folder or a built-in model (${BUILTIN_MODELS.join(", ")})`,
    );
  }
  const dirs = await ensureDefaultModels(`${labHome()}/models`);
  return dirs[BUILTIN_MODELS.indexOf(model)];
}

export function resolveDataset(dataset: string): string {
  return dataset === "sample" ? SAMPLE_DATASET : dataset;
}
