/** Small random-model configs (small vocabularies) shared by the model and generation tests. */
import type { Gpt2Config, Qwen2Config } from "../../../lib/checkpoint/mod.ts";
import { writeRandomModel } from "../../../lib/models/presets.ts";

export const QWEN: Qwen2Config = {
  architecture: "qwen2",
  vocabSize: 301,
  hiddenSize: 48,
  intermediateSize: 72,
  numLayers: 2,
  numHeads: 6,
  numKvHeads: 2,
  headDim: 8,
  rmsNormEps: 1e-6,
  ropeTheta: 10000,
  maxPositions: 64,
  tieWordEmbeddings: false,
  dtype: "f32",
  eosTokenIds: [0],
};

export const GPT2: Gpt2Config = {
  architecture: "gpt2",
  vocabSize: 257,
  nEmbd: 32,
  nLayer: 2,
  nHead: 4,
  nPositions: 64,
  nInner: 128,
  layerNormEps: 1e-5,
  activation: "gelu_new",
  tieWordEmbeddings: true,
  dtype: "f32",
  eosTokenIds: [256],
};

/** Writes a random model of `config` (weights with spread, so greedy choices are not near-ties) to a temp dir. */
export async function tempModel(config: Qwen2Config | Gpt2Config): Promise<string> {
  const dir = await Deno.makeTempDir({ prefix: "ostrota-model-" });
  await writeRandomModel(dir, config, { seed: 7, std: 0.4, tokenizer: false });
  return dir;
}
