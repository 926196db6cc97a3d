/**
 * `deno task demo [--out DIR] [--qlora-steps N] [--full-steps N] [--count K]`: the seed's comparison in
 * miniature on the built-in tiny models and the sample data — QLoRA of the tiny Qwen2 and full fine-tuning of the
 * tiny GPT-2, each evaluated before and after on the held-out split — ending with the comparison table (also
 * written as report.md / report.csv / report.json). Sized to finish in a few minutes on a CPU.
 */
import { evaluateModel } from "../eval/mod.ts";
import { reportCsv, reportJson, reportMarkdown, type RunSummary } from "../report/mod.ts";
import { trainConfig } from "../train/config.ts";
import { train } from "../train/trainer.ts";
import { parseArgs, usage } from "./args.ts";
import { resolveModel, SAMPLE_DATASET } from "./resolve.ts";

const SPECS = {
  out: { kind: "string", help: "output folder (default: a new temporary folder)" },
  "qlora-steps": { kind: "int", help: "QLoRA optimizer steps on tiny-qwen2 (8)" },
  "full-steps": { kind: "int", help: "full fine-tuning steps on tiny-gpt2 (16)" },
  count: { kind: "int", help: "held-out examples evaluated before and after (16)" },
} as const;

export async function run(args: string[]): Promise<number> {
  const o = parseArgs("demo", SPECS, args);
  if (o === "help") {
    console.log(usage("demo", SPECS));
    return 0;
  }
  const out = o.out ?? await Deno.makeTempDir({ prefix: "ostrota-demo-" });
  const count = o.count ?? 16;
  const started = performance.now();
  const runs: RunSummary[] = [];
  const recipes = [
    { recipe: "qlora" as const, model: "tiny-qwen2", steps: o["qlora-steps"] ?? 8, lr: 2e-3 },
    { recipe: "full" as const, model: "tiny-gpt2", steps: o["full-steps"] ?? 16, lr: 1e-3 },
  ];
  for (const { recipe, model, steps, lr } of recipes) {
    const dir = await resolveModel(model);
    const evaluate = (adapter: string | null, folder = dir) =>
      evaluateModel({
        model: folder,
        adapter,
        dataset: SAMPLE_DATASET,
        count,
        maxNewTokens: 16,
        quantize: recipe === "qlora" ? "nf4" : null,
      });
    console.error(`${model}: evaluating before training`);
    const before = await evaluate(null);
    console.error(`${model}: ${recipe} for ${steps} steps`);
    const result = await train(
      trainConfig(recipe, {
        model: dir,
        dataset: SAMPLE_DATASET,
        out: `${out}/${recipe}`,
        maxSteps: steps,
        lr,
        maxSeqLen: 96,
        checkpointEvery: 0,
        limit: null,
      }),
      { onStep: (m) => console.error(`  [${m.step}/${m.totalSteps}] loss ${m.loss.toFixed(3)}`) },
    );
    console.error(`${model}: evaluating after training`);
    const after = result.adapterDir
      ? await evaluate(result.adapterDir)
      : await evaluate(null, result.modelDir!);
    runs.push({
      name: `${model} ${recipe}`,
      recipe,
      model,
      trainSeconds: result.trainSeconds,
      examplesUsed: result.examplesUsed,
      before,
      after,
    });
  }
  await Deno.writeTextFile(`${out}/report.md`, reportMarkdown(runs));
  await Deno.writeTextFile(`${out}/report.csv`, reportCsv(runs));
  await Deno.writeTextFile(`${out}/report.json`, reportJson(runs));
  console.log(reportMarkdown(runs));
  console.error(`demo finished in ${((performance.now() - started) / 1000).toFixed(0)} s; outputs in ${out}`);
  return 0;
}
