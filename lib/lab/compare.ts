/**
 * The Compare page's data: the seed's comparison table of chosen train runs, built from what each run stored
 * (evalResults "before", "after" and "training"), and rendered by lib/report as CSV or Markdown.
 */
import * as path from "node:path";
import type { EvalResult, ExampleAnswer, RunSummary } from "../report/mod.ts";
import { reportCsv, reportMarkdown } from "../report/mod.ts";
import { BadRequestError } from "../server/http.ts";
import type { RunRecord, RunStore } from "../store/mod.ts";
import type { TrainingFacts } from "./jobs.ts";

/** At most this many runs in one comparison. */
export const MAX_COMPARED = 12;

/** Thrown when a run cannot be compared (not a finished train run); the API answers 400 saying why. */
export class NotComparableError extends BadRequestError {
  constructor(message: string) {
    super(message);
    this.name = "NotComparableError";
  }
}

/** Parses `ids=3,5,8` (also repeated `ids=`); throws BadRequestError (a TypeError) naming the bad part. */
export function parseRunIds(values: string[]): number[] {
  const parts = values.flatMap((v) => v.split(",")).map((s) => s.trim()).filter((s) => s !== "");
  if (parts.length === 0) throw new BadRequestError("ids must list at least one run id, e.g. ?ids=3,5");
  const ids: number[] = [];
  for (const part of parts) {
    if (!/^[1-9]\d{0,15}$/.test(part)) {
      throw new BadRequestError(`ids: "${part}" is not a run id (a positive integer)`);
    }
    if (!ids.includes(Number(part))) ids.push(Number(part));
  }
  if (ids.length > MAX_COMPARED) {
    throw new BadRequestError(`ids: at most ${MAX_COMPARED} runs, got ${ids.length}`);
  }
  return ids;
}

/** The name a model shows in reports: a built-in name as is, a folder by its last part(s). */
export function modelLabel(model: string): string {
  if (!path.isAbsolute(model)) return model;
  const base = path.basename(model);
  // A trained model sits in run-N/model: the run folder says more than "model".
  return base === "model" || base === "merged" ? `${path.basename(path.dirname(model))}/${base}` : base;
}

/** Whether a run has what the comparison table needs. */
export function isComparable(run: RunRecord): boolean {
  const r = run.evalResults;
  return run.kind === "train" && !!r.before && !!r.after && !!r.training;
}

/** The report's view of one finished train run. */
export function runSummary(run: RunRecord): RunSummary {
  if (run.kind !== "train") {
    throw new NotComparableError(`run ${run.id} is a ${run.kind} run: only train runs can be compared`);
  }
  const results = run.evalResults;
  for (const label of ["before", "after", "training"]) {
    if (!results[label]) {
      throw new NotComparableError(
        `run ${run.id} (${run.status}) has no "${label}" result yet: compare it once it has completed`,
      );
    }
  }
  const training = results.training as unknown as TrainingFacts;
  return {
    name: `#${run.id} ${run.name}`,
    recipe: String(run.config.recipe),
    model: modelLabel(String(run.config.model)),
    trainSeconds: training.trainSeconds,
    examplesUsed: training.examplesUsed,
    before: results.before as unknown as EvalResult,
    after: results.after as unknown as EvalResult,
  };
}

export function summaries(store: RunStore, ids: number[]): RunSummary[] {
  return ids.map((id) => runSummary(store.requireRun(id)));
}

/** Before/after answers of one run, paired by prompt. */
export interface AnswerPair {
  prompt: string;
  reference: string;
  before: string | null;
  after: string;
}

export function answerPairs(summary: RunSummary): AnswerPair[] {
  const before = new Map(summary.before.examples.map((e: ExampleAnswer) => [e.prompt, e.output]));
  return summary.after.examples.map((e) => ({
    prompt: e.prompt,
    reference: e.reference,
    before: before.get(e.prompt) ?? null,
    after: e.output,
  }));
}

export type ReportFormat = "csv" | "md";

export function renderReport(runs: RunSummary[], format: ReportFormat): { body: string; type: string } {
  return format === "csv"
    ? { body: reportCsv(runs), type: "text/csv; charset=utf-8" }
    : { body: reportMarkdown(runs), type: "text/markdown; charset=utf-8" };
}
