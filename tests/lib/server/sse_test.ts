import assert from "node:assert/strict";
import { resumeAfterId, runEventStream } from "../../../lib/server/sse.ts";
import { RunStore } from "../../../lib/store/mod.ts";
import { etaMs } from "../../../islands/_format.ts";

Deno.test("the event stream sends heartbeat comments and stops them when the client cancels", async () => {
  const store = new RunStore(":memory:");
  const run = store.createRun({ kind: "k", name: "n", config: {} });
  const response = runEventStream(store, run.id, { afterId: 0, heartbeatMs: 20 });
  const reader = response.body!.pipeThrough(new TextDecoderStream()).getReader();
  let text = "";
  while (!text.includes(": heartbeat")) text += (await reader.read()).value;
  assert.match(text, /^retry: 2000\n/);
  assert.match(text, /id: \d+\nevent: status\ndata: \{"type":"status","payload":\{"status":"queued"/);
  assert.equal(store.subscriberCount(run.id), 1);
  await reader.cancel();
  assert.equal(store.subscriberCount(run.id), 0);
  store.close();
});

Deno.test("the resume point is the larger of Last-Event-ID and ?after=, ignoring junk", () => {
  assert.equal(resumeAfterId(undefined, undefined), 0);
  assert.equal(resumeAfterId("12", "5"), 12);
  assert.equal(resumeAfterId(undefined, "7"), 7);
  assert.equal(resumeAfterId("-3", "x"), 0);
});

Deno.test("ETA comes from the pace of the latest steps", () => {
  assert.equal(etaMs([], 0, 10), null);
  assert.equal(etaMs([{ step: 1, t: 0 }, { step: 3, t: 2000 }], 3, 10), 7000);
  assert.equal(etaMs([{ step: 1, t: 0 }, { step: 3, t: 2000 }], 3, null), null);
});

Deno.test("the event stream ends when the server closes, so shutdown does not wait on it", async () => {
  const store = new RunStore(":memory:");
  const run = store.createRun({ kind: "k", name: "n", config: {} });
  const closing = new AbortController();
  const response = runEventStream(store, run.id, { afterId: 0, closed: closing.signal });
  const reader = response.body!.getReader();
  await reader.read();
  closing.abort();
  while (!(await reader.read()).done);
  assert.equal(store.subscriberCount(run.id), 0);
  store.close();
});
