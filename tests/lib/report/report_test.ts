import assert from "node:assert/strict";
import { parse } from "csv-parse/sync";
import {
  formatDuration,
  reportCsv,
  reportJson,
  reportMarkdown,
  validateRuns,
} from "../../../lib/report/report.ts";
import type { EvalResult, RunSummary } from "../../../lib/report/types.ts";

function evalResult(bleu: number, meteor: number, outputs: string[]): EvalResult {
  return {
    bleu,
    meteor,
    meteorRu: meteor + 0.01,
    meanAnswerWords: 6.5,
    examples: outputs.map((output, i) => ({ prompt: `Вопрос ${i}?`, reference: `Ответ | ${i}`, output })),
  };
}

function runs(): RunSummary[] {
  return [
    {
      name: "qlora-7b",
      recipe: "qlora",
      model: "unsloth/Qwen2.5-7B-Instruct",
      trainSeconds: 245,
      examplesUsed: 480,
      before: evalResult(12.5, 0.41, ["длинно\nи скучно", "нет"]),
      after: evalResult(20.25, 0.55, ["коротко", "да", "третий"]),
    },
  ];
}

Deno.test("Markdown report: the seed's table and example answers side by side", () => {
  const markdown = reportMarkdown(runs(), { examples: 2 });
  assert.match(
    markdown,
    /\| qlora-7b \| qlora \| unsloth\/Qwen2\.5-7B-Instruct \| 4 min 05 s \| 480 \| 12\.50 → 20\.25 \| 0\.410 → 0\.550 \| 0\.420 → 0\.560 \| 6\.5 → 6\.5 \|/,
  );
  assert.match(markdown, /\| Вопрос 0\? \| Ответ \\\| 0 \| длинно<br>и скучно \| коротко \|/);
  assert.ok(!markdown.includes("третий"), "only the requested number of examples");
  assert.ok(!markdown.includes("NaN"));
});

Deno.test("Markdown report: a blank answer is named, not an empty cell", () => {
  const [run] = runs();
  run.before = evalResult(0, 0, [" \n", "нет"]);
  run.after = evalResult(0, 0, ["", "да"]);
  const markdown = reportMarkdown([run], { examples: 2 });
  assert.match(markdown, /\| Вопрос 0\? \| Ответ \\\| 0 \| \(empty answer\) \| \(empty answer\) \|/);
  assert.match(markdown, /\| Вопрос 1\? \| Ответ \\\| 1 \| нет \| да \|/);
});

Deno.test("CSV report: one row per run with the full-precision numbers", () => {
  const rows = parse(reportCsv(runs()), { columns: true }) as Record<string, string>[];
  assert.equal(rows.length, 1);
  assert.equal(rows[0].bleu_after, "20.25");
  assert.equal(rows[0].meteor_ru_before, String(0.41 + 0.01));
  assert.equal(rows[0].train_seconds, "245");
});

Deno.test("JSON report round-trips the runs", () => {
  assert.deepEqual(JSON.parse(reportJson(runs())), { runs: runs() });
});

Deno.test("invalid runs are TypeErrors naming the field, never NaN in a report", () => {
  const nan = runs();
  nan[0].after.meteor = NaN;
  assert.throws(() => reportMarkdown(nan), /run 1 \(qlora-7b\)\.after\.meteor is NaN/);
  const negative = runs();
  negative[0].trainSeconds = -1;
  assert.throws(() => reportCsv(negative), /trainSeconds is -1/);
  const fractional = runs();
  fractional[0].examplesUsed = 1.5;
  assert.throws(() => reportJson(fractional), /examplesUsed is 1\.5/);
  const noExamples = runs();
  (noExamples[0].before as unknown as { examples: unknown }).examples = null;
  assert.throws(() => validateRuns(noExamples), /before\.examples must be a list/);
  assert.throws(() => validateRuns([]), RangeError);
});

Deno.test("formatDuration: seconds, minutes, hours", () => {
  assert.equal(formatDuration(59.4), "59 s");
  assert.equal(formatDuration(1200), "20 min 00 s");
  assert.equal(formatDuration(3725), "1 h 02 min");
});
