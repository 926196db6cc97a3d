import { JobKinds, JobQueue } from "./lib/jobs/mod.ts";
import { registerLabJobs } from "./lib/lab/jobs.ts";
import { labRoots } from "./lib/paths.ts";
import { RunStore } from "./lib/store/mod.ts";
import { initRuntime } from "./compute/runtime.ts";
const rt = await initRuntime();
const home = await Deno.makeTempDir();
const roots = labRoots(home, new Map());
await Deno.mkdir(roots.outputs[0], { recursive: true });
const kinds = new JobKinds();
registerLabJobs(roots, kinds);
const store = new RunStore(":memory:");
const q = new JobQueue({
  store,
  memory: { stats: () => rt.pool.stats(), trim: () => rt.trim() },
  outputRoots: roots.outputs,
  kinds,
});
q.start();
const t0 = performance.now();
const r = q.submit("train", {
  recipe: Deno.args[0] ?? "full",
  model: Deno.args[1] ?? "tiny-gpt2",
  dataset: "sample",
  maxSteps: 1,
  batchSize: 2,
  gradAccum: 1,
  maxSeqLen: 64,
  evalCount: 2,
  evalMaxNewTokens: 4,
  limit: 40,
  checkpointEvery: 0,
});
store.subscribe(
  r.id,
  (e) => console.log((performance.now() - t0).toFixed(0), e.type, JSON.stringify(e.payload).slice(0, 150)),
);
await q.idle();
console.log(store.requireRun(r.id).status, store.requireRun(r.id).error, (performance.now() - t0) / 1000);
