/**
 * GPU timing for the matmul tuner, the bench and the sweeps. Each sample is one compute pass of back-to-back
 * calls lasting at least MIN_PASS_MS, after warm-up passes until the pass time stops falling: a GPU left mostly
 * idle (short passes between readbacks, which Deno answers about 10 ms late; building weights) lowers its
 * clock, on an H100 from 1980 MHz to ~450 MHz within seconds, and takes seconds of load to come back
 * (bench/results/h100-2026-11-28k-clocks.csv), so kernels timed on a cold clock came out several times slower.
 */
import type { Runtime } from "./runtime.ts";

/** GPU time one sample pass lasts at least. */
const MIN_PASS_MS = 25;
/**
 * Warm-up lasts until a pass is no more than 2 % faster than the pass this long before it: the clock climbs for
 * seconds (435 -> 1980 MHz in 3.5 s on an H100), so consecutive passes can agree while it is still low.
 */
const WARM_WINDOW_MS = 500;
/** Warm-up passes at most (5 s at MIN_PASS_MS). */
const MAX_WARM_PASSES = 200;

/**
 * Median time (ms) of one `fn` call over `reps` passes: GPU time from timestamp queries where the device has
 * them (host latency such as readback polling excluded), else wall clock closed by a GPU sync.
 */
export async function timeCalls(rt: Runtime, fn: () => void, reps: number): Promise<number> {
  fn();
  await rt.sync();
  const pass = async (calls: number): Promise<number> => {
    const gpu = await rt.gpuTime(() => {
      for (let i = 0; i < calls; i++) fn();
    });
    if (gpu !== null) return gpu;
    const t0 = performance.now();
    for (let i = 0; i < calls; i++) fn();
    await rt.sync();
    return performance.now() - t0;
  };
  const once = Math.max(await pass(1), 1e-3);
  const calls = Math.max(1, Math.ceil(MIN_PASS_MS / once));
  const window = Math.ceil(WARM_WINDOW_MS / MIN_PASS_MS);
  const warm: number[] = [];
  while (warm.length < MAX_WARM_PASSES) {
    warm.push(await pass(calls));
    if (warm.length > window && warm.at(-1)! >= 0.98 * warm.at(-1 - window)!) break;
  }
  const samples: number[] = [];
  for (let r = 0; r < reps; r++) samples.push((await pass(calls)) / calls);
  return samples.sort((a, b) => a - b)[Math.floor(samples.length / 2)];
}

/** Weight bytes a measurement that must read from memory cycles through: several times an H100/H200's 50 MB L2. */
const COLD_BYTES = 192 * 2 ** 20;
const MAX_COPIES = 256;

/**
 * Copies of an operand of `bytes` to cycle through so that each call reads it from memory, not from the L2
 * cache (which holds one copy of most decode weights across repetitions).
 */
export function coldCopies(bytes: number): number {
  return Math.min(MAX_COPIES, Math.ceil(COLD_BYTES / bytes));
}
