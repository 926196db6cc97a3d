/**
 * The SFT loop for both recipes. QLoRA: NF4 base (frozen), LoRA adapters on the target projections, 8-bit
 * AdamW, gradient checkpointing per decoder layer. Full fine-tuning: every weight in f32 with AdamW. Both: loss
 * on the assistant's replies only through the chunked lm_head + cross-entropy, gradient accumulation, global
 * norm clipping, a warmup schedule, resumable checkpoints, and per-step metrics for the CLI and the lab.
 */
import { getRngCounter, setRngCounter } from "../../compute/autograd.ts";
import { initRuntime } from "../../compute/runtime.ts";
import type { Tensor } from "../../compute/tensor.ts";
import { joinPath } from "../checkpoint/file_io.ts";
import { type ChatExample, loadDataset, prepareDataset } from "../data/mod.ts";
import { generate } from "../generate/generate.ts";
import { attachLora, loraParameters, saveAdapter } from "../lora/peft.ts";
import { loadModel } from "../models/mod.ts";
import type { CausalLM } from "../models/types.ts";
import { seededRandom } from "../generate/sampling.ts";
import { loadTokenizer, type Tokenizer } from "../tokenizer/mod.ts";
import { type Batch, lengthGroupedBatches, packedBatches } from "./batches.ts";
import type { TrainConfig } from "./config.ts";
import { saveModelFolder } from "./export.ts";
import { Optimizer, optimizerStep, type StepResult } from "./step.ts";
import {
  encodeExample,
  promptIds,
  type SftExample,
  type SftFormat,
  sftFormat,
  trainableTokens,
  truncate,
} from "./format.ts";
import { lrMultiplier } from "./schedule.ts";
import { loadTrainingState, saveTrainingState, type TrainingPosition } from "./state.ts";

export interface StepMetrics {
  step: number;
  totalSteps: number;
  epoch: number;
  loss: number;
  lr: number;
  grad_norm: number;
  tokens_per_second: number;
  /** Peak GPU bytes allocated during the step. */
  gpu_bytes: number;
  elapsedSeconds: number;
}

export interface TrainHooks {
  onStep?(metrics: StepMetrics): void;
  onLog?(line: string): void;
  onSample?(sample: { step: number; prompt: string; output: string }): void;
  onCheckpoint?(path: string): void;
  signal?: AbortSignal;
}

export interface TrainResult {
  steps: number;
  trainSeconds: number;
  examplesUsed: number;
  losses: number[];
  /** Held-out examples (never trained on) for evaluation. */
  evalExamples: ChatExample[];
  adapterDir: string | null;
  modelDir: string | null;
}

/** What stays fixed across a resume: changing any of it makes an old checkpoint meaningless. */
function configKey(c: TrainConfig): string {
  return JSON.stringify([
    c.recipe,
    c.model,
    c.dataset,
    c.splitSeed,
    c.limit,
    c.evalSize,
    c.seed,
    c.batchSize,
    c.gradAccum,
    c.maxSeqLen,
    c.loraR,
    c.targetModules,
    c.optimizer,
    c.packing,
  ]);
}

async function checkWritable(dir: string): Promise<void> {
  try {
    await Deno.mkdir(dir, { recursive: true });
    const probe = joinPath(dir, `.write-test-${Deno.pid}`);
    await Deno.writeTextFile(probe, "");
    await Deno.remove(probe);
  } catch (err) {
    throw new TypeError(`output folder ${dir} is not writable: ${(err as Error).message}`);
  }
}

/** A run's data as `train` feeds it: held-out dialogs, encoded training examples and each epoch's batches. */
export interface TrainingData {
  tokenizer: Tokenizer;
  format: SftFormat;
  evalExamples: ChatExample[];
  examples: SftExample[];
  /** Dialogs whose reply was cut away entirely by max-seq-len. */
  dropped: number;
  epochBatches(epoch: number): Batch[];
}

/** Loads, splits and encodes a run's dataset with its model's tokenizer (throws when nothing is trainable). */
export async function loadTrainingData(config: TrainConfig): Promise<TrainingData> {
  const dataset = await loadDataset(config.dataset);
  const prepared = prepareDataset(dataset, {
    limit: config.limit ?? undefined,
    evalSize: config.evalSize,
    seed: config.splitSeed,
  });
  if (prepared.train.length === 0) {
    throw new RangeError(
      `${config.dataset}: no usable training rows (${dataset.rowsRead} read; dropped: ${
        JSON.stringify(prepared.stats)
      })`,
    );
  }
  const tokenizer = await loadTokenizer(config.model);
  const format = sftFormat(tokenizer);
  const examples: SftExample[] = [];
  let dropped = 0;
  for (const ex of prepared.train) {
    const encoded = truncate(encodeExample(tokenizer, format, ex.messages), config.maxSeqLen);
    if (trainableTokens(encoded) === 0) dropped++;
    else examples.push(encoded);
  }
  if (examples.length === 0) {
    throw new RangeError(
      `no training example keeps a reply within max-seq-len ${config.maxSeqLen}; raise it`,
    );
  }
  const padId = tokenizer.padId ?? tokenizer.eosIds[0] ?? 0;
  return {
    tokenizer,
    format,
    evalExamples: prepared.eval,
    examples,
    dropped,
    epochBatches: (epoch) =>
      config.packing
        ? packedBatches(examples, config.batchSize, config.maxSeqLen, padId, config.seed, epoch)
        : lengthGroupedBatches(examples, config.batchSize, padId, config.seed, epoch),
  };
}

/**
 * The micro-batches of the first `steps` optimizer steps, `gradAccum` per step, in the order `train` takes
 * them (epochs roll over as there). The benchmark replays them at the models' real shapes.
 */
export function plannedSteps(data: TrainingData, config: TrainConfig, steps: number): Batch[][] {
  let epoch = 0;
  let batches = data.epochBatches(0);
  let index = 0;
  return Array.from({ length: steps }, () =>
    Array.from({ length: config.gradAccum }, () => {
      if (index >= batches.length) {
        batches = data.epochBatches(++epoch);
        index = 0;
      }
      return batches[index++];
    }));
}

export async function train(config: TrainConfig, hooks: TrainHooks = {}): Promise<TrainResult> {
  const log = (line: string) => hooks.onLog?.(line);
  const runtime = await initRuntime();
  await checkWritable(config.out);

  const data = await loadTrainingData(config);
  const { tokenizer, format, examples, dropped } = data;

  const model = await loadModel(
    config.model,
    config.recipe === "full"
      ? { trainable: true }
      : { quantize: "nf4", doubleQuant: config.doubleQuant, dtype: runtime.gpu.hasF16 ? "f16" : "f32" },
  );
  let optimizer: Optimizer | null = null;
  try {
    if (config.maxSeqLen > model.maxPositions) {
      throw new RangeError(
        `max-seq-len ${config.maxSeqLen} exceeds the model's ${model.maxPositions} positions`,
      );
    }
    log(
      `data: ${examples.length} training examples (${dropped} without reply tokens dropped), ${data.evalExamples.length} held out`,
    );

    let params: Tensor[];
    if (config.recipe === "qlora") {
      attachLora(model, {
        r: config.loraR,
        alpha: config.loraAlpha,
        dropout: config.loraDropout,
        useRslora: config.useRslora,
        targetModules: config.targetModules,
      }, seededRandom(config.seed));
      params = loraParameters(model).flatMap(({ layer }) => [layer.loraA, layer.loraB]);
    } else {
      params = model.parameters();
    }
    optimizer = new Optimizer(params, config.optimizer, config.weightDecay);
    const trainableCount = params.reduce((n, p) => n + p.size, 0);
    log(
      `model: ${model.config.architecture}, ${
        trainableCount.toLocaleString("en")
      } trainable parameters, recipe ${config.recipe}`,
    );

    const epochBatches = data.epochBatches;
    let batches = epochBatches(0);
    const stepsPerEpoch = Math.max(1, Math.ceil(batches.length / config.gradAccum));
    const totalSteps = config.maxSteps ?? Math.max(1, Math.round(config.epochs * stepsPerEpoch));

    const named = new Map<string, Tensor>([
      ...params.map((p, i) => [`param.${i}`, p] as [string, Tensor]),
      ...optimizer.tensors(),
    ]);
    const checkpointDir = joinPath(config.out, "checkpoints");
    let position: TrainingPosition = {
      step: 0,
      epoch: 0,
      batchIndex: 0,
      rngCounter: getRngCounter(),
      losses: [],
      configKey: configKey(config),
    };
    if (config.resume) {
      const restored = await loadTrainingState(checkpointDir, named);
      if (restored) {
        if (restored.configKey !== position.configKey) {
          throw new TypeError(
            `${checkpointDir}: the checkpoint was made with other settings; resume with the same ones or use a new --out`,
          );
        }
        position = restored;
        setRngCounter(position.rngCounter);
        batches = epochBatches(position.epoch);
        log(`resumed at step ${position.step} (epoch ${position.epoch}, batch ${position.batchIndex})`);
      } else log("no checkpoint to resume from; starting at step 0");
    }

    const save = async () => {
      position.rngCounter = getRngCounter();
      const path = await saveTrainingState(checkpointDir, position, named);
      hooks.onCheckpoint?.(path);
      return path;
    };
    const nextBatch = (): Batch => {
      if (position.batchIndex >= batches.length) {
        position.epoch++;
        position.batchIndex = 0;
        batches = epochBatches(position.epoch);
      }
      return batches[position.batchIndex++];
    };

    const started = performance.now();
    let lastReport = started;
    // Steps are reported one behind: step N + 1 is encoded and submitted before step N's loss is awaited. A
    // readback holds the host until the GPU is idle and answers about 10 ms later (Deno polls the device), so
    // awaiting each step before encoding the next left the GPU idle for that long every step.
    let inFlight:
      | { step: number; epoch: number; lr: number; tokens: number; result: Promise<StepResult> }
      | null = null;
    const report = async () => {
      if (!inFlight) return;
      const done = inFlight;
      inFlight = null;
      const { loss, gradNorm } = await done.result;
      position.losses.push(loss);
      const now = performance.now();
      hooks.onStep?.({
        step: done.step,
        totalSteps,
        epoch: done.epoch,
        loss,
        lr: done.lr,
        grad_norm: gradNorm,
        tokens_per_second: done.tokens / ((now - lastReport) / 1000),
        gpu_bytes: runtime.pool.stats().peakAllocatedBytes,
        elapsedSeconds: (now - started) / 1000,
      });
      lastReport = now;
      runtime.pool.resetPeak();
      if (!Number.isFinite(loss)) {
        throw new RangeError(`loss became ${loss} at step ${done.step}; lower the learning rate`);
      }
    };
    runtime.pool.resetPeak();
    while (position.step < totalSteps) {
      if (hooks.signal?.aborted) {
        await report();
        await save();
        throw new DOMException(`training cancelled at step ${position.step}`, "AbortError");
      }
      const lr = config.lr * lrMultiplier(config.schedule, position.step, config.warmupSteps, totalSteps);
      const stepBatches: Batch[] = [];
      for (let micro = 0; micro < config.gradAccum; micro++) {
        const batch = nextBatch();
        if (batch.trainable === 0) {
          throw new RangeError(
            `step ${position.step + 1}: a batch has no trainable token (all labels are -100)`,
          );
        }
        stepBatches.push(batch);
      }
      const result = optimizerStep(model, params, optimizer, stepBatches, {
        lr,
        step: position.step + 1,
        maxGradNorm: config.maxGradNorm,
        checkpointing: config.gradientCheckpointing,
      });
      // Awaited in report(); marked handled now so a failure is not reported as unhandled if an earlier step
      // throws first.
      result.catch(() => {});
      position.step++;
      const tokens = stepBatches.reduce((n, b) => n + b.tokens, 0);
      await report();
      inFlight = { step: position.step, epoch: position.epoch, lr, tokens, result };
      const sampleDue = config.sampleEvery > 0 && position.step % config.sampleEvery === 0;
      const checkpointDue = config.checkpointEvery > 0 && position.step % config.checkpointEvery === 0 &&
        position.step < totalSteps;
      if (sampleDue || checkpointDue) await report();
      if (sampleDue) {
        await sample(model, tokenizer, format, data.evalExamples.slice(0, 2), position.step, hooks);
      }
      if (checkpointDue) await save();
    }
    await report();
    await save();
    const trainSeconds = (performance.now() - started) / 1000;

    let adapterDir: string | null = null;
    let modelDir: string | null = null;
    if (config.recipe === "qlora") {
      adapterDir = joinPath(config.out, "adapter");
      await saveAdapter(model, adapterDir, {
        r: config.loraR,
        alpha: config.loraAlpha,
        dropout: config.loraDropout,
        useRslora: config.useRslora,
        targetModules: config.targetModules,
        baseModel: config.model,
      });
    } else {
      modelDir = joinPath(config.out, "model");
      await saveModelFolder(model, config.model, modelDir);
    }
    const examplesUsed = Math.min(examples.length, totalSteps * config.batchSize * config.gradAccum);
    const result: TrainResult = {
      steps: position.step,
      trainSeconds,
      examplesUsed,
      losses: position.losses,
      evalExamples: data.evalExamples,
      adapterDir,
      modelDir,
    };
    await Deno.writeTextFile(
      joinPath(config.out, "summary.json"),
      JSON.stringify({ ...result, evalExamples: data.evalExamples.length, config }, null, 2) + "\n",
    );
    return result;
  } finally {
    optimizer?.dispose();
    model.dispose();
    runtime.trim();
  }
}

async function sample(
  model: CausalLM,
  tokenizer: Tokenizer,
  format: SftFormat,
  examples: ChatExample[],
  step: number,
  hooks: TrainHooks,
) {
  for (const ex of examples) {
    const messages = ex.messages.slice(0, -1);
    const ids = promptIds(tokenizer, format, messages);
    const stopIds = tokenizer.eosIds;
    const { ids: out } = await generate(model, ids, {
      maxNewTokens: 32,
      stopIds: format.kind === "plain" ? [...stopIds, ...tokenizer.encode("\n")] : stopIds,
    });
    const text = tokenizer.decode(out, { skipSpecialTokens: true }).trim();
    hooks.onSample?.({ step, prompt: messages.at(-1)?.content ?? "", output: text });
  }
}
