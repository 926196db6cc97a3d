/** Scores model outputs against references into an {@link EvalResult} (what `deno task eval` reports). */
import { countWhitespaceWords } from "../data/stats.ts";
import { corpusBleu, corpusMeteor, corpusMeteorRu, type MeteorTokenization } from "../metrics/mod.ts";
import type { EvalResult } from "./types.ts";

export interface EvaluateInput {
  prompts: readonly string[];
  references: readonly string[];
  outputs: readonly string[];
}

export interface EvaluateOptions {
  /** METEOR word splitting; default whitespace (nltk's usual str.split()). */
  tokenize?: MeteorTokenization;
  /** How many examples to keep for the report (the first ones). Default 5. */
  exampleCount?: number;
}

/** Corpus BLEU, mean METEOR and meteor_ru, mean answer length, and the first few examples. */
export function evaluateOutputs(input: EvaluateInput, options: EvaluateOptions = {}): EvalResult {
  const { prompts, references, outputs } = input;
  if (outputs.length === 0) throw new RangeError("nothing to evaluate: no outputs");
  if (prompts.length !== outputs.length || references.length !== outputs.length) {
    throw new RangeError(
      `prompts (${prompts.length}), references (${references.length}) and outputs (${outputs.length}) ` +
        `must have the same length`,
    );
  }
  const perSentenceRefs = references.map((ref) => [ref]);
  const meteorOptions = { tokenize: options.tokenize };
  let words = 0;
  for (const output of outputs) words += countWhitespaceWords(output);
  const exampleCount = options.exampleCount ?? 5;
  return {
    bleu: corpusBleu(outputs, [references]).score,
    meteor: corpusMeteor(outputs, perSentenceRefs, meteorOptions).mean,
    meteorRu: corpusMeteorRu(outputs, perSentenceRefs, meteorOptions).mean,
    meanAnswerWords: words / outputs.length,
    examples: outputs.slice(0, exampleCount).map((output, i) => ({
      prompt: prompts[i],
      reference: references[i],
      output,
    })),
  };
}
