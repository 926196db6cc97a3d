/**
 * `deno task train --recipe qlora|full --model DIR --dataset PATH --out DIR [...]`: fine-tunes with the seed's
 * settings as each recipe's defaults. A progress line (loss, lr, tokens/s, ETA, GPU memory) goes to stderr;
 * with --json, one JSON object per optimizer step and a summary go to stdout.
 */
import { type Recipe, RECIPE_DEFAULTS, trainConfig } from "../train/config.ts";
import { train } from "../train/trainer.ts";
import { parseArgs, usage } from "./args.ts";
import { resolveDataset, resolveModel } from "./resolve.ts";

const SPECS = {
  recipe: {
    kind: "string",
    help: "qlora (big model, NF4 + LoRA) or full (small model, every weight)",
    required: true,
  },
  model: { kind: "string", help: "model folder, or tiny-qwen2 / tiny-gpt2", required: true },
  dataset: { kind: "string", help: "parquet / JSONL / CSV file, or sample", required: true },
  out: { kind: "string", help: "output folder (adapter or model, checkpoints, summary)", required: true },
  "max-steps": { kind: "int", help: "optimizer steps (qlora default 60)" },
  epochs: { kind: "number", help: "epochs when no max steps (full default 4)" },
  lr: { kind: "number", help: "peak learning rate (qlora 2e-4, full 1e-5)" },
  "batch-size": { kind: "int", help: "sequences per micro-batch (qlora 2, full 8)" },
  "grad-accum": { kind: "int", help: "micro-batches per optimizer step (qlora 4, full 1)" },
  "lora-r": { kind: "int", help: "LoRA rank (16)" },
  "lora-alpha": { kind: "number", help: "LoRA alpha (16)" },
  "max-seq-len": { kind: "int", help: "truncate examples to this many tokens" },
  limit: { kind: "int", help: "examples taken after sorting by mark (qlora 30000, full 10000)" },
  seed: { kind: "int", help: "seed for data order and initialisation" },
  "checkpoint-every": { kind: "int", help: "write a resumable checkpoint every N steps (20)" },
  resume: { kind: "boolean", help: "continue from the newest checkpoint in --out" },
  json: { kind: "boolean", help: "JSON lines on stdout" },
} as const;

function formatBytes(bytes: number): string {
  return bytes >= 2 ** 30 ? `${(bytes / 2 ** 30).toFixed(2)} GiB` : `${(bytes / 2 ** 20).toFixed(1)} MiB`;
}

function formatSeconds(s: number): string {
  if (!Number.isFinite(s)) return "--";
  const m = Math.floor(s / 60);
  return m > 0 ? `${m}m${String(Math.round(s % 60)).padStart(2, "0")}s` : `${s.toFixed(0)}s`;
}

export async function run(args: string[]): Promise<number> {
  const o = parseArgs("train", SPECS, args);
  if (o === "help") {
    console.log(usage("train", SPECS));
    return 0;
  }
  const recipe = o.recipe as Recipe;
  if (!(recipe in RECIPE_DEFAULTS)) throw new TypeError(`--recipe must be qlora or full, got "${recipe}"`);
  const config = trainConfig(recipe, {
    model: await resolveModel(o.model!),
    dataset: resolveDataset(o.dataset!),
    out: o.out!,
    ...(o["max-steps"] !== undefined ? { maxSteps: o["max-steps"] } : {}),
    ...(o.epochs !== undefined ? { epochs: o.epochs, maxSteps: o["max-steps"] ?? null } : {}),
    ...(o.lr !== undefined ? { lr: o.lr } : {}),
    ...(o["batch-size"] !== undefined ? { batchSize: o["batch-size"] } : {}),
    ...(o["grad-accum"] !== undefined ? { gradAccum: o["grad-accum"] } : {}),
    ...(o["lora-r"] !== undefined ? { loraR: o["lora-r"] } : {}),
    ...(o["lora-alpha"] !== undefined ? { loraAlpha: o["lora-alpha"] } : {}),
    ...(o["max-seq-len"] !== undefined ? { maxSeqLen: o["max-seq-len"] } : {}),
    ...(o.limit !== undefined ? { limit: o.limit } : {}),
    ...(o.seed !== undefined ? { seed: o.seed } : {}),
    ...(o["checkpoint-every"] !== undefined ? { checkpointEvery: o["checkpoint-every"] } : {}),
    resume: o.resume ?? false,
  });
  const encoder = new TextEncoder();
  const interactive = Deno.stderr.isTerminal();
  const result = await train(config, {
    onLog: (line) => console.error(line),
    onStep: (m) => {
      const eta = (m.elapsedSeconds / m.step) * (m.totalSteps - m.step);
      const line = `[${m.step}/${m.totalSteps}] loss ${m.loss.toFixed(4)} lr ${m.lr.toExponential(2)} ` +
        `${Math.round(m.tokens_per_second)} tok/s ETA ${formatSeconds(eta)} GPU ${formatBytes(m.gpu_bytes)}`;
      Deno.stderr.writeSync(encoder.encode(interactive ? `\r${line.padEnd(100)}` : `${line}\n`));
      if (o.json) {
        const { step, loss, lr, grad_norm, tokens_per_second, gpu_bytes } = m;
        console.log(JSON.stringify({ step, loss, lr, grad_norm, tokens_per_second, gpu_bytes }));
      }
    },
    onCheckpoint: (path) => console.error(`${interactive ? "\n" : ""}checkpoint: ${path}`),
  });
  if (interactive) console.error("");
  const summary = {
    summary: true,
    steps: result.steps,
    train_seconds: result.trainSeconds,
    examples_used: result.examplesUsed,
    final_loss: result.losses.at(-1) ?? null,
    adapter: result.adapterDir,
    model: result.modelDir,
  };
  if (o.json) console.log(JSON.stringify(summary));
  else {console.error(
      `done: ${result.steps} steps in ${formatSeconds(result.trainSeconds)}; ${
        result.adapterDir ?? result.modelDir
      }`,
    );}
  return 0;
}
