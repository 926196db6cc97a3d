import assert from "node:assert/strict";
import { JobKinds } from "../../lib/jobs/mod.ts";
import type { RunRecord } from "../../lib/store/mod.ts";
import { startTestLab, waitFor } from "./_harness.ts";

interface SseEvent {
  id: number;
  type: string;
  data: { type: string; payload: Record<string, unknown> };
}

/** Reads SSE frames from a response until `until` says stop; returns them (comments skipped). */
async function readEvents(response: Response, until: (events: SseEvent[]) => boolean): Promise<SseEvent[]> {
  const reader = response.body!.pipeThrough(new TextDecoderStream()).getReader();
  const events: SseEvent[] = [];
  let buffer = "";
  try {
    while (!until(events)) {
      const { done, value } = await reader.read();
      if (done) break;
      buffer += value;
      let end;
      while ((end = buffer.indexOf("\n\n")) >= 0) {
        const frame = buffer.slice(0, end);
        buffer = buffer.slice(end + 2);
        const fields = new Map<string, string>();
        for (const line of frame.split("\n")) {
          if (line.startsWith(":")) continue;
          const colon = line.indexOf(":");
          fields.set(line.slice(0, colon), line.slice(colon + 1).trimStart());
        }
        if (fields.has("data")) {
          events.push({
            id: Number(fields.get("id")),
            type: fields.get("event")!,
            data: JSON.parse(fields.get("data")!),
          });
        }
      }
    }
  } finally {
    await reader.cancel();
  }
  return events;
}

/** A job kind that logs `lines` lines, one per `gate` release, so the test controls when events happen. */
function gatedKind(kinds: JobKinds) {
  const gates: (() => void)[] = [];
  const release = () => gates.shift()?.();
  kinds.register("gated", async (ctx) => {
    const lines = Number(ctx.config.lines);
    for (let i = 1; i <= lines; i++) {
      await new Promise<void>((resolve) => gates.push(resolve));
      if (ctx.signal.aborted) return;
      ctx.log(`line ${i}`);
    }
  });
  return { release, waiting: () => gates.length };
}

Deno.test("SSE replays stored events after Last-Event-ID, then streams live ones; two clients get all", async () => {
  const kinds = new JobKinds();
  const gate = gatedKind(kinds);
  const lab = await startTestLab({ kinds });
  try {
    const run = await (await fetch(`${lab.url}/api/runs`, {
      method: "POST",
      body: JSON.stringify({ kind: "gated", config: { lines: 6 } }),
    })).json() as RunRecord;
    for (let i = 0; i < 3; i++) {
      await waitFor(() => gate.waiting() === 1, 5000, "the job to wait");
      gate.release();
    }
    await waitFor(() => lab.store.logTail(run.id, 10).length === 3, 5000, "three lines");

    // Full replay: status queued, status running, three log lines.
    const all = await fetch(`${lab.url}/api/runs/${run.id}/events`);
    assert.equal(all.headers.get("content-type"), "text/event-stream; charset=utf-8");
    const replayed = await readEvents(all, (events) => events.length >= 5);
    assert.deepEqual(replayed.map((e) => e.type), ["status", "status", "log", "log", "log"]);
    assert.deepEqual(replayed.map((e) => e.data.payload.status ?? e.data.payload.line), [
      "queued",
      "running",
      "line 1",
      "line 2",
      "line 3",
    ]);
    const ids = replayed.map((e) => e.id);
    assert.deepEqual([...ids].sort((a, b) => a - b), ids, "ids increase");

    // Resume after the second log line, in two tabs at once: each gets line 3, then the live lines 4-6.
    const afterLine2 = replayed[3].id;
    const tabA = fetch(`${lab.url}/api/runs/${run.id}/events`, {
      headers: { "Last-Event-ID": String(afterLine2) },
    });
    const tabB = fetch(`${lab.url}/api/runs/${run.id}/events?after=${afterLine2}`);
    const untilCompleted = (events: SseEvent[]) => events.some((e) => e.data.payload.status === "completed");
    const readingA = readEvents(await tabA, untilCompleted);
    const readingB = readEvents(await tabB, untilCompleted);
    await waitFor(() => lab.store.subscriberCount(run.id) === 2, 5000, "both tabs subscribed");
    for (let i = 0; i < 3; i++) {
      await waitFor(() => gate.waiting() === 1, 5000, "the job to wait");
      gate.release();
    }
    for (const events of [await readingA, await readingB]) {
      assert.deepEqual(
        events.filter((e) => e.type === "log").map((e) => e.data.payload.line),
        ["line 3", "line 4", "line 5", "line 6"],
      );
      assert.equal(events.at(-1)!.data.payload.status, "completed");
      assert.ok(events.every((e) => e.id > afterLine2));
    }
    await waitFor(() => lab.store.subscriberCount(run.id) === 0, 5000, "closed streams to unsubscribe");
  } finally {
    await lab.close();
  }
});

Deno.test("a client that disconnects mid-stream unsubscribes and the job and server go on", async () => {
  const kinds = new JobKinds();
  const gate = gatedKind(kinds);
  const lab = await startTestLab({ kinds });
  try {
    const run = await (await fetch(`${lab.url}/api/runs`, {
      method: "POST",
      body: JSON.stringify({ kind: "gated", config: { lines: 4 } }),
    })).json() as RunRecord;
    const controller = new AbortController();
    const stream = await fetch(`${lab.url}/api/runs/${run.id}/events`, { signal: controller.signal });
    const reader = stream.body!.getReader();
    await reader.read();
    await waitFor(() => lab.store.subscriberCount(run.id) === 1, 5000, "the subscription");
    await waitFor(() => gate.waiting() === 1, 5000, "the job to wait");
    gate.release();
    controller.abort();
    await reader.closed.catch(() => {});
    await waitFor(() => lab.store.subscriberCount(run.id) === 0, 5000, "the subscription to end");
    for (let i = 0; i < 3; i++) {
      await waitFor(() => gate.waiting() === 1, 5000, "the job to wait");
      gate.release();
    }
    await lab.queue.idle();
    assert.equal(lab.store.requireRun(run.id).status, "completed");
    assert.deepEqual(lab.store.logTail(run.id, 10), ["line 1", "line 2", "line 3", "line 4"]);
    const health = await fetch(`${lab.url}/api/system`);
    assert.equal(health.status, 200);
    await health.body?.cancel();
  } finally {
    await lab.close();
  }
});
