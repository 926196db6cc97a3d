import assert from "node:assert/strict";
import { initRuntime } from "../../compute/runtime.ts";
import { JobKinds } from "../../lib/jobs/mod.ts";
import type { RunRecord } from "../../lib/store/mod.ts";
import { countingKind, startTestLab, waitFor } from "./_harness.ts";

async function post(url: string, body?: unknown): Promise<Response> {
  return await fetch(url, {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
}

Deno.test("two runs queue FIFO, one at a time, and complete with metrics, samples and events", async () => {
  const kinds = new JobKinds();
  const order: number[] = [];
  const active = { now: 0, max: 0 };
  kinds.register("slow", async (ctx) => {
    active.now++;
    active.max = Math.max(active.max, active.now);
    order.push(ctx.run.id);
    for (let step = 1; step <= 3; step++) {
      await new Promise((resolve) => setTimeout(resolve, 10));
      ctx.metric({ step, loss: 2 / step });
      ctx.progress(step, 3);
    }
    ctx.sample(3, "prompt", "output");
    active.now--;
  });
  const lab = await startTestLab({ kinds });
  try {
    const first = await (await post(`${lab.url}/api/runs`, { kind: "slow", config: {}, name: "first" }))
      .json();
    const second = await post(`${lab.url}/api/runs`, { kind: "slow", config: { a: 1 } });
    assert.equal(second.status, 201);
    const secondRun = await second.json() as RunRecord;
    assert.equal(secondRun.status, "queued", "the second run waits while the first runs");
    await lab.queue.idle();
    assert.deepEqual(order, [first.id, secondRun.id]);
    assert.equal(active.max, 1, "never two jobs at once");
    const run = await (await fetch(`${lab.url}/api/runs/${first.id}`)).json() as RunRecord;
    assert.equal(run.status, "completed");
    assert.equal(run.name, "first");
    assert.equal(run.step, 3);
    assert.equal(run.totalSteps, 3);
    assert.ok(run.startedAt !== null && run.finishedAt !== null && run.finishedAt >= run.startedAt);
    const { metrics, samples } = await (await fetch(`${lab.url}/api/runs/${first.id}/metrics`)).json();
    assert.deepEqual(metrics.map((m: { step: number }) => m.step), [1, 2, 3]);
    assert.equal(metrics[1].loss, 1);
    assert.equal(typeof metrics[0].gpu_bytes, "number", "gpu_bytes is filled in from the pool");
    assert.deepEqual(samples.map((s: { output: string }) => s.output), ["output"]);
    const { runs } = await (await fetch(`${lab.url}/api/runs`)).json();
    assert.deepEqual(runs.map((r: RunRecord) => r.id), [secondRun.id, first.id], "newest first");
    assert.equal(runs[1].latestMetric.step, 3);
  } finally {
    await lab.close();
  }
});

Deno.test("cancel aborts the running job, marks it cancelled and frees pooled GPU memory", async () => {
  const kinds = new JobKinds();
  countingKind(kinds, "count");
  const lab = await startTestLab({ kinds });
  const runtime = await initRuntime();
  try {
    const run = await (await post(`${lab.url}/api/runs`, { kind: "count", config: { steps: 10_000 } }))
      .json() as RunRecord;
    const queued = await (await post(`${lab.url}/api/runs`, { kind: "count", config: { steps: 2 } }))
      .json() as RunRecord;
    await waitFor(() => lab.store.requireRun(run.id).step >= 2, 10_000, "two steps");
    assert.ok(runtime.pool.stats().liveBytes >= 1 << 20, "the job holds its buffer");
    const trimsBefore = lab.memory.trims;
    const cancelQueued = await post(`${lab.url}/api/runs/${queued.id}/cancel`);
    assert.equal((await cancelQueued.json()).status, "cancelled", "a queued run is cancelled at once");
    const cancel = await post(`${lab.url}/api/runs/${run.id}/cancel`);
    assert.equal(cancel.status, 200);
    await lab.queue.idle();
    const after = lab.store.requireRun(run.id);
    assert.equal(after.status, "cancelled");
    assert.ok(after.step < 10_000);
    assert.ok(lab.memory.trims > trimsBefore, "trim() was called");
    assert.equal(runtime.pool.stats().pooledBytes, 0, "pooled GPU memory was handed back");
    assert.equal(lab.store.requireRun(queued.id).startedAt, null, "the cancelled queued run never started");
    const again = await post(`${lab.url}/api/runs/${run.id}/cancel`);
    assert.equal(again.status, 409);
    assert.match((await again.json()).error, /cancelled: only a queued or running run/);
  } finally {
    await lab.close();
  }
});

Deno.test("a failing job marks its run failed with the message and the queue goes on", async () => {
  const kinds = new JobKinds();
  kinds.register("boom", () => Promise.reject(new Error("out of cheese")));
  countingKind(kinds, "count");
  const lab = await startTestLab({ kinds });
  try {
    const bad = await (await post(`${lab.url}/api/runs`, { kind: "boom", config: {} })).json();
    const good = await (await post(`${lab.url}/api/runs`, { kind: "count", config: { steps: 2 } })).json();
    await lab.queue.idle();
    const failed = lab.store.requireRun(bad.id);
    assert.equal(failed.status, "failed");
    assert.equal(failed.error, "out of cheese");
    assert.equal(lab.store.requireRun(good.id).status, "completed");
  } finally {
    await lab.close();
  }
});

Deno.test("a restart marks the running run interrupted; resume re-queues it with resume: true", async () => {
  const kinds = new JobKinds();
  const seen: { runId: number; resume: boolean }[] = [];
  // The first process's job does a step and then hangs, as a job does when its process is killed mid-step.
  kinds.register("count", (ctx) => {
    seen.push({ runId: ctx.run.id, resume: ctx.resume });
    ctx.progress(1, 100);
    return new Promise(() => {});
  });
  const first = await startTestLab({ kinds });
  const run = await (await post(`${first.url}/api/runs`, { kind: "count", config: { steps: 100_000 } }))
    .json() as RunRecord;
  await waitFor(() => first.store.requireRun(run.id).step >= 1, 10_000, "a step");
  const home = first.home;
  await first.crash();

  const kindsAfter = new JobKinds();
  countingKind(kindsAfter, "count", seen);
  const second = await startTestLab({ kinds: kindsAfter, home });
  try {
    const interrupted = second.store.requireRun(run.id);
    assert.equal(interrupted.status, "interrupted");
    assert.match(interrupted.error ?? "", /server stopped/);
    const wrong = await post(`${second.url}/api/runs/${run.id}/cancel`);
    assert.equal(wrong.status, 409);
    assert.equal(interrupted.step, 1, "progress survives the restart");
    const resumed = await post(`${second.url}/api/runs/${run.id}/resume`);
    assert.equal(resumed.status, 200);
    const body = await resumed.json() as RunRecord;
    assert.equal(body.resume, true);
    await waitFor(() => seen.length === 2, 10_000, "the resumed start");
    assert.deepEqual(seen[1], { runId: run.id, resume: true });
    assert.equal(seen[0].resume, false);
    await waitFor(() => second.store.requireRun(run.id).status === "running", 10_000, "running");
    await post(`${second.url}/api/runs/${run.id}/cancel`);
    await second.queue.idle();
    assert.equal(second.store.requireRun(run.id).status, "cancelled");
    const notAgain = await post(`${second.url}/api/runs/${run.id}/resume`);
    assert.equal((await notAgain.json()).resume, true, "a cancelled run can be resumed too");
    await post(`${second.url}/api/runs/${run.id}/cancel`);
    await second.queue.idle();
  } finally {
    await second.close();
  }
});

Deno.test("POST /api/runs validates: unknown kind, validator errors, unknown fields, bad JSON, 413", async () => {
  const kinds = new JobKinds();
  countingKind(kinds, "count");
  const lab = await startTestLab({ kinds });
  try {
    const cases: [unknown, RegExp][] = [
      [{ kind: "nope", config: {} }, /no job kind "nope" is registered; known kinds: count/],
      [{ kind: "count", config: { steps: 0 } }, /config\.steps must be an integer >= 1, got 0/],
      [{ kind: "count", config: { lr: 1 } }, /config\.lr is not a known field/],
      [{ kind: "count", config: {}, colour: "red" }, /unknown field "colour"/],
      [{ config: {} }, /kind must be/],
      [{ kind: "count", config: [1] }, /config must be a JSON object/],
      [[1, 2], /must be a JSON object, got an array/],
    ];
    for (const [body, message] of cases) {
      const response = await post(`${lab.url}/api/runs`, body);
      assert.equal(response.status, 400, JSON.stringify(body));
      assert.match((await response.json()).error, message);
    }
    const malformed = await fetch(`${lab.url}/api/runs`, { method: "POST", body: '{"kind": "count",' });
    assert.equal(malformed.status, 400);
    assert.match((await malformed.json()).error, /malformed JSON/);
    const big = await fetch(`${lab.url}/api/runs`, {
      method: "POST",
      body: JSON.stringify({ kind: "count", config: { pad: "x".repeat(2 << 20) } }),
    });
    assert.equal(big.status, 413);
    assert.match((await big.json()).error, /over 1048576 bytes/);
    // A body with no Content-Length (streamed) is counted as it arrives.
    const chunk = new TextEncoder().encode("x".repeat(64 << 10));
    let sent = 0;
    const streamed = await fetch(`${lab.url}/api/runs`, {
      method: "POST",
      body: new ReadableStream({
        pull(controller) {
          if (sent++ < 40) controller.enqueue(chunk);
          else controller.close();
        },
      }),
    });
    assert.equal(streamed.status, 413);
    await streamed.body?.cancel();
    const missing = await fetch(`${lab.url}/api/runs/999`);
    assert.equal(missing.status, 404);
    assert.match((await missing.json()).error, /run 999 does not exist/);
    const badId = await fetch(`${lab.url}/api/runs/abc`);
    assert.equal(badId.status, 400);
    await badId.body?.cancel();
    assert.equal(lab.store.listRuns().length, 0, "no rejected request created a run");
  } finally {
    await lab.close();
  }
});
