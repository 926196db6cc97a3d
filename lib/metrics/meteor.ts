/**
 * METEOR exactly as nltk's `nltk.translate.meteor_score.meteor_score` (nltk 3.8/3.9): alpha 0.9, beta 3,
 * gamma 0.5; words lower-cased; alignment in three stages (exact, Porter stem, WordNet synonyms), each
 * stage matching nltk's `_match_enums` enumeration order (last hypothesis word first, last reference word
 * first); chunks counted as `_count_chunks`; the best score over the references.
 *
 * {@link meteorRuScore} is the same algorithm with a Snowball Russian stemmer in the stem stage and no
 * WordNet stage for Cyrillic words (WordNet is English): it is this project's variant, named `meteor_ru`.
 */
import snowball from "snowball-stemmers";
import { porterStem } from "./porter.ts";
import { sharedWordNet, type WordNet } from "./wordnet.ts";
import { type MeteorTokenization, tokenizeWords } from "./word_tokenize.ts";

export interface MeteorParams {
  alpha?: number;
  beta?: number;
  gamma?: number;
}

/** One stage's view of a word: its position in the sentence and its current (lower-cased/stemmed) form. */
type Enumerated = [index: number, word: string];
type Match = [hypIndex: number, refIndex: number];

/** The stages of an aligner: a stemmer for stage two and an optional synonym source for stage three. */
interface Aligner {
  stem(word: string): string;
  /** Synonyms of a (stemmed) hypothesis word, or null to skip the synonym stage for it. */
  synonyms(word: string): Set<string> | null;
}

/**
 * nltk `_match_enums`: for each hypothesis word from the last, the last equal reference word still free.
 * Mutates both lists (removes matched words), as nltk does.
 */
function matchEnums(hyp: Enumerated[], ref: Enumerated[], equal: (h: string, r: string) => boolean): Match[] {
  const matches: Match[] = [];
  for (let i = hyp.length - 1; i >= 0; i--) {
    for (let j = ref.length - 1; j >= 0; j--) {
      if (equal(hyp[i][1], ref[j][1])) {
        matches.push([hyp[i][0], ref[j][0]]);
        hyp.splice(i, 1);
        ref.splice(j, 1);
        break;
      }
    }
  }
  return matches;
}

/** nltk `_enum_align_words`: exact, then stem, then synonym matches, sorted by hypothesis position. */
function alignWords(hypWords: string[], refWords: string[], aligner: Aligner): Match[] {
  let hyp: Enumerated[] = hypWords.map((word, index) => [index, word]);
  let ref: Enumerated[] = refWords.map((word, index) => [index, word]);
  const exact = matchEnums(hyp, ref, (h, r) => h === r);
  // The stem stage matches stems and hands the *stemmed* leftovers to the synonym stage, as nltk does.
  hyp = hyp.map(([index, word]) => [index, aligner.stem(word)]);
  ref = ref.map(([index, word]) => [index, aligner.stem(word)]);
  const stemmed = matchEnums(hyp, ref, (h, r) => h === r);
  const synonymMatches: Match[] = [];
  for (let i = hyp.length - 1; i >= 0; i--) {
    const synonyms = aligner.synonyms(hyp[i][1]);
    if (synonyms === null) continue;
    for (let j = ref.length - 1; j >= 0; j--) {
      if (synonyms.has(ref[j][1])) {
        synonymMatches.push([hyp[i][0], ref[j][0]]);
        hyp.splice(i, 1);
        ref.splice(j, 1);
        break;
      }
    }
  }
  return [...exact, ...stemmed, ...synonymMatches].sort((a, b) => a[0] - b[0]);
}

/** nltk `_count_chunks`: runs of matches adjacent in both sentences. */
function countChunks(matches: readonly Match[]): number {
  let chunks = 1;
  for (let i = 0; i < matches.length - 1; i++) {
    const adjacent = matches[i + 1][0] === matches[i][0] + 1 && matches[i + 1][1] === matches[i][1] + 1;
    if (!adjacent) chunks++;
  }
  return chunks;
}

/** nltk `single_meteor_score` on already tokenised words. */
function singleScore(
  hypTokens: string[],
  refTokens: string[],
  aligner: Aligner,
  params: MeteorParams,
): number {
  const alpha = params.alpha ?? 0.9;
  const beta = params.beta ?? 3;
  const gamma = params.gamma ?? 0.5;
  const hyp = hypTokens.map((word) => word.toLowerCase());
  const ref = refTokens.map((word) => word.toLowerCase());
  const matches = alignWords(hyp, ref, aligner);
  const matchCount = matches.length;
  // nltk returns 0.0 on ZeroDivisionError: an empty side or no match at all.
  if (hyp.length === 0 || ref.length === 0 || matchCount === 0) return 0;
  const precision = matchCount / hyp.length;
  const recall = matchCount / ref.length;
  const fmean = (precision * recall) / (alpha * precision + (1 - alpha) * recall);
  const fragFrac = countChunks(matches) / matchCount;
  const penalty = gamma * fragFrac ** beta;
  return (1 - penalty) * fmean;
}

function englishAligner(wordnet: WordNet): Aligner {
  return {
    stem: porterStem,
    synonyms(word) {
      const names = new Set<string>([word]);
      for (const synset of wordnet.synsetLemmaNames(word)) {
        for (const name of synset) if (!name.includes("_")) names.add(name);
      }
      return names;
    },
  };
}

const CYRILLIC = /\p{Script=Cyrillic}/u;

let russianStemmer: { stem(word: string): string } | null = null;

function russianAligner(wordnet: WordNet): Aligner {
  russianStemmer ??= snowball.newStemmer("russian");
  const english = englishAligner(wordnet);
  return {
    stem: (word) => CYRILLIC.test(word) ? russianStemmer!.stem(word) : porterStem(word),
    synonyms: (word) => CYRILLIC.test(word) ? null : english.synonyms(word),
  };
}

export interface MeteorOptions extends MeteorParams {
  /** How sentences are split into words; default `whitespace` (Python's str.split()). */
  tokenize?: MeteorTokenization;
  /** A WordNet reader; default the shared WordNet 3.1 instance. */
  wordnet?: WordNet;
}

function checkReferences(references: readonly string[]): void {
  if (references.length === 0) throw new RangeError("METEOR needs at least one reference per hypothesis");
}

/**
 * nltk `meteor_score([ref.split() for ref in references], hypothesis.split())` with the given tokenization:
 * the best single-reference METEOR over the references, in [0, 1].
 */
export function meteorScore(
  references: readonly string[],
  hypothesis: string,
  options: MeteorOptions = {},
): number {
  checkReferences(references);
  const aligner = englishAligner(options.wordnet ?? sharedWordNet());
  const hyp = tokenizeWords(hypothesis, options.tokenize);
  return Math.max(
    ...references.map((ref) => singleScore(hyp, tokenizeWords(ref, options.tokenize), aligner, options)),
  );
}

/** METEOR with the Snowball Russian stemmer for Cyrillic words and no WordNet stage for them (`meteor_ru`). */
export function meteorRuScore(
  references: readonly string[],
  hypothesis: string,
  options: MeteorOptions = {},
): number {
  checkReferences(references);
  const aligner = russianAligner(options.wordnet ?? sharedWordNet());
  const hyp = tokenizeWords(hypothesis, options.tokenize);
  return Math.max(
    ...references.map((ref) => singleScore(hyp, tokenizeWords(ref, options.tokenize), aligner, options)),
  );
}

export interface CorpusMeteor {
  /** Mean of the per-sentence scores (an empty corpus is an error, not a score). */
  mean: number;
  perSentence: number[];
}

function corpus(
  hypotheses: readonly string[],
  references: readonly (readonly string[])[],
  score: (refs: readonly string[], hyp: string) => number,
): CorpusMeteor {
  if (hypotheses.length === 0) throw new RangeError("METEOR needs at least one hypothesis");
  if (hypotheses.length !== references.length) {
    throw new RangeError(
      `METEOR needs one reference set per hypothesis: got ${hypotheses.length} hypotheses and ` +
        `${references.length} reference sets`,
    );
  }
  const perSentence = hypotheses.map((hyp, i) => score(references[i], hyp));
  let sum = 0;
  for (const value of perSentence) sum += value;
  return { mean: sum / perSentence.length, perSentence };
}

/** nltk METEOR per sentence (`references[i]` are the references of `hypotheses[i]`) and their mean. */
export function corpusMeteor(
  hypotheses: readonly string[],
  references: readonly (readonly string[])[],
  options: MeteorOptions = {},
): CorpusMeteor {
  return corpus(hypotheses, references, (refs, hyp) => meteorScore(refs, hyp, options));
}

/** {@link meteorRuScore} per sentence and their mean. */
export function corpusMeteorRu(
  hypotheses: readonly string[],
  references: readonly (readonly string[])[],
  options: MeteorOptions = {},
): CorpusMeteor {
  return corpus(hypotheses, references, (refs, hyp) => meteorRuScore(refs, hyp, options));
}
