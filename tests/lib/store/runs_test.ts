import assert from "node:assert/strict";
import * as path from "node:path";
import { DatabaseSync } from "node:sqlite";
import { migrate, MIGRATIONS, type RunEvent, RunNotFoundError, RunStore } from "../../../lib/store/mod.ts";

async function tempDb(): Promise<string> {
  return path.join(await Deno.makeTempDir({ prefix: "ostrota-store-" }), "runs.db");
}

Deno.test("a new store is migrated to the last version, in WAL mode; reopening applies nothing twice", async () => {
  const file = await tempDb();
  const store = new RunStore(file);
  const mode = store.db.prepare("PRAGMA journal_mode").get() as { journal_mode: string };
  assert.equal(mode.journal_mode, "wal");
  store.createRun({ kind: "train", name: "a", config: { lr: 1e-5 } });
  store.close();
  const again = new RunStore(file);
  const versions = again.db.prepare("SELECT version FROM schema_version").all() as { version: number }[];
  assert.deepEqual(versions.map((v) => v.version), MIGRATIONS.map((m) => m.version));
  assert.equal(again.listRuns().length, 1);
  again.close();
});

Deno.test("migrations run in order, each once, and a newer schema is refused", () => {
  const db = new DatabaseSync(":memory:");
  const steps = [
    { version: 1, description: "a", sql: "CREATE TABLE a (x INTEGER)" },
    { version: 2, description: "b", sql: "ALTER TABLE a ADD COLUMN y TEXT" },
  ];
  assert.equal(migrate(db, steps.slice(0, 1)), 1);
  assert.equal(migrate(db, steps), 2);
  assert.equal(migrate(db, steps), 2);
  db.exec("INSERT INTO a (x, y) VALUES (1, 'ok')");
  assert.throws(
    () => migrate(db, steps.slice(0, 1)),
    /schema version 2, newer than this Ostrota knows \(1\)/,
  );
  const broken = new DatabaseSync(":memory:");
  assert.throws(() => migrate(broken, [{ version: 1, description: "bad", sql: "CREATE TABLE (" }]));
  const after = broken.prepare("SELECT COUNT(*) AS n FROM schema_version").get() as { n: number };
  assert.equal(after.n, 0, "a failed migration is rolled back");
});

Deno.test("a run keeps config, status timestamps, progress, metrics, samples, artifacts, eval and events", () => {
  const store = new RunStore(":memory:");
  const events: RunEvent[] = [];
  const run = store.createRun({ kind: "train", name: "full ft", config: { recipe: "full", lr: 1e-5 } });
  const unsubscribe = store.subscribe(run.id, (event) => events.push(event));
  assert.equal(run.status, "queued");
  assert.deepEqual(run.config, { recipe: "full", lr: 1e-5 });
  assert.equal(run.startedAt, null);
  const running = store.setStatus(run.id, "running");
  assert.ok(running.startedAt !== null);
  store.setProgress(run.id, 2, 10);
  store.addMetric(run.id, {
    step: 1,
    loss: 2.5,
    lr: 1e-5,
    grad_norm: 1.5,
    tokens_per_second: 900,
    gpu_bytes: 1024,
  });
  store.addMetric(run.id, { step: 2, loss: NaN, lr: 1e-5 });
  store.addSample(run.id, { step: 2, prompt: "Привет", output: "Пока" });
  store.setArtifact(run.id, "adapter", "/out/adapter");
  store.setArtifact(run.id, "adapter", "/out/adapter2");
  store.setEvalResult(run.id, "after", { bleu: 72.2 });
  store.setEvalResult(run.id, 'we"ird', 1);
  store.appendEvent(run.id, "log", { line: "hello" });
  const failed = store.setStatus(run.id, "failed", { error: "boom" });
  assert.equal(failed.error, "boom");
  assert.ok(failed.finishedAt !== null);
  assert.equal(failed.step, 2);
  assert.equal(failed.totalSteps, 10);
  assert.deepEqual(failed.artifacts, { adapter: "/out/adapter2" });
  assert.deepEqual(failed.evalResults, { after: { bleu: 72.2 }, 'we"ird': 1 });
  const metrics = store.metrics(run.id);
  assert.equal(metrics.length, 2);
  assert.equal(metrics[0].gpu_bytes, 1024);
  assert.equal(metrics[1].loss, null, "a NaN loss is stored as null");
  assert.deepEqual(store.samples(run.id).map((s) => s.output), ["Пока"]);
  assert.deepEqual(store.logTail(run.id, 5), ["hello"]);
  assert.deepEqual(events.map((e) => e.type), [
    "status",
    "progress",
    "metric",
    "metric",
    "sample",
    "artifact",
    "artifact",
    "eval",
    "eval",
    "log",
    "status",
  ]);
  assert.deepEqual(
    store.events(run.id).slice(1).map((e) => e.id),
    events.map((e) => e.id),
    "stored = published",
  );
  assert.deepEqual(store.events(run.id, events[8].id).map((e) => e.type), ["log", "status"]);
  assert.equal(store.lastEventId(run.id), events.at(-1)!.id);
  const resumed = store.setStatus(run.id, "queued", { resume: true });
  assert.equal(resumed.resume, true);
  assert.equal(resumed.error, null);
  assert.equal(resumed.finishedAt, null);
  unsubscribe();
  assert.equal(store.subscriberCount(run.id), 0);
  store.close();
});

Deno.test("queue order is by time queued; a resumed run goes to the back; running runs become interrupted", () => {
  const store = new RunStore(":memory:");
  const a = store.createRun({ kind: "k", name: "a", config: {} });
  const b = store.createRun({ kind: "k", name: "b", config: {} });
  const c = store.createRun({ kind: "k", name: "c", config: {} });
  assert.deepEqual(store.queuedRuns().map((r) => r.id), [a.id, b.id, c.id]);
  store.setStatus(a.id, "running");
  store.setStatus(a.id, "cancelled");
  store.setStatus(a.id, "queued", { resume: true });
  assert.deepEqual(store.queuedRuns().map((r) => r.id), [b.id, c.id, a.id]);
  store.setStatus(b.id, "running");
  assert.deepEqual(store.markRunningInterrupted(), [b.id]);
  assert.equal(store.requireRun(b.id).status, "interrupted");
  assert.throws(() => store.requireRun(99), RunNotFoundError);
  assert.throws(() => store.requireRun(99), /run 99 does not exist/);
  assert.throws(() => store.setProgress(a.id, -1, 3), /progress step must be an integer >= 0, got -1/);
  // deno-lint-ignore no-explicit-any
  assert.throws(() => store.setStatus(a.id, "paused" as any), /run status must be one of/);
  store.close();
});
