/**
 * BLEU exactly as sacreBLEU 2.x computes it (a port of sacrebleu/metrics/bleu.py and base.py): corpus BLEU
 * from summed n-gram statistics, the `13a` tokenizer, brevity penalty, 0-100 scale, and sacreBLEU's
 * smoothing methods. {@link sentenceBleu} matches `sacrebleu.sentence_bleu` (exp smoothing, effective order).
 */
import { pythonRstrip, pythonSplit } from "./python_text.ts";
import { tokenize13a } from "./tokenizer_13a.ts";

/** The sacreBLEU release whose algorithm this file ports; it only appears in the signature string. */
export const SACREBLEU_VERSION = "2.6.0";

export type BleuSmoothMethod = "none" | "floor" | "add-k" | "exp";

export interface BleuOptions {
  /** Lower-case hypotheses and references before tokenising (sacreBLEU `lowercase`, `case:lc`). */
  lowercase?: boolean;
  /** Default `exp` (sacreBLEU's default, the NIST smoothing of mteval-v13a.pl). */
  smoothMethod?: BleuSmoothMethod;
  /** The value for `floor` (default 0.1) and `add-k` (default 1); ignored by the other methods. */
  smoothValue?: number;
  /** Default 4. */
  maxNgramOrder?: number;
  /** Stop at the highest n-gram order the hypothesis has (sacreBLEU `effective_order`). */
  effectiveOrder?: boolean;
}

export interface BleuScore {
  /** BLEU on sacreBLEU's 0-100 scale. */
  score: number;
  /** Clipped n-gram matches per order 1..maxNgramOrder. */
  counts: number[];
  /** Hypothesis n-grams per order. */
  totals: number[];
  /** Per-order precisions (0-100), smoothed as sacreBLEU does. */
  precisions: number[];
  /** Brevity penalty. */
  bp: number;
  sysLen: number;
  refLen: number;
}

/** The default for `floor` and `add-k`, as sacreBLEU's `BLEU.SMOOTH_DEFAULTS`. */
const SMOOTH_DEFAULTS: Record<BleuSmoothMethod, number | null> = {
  none: null,
  floor: 0.1,
  "add-k": 1,
  exp: null,
};

/** sacreBLEU's `my_log`: log(0) is a large negative number instead of -Infinity. */
function myLog(value: number): number {
  return value === 0 ? -9999999999 : Math.log(value);
}

/**
 * sacreBLEU's `BLEU.compute_bleu`: the score from summed statistics. Exported so callers that keep
 * per-sentence statistics (bootstrap, streaming eval) can aggregate them themselves.
 */
export function computeBleu(
  correctIn: readonly number[],
  totalIn: readonly number[],
  sysLen: number,
  refLen: number,
  options: BleuOptions = {},
): BleuScore {
  const smoothMethod = options.smoothMethod ?? "exp";
  const maxOrder = options.maxNgramOrder ?? 4;
  if (!(smoothMethod in SMOOTH_DEFAULTS)) {
    throw new RangeError(`unknown BLEU smooth method "${smoothMethod}": use none, floor, add-k or exp`);
  }
  const smoothValue = options.smoothValue ?? SMOOTH_DEFAULTS[smoothMethod] ?? 0;
  const correct = [...correctIn];
  const total = [...totalIn];
  const bp = sysLen < refLen ? (sysLen > 0 ? Math.exp(1 - refLen / sysLen) : 0) : 1;
  const precisions = new Array<number>(maxOrder).fill(0);
  // sacreBLEU returns 0 early when nothing matches at all (its issue #141).
  if (!correct.some((count) => count !== 0)) {
    return { score: 0, counts: correct, totals: total, precisions, bp, sysLen, refLen };
  }
  let smoothMteval = 1;
  let effOrder = maxOrder;
  for (let n = 1; n <= maxOrder; n++) {
    if (smoothMethod === "add-k" && n > 1) {
      correct[n - 1] += smoothValue;
      total[n - 1] += smoothValue;
    }
    if (total[n - 1] === 0) break;
    if (options.effectiveOrder) effOrder = n;
    if (correct[n - 1] === 0) {
      if (smoothMethod === "exp") {
        smoothMteval *= 2;
        precisions[n - 1] = 100 / (smoothMteval * total[n - 1]);
      } else if (smoothMethod === "floor") {
        precisions[n - 1] = (100 * smoothValue) / total[n - 1];
      }
    } else {
      precisions[n - 1] = (100 * correct[n - 1]) / total[n - 1];
    }
  }
  // Summed left to right like Python's sum() over the list, so rounding matches sacreBLEU.
  let logSum = 0;
  for (const precision of precisions.slice(0, effOrder)) logSum += myLog(precision);
  const score = bp * Math.exp(logSum / effOrder);
  return { score, counts: correct, totals: total, precisions, bp, sysLen, refLen };
}

/**
 * n-gram counts of a tokenised line per order (sacreBLEU `extract_all_word_ngrams`): `result[n - 1]` maps
 * each n-gram, keyed by the JSON of its tokens so no token content can make two n-grams collide.
 */
function extractNgrams(tokens: readonly string[], maxOrder: number): Map<string, number>[] {
  const byOrder: Map<string, number>[] = [];
  for (let n = 1; n <= maxOrder; n++) {
    const counts = new Map<string, number>();
    for (let i = 0; i + n <= tokens.length; i++) {
      const key = JSON.stringify(tokens.slice(i, i + n));
      counts.set(key, (counts.get(key) ?? 0) + 1);
    }
    byOrder.push(counts);
  }
  return byOrder;
}

/** sacreBLEU `_get_closest_ref_len`: the reference length closest to the hypothesis, shorter on ties. */
function closestRefLen(hypLen: number, refLens: readonly number[]): number {
  let closestDiff = -1;
  let closestLen = -1;
  for (const refLen of refLens) {
    const diff = Math.abs(hypLen - refLen);
    if (closestDiff === -1 || diff < closestDiff) {
      closestDiff = diff;
      closestLen = refLen;
    } else if (diff === closestDiff && refLen < closestLen) {
      closestLen = refLen;
    }
  }
  return closestLen;
}

/** sacreBLEU `_preprocess_segment`: optional lower-casing, right-strip, 13a tokenisation, split. */
export function bleuTokens(sentence: string, lowercase = false): string[] {
  const text = lowercase ? sentence.toLowerCase() : sentence;
  return pythonSplit(tokenize13a(pythonRstrip(text)));
}

/**
 * Per-sentence sufficient statistics `[sysLen, refLen, ...correct, ...total]`, as sacreBLEU's
 * `_extract_corpus_statistics`. `references[i]` holds every reference of sentence i. An empty reference is
 * kept as sacreBLEU 2.6 keeps it: zero length and no n-grams.
 */
export function bleuStatistics(
  hypotheses: readonly string[],
  references: readonly (readonly string[])[],
  options: BleuOptions = {},
): number[][] {
  if (hypotheses.length !== references.length) {
    throw new RangeError(
      `BLEU needs one reference set per hypothesis: got ${hypotheses.length} hypotheses and ` +
        `${references.length} reference sets`,
    );
  }
  const maxOrder = options.maxNgramOrder ?? 4;
  return hypotheses.map((hypothesis, index) => {
    const refs = references[index];
    if (refs.length === 0) {
      throw new RangeError(`sentence ${index + 1} has no reference: give at least one (it may be empty)`);
    }
    // Clipping counts: for each n-gram, its largest count in any one reference.
    const refNgrams = Array.from({ length: maxOrder }, () => new Map<string, number>());
    const refLens: number[] = [];
    for (const ref of refs) {
      const tokens = bleuTokens(ref, options.lowercase);
      refLens.push(tokens.length);
      extractNgrams(tokens, maxOrder).forEach((counts, order) => {
        for (const [ngram, count] of counts) {
          refNgrams[order].set(ngram, Math.max(refNgrams[order].get(ngram) ?? 0, count));
        }
      });
    }
    const hypTokens = bleuTokens(hypothesis, options.lowercase);
    const correct = new Array<number>(maxOrder).fill(0);
    const total = new Array<number>(maxOrder).fill(0);
    extractNgrams(hypTokens, maxOrder).forEach((counts, order) => {
      for (const [ngram, count] of counts) {
        total[order] += count;
        correct[order] += Math.min(count, refNgrams[order].get(ngram) ?? 0);
      }
    });
    return [hypTokens.length, closestRefLen(hypTokens.length, refLens), ...correct, ...total];
  });
}

/** Sums per-sentence statistics and computes BLEU (sacreBLEU `_aggregate_and_compute`). */
export function bleuFromStatistics(
  stats: readonly (readonly number[])[],
  options: BleuOptions = {},
): BleuScore {
  const maxOrder = options.maxNgramOrder ?? 4;
  const sums = new Array<number>(2 + 2 * maxOrder).fill(0);
  for (const row of stats) for (let i = 0; i < sums.length; i++) sums[i] += row[i];
  return computeBleu(
    sums.slice(2, 2 + maxOrder),
    sums.slice(2 + maxOrder),
    sums[0],
    sums[1],
    options,
  );
}

function checkStrings(values: readonly unknown[], what: string): void {
  values.forEach((value, index) => {
    if (typeof value !== "string") {
      throw new TypeError(`${what} ${index + 1} is ${typeof value}, not a string`);
    }
  });
}

/**
 * Corpus BLEU as `sacrebleu.corpus_bleu(hypotheses, referenceStreams)`: `referenceStreams` is a list of
 * reference documents, each with one reference per hypothesis (sacreBLEU's layout; one stream for one
 * reference per sentence). Defaults: 13a, exp smoothing, no effective order.
 */
export function corpusBleu(
  hypotheses: readonly string[],
  referenceStreams: readonly (readonly string[])[],
  options: BleuOptions = {},
): BleuScore {
  if (hypotheses.length === 0) throw new RangeError("corpus BLEU needs at least one hypothesis");
  if (referenceStreams.length === 0) throw new RangeError("corpus BLEU needs at least one reference stream");
  checkStrings(hypotheses, "hypothesis");
  referenceStreams.forEach((stream, index) => {
    if (stream.length !== hypotheses.length) {
      throw new RangeError(
        `reference stream ${index + 1} has ${stream.length} lines but there are ${hypotheses.length} ` +
          `hypotheses: give one reference per hypothesis`,
      );
    }
    checkStrings(stream, `reference stream ${index + 1}, line`);
  });
  const perSentence = hypotheses.map((_, i) => referenceStreams.map((stream) => stream[i]));
  return bleuFromStatistics(bleuStatistics(hypotheses, perSentence, options), options);
}

/**
 * Sentence BLEU as `sacrebleu.sentence_bleu(hypothesis, references)`: exp smoothing and effective order
 * unless overridden.
 */
export function sentenceBleu(
  hypothesis: string,
  references: readonly string[],
  options: BleuOptions = {},
): BleuScore {
  const merged: BleuOptions = { smoothMethod: "exp", effectiveOrder: true, ...options };
  checkStrings([hypothesis], "hypothesis");
  checkStrings(references, "reference");
  return bleuFromStatistics(bleuStatistics([hypothesis], [references], merged), merged);
}

/** sacreBLEU's signature string, e.g. `nrefs:1|case:mixed|eff:no|tok:13a|smooth:exp|version:2.6.0`. */
export function bleuSignature(nrefs: number, options: BleuOptions = {}): string {
  const method = options.smoothMethod ?? "exp";
  const smoothDefault = SMOOTH_DEFAULTS[method];
  const smooth = smoothDefault === null
    ? method
    : `${method}[${(options.smoothValue ?? smoothDefault).toFixed(2)}]`;
  return [
    `nrefs:${nrefs}`,
    `case:${options.lowercase ? "lc" : "mixed"}`,
    `eff:${options.effectiveOrder ? "yes" : "no"}`,
    "tok:13a",
    `smooth:${smooth}`,
    `version:${SACREBLEU_VERSION}`,
  ].join("|");
}
