/**
 * The seed's comparison table (training time, examples used, BLEU / METEOR / answer length before and
 * after, example answers side by side) as JSON, CSV and Markdown. Inputs are validated first: a report
 * never shows NaN or a missing number.
 */
import { stringify } from "csv-stringify/sync";
import type { EvalResult, RunSummary } from "./types.ts";
import { shownAnswer } from "./answer.ts";

function checkNumber(value: unknown, where: string, min = -Infinity): void {
  if (typeof value !== "number" || !Number.isFinite(value) || value < min) {
    throw new TypeError(
      `${where} is ${String(value)}: expected a finite number${min > -Infinity ? ` >= ${min}` : ""}`,
    );
  }
}

function checkEval(result: EvalResult, where: string): void {
  if (typeof result !== "object" || result === null) throw new TypeError(`${where} is missing`);
  checkNumber(result.bleu, `${where}.bleu`, 0);
  checkNumber(result.meteor, `${where}.meteor`, 0);
  checkNumber(result.meteorRu, `${where}.meteorRu`, 0);
  checkNumber(result.meanAnswerWords, `${where}.meanAnswerWords`, 0);
  if (!Array.isArray(result.examples)) throw new TypeError(`${where}.examples must be a list`);
  result.examples.forEach((example, i) => {
    for (const key of ["prompt", "reference", "output"] as const) {
      if (typeof example?.[key] !== "string") {
        throw new TypeError(`${where}.examples[${i}].${key} must be a string`);
      }
    }
  });
}

/** Throws a TypeError naming the first invalid field of the runs. */
export function validateRuns(runs: readonly RunSummary[]): void {
  if (runs.length === 0) throw new RangeError("a report needs at least one run");
  runs.forEach((run, i) => {
    const where = `run ${i + 1} (${run?.name ?? "unnamed"})`;
    for (const key of ["name", "recipe", "model"] as const) {
      if (typeof run[key] !== "string" || run[key] === "") {
        throw new TypeError(`${where}.${key} must be a non-empty string`);
      }
    }
    checkNumber(run.trainSeconds, `${where}.trainSeconds`, 0);
    if (!Number.isSafeInteger(run.examplesUsed) || run.examplesUsed < 0) {
      throw new TypeError(`${where}.examplesUsed is ${run.examplesUsed}: expected a whole number >= 0`);
    }
    checkEval(run.before, `${where}.before`);
    checkEval(run.after, `${where}.after`);
  });
}

/** "4 min 05 s", "59 s", "1 h 02 min". */
export function formatDuration(seconds: number): string {
  checkNumber(seconds, "duration", 0);
  const total = Math.round(seconds);
  if (total < 60) return `${total} s`;
  const minutes = Math.floor(total / 60);
  if (minutes < 60) return `${minutes} min ${String(total % 60).padStart(2, "0")} s`;
  return `${Math.floor(minutes / 60)} h ${String(minutes % 60).padStart(2, "0")} min`;
}

/** The runs as pretty JSON (the input shape, validated). */
export function reportJson(runs: readonly RunSummary[]): string {
  validateRuns(runs);
  return JSON.stringify({ runs }, null, 2) + "\n";
}

const CSV_COLUMNS = [
  "name",
  "recipe",
  "model",
  "train_seconds",
  "examples_used",
  "bleu_before",
  "bleu_after",
  "meteor_before",
  "meteor_after",
  "meteor_ru_before",
  "meteor_ru_after",
  "answer_words_before",
  "answer_words_after",
];

/** One CSV row per run (full-precision numbers; examples are left to JSON and Markdown). */
export function reportCsv(runs: readonly RunSummary[]): string {
  validateRuns(runs);
  return stringify(
    runs.map((run) => [
      run.name,
      run.recipe,
      run.model,
      run.trainSeconds,
      run.examplesUsed,
      run.before.bleu,
      run.after.bleu,
      run.before.meteor,
      run.after.meteor,
      run.before.meteorRu,
      run.after.meteorRu,
      run.before.meanAnswerWords,
      run.after.meanAnswerWords,
    ]),
    { header: true, columns: CSV_COLUMNS },
  );
}

/** A table cell: pipes escaped, line breaks as <br>. */
function cell(text: string): string {
  return text.replaceAll("\\", "\\\\").replaceAll("|", "\\|").replace(/\r?\n/g, "<br>");
}

function change(before: number, after: number, digits: number): string {
  return `${before.toFixed(digits)} → ${after.toFixed(digits)}`;
}

export interface MarkdownOptions {
  /** Example answers shown per run. Default 3. */
  examples?: number;
}

/** The comparison table and, per run, example answers before and after side by side. */
export function reportMarkdown(runs: readonly RunSummary[], options: MarkdownOptions = {}): string {
  validateRuns(runs);
  const shown = options.examples ?? 3;
  const lines = [
    "| run | recipe | model | training time | examples | BLEU | METEOR | METEOR (ru) | answer words |",
    "|---|---|---|---|---|---|---|---|---|",
  ];
  for (const run of runs) {
    lines.push(
      `| ${cell(run.name)} | ${cell(run.recipe)} | ${cell(run.model)} | ${
        formatDuration(run.trainSeconds)
      } | ` +
        `${run.examplesUsed} | ${change(run.before.bleu, run.after.bleu, 2)} | ` +
        `${change(run.before.meteor, run.after.meteor, 3)} | ${
          change(run.before.meteorRu, run.after.meteorRu, 3)
        } | ` +
        `${change(run.before.meanAnswerWords, run.after.meanAnswerWords, 1)} |`,
    );
  }
  lines.push(
    "",
    "BLEU: sacreBLEU corpus BLEU (13a, 0-100). METEOR: nltk's meteor_score (WordNet 3.1), mean over sentences, " +
      "0-1. METEOR (ru): the same with Snowball Russian stems. Before → after fine-tuning.",
  );
  for (const run of runs) {
    const beforeByPrompt = new Map(run.before.examples.map((example) => [example.prompt, example.output]));
    const examples = run.after.examples.slice(0, shown);
    if (examples.length === 0) continue;
    lines.push(
      "",
      `### ${run.name}: example answers`,
      "",
      "| prompt | reference | before | after |",
      "|---|---|---|---|",
    );
    for (const example of examples) {
      const before = beforeByPrompt.get(example.prompt);
      lines.push(
        `| ${cell(example.prompt)} | ${cell(example.reference)} | ${
          before === undefined ? "—" : cell(shownAnswer(before))
        } | ` +
          `${cell(shownAnswer(example.output))} |`,
      );
    }
  }
  return lines.join("\n") + "\n";
}
