/**
 * Choosing the next token from a row of logits, in the order transformers applies its processors: repetition
 * penalty, then temperature, top-k and top-p; temperature 0 is greedy (argmax, first index on ties).
 */

export interface SamplingOptions {
  /** 0 = greedy. */
  temperature: number;
  /** 0 = off. */
  topK: number;
  /** 1 = off. */
  topP: number;
  /** 1 = off; > 1 discourages tokens already in the prompt or the output (CTRL's rule, as transformers). */
  repetitionPenalty: number;
}

export const GREEDY: SamplingOptions = { temperature: 0, topK: 0, topP: 1, repetitionPenalty: 1 };

/** Checks ranges and throws a RangeError naming the option. */
export function validateSampling(o: SamplingOptions): SamplingOptions {
  if (!(o.temperature >= 0 && Number.isFinite(o.temperature))) {
    throw new RangeError(`temperature must be a finite number >= 0, got ${o.temperature}`);
  }
  if (!(Number.isInteger(o.topK) && o.topK >= 0)) {
    throw new RangeError(`top_k must be an integer >= 0, got ${o.topK}`);
  }
  if (!(o.topP > 0 && o.topP <= 1)) throw new RangeError(`top_p must be in (0, 1], got ${o.topP}`);
  if (!(o.repetitionPenalty > 0 && Number.isFinite(o.repetitionPenalty))) {
    throw new RangeError(`repetition_penalty must be > 0, got ${o.repetitionPenalty}`);
  }
  return o;
}

export function argmax(logits: ArrayLike<number>): number {
  let best = 0;
  for (let i = 1; i < logits.length; i++) if (logits[i] > logits[best]) best = i;
  return best;
}

/** Seeded uniform [0, 1) generator (mulberry32) so sampled generations repeat for a seed. */
export function seededRandom(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** Picks the next token. `logits` is modified in place (penalty and temperature). */
export function pickToken(
  logits: Float32Array,
  history: readonly number[],
  options: SamplingOptions,
  random: () => number,
): number {
  if (options.repetitionPenalty !== 1) {
    for (const id of new Set(history)) {
      const v = logits[id];
      logits[id] = v < 0 ? v * options.repetitionPenalty : v / options.repetitionPenalty;
    }
  }
  if (options.temperature === 0) return argmax(logits);
  // Candidates sorted by logit, highest first; top-k and top-p cut the tail.
  let order = Array.from(logits.keys()).sort((a, b) => logits[b] - logits[a] || a - b);
  if (options.topK > 0) order = order.slice(0, options.topK);
  const max = logits[order[0]];
  const weights = order.map((id) => Math.exp((logits[id] - max) / options.temperature));
  let total = weights.reduce((a, b) => a + b, 0);
  if (options.topP < 1) {
    // Keep the smallest prefix whose probability reaches top_p (at least one token).
    let cumulative = 0;
    let keep = 0;
    while (keep < order.length) {
      cumulative += weights[keep] / total;
      keep++;
      if (cumulative >= options.topP) break;
    }
    order = order.slice(0, keep);
    weights.length = keep;
    total = weights.reduce((a, b) => a + b, 0);
  }
  let u = random() * total;
  for (let i = 0; i < order.length; i++) {
    u -= weights[i];
    if (u < 0) return order[i];
  }
  return order[order.length - 1];
}
