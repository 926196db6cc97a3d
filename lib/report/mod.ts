/** The comparison report of fine-tuning runs (JSON, CSV, Markdown) and the scoring that feeds it. */
export type { EvalResult, ExampleAnswer, RunSummary } from "./types.ts";
export { type EvaluateInput, type EvaluateOptions, evaluateOutputs } from "./evaluate.ts";
export {
  formatDuration,
  type MarkdownOptions,
  reportCsv,
  reportJson,
  reportMarkdown,
  validateRuns,
} from "./report.ts";
export { shownAnswer } from "./answer.ts";
