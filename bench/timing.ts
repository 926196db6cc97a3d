/**
 * GPU timing for the bench and the sweeps. Each sample is one compute pass of back-to-back calls lasting at
 * least MIN_PASS_MS, after a pass of the same length to warm up: short passes separated by readbacks (Deno
 * polls for a readback about every 10 ms) leave the GPU mostly idle, and kernels timed that way came out
 * several times slower as a process went on (bench/results/h100-2026-11-28k*.txt).
 */
import type { Runtime } from "../compute/runtime.ts";

/** GPU time one sample pass lasts at least. */
const MIN_PASS_MS = 25;

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
  await pass(calls);
  const samples: number[] = [];
  for (let r = 0; r < reps; r++) samples.push((await pass(calls)) / calls);
  return samples.sort((a, b) => a - b)[Math.floor(samples.length / 2)];
}
