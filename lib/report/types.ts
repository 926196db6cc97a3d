/** The inputs of the comparison report; the trainer and evaluator produce them. */

/** One evaluation example: the prompt, the reference answer and what the model said. */
export interface ExampleAnswer {
  prompt: string;
  reference: string;
  output: string;
}

/** Scores of one model on the held-out set. */
export interface EvalResult {
  /** sacreBLEU corpus BLEU, 0-100 (see `bleuSignature`). */
  bleu: number;
  /** nltk METEOR, mean over sentences, 0-1. */
  meteor: number;
  /** `meteor_ru` (Snowball Russian stems), mean over sentences, 0-1. */
  meteorRu: number;
  /** Mean length of the model's answers in whitespace-separated words. */
  meanAnswerWords: number;
  /** A few answers to show; the report pairs before/after answers by prompt. */
  examples: ExampleAnswer[];
}

/** One fine-tuning run: what was trained, how long it took, and the scores before and after. */
export interface RunSummary {
  name: string;
  /** e.g. "full" or "qlora". */
  recipe: string;
  model: string;
  trainSeconds: number;
  examplesUsed: number;
  before: EvalResult;
  after: EvalResult;
}
