/**
 * The two ways METEOR's input sentences are split into words.
 * - `whitespace`: Python's `str.split()` (what nltk's METEOR examples do; punctuation stays on words).
 * - `word`: a Unicode word tokenizer: runs of letters/digits/marks (with inner apostrophes, hyphens and
 *   digit separators kept, e.g. "don't", "ёлки-палки", "3.14") are words, and every other non-space
 *   character is a token of its own. It is this project's tokenizer, not nltk's `word_tokenize` (which
 *   needs the punkt model); it is documented here so that scores state which splitting they used.
 */
import { pythonSplit } from "./python_text.ts";

export type MeteorTokenization = "whitespace" | "word";

const WORD_PATTERN = /[\p{L}\p{M}\p{N}]+(?:['’\-][\p{L}\p{M}\p{N}]+|[.,]\p{N}+)*|[^\s\p{L}\p{M}\p{N}]/gu;

/** Splits `text` into words with the chosen tokenization. */
export function tokenizeWords(text: string, tokenization: MeteorTokenization = "whitespace"): string[] {
  if (tokenization === "whitespace") return pythonSplit(text);
  if (tokenization === "word") return text.match(WORD_PATTERN) ?? [];
  throw new RangeError(`unknown tokenization "${tokenization}": use "whitespace" or "word"`);
}
