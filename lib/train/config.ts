/**
 * Training configuration: the two recipes with the seed's settings as defaults, and validation that names the
 * offending option.
 */
import type { ScheduleKind } from "./schedule.ts";
import { DEFAULT_TARGETS } from "../lora/peft.ts";

export type Recipe = "qlora" | "full";
export type OptimizerKind = "adamw" | "adamw8bit";

export interface TrainConfig {
  recipe: Recipe;
  model: string;
  dataset: string;
  out: string;
  /** Optimizer steps; when set it wins over epochs (the data repeats as needed). */
  maxSteps: number | null;
  epochs: number;
  lr: number;
  batchSize: number;
  gradAccum: number;
  maxSeqLen: number;
  /** Examples taken after sorting by mark (the seed took the top 30k / 10k). */
  limit: number | null;
  evalSize: number;
  /** Seed of the train/eval split (shared with `deno task eval`, so its held-out rows are this run's). */
  splitSeed: number;
  seed: number;
  warmupSteps: number;
  schedule: ScheduleKind;
  weightDecay: number;
  maxGradNorm: number;
  optimizer: OptimizerKind;
  loraR: number;
  loraAlpha: number;
  loraDropout: number;
  useRslora: boolean;
  targetModules: string[];
  doubleQuant: boolean;
  gradientCheckpointing: boolean;
  packing: boolean;
  /** Write a resumable training checkpoint every N optimizer steps (0 = only at the end). */
  checkpointEvery: number;
  /** Generate answers to a few eval prompts every N steps (0 = never). */
  sampleEvery: number;
  resume: boolean;
}

const COMMON = {
  maxSteps: null,
  evalSize: 0.1,
  splitSeed: 0,
  schedule: "linear" as ScheduleKind,
  maxGradNorm: 1.0,
  loraDropout: 0,
  useRslora: false,
  targetModules: DEFAULT_TARGETS,
  doubleQuant: true,
  packing: false,
  checkpointEvery: 20,
  sampleEvery: 0,
  resume: false,
};

/** The seed's settings for each recipe. */
export const RECIPE_DEFAULTS: Record<Recipe, Omit<TrainConfig, "model" | "dataset" | "out">> = {
  // unsloth/Qwen2.5-7B-Instruct, 4-bit, LoRA r=16 alpha=16 dropout 0 on all projections, SFTTrainer with
  // max_steps 60, lr 2e-4, batch 2 x accumulation 4, adamw_8bit, 30k examples, replies only.
  qlora: {
    ...COMMON,
    recipe: "qlora",
    maxSteps: 60,
    epochs: 1,
    lr: 2e-4,
    batchSize: 2,
    gradAccum: 4,
    maxSeqLen: 512,
    limit: 30000,
    seed: 3407,
    warmupSteps: 5,
    weightDecay: 0.01,
    optimizer: "adamw8bit",
    loraR: 16,
    loraAlpha: 16,
    gradientCheckpointing: true,
  },
  // rugpt3small_based_on_gpt2, every weight trained with AdamW, lr 1e-5, 4 epochs, 10k examples.
  full: {
    ...COMMON,
    recipe: "full",
    epochs: 4,
    lr: 1e-5,
    batchSize: 8,
    gradAccum: 1,
    maxSeqLen: 256,
    limit: 10000,
    seed: 42,
    warmupSteps: 0,
    weightDecay: 0,
    optimizer: "adamw",
    loraR: 16,
    loraAlpha: 16,
    gradientCheckpointing: false,
  },
};

function positiveInt(name: string, v: number): void {
  if (!Number.isInteger(v) || v < 1) throw new RangeError(`${name} must be an integer >= 1, got ${v}`);
}

/** Checks every option's range; throws a RangeError/TypeError naming the option and the fix. */
export function validateTrainConfig(c: TrainConfig): TrainConfig {
  if (c.recipe !== "qlora" && c.recipe !== "full") {
    throw new TypeError(`recipe must be "qlora" or "full", got "${c.recipe}"`);
  }
  for (const field of ["model", "dataset", "out"] as const) {
    if (typeof c[field] !== "string" || c[field].length === 0) throw new TypeError(`${field} must be a path`);
  }
  if (!(c.lr > 0 && c.lr < 1)) throw new RangeError(`lr must be in (0, 1), got ${c.lr}`);
  if (c.maxSteps !== null) positiveInt("max-steps", c.maxSteps);
  if (!(c.epochs > 0 && c.epochs <= 1000)) {
    throw new RangeError(`epochs must be in (0, 1000], got ${c.epochs}`);
  }
  positiveInt("batch-size", c.batchSize);
  if (c.batchSize > 1024) {
    throw new RangeError(`batch-size ${c.batchSize} is absurd; use gradient accumulation`);
  }
  positiveInt("grad-accum", c.gradAccum);
  positiveInt("max-seq-len", c.maxSeqLen);
  if (c.limit !== null) positiveInt("limit", c.limit);
  if (!Number.isInteger(c.seed)) throw new RangeError(`seed must be an integer, got ${c.seed}`);
  if (!Number.isInteger(c.splitSeed)) {
    throw new RangeError(`split-seed must be an integer, got ${c.splitSeed}`);
  }
  if (!(Number.isInteger(c.warmupSteps) && c.warmupSteps >= 0)) {
    throw new RangeError(`warmup must be an integer >= 0, got ${c.warmupSteps}`);
  }
  if (!["linear", "cosine", "constant"].includes(c.schedule)) {
    throw new TypeError(`schedule must be linear, cosine or constant`);
  }
  if (!(c.weightDecay >= 0 && c.weightDecay < 1)) {
    throw new RangeError(`weight-decay must be in [0, 1), got ${c.weightDecay}`);
  }
  if (!(c.maxGradNorm > 0)) throw new RangeError(`max-grad-norm must be > 0, got ${c.maxGradNorm}`);
  if (c.optimizer !== "adamw" && c.optimizer !== "adamw8bit") {
    throw new TypeError(`optimizer must be adamw or adamw8bit`);
  }
  if (c.recipe === "qlora") {
    positiveInt("lora-r", c.loraR);
    if (c.loraR > 4096) throw new RangeError(`lora-r ${c.loraR} is absurd (typical: 8-64)`);
    if (!(c.loraAlpha > 0)) throw new RangeError(`lora-alpha must be > 0, got ${c.loraAlpha}`);
    if (!(c.loraDropout >= 0 && c.loraDropout < 1)) {
      throw new RangeError(`lora-dropout must be in [0, 1), got ${c.loraDropout}`);
    }
    if (c.targetModules.length === 0) throw new RangeError("target-modules must name at least one module");
  }
  if (!(Number.isInteger(c.checkpointEvery) && c.checkpointEvery >= 0)) {
    throw new RangeError(`checkpoint-every must be an integer >= 0, got ${c.checkpointEvery}`);
  }
  if (!(Number.isInteger(c.sampleEvery) && c.sampleEvery >= 0)) {
    throw new RangeError(`sample-every must be an integer >= 0`);
  }
  return c;
}

/** A recipe's defaults with the given overrides, validated. */
export function trainConfig(
  recipe: Recipe,
  overrides: Partial<TrainConfig> & Pick<TrainConfig, "model" | "dataset" | "out">,
): TrainConfig {
  const defaults = RECIPE_DEFAULTS[recipe];
  if (!defaults) throw new TypeError(`recipe must be "qlora" or "full", got "${recipe}"`);
  return validateTrainConfig({ ...defaults, ...overrides, recipe });
}
