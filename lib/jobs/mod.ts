/**
 * Jobs: the work the lab runs on the GPU, one run at a time.
 *
 * ## Registering a job kind
 *
 * A module that provides a kind of run (training, evaluation, export) registers it once, at import:
 *
 * ```ts
 * import { registerJobKind } from "../jobs/mod.ts";
 *
 * registerJobKind("train", async (ctx) => {
 *   // ctx.config: the validated config snapshot; ctx.resume: continue from the checkpoint in ctx.outputDir
 *   for (let step = 1; step <= total; step++) {
 *     if (ctx.signal.aborted) return;          // cancel or shutdown: stop at a step boundary, then return
 *     ...                                      // one step on the GPU
 *     ctx.metric({ step, loss, lr, grad_norm, tokens_per_second });  // gpu_bytes filled in when omitted
 *     ctx.progress(step, total);
 *     if (step % 50 === 0) ctx.sample(step, prompt, output);
 *   }
 *   ctx.artifact("adapter", `${ctx.outputDir}/adapter`);     // must lie inside the output roots
 *   ctx.evalResult("after", evalResult);                      // any JSON, by label ("before", "after")
 *   ctx.log("done");                                          // log tail on the Run page
 * }, {
 *   // Optional: checks a config before the run is created; returns the config to store. Throw a TypeError or
 *   // RangeError whose message names the field (e.g. `lr must be > 0, got -1`): POST /api/runs answers 400.
 *   validate(config) { return config; },
 * });
 * ```
 *
 * The server imports the kind's module before it starts (lib/cli/serve.ts), so the kind is known when the
 * queue picks up runs left queued by a previous process.
 *
 * ## Life of a run
 *
 * queued → running → completed | failed (the handler threw; its message is stored) | cancelled (cancel
 * aborted `ctx.signal`; the run is marked once the handler returns) | interrupted (the server stopped or died
 * while it ran). After every run the queue calls the runtime's `trim()` so pooled GPU memory is freed. Resume
 * re-queues an interrupted, cancelled or failed run at the back of the queue with `ctx.resume === true`.
 * Every JobContext call is stored in the run store and broadcast to the run's SSE stream.
 */
export {
  type JobContext,
  type JobHandler,
  type JobKind,
  type JobKindOptions,
  JobKinds,
  jobKinds,
  registerJobKind,
  UnknownJobKindError,
} from "./registry.ts";
export {
  type GpuMemory,
  InvalidConfigError,
  JobQueue,
  type JobQueueOptions,
  RunStateError,
} from "./queue.ts";
