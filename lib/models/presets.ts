/**
 * Writing randomly initialised Hugging Face model folders (config.json, generation_config.json, safetensors
 * shards, tokenizer files) for any config — transformers' init: normal(0, 0.02) for projections and embeddings,
 * ones for norm weights, zeros for biases — and the lab's built-in tiny models created on first start.
 */
import {
  type ModelConfig,
  writeGenerationConfig,
  writeModelConfig,
  writeShardedSafetensors,
} from "../checkpoint/mod.ts";
import { joinPath } from "../checkpoint/file_io.ts";
import { writeGpt2TokenizerFiles, writeQwenTokenizerFiles } from "../tokenizer/mod.ts";
import { checkpointLayout, normalValues, preset } from "./configs.ts";

export { checkpointLayout, normalValues, preset, PRESETS, RandomWeights } from "./configs.ts";

export interface RandomModelOptions {
  seed?: number;
  /** Standard deviation of projection/embedding weights (transformers' initializer_range is 0.02). */
  std?: number;
  /** Also write the tokenizer files the preset's vocabulary comes from (default true). */
  tokenizer?: boolean;
  maxShardBytes?: number;
}

/**
 * Writes a randomly initialised model folder (config.json, generation_config.json, safetensors shards,
 * tokenizer files) that transformers and this lab both load. Tensors are generated one at a time as the
 * shard writer asks for them, so real-shape presets stream to disk.
 */
export async function writeRandomModel(
  dir: string,
  config: ModelConfig,
  options: RandomModelOptions = {},
): Promise<void> {
  const { seed = 0, std = 0.02, tokenizer = true, maxShardBytes = 2 ** 31 } = options;
  await Deno.mkdir(dir, { recursive: true });
  const tensors = checkpointLayout(config).map(({ name, shape, init }, index) => ({
    name,
    dtype: "f32" as const,
    shape,
    data: () => {
      const n = shape.reduce((a, b) => a * b, 1);
      if (init === "ones") return new Float32Array(n).fill(1);
      if (init === "zeros") return new Float32Array(n);
      return normalValues(n, seed * 100_003 + index, std);
    },
  }));
  await writeShardedSafetensors(dir, tensors, { maxShardBytes });
  await writeModelConfig(dir, config);
  await writeGenerationConfig(dir, { bosTokenId: config.bosTokenId, eosTokenIds: config.eosTokenIds });
  if (tokenizer) {
    if (config.architecture === "qwen2") await writeQwenTokenizerFiles(dir);
    else await writeGpt2TokenizerFiles(dir);
  }
}

/** Creates the built-in tiny models under `root` on first start (kept between starts). */
export async function ensureDefaultModels(root: string): Promise<string[]> {
  const dirs: string[] = [];
  for (const name of ["tiny-qwen2", "tiny-gpt2"]) {
    const dir = joinPath(root, name);
    dirs.push(dir);
    try {
      await Deno.stat(joinPath(dir, "config.json"));
      continue;
    } catch (err) {
      if (!(err instanceof Deno.errors.NotFound)) throw err;
    }
    // Written into a temporary sibling and renamed, so an interrupted first start leaves no half model.
    const temp = `${dir}.partial-${Deno.pid}`;
    await Deno.remove(temp, { recursive: true }).catch(() => {});
    await writeRandomModel(temp, preset(name), { seed: name === "tiny-qwen2" ? 1 : 2 });
    await Deno.rename(temp, dir);
  }
  return dirs;
}
