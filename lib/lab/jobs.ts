/**
 * The lab's job kinds:
 *   train  — evaluate the base (NF4 for QLoRA) on the held-out split, fine-tune, evaluate the result; metrics,
 *            samples, checkpoints and the adapter / model are stored as the run goes; resumable.
 *   eval   — one model (± adapter) on a dataset's held-out split.
 *   export — merge an adapter into its base and write a Hugging Face folder.
 * Configs name models, adapters and datasets as the catalog does (built-in names, names relative to the roots,
 * or paths); validators confine them to the roots, so a run never reads or writes outside.
 */
import * as path from "node:path";
import { type EvalRun, evaluateModel } from "../eval/mod.ts";
import { type JobContext, type JobKinds, jobKinds } from "../jobs/mod.ts";
import type { LabRoots } from "../paths.ts";
import type { EvalResult } from "../report/mod.ts";
import type { Json, JsonObject } from "../store/mod.ts";
import { type Recipe, RECIPE_DEFAULTS, type TrainConfig, validateTrainConfig } from "../train/config.ts";
import { exportMerged } from "../train/export.ts";
import { train } from "../train/trainer.ts";
import { confineAdapter, confineDataset, confineModel, modelDir } from "./catalog.ts";
import { EVAL_BATCH } from "../generate/generate.ts";

/** Evaluation settings a train run adds to TrainConfig. */
export interface TrainEvalSettings {
  /** Held-out examples evaluated before and after (the first ones of the split). */
  evalCount: number;
  evalMaxNewTokens: number;
  evalBatchSize: number;
}

export const TRAIN_EVAL_DEFAULTS: TrainEvalSettings = {
  evalCount: 32,
  evalMaxNewTokens: 48,
  evalBatchSize: 16,
};

/** The stored config of a train run: TrainConfig without `out` (the run's own folder) plus eval settings. */
export type TrainJobConfig = Omit<TrainConfig, "out" | "resume"> & TrainEvalSettings;

/** What a train run stores under the "training" label: the RunSummary pieces besides the scores. */
export interface TrainingFacts {
  trainSeconds: number;
  examplesUsed: number;
  steps: number;
  finalLoss: number | null;
}

/** Fields a client may not set: the run's folder and resume are the queue's business. */
const MANAGED_FIELDS = new Set(["out", "resume"]);

function describe(value: unknown): string {
  return value === null ? "null" : Array.isArray(value) ? "a list" : typeof value;
}

/**
 * Checks that each given field has its default's JSON type (`nullable` fields: null or the type named there);
 * the error names the field and the type.
 */
function checkTypes(
  config: JsonObject,
  defaults: Record<string, unknown>,
  nullable: Record<string, "number" | "string">,
): void {
  for (const [field, value] of Object.entries(config)) {
    if (!(field in defaults)) {
      throw new TypeError(
        `${field} is not a setting of this job kind; known settings: ${Object.keys(defaults).join(", ")}`,
      );
    }
    if (field in nullable) {
      if (value !== null && typeof value !== nullable[field]) {
        throw new TypeError(`${field} must be a ${nullable[field]} or null, got ${describe(value)}`);
      }
      continue;
    }
    const expected = defaults[field];
    if (Array.isArray(expected)) {
      if (!Array.isArray(value) || value.some((v) => typeof v !== "string")) {
        throw new TypeError(`${field} must be a list of strings, got ${describe(value)}`);
      }
    } else if (typeof value !== typeof expected || value === null) {
      throw new TypeError(
        `${field} must be a ${typeof expected}, got ${describe(value)}`,
      );
    }
  }
}

function positiveInt(field: string, value: number, max: number): void {
  if (!Number.isInteger(value) || value < 1 || value > max) {
    throw new RangeError(`${field} must be an integer in [1, ${max}], got ${value}`);
  }
}

/** Validates a train config (defaults of its recipe filled in) with the paths confined to the roots. */
export function validateTrainJob(roots: LabRoots, raw: JsonObject): TrainJobConfig {
  const recipe = raw.recipe ?? "full";
  if (recipe !== "qlora" && recipe !== "full") {
    throw new TypeError(`recipe must be "qlora" or "full", got ${JSON.stringify(recipe)}`);
  }
  for (const field of MANAGED_FIELDS) {
    if (field in raw) {
      throw new TypeError(
        `${field} is set by the lab (each run writes to its own folder; resume from its page)`,
      );
    }
  }
  const { resume: _resume, ...recipeDefaults } = RECIPE_DEFAULTS[recipe as Recipe];
  const defaults = { ...recipeDefaults, ...TRAIN_EVAL_DEFAULTS, model: "", dataset: "" };
  checkTypes(raw, defaults, { maxSteps: "number", limit: "number" });
  if (typeof raw.model !== "string") {
    throw new TypeError("model must be given: a built-in name or a model folder");
  }
  if (typeof raw.dataset !== "string") {
    throw new TypeError('dataset must be given: "sample" or a dataset file');
  }
  const merged = { ...defaults, ...raw } as unknown as TrainJobConfig;
  const model = confineModel(roots, merged.model);
  const dataset = confineDataset(roots, merged.dataset);
  // validateTrainConfig checks every range; `out` is a placeholder here: the run's folder is known only later.
  validateTrainConfig({ ...merged, model, dataset, out: roots.outputs[0], resume: false });
  positiveInt("evalCount", merged.evalCount, 100_000);
  positiveInt("evalMaxNewTokens", merged.evalMaxNewTokens, 4096);
  positiveInt("evalBatchSize", merged.evalBatchSize, 1024);
  return { ...merged, model, dataset };
}

/** The part of an eval run the store keeps: the report's EvalResult plus size and timing. */
function storedEval(run: EvalRun): JsonObject {
  const result: EvalResult & { count: number; seconds: number } = {
    bleu: run.bleu,
    meteor: run.meteor,
    meteorRu: run.meteorRu,
    meanAnswerWords: run.meanAnswerWords,
    examples: run.examples,
    count: run.outputs.length,
    seconds: run.seconds,
  };
  return result as unknown as JsonObject;
}

async function trainJob(roots: LabRoots, ctx: JobContext): Promise<void> {
  const config = validateTrainJob(roots, ctx.config);
  const model = await modelDir(roots, config.model);
  const qlora = config.recipe === "qlora";
  const evalOptions = {
    dataset: config.dataset,
    limit: config.limit,
    evalSize: config.evalSize,
    splitSeed: config.splitSeed,
    count: config.evalCount,
    maxNewTokens: config.evalMaxNewTokens,
    batchSize: config.evalBatchSize,
    quantize: qlora ? "nf4" as const : null,
    signal: ctx.signal,
  };
  const evaluate = async (label: "before" | "after", options: { model: string; adapter: string | null }) => {
    ctx.log(`evaluating ${label} training on ${config.evalCount} held-out examples`);
    const run = await evaluateModel({
      ...evalOptions,
      ...options,
      onProgress: (done, total) => ctx.log(`eval ${label}: ${done}/${total} answers`),
    });
    ctx.evalResult(label, storedEval(run));
    ctx.log(
      `eval ${label}: BLEU ${run.bleu.toFixed(2)}, METEOR ${run.meteor.toFixed(3)} (${
        run.seconds.toFixed(1)
      } s)`,
    );
  };

  // A resumed run that already has its baseline keeps it: the base model has not changed.
  if (!(ctx.resume && ctx.run.evalResults.before)) await evaluate("before", { model, adapter: null });

  const result = await train({ ...config, model, out: ctx.outputDir, resume: ctx.resume }, {
    signal: ctx.signal,
    onLog: (line) => ctx.log(line),
    onStep: (m) => {
      ctx.metric({
        step: m.step,
        loss: m.loss,
        lr: m.lr,
        grad_norm: m.grad_norm,
        tokens_per_second: m.tokens_per_second,
        gpu_bytes: m.gpu_bytes,
      });
      ctx.progress(m.step, m.totalSteps);
    },
    onSample: (s) => ctx.sample(s.step, s.prompt, s.output),
    onCheckpoint: (file) => ctx.artifact("checkpoint", file),
  });
  const facts: TrainingFacts = {
    trainSeconds: result.trainSeconds,
    examplesUsed: result.examplesUsed,
    steps: result.steps,
    finalLoss: result.losses.at(-1) ?? null,
  };
  ctx.evalResult("training", facts as unknown as Json);
  if (result.adapterDir) ctx.artifact("adapter", result.adapterDir);
  if (result.modelDir) ctx.artifact("model", result.modelDir);

  await evaluate(
    "after",
    qlora ? { model, adapter: result.adapterDir } : { model: result.modelDir!, adapter: null },
  );
}

export interface EvalJobConfig {
  model: string;
  adapter: string | null;
  dataset: string;
  limit: number | null;
  evalSize: number;
  splitSeed: number;
  count: number;
  maxNewTokens: number;
  batchSize: number;
  /** Load the base in NF4, as QLoRA trains it. */
  nf4: boolean;
}

const EVAL_DEFAULTS: EvalJobConfig = {
  model: "",
  adapter: null,
  dataset: "",
  limit: null,
  evalSize: 0.1,
  splitSeed: 0,
  count: 32,
  maxNewTokens: 48,
  batchSize: EVAL_BATCH,
  nf4: false,
};

export function validateEvalJob(roots: LabRoots, raw: JsonObject): EvalJobConfig {
  checkTypes(raw, EVAL_DEFAULTS as unknown as Record<string, unknown>, {
    adapter: "string",
    limit: "number",
  });
  if (typeof raw.model !== "string") {
    throw new TypeError("model must be given: a built-in name or a model folder");
  }
  if (typeof raw.dataset !== "string") {
    throw new TypeError('dataset must be given: "sample" or a dataset file');
  }
  const c = { ...EVAL_DEFAULTS, ...raw } as EvalJobConfig;
  if (c.limit !== null) positiveInt("limit", c.limit, 10_000_000);
  if (!(c.evalSize > 0 && c.evalSize < 1)) {
    throw new RangeError(`evalSize must be in (0, 1), got ${c.evalSize}`);
  }
  if (!Number.isInteger(c.splitSeed)) {
    throw new RangeError(`splitSeed must be an integer, got ${c.splitSeed}`);
  }
  positiveInt("count", c.count, 100_000);
  positiveInt("maxNewTokens", c.maxNewTokens, 4096);
  positiveInt("batchSize", c.batchSize, 1024);
  return {
    ...c,
    model: confineModel(roots, c.model),
    adapter: c.adapter === null ? null : confineAdapter(roots, c.adapter),
    dataset: confineDataset(roots, c.dataset),
  };
}

async function evalJob(roots: LabRoots, ctx: JobContext): Promise<void> {
  const c = validateEvalJob(roots, ctx.config);
  const run = await evaluateModel({
    model: await modelDir(roots, c.model),
    adapter: c.adapter,
    dataset: c.dataset,
    limit: c.limit,
    evalSize: c.evalSize,
    splitSeed: c.splitSeed,
    count: c.count,
    maxNewTokens: c.maxNewTokens,
    batchSize: c.batchSize,
    quantize: c.nf4 ? "nf4" : null,
    signal: ctx.signal,
    onProgress: (done, total) => {
      ctx.progress(done, total);
      ctx.log(`${done}/${total} answers`);
    },
  });
  ctx.evalResult("eval", storedEval(run));
  ctx.log(`BLEU ${run.bleu.toFixed(2)}, METEOR ${run.meteor.toFixed(3)} on ${run.outputs.length} examples`);
}

export interface ExportJobConfig {
  /** The base model; when omitted, the base the adapter records. */
  base: string | null;
  adapter: string;
  dtype: "f16" | "bf16" | "f32";
}

export function validateExportJob(roots: LabRoots, raw: JsonObject): ExportJobConfig {
  checkTypes(raw, { base: "", adapter: "", dtype: "" }, { base: "string" });
  if (typeof raw.adapter !== "string") throw new TypeError("adapter must be given: a PEFT adapter folder");
  const dtype = raw.dtype ?? "f16";
  if (dtype !== "f16" && dtype !== "bf16" && dtype !== "f32") {
    throw new TypeError(`dtype must be "f16", "bf16" or "f32", got ${JSON.stringify(dtype)}`);
  }
  return {
    base: typeof raw.base === "string" ? confineModel(roots, raw.base, "base") : null,
    adapter: confineAdapter(roots, raw.adapter),
    dtype,
  };
}

async function exportJob(roots: LabRoots, ctx: JobContext): Promise<void> {
  const c = validateExportJob(roots, ctx.config);
  let base = c.base;
  if (base === null) {
    const recorded = JSON.parse(await Deno.readTextFile(path.join(c.adapter, "adapter_config.json")))
      .base_model_name_or_path;
    if (typeof recorded !== "string" || recorded === "") {
      throw new TypeError(`${c.adapter}/adapter_config.json names no base model: give "base"`);
    }
    base = confineModel(roots, recorded, "the adapter's base_model_name_or_path");
  }
  const outDir = path.join(ctx.outputDir, "merged");
  ctx.progress(0, 1);
  ctx.log(`merging ${c.adapter} into ${base} as ${c.dtype}`);
  await exportMerged(await modelDir(roots, base, "base"), c.adapter, outDir, c.dtype);
  ctx.artifact("merged", outDir);
  ctx.progress(1, 1);
  ctx.log(`merged model written to ${outDir}`);
}

/** Registers "train", "eval" and "export" in `kinds` (the process-wide registry by default). */
export function registerLabJobs(roots: LabRoots, kinds: JobKinds = jobKinds): void {
  kinds.register("train", (ctx) => trainJob(roots, ctx), {
    validate: (config) => validateTrainJob(roots, config) as unknown as JsonObject,
  });
  kinds.register("eval", (ctx) => evalJob(roots, ctx), {
    validate: (config) => validateEvalJob(roots, config) as unknown as JsonObject,
  });
  kinds.register("export", (ctx) => exportJob(roots, ctx), {
    validate: (config) => validateExportJob(roots, config) as unknown as JsonObject,
  });
}
