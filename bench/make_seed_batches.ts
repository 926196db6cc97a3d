/**
 * `deno run -A bench/make_seed_batches.ts`: writes bench/data/seed-qlora-batches.json, the micro-batches the
 * trainer feeds in the seed's QLoRA recipe (60 steps of 2 sequences x 4 accumulated, max 512 tokens, replies
 * only) on the shipped sample dataset, tokenised with the Qwen tokenizer and chat template of the built-in
 * tiny-qwen2. `deno task bench --suite seed` replays them through the Qwen2.5-7B shape on a GPU machine, where
 * the npm tokenizer is not available.
 */
import { BUILTIN_MODELS, resolveModel, SAMPLE_DATASET } from "../lib/cli/resolve.ts";
import { trainConfig } from "../lib/train/config.ts";
import { loadTrainingData, plannedSteps } from "../lib/train/trainer.ts";

export const SEED_BATCHES = new URL("./data/seed-qlora-batches.json", import.meta.url);

const config = trainConfig("qlora", {
  model: await resolveModel(BUILTIN_MODELS[0]),
  dataset: SAMPLE_DATASET,
  out: Deno.makeTempDirSync(),
});
const data = await loadTrainingData(config);
const steps = plannedSteps(data, config, config.maxSteps!);
const file = {
  recipe: {
    steps: config.maxSteps,
    batchSize: config.batchSize,
    gradAccum: config.gradAccum,
    lr: config.lr,
    warmupSteps: config.warmupSteps,
    schedule: config.schedule,
    maxGradNorm: config.maxGradNorm,
    weightDecay: config.weightDecay,
    loraR: config.loraR,
    loraAlpha: config.loraAlpha,
    seed: config.seed,
  },
  examples: data.examples.length,
  steps: steps.map((micro) =>
    micro.map((b) => ({ batch: b.batch, seq: b.seq, ids: [...b.ids], targets: [...b.targets] }))
  ),
};
await Deno.writeTextFile(SEED_BATCHES, JSON.stringify(file) + "\n");
const tokens = steps.flat().reduce((n, b) => n + b.tokens, 0);
console.log(
  `${SEED_BATCHES.pathname}: ${steps.length} steps, ${data.examples.length} examples, ${tokens} tokens ` +
    `(longest micro-batch ${Math.max(...steps.flat().map((b) => b.seq))} positions)`,
);
