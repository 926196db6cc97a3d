/**
 * The job queue: one GPU job at a time, first queued first run, detached from any HTTP connection (a request
 * only creates, cancels or resumes a run in the store; the queue's own loop runs the handlers).
 */
import * as path from "node:path";
import type { MemoryStats } from "../../compute/buffers.ts";
import { confinePath } from "../paths.ts";
import {
  type Json,
  type JsonObject,
  type MetricInput,
  RESUMABLE_STATUSES,
  type RunRecord,
  type RunStore,
} from "../store/mod.ts";
import { type JobContext, type JobKinds, jobKinds } from "./registry.ts";

/** The GPU memory the queue reports and frees: the compute runtime's pool (`runtime.pool.stats()`, `trim()`). */
export interface GpuMemory {
  stats(): MemoryStats;
  /** Hands pooled GPU buffers back to the driver. */
  trim(): void;
}

/** Thrown when a run is not in a state that allows the action (the API answers 409). */
export class RunStateError extends RangeError {
  constructor(message: string) {
    super(message);
    this.name = "RunStateError";
  }
}

/** Thrown when a job kind's validator rejects a config; the message is the validator's, prefixed. */
export class InvalidConfigError extends TypeError {
  constructor(kind: string, cause: Error) {
    super(`config (job kind "${kind}"): ${cause.message}`, { cause });
    this.name = "InvalidConfigError";
  }
}

/** Event types the queue and the store write; a handler's emit() may not use them. */
const RESERVED_EVENT_TYPES = new Set([
  "status",
  "progress",
  "metric",
  "sample",
  "artifact",
  "eval",
  "log",
  "cancel_requested",
]);

class CancelReason extends Error {
  constructor(readonly kind: "cancel" | "shutdown") {
    super(kind === "cancel" ? "the run was cancelled" : "the server is shutting down");
    this.name = "AbortError";
  }
}

interface ActiveJob {
  runId: number;
  controller: AbortController;
  finished: Promise<void>;
}

export interface JobQueueOptions {
  store: RunStore;
  memory: GpuMemory;
  /** Roots a run's output folder and artifacts must lie in; each run gets `<outputRoots[0]>/run-<id>`. */
  outputRoots: string[];
  kinds?: JobKinds;
}

export class JobQueue {
  readonly store: RunStore;
  readonly memory: GpuMemory;
  readonly kinds: JobKinds;
  private outputRoots: string[];
  private active: ActiveJob | null = null;
  private closed = false;
  private idleWaiters: (() => void)[] = [];

  constructor(options: JobQueueOptions) {
    if (options.outputRoots.length === 0) throw new RangeError("JobQueue needs at least one output root");
    this.store = options.store;
    this.memory = options.memory;
    this.kinds = options.kinds ?? jobKinds;
    this.outputRoots = options.outputRoots;
  }

  /**
   * Call once at server start: runs left `running` by a previous process become `interrupted` (resumable),
   * and runs still queued start in their order. Returns the ids marked interrupted.
   */
  start(): number[] {
    const interrupted = this.store.markRunningInterrupted();
    this.pump();
    return interrupted;
  }

  /** Validates `config` with the kind's validator and queues a new run. */
  submit(kind: string, config: JsonObject, name?: string): RunRecord {
    const jobKind = this.kinds.require(kind);
    let checked = config;
    if (jobKind.validate) {
      try {
        checked = jobKind.validate(structuredClone(config));
      } catch (err) {
        if (err instanceof TypeError || err instanceof RangeError) throw new InvalidConfigError(kind, err);
        throw err;
      }
    }
    const run = this.store.createRun({
      kind,
      name: name ?? `${kind} ${new Date().toISOString()}`,
      config: checked,
    });
    this.pump();
    return this.store.requireRun(run.id);
  }

  /** The id of the run executing now, or null. */
  activeRunId(): number | null {
    return this.active?.runId ?? null;
  }

  /**
   * Cancels a run. A queued run is cancelled at once; a running one has its signal aborted and is marked
   * cancelled when its handler returns (then GPU memory is trimmed).
   */
  cancel(id: number): RunRecord {
    const run = this.store.requireRun(id);
    if (run.status === "queued") return this.store.setStatus(id, "cancelled");
    if (run.status === "running" && this.active?.runId === id) {
      if (!this.active.controller.signal.aborted) {
        this.store.appendEvent(id, "cancel_requested", {});
        this.active.controller.abort(new CancelReason("cancel"));
      }
      return this.store.requireRun(id);
    }
    throw new RunStateError(`run ${id} is ${run.status}: only a queued or running run can be cancelled`);
  }

  /** Re-queues an interrupted, cancelled or failed run; its handler gets `resume: true`. */
  resume(id: number): RunRecord {
    const run = this.store.requireRun(id);
    if (!RESUMABLE_STATUSES.includes(run.status)) {
      throw new RunStateError(
        `run ${id} is ${run.status}: only a run that is ${RESUMABLE_STATUSES.join(", ")} can be resumed`,
      );
    }
    this.kinds.require(run.kind);
    this.store.setStatus(id, "queued", { resume: true });
    this.pump();
    return this.store.requireRun(id);
  }

  /** Resolves when nothing runs and nothing is queued. */
  idle(): Promise<void> {
    if (!this.active && this.store.queuedRuns().length === 0) return Promise.resolve();
    return new Promise((resolve) => this.idleWaiters.push(resolve));
  }

  /** Stops taking runs; aborts the active one, which is marked interrupted (resumable), and waits for it. */
  async close(): Promise<void> {
    this.closed = true;
    const active = this.active;
    if (active) {
      active.controller.abort(new CancelReason("shutdown"));
      await active.finished;
    }
  }

  private pump(): void {
    if (this.closed || this.active) return;
    const next = this.store.queuedRuns()[0];
    if (!next) {
      for (const resolve of this.idleWaiters.splice(0)) resolve();
      return;
    }
    const controller = new AbortController();
    const job: ActiveJob = { runId: next.id, controller, finished: Promise.resolve() };
    this.active = job;
    job.finished = this.execute(next, controller).catch((err) => {
      // Only the store itself failing gets here (e.g. the database was closed under the job).
      console.error(`run ${next.id}: the queue could not record its end:`, err);
    }).finally(() => {
      this.active = null;
      // A new turn, so a long queue of instant jobs does not grow the stack.
      setTimeout(() => this.pump(), 0);
    });
  }

  private async execute(queued: RunRecord, controller: AbortController): Promise<void> {
    const id = queued.id;
    let ended = false;
    const live = () => {
      if (ended) throw new RangeError(`run ${id} has ended: a job may not report after its handler returned`);
    };
    try {
      const kind = this.kinds.require(queued.kind);
      const outputDir = confinePath(this.outputRoots, path.join(this.outputRoots[0], `run-${id}`));
      Deno.mkdirSync(outputDir, { recursive: true });
      const run = this.store.setStatus(id, "running");
      const ctx: JobContext = {
        run,
        config: structuredClone(run.config),
        signal: controller.signal,
        resume: run.resume,
        outputDir,
        emit: (type: string, payload: Json) => {
          live();
          if (RESERVED_EVENT_TYPES.has(type)) {
            throw new TypeError(`event type "${type}" is reserved: use the JobContext method for it`);
          }
          this.store.appendEvent(id, type, payload);
        },
        metric: (metric: MetricInput) => {
          live();
          this.store.addMetric(id, {
            ...metric,
            gpu_bytes: metric.gpu_bytes ?? this.memory.stats().liveBytes,
          });
        },
        sample: (step: number, prompt: string, output: string) => {
          live();
          this.store.addSample(id, { step, prompt, output });
        },
        progress: (step: number, total: number | null) => {
          live();
          this.store.setProgress(id, step, total);
        },
        artifact: (name: string, artifactPath: string) => {
          live();
          this.store.setArtifact(id, name, confinePath(this.outputRoots, artifactPath));
        },
        evalResult: (label: string, result: Json) => {
          live();
          this.store.setEvalResult(id, label, result);
        },
        log: (line: string) => {
          live();
          this.store.appendEvent(id, "log", { line: String(line) });
        },
      };
      let failure: unknown = null;
      try {
        await kind.handler(ctx);
      } catch (err) {
        failure = err;
      }
      ended = true;
      const reason = controller.signal.aborted ? controller.signal.reason : null;
      if (reason instanceof CancelReason) {
        this.store.setStatus(id, reason.kind === "cancel" ? "cancelled" : "interrupted", {
          error: reason.kind === "shutdown" ? reason.message : undefined,
        });
      } else if (failure !== null) {
        this.store.setStatus(id, "failed", { error: errorMessage(failure) });
      } else {
        this.store.setStatus(id, "completed");
      }
    } catch (err) {
      // Setting up the run failed (unknown kind after a restart, output folder not writable): the run fails,
      // the queue goes on.
      ended = true;
      this.store.setStatus(id, "failed", { error: errorMessage(err) });
    } finally {
      this.trimMemory(id);
    }
  }

  private trimMemory(id: number): void {
    try {
      this.memory.trim();
    } catch (err) {
      console.error(`freeing GPU memory after run ${id} failed:`, err);
    }
  }
}

function errorMessage(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}
