/** Evaluation runs: a model (and adapter) on a dataset's held-out split, scored with BLEU and METEOR. */
export { type EvalOptions, type EvalOutput, type EvalRun, evaluateModel } from "./evaluate.ts";
