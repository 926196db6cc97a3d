/**
 * Learning-rate schedules as transformers defines them (`get_linear_schedule_with_warmup`,
 * `get_cosine_schedule_with_warmup`): the multiplier for optimizer step `step` (0-based, so the first step of a
 * warmup runs at lr 0, as in the Trainer).
 */
export type ScheduleKind = "linear" | "cosine" | "constant";

export function lrMultiplier(kind: ScheduleKind, step: number, warmup: number, total: number): number {
  if (step < warmup) return step / Math.max(1, warmup);
  if (kind === "constant") return 1;
  const progress = (step - warmup) / Math.max(1, total - warmup);
  if (kind === "linear") return Math.max(0, (total - step) / Math.max(1, total - warmup));
  return Math.max(0, 0.5 * (1 + Math.cos(Math.PI * progress)));
}
