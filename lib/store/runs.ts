/**
 * The run store: SQLite through `node:sqlite`, WAL mode. Every change to a run also appends an event to the
 * run's append-only log (in the same transaction) and is then published to in-process subscribers, so the SSE
 * stream can replay the log after a `Last-Event-ID` and continue live without gaps.
 */
import { DatabaseSync, type SQLInputValue } from "node:sqlite";
import { migrate } from "./migrations.ts";

export const RUN_STATUSES = ["queued", "running", "completed", "failed", "cancelled", "interrupted"] as const;
export type RunStatus = typeof RUN_STATUSES[number];

/** Statuses a run can be resumed (re-queued) from. */
export const RESUMABLE_STATUSES: readonly RunStatus[] = ["interrupted", "cancelled", "failed"];

export type Json = null | boolean | number | string | Json[] | { [key: string]: Json };
export type JsonObject = { [key: string]: Json };

export interface RunRecord {
  id: number;
  /** The registered job kind that runs it ("train", "eval", ...). */
  kind: string;
  name: string;
  /** The config snapshot taken when the run was created. */
  config: JsonObject;
  status: RunStatus;
  /** True when the run was re-queued by resume: its handler continues from its last checkpoint. */
  resume: boolean;
  /** Unix milliseconds. */
  createdAt: number;
  startedAt: number | null;
  finishedAt: number | null;
  step: number;
  totalSteps: number | null;
  /** Evaluation results by label (e.g. "before", "after"). */
  evalResults: Record<string, Json>;
  /** Artifact paths by name (e.g. "adapter", "checkpoint"). */
  artifacts: Record<string, string>;
  error: string | null;
}

export interface MetricInput {
  step: number;
  loss?: number | null;
  lr?: number | null;
  grad_norm?: number | null;
  tokens_per_second?: number | null;
  gpu_bytes?: number | null;
}

export interface MetricRow {
  step: number;
  loss: number | null;
  lr: number | null;
  grad_norm: number | null;
  tokens_per_second: number | null;
  gpu_bytes: number | null;
  /** Unix milliseconds. */
  t: number;
}

export interface SampleRow {
  step: number;
  prompt: string;
  output: string;
  t: number;
}

export interface RunEvent {
  /** Global, increasing: the SSE event id. */
  id: number;
  runId: number;
  type: string;
  payload: Json;
  t: number;
}

/** A run with its most recent metric row, for lists. */
export interface RunListEntry extends RunRecord {
  latestMetric: MetricRow | null;
}

/** Thrown for an id that names no run (the API answers 404). */
export class RunNotFoundError extends RangeError {
  constructor(readonly runId: number) {
    super(`run ${runId} does not exist: list runs with GET /api/runs`);
    this.name = "RunNotFoundError";
  }
}

interface RunRow {
  id: number;
  kind: string;
  name: string;
  config: string;
  status: RunStatus;
  resume: number;
  created_at: number;
  started_at: number | null;
  finished_at: number | null;
  step: number;
  total_steps: number | null;
  eval_results: string;
  error: string | null;
}

const METRIC_FIELDS = ["loss", "lr", "grad_norm", "tokens_per_second", "gpu_bytes"] as const;

function finiteOrNull(value: number | null | undefined, field: string): number | null {
  if (value === undefined || value === null) return null;
  if (typeof value !== "number") throw new TypeError(`metric ${field} must be a number, got ${typeof value}`);
  // NaN or ±Infinity (a diverged loss) is stored as NULL: SQLite and JSON have no such value.
  return Number.isFinite(value) ? value : null;
}

export type EventListener = (event: RunEvent) => void;

export class RunStore {
  readonly db: DatabaseSync;
  private listeners = new Map<number, Set<EventListener>>();

  /** Opens (creating if needed) the store at `file`; ":memory:" gives a private in-memory store. */
  constructor(file: string) {
    this.db = new DatabaseSync(file);
    this.db.exec("PRAGMA journal_mode = WAL");
    this.db.exec("PRAGMA synchronous = NORMAL");
    this.db.exec("PRAGMA foreign_keys = ON");
    this.db.exec("PRAGMA busy_timeout = 5000");
    migrate(this.db);
  }

  close(): void {
    this.listeners.clear();
    this.db.close();
  }

  private transaction<T>(work: () => T): T {
    this.db.exec("BEGIN IMMEDIATE");
    try {
      const result = work();
      this.db.exec("COMMIT");
      return result;
    } catch (err) {
      this.db.exec("ROLLBACK");
      throw err;
    }
  }

  /** Inserts an event row; callers publish it after their transaction commits. */
  private insertEvent(runId: number, type: string, payload: Json): RunEvent {
    const t = Date.now();
    const result = this.db.prepare("INSERT INTO events (run_id, type, payload, t) VALUES (?, ?, ?, ?)")
      .run(runId, type, JSON.stringify(payload), t);
    return { id: Number(result.lastInsertRowid), runId, type, payload, t };
  }

  private publish(event: RunEvent): void {
    for (const listener of this.listeners.get(event.runId) ?? []) {
      // One failing subscriber (a closed stream) must not stop the others or the job that emitted.
      try {
        listener(event);
      } catch (err) {
        console.error(`run ${event.runId} event listener failed:`, err);
      }
    }
  }

  /** Does a change and logs its event atomically, then publishes the event. */
  private changeWithEvent(runId: number, type: string, payload: Json, change: () => void): RunEvent {
    const event = this.transaction(() => {
      change();
      return this.insertEvent(runId, type, payload);
    });
    this.publish(event);
    return event;
  }

  createRun(input: { kind: string; name: string; config: JsonObject }): RunRecord {
    const now = Date.now();
    const event = this.transaction(() => {
      const result = this.db.prepare(
        `INSERT INTO runs (kind, name, config, status, created_at, queue_position) VALUES (?, ?, ?, 'queued', ?, ?)`,
      ).run(input.kind, input.name, JSON.stringify(input.config), now, this.nextQueuePosition());
      return this.insertEvent(Number(result.lastInsertRowid), "status", { status: "queued", error: null });
    });
    this.publish(event);
    return this.requireRun(event.runId);
  }

  /** Queue positions only grow, so a resumed run goes to the back of the queue (FIFO by time queued). */
  private nextQueuePosition(): number {
    const row = this.db.prepare("SELECT COALESCE(MAX(queue_position), 0) + 1 AS next FROM runs").get() as {
      next: number;
    };
    return row.next;
  }

  getRun(id: number): RunRecord | undefined {
    const row = this.db.prepare("SELECT * FROM runs WHERE id = ?").get(id) as RunRow | undefined;
    return row && this.toRecord(row);
  }

  requireRun(id: number): RunRecord {
    const run = this.getRun(id);
    if (!run) throw new RunNotFoundError(id);
    return run;
  }

  private toRecord(row: RunRow): RunRecord {
    const artifacts: Record<string, string> = {};
    const rows = this.db.prepare("SELECT name, path FROM artifacts WHERE run_id = ? ORDER BY name").all(
      row.id,
    ) as {
      name: string;
      path: string;
    }[];
    for (const { name, path } of rows) artifacts[name] = path;
    return {
      id: row.id,
      kind: row.kind,
      name: row.name,
      config: JSON.parse(row.config),
      status: row.status,
      resume: row.resume === 1,
      createdAt: row.created_at,
      startedAt: row.started_at,
      finishedAt: row.finished_at,
      step: row.step,
      totalSteps: row.total_steps,
      evalResults: JSON.parse(row.eval_results),
      artifacts,
      error: row.error,
    };
  }

  /** Runs, newest first, each with its latest metric row. */
  listRuns(limit = 200): RunListEntry[] {
    const rows = this.db.prepare("SELECT * FROM runs ORDER BY id DESC LIMIT ?").all(
      limit,
    ) as unknown as RunRow[];
    const latest = this.db.prepare(
      `SELECT step, loss, lr, grad_norm, tokens_per_second, gpu_bytes, t FROM metrics
       WHERE run_id = ? ORDER BY id DESC LIMIT 1`,
    );
    return rows.map((row) => ({
      ...this.toRecord(row),
      latestMetric: (latest.get(row.id) as MetricRow | undefined) ?? null,
    }));
  }

  /** Queued runs in the order they will run: first queued, first run. */
  queuedRuns(): RunRecord[] {
    const rows = this.db.prepare(
      "SELECT * FROM runs WHERE status = 'queued' ORDER BY queue_position",
    ).all() as unknown as RunRow[];
    return rows.map((row) => this.toRecord(row));
  }

  /**
   * Moves a run to `status`, keeping the timestamps in step: running sets started_at; completed, failed,
   * cancelled and interrupted set finished_at; queued (a resume) clears finished_at and the error, and with
   * `resume` marks the run as continuing from its checkpoint.
   */
  setStatus(id: number, status: RunStatus, options: { error?: string; resume?: boolean } = {}): RunRecord {
    if (!RUN_STATUSES.includes(status)) {
      throw new RangeError(`run status must be one of ${RUN_STATUSES.join(", ")}, got "${status}"`);
    }
    this.requireRun(id);
    const now = Date.now();
    const error = options.error ?? null;
    this.changeWithEvent(id, "status", { status, error }, () => {
      if (status === "queued") {
        this.db.prepare(
          "UPDATE runs SET status = ?, queue_position = ?, finished_at = NULL, error = NULL, resume = ? WHERE id = ?",
        ).run(status, this.nextQueuePosition(), options.resume ? 1 : 0, id);
      } else if (status === "running") {
        this.db.prepare("UPDATE runs SET status = ?, started_at = ?, finished_at = NULL WHERE id = ?")
          .run(status, now, id);
      } else {
        this.db.prepare("UPDATE runs SET status = ?, finished_at = ?, error = ? WHERE id = ?")
          .run(status, now, error, id);
      }
    });
    return this.requireRun(id);
  }

  /** Marks every run left `running` (by a process that died) as interrupted; returns their ids. */
  markRunningInterrupted(): number[] {
    const ids = (this.db.prepare("SELECT id FROM runs WHERE status = 'running' ORDER BY id").all() as {
      id: number;
    }[]).map((row) => row.id);
    for (const id of ids) {
      this.setStatus(id, "interrupted", { error: "the server stopped while this run was running" });
    }
    return ids;
  }

  setProgress(id: number, step: number, total: number | null): void {
    if (!Number.isInteger(step) || step < 0) {
      throw new RangeError(`progress step must be an integer >= 0, got ${step}`);
    }
    if (total !== null && (!Number.isInteger(total) || total < 0)) {
      throw new RangeError(`progress total must be an integer >= 0 or null, got ${total}`);
    }
    this.changeWithEvent(id, "progress", { step, total }, () => {
      this.db.prepare("UPDATE runs SET step = ?, total_steps = ? WHERE id = ?").run(step, total, id);
    });
  }

  addMetric(id: number, input: MetricInput): MetricRow {
    if (!Number.isInteger(input.step) || input.step < 0) {
      throw new RangeError(`metric step must be an integer >= 0, got ${input.step}`);
    }
    const row: MetricRow = {
      step: input.step,
      loss: finiteOrNull(input.loss, "loss"),
      lr: finiteOrNull(input.lr, "lr"),
      grad_norm: finiteOrNull(input.grad_norm, "grad_norm"),
      tokens_per_second: finiteOrNull(input.tokens_per_second, "tokens_per_second"),
      gpu_bytes: finiteOrNull(input.gpu_bytes, "gpu_bytes"),
      t: Date.now(),
    };
    this.changeWithEvent(id, "metric", { ...row }, () => {
      this.db.prepare(
        `INSERT INTO metrics (run_id, step, ${METRIC_FIELDS.join(", ")}, t) VALUES (?, ?, ?, ?, ?, ?, ?, ?)`,
      ).run(id, row.step, ...METRIC_FIELDS.map((field) => row[field] as SQLInputValue), row.t);
    });
    return row;
  }

  /** Metric rows in the order they were logged. */
  metrics(id: number): MetricRow[] {
    return this.db.prepare(
      `SELECT step, ${METRIC_FIELDS.join(", ")}, t FROM metrics WHERE run_id = ? ORDER BY id`,
    ).all(id) as unknown as MetricRow[];
  }

  addSample(id: number, sample: { step: number; prompt: string; output: string }): SampleRow {
    const row: SampleRow = { step: sample.step, prompt: sample.prompt, output: sample.output, t: Date.now() };
    this.changeWithEvent(id, "sample", { ...row }, () => {
      this.db.prepare("INSERT INTO samples (run_id, step, prompt, output, t) VALUES (?, ?, ?, ?, ?)")
        .run(id, row.step, row.prompt, row.output, row.t);
    });
    return row;
  }

  samples(id: number): SampleRow[] {
    return this.db.prepare("SELECT step, prompt, output, t FROM samples WHERE run_id = ? ORDER BY id")
      .all(id) as unknown as SampleRow[];
  }

  /** Records (or replaces) the artifact `name` of a run. */
  setArtifact(id: number, name: string, path: string): void {
    this.changeWithEvent(id, "artifact", { name, path }, () => {
      this.db.prepare(
        `INSERT INTO artifacts (run_id, name, path, t) VALUES (?, ?, ?, ?)
         ON CONFLICT (run_id, name) DO UPDATE SET path = excluded.path, t = excluded.t`,
      ).run(id, name, path, Date.now());
    });
  }

  /** Records (or replaces) the evaluation result labelled `label` ("before", "after", ...). */
  setEvalResult(id: number, label: string, result: Json): void {
    this.requireRun(id);
    this.changeWithEvent(id, "eval", { label, result }, () => {
      const row = this.db.prepare("SELECT eval_results FROM runs WHERE id = ?").get(id) as {
        eval_results: string;
      };
      const results = JSON.parse(row.eval_results) as Record<string, Json>;
      results[label] = result;
      this.db.prepare("UPDATE runs SET eval_results = ? WHERE id = ?").run(JSON.stringify(results), id);
    });
  }

  /** Appends an event of a handler's own type (e.g. "log") to the run's log and publishes it. */
  appendEvent(id: number, type: string, payload: Json): RunEvent {
    return this.changeWithEvent(id, type, payload, () => {});
  }

  /** The run's events with id > `afterId`, oldest first. */
  events(id: number, afterId = 0, limit = 100_000): RunEvent[] {
    const rows = this.db.prepare(
      "SELECT id, run_id, type, payload, t FROM events WHERE run_id = ? AND id > ? ORDER BY id LIMIT ?",
    ).all(id, afterId, limit) as { id: number; run_id: number; type: string; payload: string; t: number }[];
    return rows.map((row) => ({
      id: row.id,
      runId: row.run_id,
      type: row.type,
      payload: JSON.parse(row.payload),
      t: row.t,
    }));
  }

  /** The id of the run's last event (0 when it has none). */
  lastEventId(id: number): number {
    const row = this.db.prepare("SELECT MAX(id) AS id FROM events WHERE run_id = ?").get(id) as {
      id: number | null;
    };
    return row.id ?? 0;
  }

  /** The last `count` log lines of a run, oldest first. */
  logTail(id: number, count: number): string[] {
    const rows = this.db.prepare(
      "SELECT payload FROM events WHERE run_id = ? AND type = 'log' ORDER BY id DESC LIMIT ?",
    ).all(id, count) as { payload: string }[];
    return rows.reverse().map((row) => (JSON.parse(row.payload) as { line: string }).line);
  }

  /** Calls `listener` for every event of run `id` published from now on; returns the unsubscribe function. */
  subscribe(id: number, listener: EventListener): () => void {
    let set = this.listeners.get(id);
    if (!set) this.listeners.set(id, set = new Set());
    set.add(listener);
    return () => {
      set.delete(listener);
      if (set.size === 0 && this.listeners.get(id) === set) this.listeners.delete(id);
    };
  }

  /** How many listeners are subscribed to run `id` (the SSE tests check that a closed stream unsubscribes). */
  subscriberCount(id: number): number {
    return this.listeners.get(id)?.size ?? 0;
  }
}
