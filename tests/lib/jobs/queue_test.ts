import assert from "node:assert/strict";
import * as path from "node:path";
import type { MemoryStats } from "../../../compute/buffers.ts";
import { type JobContext, JobKinds, JobQueue } from "../../../lib/jobs/mod.ts";
import { RunStore } from "../../../lib/store/mod.ts";

const NO_MEMORY: MemoryStats = {
  liveBytes: 0,
  peakLiveBytes: 0,
  pooledBytes: 0,
  allocatedBytes: 0,
  peakAllocatedBytes: 0,
  byTag: {},
};

async function queueWith(kinds: JobKinds) {
  const outputs = await Deno.realPath(await Deno.makeTempDir({ prefix: "ostrota-jobs-" }));
  const store = new RunStore(":memory:");
  let trims = 0;
  const queue = new JobQueue({
    store,
    memory: { stats: () => NO_MEMORY, trim: () => void trims++ },
    outputRoots: [outputs],
    kinds,
  });
  return { store, queue, outputs, trims: () => trims };
}

Deno.test("job kinds: names are checked and registered once", () => {
  const kinds = new JobKinds();
  kinds.register("train", () => Promise.resolve());
  assert.throws(() => kinds.register("train", () => Promise.resolve()), /already registered/);
  assert.throws(() => kinds.register("Train Me", () => Promise.resolve()), /must match/);
  assert.deepEqual(kinds.names(), ["train"]);
  assert.throws(() => kinds.require("eval"), /no job kind "eval" is registered; known kinds: train/);
});

Deno.test("a job gets its output folder, artifacts are confined to the output roots, reserved events refused", async () => {
  const kinds = new JobKinds();
  let captured: JobContext | null = null;
  const problems: string[] = [];
  kinds.register("write", (ctx) => {
    captured = ctx;
    Deno.writeTextFileSync(path.join(ctx.outputDir, "adapter.safetensors"), "x");
    ctx.artifact("adapter", path.join(ctx.outputDir, "adapter.safetensors"));
    for (const attempt of [() => ctx.artifact("escape", "/etc/passwd"), () => ctx.emit("status", {})]) {
      try {
        attempt();
      } catch (err) {
        problems.push((err as Error).message);
      }
    }
    ctx.emit("checkpoint", { step: 3 });
    ctx.evalResult("before", { bleu: 62.7 });
    return Promise.resolve();
  });
  const { store, queue, outputs, trims } = await queueWith(kinds);
  const run = queue.submit("write", { x: 1 });
  queue.start();
  await queue.idle();
  const done = store.requireRun(run.id);
  assert.equal(done.status, "completed", done.error ?? "");
  assert.equal(captured!.outputDir, path.join(outputs, `run-${run.id}`));
  assert.deepEqual(done.artifacts, { adapter: path.join(outputs, `run-${run.id}`, "adapter.safetensors") });
  assert.match(problems[0], /"\/etc\/passwd" is outside the allowed folders/);
  assert.match(problems[1], /event type "status" is reserved/);
  assert.deepEqual(done.evalResults, { before: { bleu: 62.7 } });
  assert.ok(store.events(run.id).some((e) => e.type === "checkpoint"));
  assert.equal(trims(), 1, "memory is trimmed after every run");
  assert.throws(() => captured!.log("late"), /run \d+ has ended/);
  store.close();
});

Deno.test("a run whose kind is no longer registered fails at start and the queue goes on", async () => {
  const kinds = new JobKinds();
  kinds.register("ok", () => Promise.resolve());
  const { store, queue } = await queueWith(kinds);
  const orphan = store.createRun({ kind: "gone", name: "left from an older lab", config: {} });
  const next = queue.submit("ok", {});
  queue.start();
  await queue.idle();
  assert.equal(store.requireRun(orphan.id).status, "failed");
  assert.match(store.requireRun(orphan.id).error ?? "", /no job kind "gone"/);
  assert.equal(store.requireRun(next.id).status, "completed");
  store.close();
});

Deno.test("closing the queue aborts the running job and marks it interrupted", async () => {
  const kinds = new JobKinds();
  kinds.register("wait", (ctx) =>
    new Promise<void>((resolve) => {
      ctx.signal.addEventListener("abort", () => resolve());
    }));
  const { store, queue } = await queueWith(kinds);
  const run = queue.submit("wait", {});
  queue.start();
  assert.equal(queue.activeRunId(), run.id);
  await queue.close();
  const stopped = store.requireRun(run.id);
  assert.equal(stopped.status, "interrupted");
  assert.match(stopped.error ?? "", /shutting down/);
  store.close();
});
