/**
 * The New run page's estimate, before launch: GPU memory from the model's config.json and the run's settings
 * (weights, LoRA parameters, gradients, optimizer states, activations for batch x sequence), and time from the
 * tokens/s that earlier train runs of the same model measured. Every figure comes with the assumptions it
 * rests on; time is null ("unknown") when no run of the model has measured a speed yet.
 */
import { loadModelConfig, type ModelConfig } from "../checkpoint/mod.ts";
import { BUILTIN_MODELS } from "../cli/resolve.ts";
import { loadDataset, prepareDataset } from "../data/mod.ts";
import { matchesTarget } from "../lora/peft.ts";
import type { TrainConfig } from "../train/config.ts";
import { checkpointLayout, preset } from "../models/presets.ts";
import type { LabRoots } from "../paths.ts";
import type { JsonObject, RunStore } from "../store/mod.ts";
import type { Recipe } from "../train/config.ts";
import { validateTrainJob } from "./jobs.ts";

/** NF4 stores blocks of 64 weights with one absmax each. */
const NF4_BLOCK = 64;
/** Double quantisation groups 256 absmax values under one f32 scale. */
const DOUBLE_QUANT_GROUP = 256;
/** The loss computes logits over the vocabulary in chunks of this many bytes (compute/loss.ts). */
const LOGITS_CHUNK_BYTES = 64 << 20;

export interface MemorySettings {
  recipe: Recipe;
  batchSize: number;
  maxSeqLen: number;
  loraR: number;
  targetModules: string[];
  optimizer: "adamw" | "adamw8bit";
  gradientCheckpointing: boolean;
  doubleQuant: boolean;
}

export interface MemoryPart {
  label: string;
  bytes: number;
}

export interface MemoryEstimate {
  totalBytes: number;
  parts: MemoryPart[];
  /** Trainable parameters (all weights for full fine-tuning, the LoRA matrices for QLoRA). */
  trainableParameters: number;
  assumptions: string[];
}

interface LinearShape {
  module: string;
  inFeatures: number;
  outFeatures: number;
}

function dims(config: ModelConfig) {
  return config.architecture === "qwen2"
    ? {
      hidden: config.hiddenSize,
      ff: config.intermediateSize,
      layers: config.numLayers,
      heads: config.numHeads,
      kv: config.numKvHeads * config.headDim,
      vocab: config.vocabSize,
    }
    : {
      hidden: config.nEmbd,
      ff: config.nInner,
      layers: config.nLayer,
      heads: config.nHead,
      kv: config.nEmbd,
      vocab: config.vocabSize,
    };
}

/** The decoder's linear weights (2-D tensors inside the layers), as [in -> out] (GPT-2 Conv1D is [in, out]). */
function decoderLinears(config: ModelConfig): LinearShape[] {
  return checkpointLayout(config)
    .filter((t) => t.shape.length === 2 && /\.(layers|h)\.\d+\./.test(t.name) && t.name.endsWith(".weight"))
    .map((t) => {
      const module = t.name.slice(0, -".weight".length);
      const [a, b] = t.shape;
      return config.architecture === "gpt2"
        ? { module, inFeatures: a, outFeatures: b }
        : { module, inFeatures: b, outFeatures: a };
    });
}

export function estimateMemory(config: ModelConfig, s: MemorySettings, hasF16: boolean): MemoryEstimate {
  const layout = checkpointLayout(config);
  const total = layout.reduce((n, t) => n + t.shape.reduce((a, b) => a * b, 1), 0);
  const d = dims(config);
  const tokens = s.batchSize * s.maxSeqLen;
  const parts: MemoryPart[] = [];
  const assumptions: string[] = [];
  let trainable: number;
  const optimizerBytesPerParam = s.optimizer === "adamw" ? 8 : 2;
  const optimizerNote = s.optimizer === "adamw"
    ? "AdamW keeps two f32 moments (8 bytes per trainable parameter)"
    : "8-bit AdamW keeps two 1-byte moments plus block scales (≈2 bytes per trainable parameter)";

  if (s.recipe === "full") {
    trainable = total;
    parts.push({ label: "weights (f32)", bytes: total * 4 });
    parts.push({ label: "gradients (f32)", bytes: total * 4 });
    parts.push({ label: "optimizer states", bytes: total * optimizerBytesPerParam });
    assumptions.push("full fine-tuning keeps every weight and its gradient in f32", optimizerNote);
  } else {
    const linears = decoderLinears(config);
    const quantized = linears.reduce((n, l) => n + l.inFeatures * l.outFeatures, 0);
    const plain = total - quantized;
    const scaleBytes = s.doubleQuant ? 1 / NF4_BLOCK + 4 / (NF4_BLOCK * DOUBLE_QUANT_GROUP) : 4 / NF4_BLOCK;
    parts.push({ label: "decoder weights (NF4)", bytes: Math.ceil(quantized * (0.5 + scaleBytes)) });
    parts.push({
      label: `embeddings, norms, lm_head (${hasF16 ? "f16" : "f32"})`,
      bytes: plain * (hasF16 ? 2 : 4),
    });
    const targeted = linears.filter((l) => matchesTarget(l.module, s.targetModules));
    trainable = targeted.reduce((n, l) => n + s.loraR * (l.inFeatures + l.outFeatures), 0);
    parts.push({ label: `LoRA A/B r=${s.loraR} + gradients (f32)`, bytes: trainable * 8 });
    parts.push({ label: "optimizer states", bytes: trainable * optimizerBytesPerParam });
    assumptions.push(
      `NF4: 4 bits per decoder weight plus one absmax per ${NF4_BLOCK} weights${
        s.doubleQuant ? " (8-bit, double-quantised)" : " (f32)"
      }; embeddings, norms and lm_head stay ${hasF16 ? "f16" : "f32"}`,
      `LoRA on ${targeted.length} of ${linears.length} decoder linears (${s.targetModules.join(", ")})`,
      optimizerNote,
    );
  }

  // Activations kept for backward, f32: per layer roughly the layer input, q/k/v, attention output, the MLP's
  // hidden activations, and the attention probabilities (B x heads x T x T).
  const perLayer = tokens * (6 * d.hidden + 2 * d.kv + 3 * d.ff) * 4 +
    s.batchSize * d.heads * s.maxSeqLen * s.maxSeqLen * 4;
  const activations = s.gradientCheckpointing
    ? d.layers * tokens * d.hidden * 4 + perLayer
    : d.layers * perLayer;
  parts.push({
    label: `activations (batch ${s.batchSize} × ${s.maxSeqLen} tokens${
      s.gradientCheckpointing ? ", checkpointed" : ""
    })`,
    bytes: activations,
  });
  const logits = Math.min(LOGITS_CHUNK_BYTES, tokens * d.vocab * 4) * 2;
  parts.push({ label: "loss: one vocabulary chunk of logits + its gradient", bytes: logits });
  assumptions.push(
    s.gradientCheckpointing
      ? "gradient checkpointing keeps each layer's input and recomputes one layer at a time"
      : "without checkpointing every layer's activations stay until backward",
    "sequences padded to max-seq-len (an upper bound: batches are grouped by length)",
    "the buffer pool's rounding, temporary buffers and the driver's own use are not counted",
  );
  return {
    totalBytes: parts.reduce((n, p) => n + p.bytes, 0),
    parts,
    trainableParameters: trainable,
    assumptions,
  };
}

export interface SpeedSample {
  /** Mean tokens/s over the steps of earlier train runs of the model. */
  tokensPerSecond: number;
  runs: number[];
}

/** The tokens/s earlier train runs of `model` (its config value) measured, or null when none did. */
export function measuredSpeed(store: RunStore, model: string, recipe: Recipe): SpeedSample | null {
  const values: number[] = [];
  const runs: number[] = [];
  for (const run of store.listRuns(1000)) {
    if (run.kind !== "train" || run.config.model !== model || run.config.recipe !== recipe) continue;
    const speeds = store.metrics(run.id).map((m) => m.tokens_per_second).filter((v): v is number =>
      v !== null
    );
    if (speeds.length === 0) continue;
    values.push(...speeds);
    runs.push(run.id);
  }
  if (values.length === 0) return null;
  return { tokensPerSecond: values.reduce((a, b) => a + b, 0) / values.length, runs };
}

/** The settings that decide how many steps a run takes. */
export type StepSettings = Pick<
  TrainConfig,
  "maxSteps" | "epochs" | "batchSize" | "gradAccum" | "maxSeqLen" | "limit" | "evalSize" | "splitSeed"
>;

const trainRowCache = new Map<string, number>();

/** Training rows the run will see (the dataset's train split), cached by file, size, mtime and split. */
export async function trainRows(dataset: string, s: StepSettings): Promise<number> {
  const stat = await Deno.stat(dataset);
  const key = JSON.stringify([dataset, stat.size, stat.mtime?.getTime(), s.limit, s.evalSize, s.splitSeed]);
  const cached = trainRowCache.get(key);
  if (cached !== undefined) return cached;
  const prepared = prepareDataset(await loadDataset(dataset), {
    limit: s.limit ?? undefined,
    evalSize: s.evalSize,
    seed: s.splitSeed,
  });
  trainRowCache.set(key, prepared.train.length);
  return prepared.train.length;
}

export interface TimeEstimate {
  steps: number;
  /** Upper bound: every sequence at max-seq-len. */
  tokensPerStep: number;
  seconds: number | null;
  speed: SpeedSample | null;
  assumptions: string[];
}

export function estimateTime(rows: number, s: StepSettings, speed: SpeedSample | null): TimeEstimate {
  const perStep = s.batchSize * s.gradAccum;
  const steps = s.maxSteps ?? Math.max(1, Math.round(s.epochs * Math.max(1, Math.ceil(rows / perStep))));
  const tokensPerStep = perStep * s.maxSeqLen;
  const assumptions = [
    s.maxSteps !== null
      ? `${steps} steps (max steps)`
      : `${steps} steps: ${s.epochs} epochs over ${rows} training rows, ${perStep} sequences per step`,
    `${tokensPerStep} tokens per step at most (sequences padded to max-seq-len)`,
    "evaluation before and after training is not included",
  ];
  if (speed) {
    assumptions.push(
      `${speed.tokensPerSecond.toFixed(1)} tokens/s: the mean of run${speed.runs.length > 1 ? "s" : ""} ${
        speed.runs.map((id) => `#${id}`).join(", ")
      } of this model and recipe`,
    );
  }
  return {
    steps,
    tokensPerStep,
    seconds: speed ? steps * tokensPerStep / speed.tokensPerSecond : null,
    speed,
    assumptions,
  };
}

export interface LaunchEstimate {
  memory: MemoryEstimate;
  time: TimeEstimate;
}

/**
 * The estimate for a train config as the New run page sends it (validated as a launch would be): the model's
 * config.json (a built-in's preset before it is created), the dataset's train split, and earlier runs' speed.
 */
export async function estimateLaunch(
  store: RunStore,
  roots: LabRoots,
  hasF16: boolean,
  raw: JsonObject,
): Promise<LaunchEstimate> {
  const config = validateTrainJob(roots, raw);
  const modelConfig = BUILTIN_MODELS.includes(config.model)
    ? preset(config.model)
    : await loadModelConfig(config.model);
  const memory = estimateMemory(modelConfig, config, hasF16);
  const rows = await trainRows(config.dataset, config);
  return { memory, time: estimateTime(rows, config, measuredSpeed(store, config.model, config.recipe)) };
}
