/**
 * `deno task eval --model DIR [--adapter DIR] --dataset PATH [--limit N] [--count K] [--json]`: greedy answers
 * on the dataset's held-out split (the split training makes with the same --limit and --split-seed), scored
 * with BLEU (sacreBLEU 13a) and METEOR (nltk, and the Russian-aware meteor_ru); answers are kept per example.
 */
import { shownAnswer } from "../report/answer.ts";
import { evaluateModel } from "../eval/mod.ts";
import { parseArgs, usage } from "./args.ts";
import { resolveDataset, resolveModel } from "./resolve.ts";
import { EVAL_BATCH } from "../generate/generate.ts";

const SPECS = {
  model: { kind: "string", help: "model folder, or tiny-qwen2 / tiny-gpt2", required: true },
  adapter: { kind: "string", help: "PEFT LoRA adapter folder applied to the model" },
  dataset: { kind: "string", help: "parquet / JSONL / CSV file, or sample", required: true },
  limit: { kind: "int", help: "rows taken after sorting by mark, before the split (as in training)" },
  "split-seed": { kind: "int", help: "seed of the train/eval split (0, as in training)" },
  count: { kind: "int", help: "evaluate at most this many held-out examples" },
  "max-new-tokens": { kind: "int", help: "answer length bound (48)" },
  "batch-size": { kind: "int", help: `prompts generated together (${EVAL_BATCH})` },
  nf4: { kind: "boolean", help: "load the base in NF4 (as QLoRA trains it)" },
  out: { kind: "string", help: "write the full result (every answer) as JSON here" },
  json: { kind: "boolean", help: "print one JSON object last" },
} as const;

export async function run(args: string[]): Promise<number> {
  const o = parseArgs("eval", SPECS, args);
  if (o === "help") {
    console.log(usage("eval", SPECS));
    return 0;
  }
  const result = await evaluateModel({
    model: await resolveModel(o.model!),
    adapter: o.adapter ?? null,
    dataset: resolveDataset(o.dataset!),
    limit: o.limit ?? null,
    splitSeed: o["split-seed"] ?? 0,
    count: o.count ?? null,
    maxNewTokens: o["max-new-tokens"] ?? 48,
    batchSize: o["batch-size"] ?? EVAL_BATCH,
    quantize: o.nf4 ? "nf4" : null,
    onProgress: (done, total) => console.error(`generated ${done}/${total}`),
  });
  if (o.out) await Deno.writeTextFile(o.out, JSON.stringify(result, null, 2) + "\n");
  for (const ex of result.examples) {
    console.error(`> ${ex.prompt}\n  reference: ${ex.reference}\n  model:     ${shownAnswer(ex.output)}`);
  }
  console.error(
    `BLEU ${result.bleu.toFixed(2)}  METEOR ${result.meteor.toFixed(4)}  meteor_ru ${
      result.meteorRu.toFixed(4)
    }  ` +
      `answer words ${result.answerWords.mean.toFixed(1)} (reference ${
        result.referenceWords.mean.toFixed(1)
      })  ` +
      `${result.outputs.length} examples in ${result.seconds.toFixed(1)} s`,
  );
  if (o.json) {
    console.log(JSON.stringify({
      bleu: result.bleu,
      meteor: result.meteor,
      meteor_ru: result.meteorRu,
      mean_answer_words: result.answerWords.mean,
      examples: result.outputs.length,
      seconds: result.seconds,
      outputs: result.outputs,
    }));
  }
  return 0;
}
