/**
 * Batches for causal-LM training: examples grouped by length (transformers' LengthGroupedSampler: shuffle,
 * sort within mega-batches of 50 batches, longest batch first) and right-padded to the longest in the batch, so
 * short jokes do not pay for the longest; or packed back to back into fixed-length rows.
 */
import { seededPermutation } from "../data/mod.ts";
import { IGNORE, type SftExample } from "./format.ts";

export interface Batch {
  /** i32 [batch * seq] input ids (padding uses `padId`). */
  ids: Int32Array;
  /** i32 [batch * seq] next-token targets: labels shifted left by one, IGNORE where no loss. */
  targets: Int32Array;
  batch: number;
  seq: number;
  /** Non-padding tokens (for tokens/s). */
  tokens: number;
  /** Targets that carry a loss. */
  trainable: number;
}

function toBatch(rows: SftExample[], padId: number, seq: number): Batch {
  const batch = rows.length;
  const ids = new Int32Array(batch * seq).fill(padId);
  const targets = new Int32Array(batch * seq).fill(IGNORE);
  let tokens = 0;
  let trainable = 0;
  rows.forEach((row, b) => {
    ids.set(row.ids, b * seq);
    tokens += row.ids.length;
    for (let t = 0; t + 1 < row.labels.length; t++) {
      targets[b * seq + t] = row.labels[t + 1];
      if (row.labels[t + 1] !== IGNORE) trainable++;
    }
  });
  return { ids, targets, batch, seq, tokens, trainable };
}

/** One epoch's batches, length-grouped, in an order fixed by (seed, epoch). */
export function lengthGroupedBatches(
  examples: SftExample[],
  batchSize: number,
  padId: number,
  seed: number,
  epoch: number,
): Batch[] {
  if (!Number.isInteger(batchSize) || batchSize < 1) {
    throw new RangeError(`batch size must be an integer >= 1, got ${batchSize}`);
  }
  const order = seededPermutation(examples.length, seed * 1_000_003 + epoch);
  const mega = batchSize * 50;
  const groups: number[][] = [];
  for (let start = 0; start < order.length; start += mega) {
    const chunk = order.slice(start, start + mega).sort((a, b) =>
      examples[b].ids.length - examples[a].ids.length
    );
    for (let i = 0; i < chunk.length; i += batchSize) groups.push(chunk.slice(i, i + batchSize));
  }
  // The longest batch goes first, so a run that would not fit in memory fails at step one, not hours later.
  let longest = 0;
  groups.forEach((g, i) => {
    if (examples[g[0]].ids.length > examples[groups[longest][0]].ids.length) longest = i;
  });
  if (groups.length > 0) [groups[0], groups[longest]] = [groups[longest], groups[0]];
  return groups.map((g) => {
    const rows = g.map((i) => examples[i]);
    return toBatch(rows, padId, Math.max(...rows.map((r) => r.ids.length)));
  });
}

/**
 * Packing: examples (shuffled by seed and epoch) concatenated into rows of exactly `seq` tokens. A row's
 * examples attend to each other (no block-diagonal mask), as transformers' simple packing does.
 */
export function packedBatches(
  examples: SftExample[],
  batchSize: number,
  seq: number,
  padId: number,
  seed: number,
  epoch: number,
): Batch[] {
  const order = seededPermutation(examples.length, seed * 1_000_003 + epoch);
  const rows: SftExample[] = [];
  let current: SftExample = { ids: [], labels: [] };
  for (const i of order) {
    const ex = examples[i];
    if (current.ids.length > 0 && current.ids.length + ex.ids.length > seq) {
      rows.push(current);
      current = { ids: [], labels: [] };
    }
    current = {
      ids: [...current.ids, ...ex.ids.slice(0, seq)],
      labels: [...current.labels, ...ex.labels.slice(0, seq)],
    };
  }
  if (current.ids.length > 0) rows.push(current);
  const batches: Batch[] = [];
  for (let i = 0; i < rows.length; i += batchSize) {
    batches.push(toBatch(rows.slice(i, i + batchSize), padId, seq));
  }
  return batches;
}
