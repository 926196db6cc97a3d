import { lrMultiplier } from "../../../lib/train/schedule.ts";

/** transformers' lambdas for the same (step, warmup, total), written out independently. */
function hfLinear(step: number, warmup: number, total: number): number {
  if (step < warmup) return step / Math.max(1, warmup);
  return Math.max(0, (total - step) / Math.max(1, total - warmup));
}
function hfCosine(step: number, warmup: number, total: number): number {
  if (step < warmup) return step / Math.max(1, warmup);
  const progress = (step - warmup) / Math.max(1, total - warmup);
  return Math.max(0, 0.5 * (1 + Math.cos(Math.PI * 0.5 * 2 * progress)));
}

Deno.test("schedule: linear and cosine with warmup follow transformers (first warmup step at lr 0)", () => {
  for (const [warmup, total] of [[5, 60], [0, 10], [3, 3]]) {
    for (let step = 0; step <= total; step++) {
      const linear = lrMultiplier("linear", step, warmup, total);
      const cosine = lrMultiplier("cosine", step, warmup, total);
      if (Math.abs(linear - hfLinear(step, warmup, total)) > 1e-12) {
        throw new Error(`linear ${step}: ${linear}`);
      }
      if (Math.abs(cosine - hfCosine(step, warmup, total)) > 1e-12) {
        throw new Error(`cosine ${step}: ${cosine}`);
      }
      if (lrMultiplier("constant", step, warmup, total) !== (step < warmup ? step / warmup : 1)) {
        throw new Error(`constant ${step}`);
      }
    }
  }
  if (lrMultiplier("linear", 0, 5, 60) !== 0 || lrMultiplier("linear", 5, 5, 60) !== 1) {
    throw new Error("warmup edges");
  }
});
