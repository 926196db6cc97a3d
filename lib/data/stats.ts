/** Length statistics for dataset reports: summaries and fixed-width histograms of token counts. */

/** Counts tokens of a text; plug in any tokenizer's `encode(text).length`. */
export type CountTokens = (text: string) => number;

/** The default counter: whitespace-separated words (not model tokens; name it so in reports). */
export const countWhitespaceWords: CountTokens = (text) =>
  text.split(/\s+/u).filter((word) => word !== "").length;

/** An alternative counter: Unicode code points. */
export const countCodePoints: CountTokens = (text) => [...text].length;

export interface HistogramBin {
  /** Inclusive lower bound. */
  from: number;
  /** Inclusive upper bound. */
  to: number;
  count: number;
}

/** Summary of a list of lengths; every field is null when the list is empty (there is nothing to compute). */
export interface LengthSummary {
  count: number;
  min: number | null;
  max: number | null;
  mean: number | null;
  median: number | null;
  p95: number | null;
  histogram: HistogramBin[];
}

/** The value at quantile q of sorted values, by the nearest-rank method. */
function nearestRank(sorted: readonly number[], q: number): number {
  return sorted[Math.max(0, Math.ceil(q * sorted.length) - 1)];
}

/**
 * Summarises non-negative integer lengths with a histogram of `bins` equal-width bins starting at 0
 * (the width is rounded up to an integer so bins are whole token counts).
 */
export function summarizeLengths(lengths: readonly number[], bins = 16): LengthSummary {
  if (!Number.isInteger(bins) || bins < 1) {
    throw new RangeError(`histogram bins must be a positive integer, got ${bins}`);
  }
  if (lengths.length === 0) {
    return { count: 0, min: null, max: null, mean: null, median: null, p95: null, histogram: [] };
  }
  for (const length of lengths) {
    if (!Number.isInteger(length) || length < 0) {
      throw new RangeError(
        `token counts must be non-negative integers, got ${length}: check the countTokens function`,
      );
    }
  }
  const sorted = [...lengths].sort((a, b) => a - b);
  const max = sorted[sorted.length - 1];
  const width = Math.max(1, Math.ceil((max + 1) / bins));
  const histogram: HistogramBin[] = [];
  for (let from = 0; from <= max; from += width) histogram.push({ from, to: from + width - 1, count: 0 });
  for (const length of sorted) histogram[Math.floor(length / width)].count++;
  let sum = 0;
  for (const length of sorted) sum += length;
  return {
    count: sorted.length,
    min: sorted[0],
    max,
    mean: sum / sorted.length,
    median: nearestRank(sorted, 0.5),
    p95: nearestRank(sorted, 0.95),
    histogram,
  };
}
