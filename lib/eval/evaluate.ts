/**
 * Evaluation of a model (optionally with a LoRA adapter) on a dataset's held-out split: batched greedy
 * generation with bounded new tokens, each answer kept, then BLEU / METEOR / meteor_ru and answer lengths.
 * The split is computed exactly as training computes it (same limit, eval size and split seed), so the rows
 * evaluated were never trained on.
 */
import { loadDataset, prepareDataset } from "../data/mod.ts";
import { EVAL_BATCH, generateGreedyBatch } from "../generate/generate.ts";
import { loadAdapter } from "../lora/peft.ts";
import { loadModel } from "../models/mod.ts";
import { evaluateOutputs } from "../report/mod.ts";
import type { EvalResult } from "../report/mod.ts";
import { loadTokenizer } from "../tokenizer/mod.ts";
import { promptIds, sftFormat } from "../train/format.ts";
import { initRuntime } from "../../compute/runtime.ts";

export interface EvalOptions {
  model: string;
  adapter?: string | null;
  dataset: string;
  /** Rows taken after sorting by mark, before the split (use the training run's value). */
  limit?: number | null;
  evalSize?: number;
  splitSeed?: number;
  /** Evaluate at most this many held-out examples. */
  count?: number | null;
  maxNewTokens?: number;
  batchSize?: number;
  /** Load the base in NF4, as QLoRA trained it (default: f16 where the GPU has it, else f32). */
  quantize?: "nf4" | null;
  signal?: AbortSignal;
  onProgress?(done: number, total: number): void;
}

export interface EvalOutput {
  prompt: string;
  reference: string;
  output: string;
}

export interface EvalRun extends EvalResult {
  outputs: EvalOutput[];
  /** Words per answer: generated and reference. */
  answerWords: { mean: number; median: number; max: number };
  referenceWords: { mean: number };
  seconds: number;
}

function words(text: string): number {
  return text.split(/\s+/).filter((w) => w.length > 0).length;
}

export async function evaluateModel(o: EvalOptions): Promise<EvalRun> {
  const runtime = await initRuntime();
  const maxNewTokens = o.maxNewTokens ?? 48;
  const batchSize = o.batchSize ?? EVAL_BATCH;
  if (!(Number.isInteger(batchSize) && batchSize >= 1)) {
    throw new RangeError(`batch size must be an integer >= 1, got ${batchSize}`);
  }
  const dataset = await loadDataset(o.dataset);
  const { eval: examples } = prepareDataset(dataset, {
    limit: o.limit ?? undefined,
    evalSize: o.evalSize ?? 0.1,
    seed: o.splitSeed ?? 0,
  });
  const selected = o.count ? examples.slice(0, o.count) : examples;
  if (selected.length === 0) throw new RangeError(`${o.dataset}: the eval split is empty`);
  const tokenizer = await loadTokenizer(o.model);
  const format = sftFormat(tokenizer);
  const started = performance.now();
  const dtype = runtime.gpu.hasF16 ? "f16" : "f32";
  const model = await loadModel(
    o.model,
    o.quantize ? { quantize: "nf4", doubleQuant: true, dtype } : { dtype },
  );
  try {
    if (o.adapter) await loadAdapter(model, o.adapter);
    const stopIds = format.kind === "plain"
      ? [...tokenizer.eosIds, ...tokenizer.encode("\n")]
      : tokenizer.eosIds;
    const outputs: EvalOutput[] = [];
    for (let start = 0; start < selected.length; start += batchSize) {
      if (o.signal?.aborted) throw new DOMException("evaluation cancelled", "AbortError");
      const batch = selected.slice(start, start + batchSize);
      const prompts = batch.map((ex) => promptIds(tokenizer, format, ex.messages.slice(0, -1)));
      const generated = await generateGreedyBatch(model, prompts, { maxNewTokens, stopIds });
      batch.forEach((ex, i) => {
        const ids = generated[i].filter((id) => !stopIds.includes(id));
        outputs.push({
          prompt: ex.messages.findLast((m) => m.role === "user")?.content ?? "",
          reference: ex.messages.at(-1)!.content,
          output: tokenizer.decode(ids, { skipSpecialTokens: true }).trim(),
        });
      });
      o.onProgress?.(outputs.length, selected.length);
    }
    const scores = evaluateOutputs({
      prompts: outputs.map((x) => x.prompt),
      references: outputs.map((x) => x.reference),
      outputs: outputs.map((x) => x.output),
    });
    const lengths = outputs.map((x) => words(x.output)).sort((a, b) => a - b);
    return {
      ...scores,
      outputs,
      answerWords: {
        mean: lengths.reduce((a, b) => a + b, 0) / lengths.length,
        median: lengths[Math.floor(lengths.length / 2)],
        max: lengths.at(-1)!,
      },
      referenceWords: { mean: outputs.reduce((a, x) => a + words(x.reference), 0) / outputs.length },
      seconds: (performance.now() - started) / 1000,
    };
  } finally {
    model.dispose();
    runtime.trim();
  }
}
