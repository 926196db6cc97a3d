/** Job kinds by name: what the queue runs for a run of kind "train", "eval", ... */
import type { Json, JsonObject, MetricInput, RunRecord } from "../store/mod.ts";

/** What a running job sees and does. Every call is stored in the run store and broadcast to SSE clients. */
export interface JobContext {
  /** The run record as it was when the job started. */
  readonly run: RunRecord;
  /** The run's config snapshot (already validated by the kind's validator, if it has one). */
  readonly config: JsonObject;
  /** Aborted when the run is cancelled or the server shuts down: stop at the next step boundary. */
  readonly signal: AbortSignal;
  /** True when the run was re-queued by resume: continue from the last checkpoint in `outputDir`. */
  readonly resume: boolean;
  /** This run's own output folder (created before the handler starts), inside the configured output roots. */
  readonly outputDir: string;
  /** Appends an event of the handler's own type (not a reserved one: status, progress, metric, ...). */
  emit(type: string, payload: Json): void;
  /** Logs one training step's metrics; gpu_bytes defaults to the GPU bytes live now. */
  metric(metric: MetricInput): void;
  /** Logs a sample generation made at `step`. */
  sample(step: number, prompt: string, output: string): void;
  /** Sets the progress bar: `step` of `total` (null when the total is not known). */
  progress(step: number, total: number | null): void;
  /** Records an artifact (checkpoint, adapter, merged model); the path must be inside the output roots. */
  artifact(name: string, path: string): void;
  /** Records an evaluation result under a label ("before", "after"). */
  evalResult(label: string, result: Json): void;
  /** Appends a line to the run's log. */
  log(line: string): void;
}

export type JobHandler = (ctx: JobContext) => Promise<void>;

export interface JobKindOptions {
  /**
   * Checks a config before the run is created and returns the config to store (defaults filled in). Throws a
   * TypeError or RangeError whose message names the field and the fix; the API answers 400 with it.
   */
  validate?(config: JsonObject): JsonObject;
}

export interface JobKind extends JobKindOptions {
  name: string;
  handler: JobHandler;
}

/** Thrown for a kind nobody registered; the message lists those that are. */
export class UnknownJobKindError extends TypeError {
  constructor(kind: string, known: string[]) {
    super(
      `kind: no job kind "${kind}" is registered; known kinds: ${known.length ? known.join(", ") : "(none)"}`,
    );
    this.name = "UnknownJobKindError";
  }
}

export class JobKinds {
  private kinds = new Map<string, JobKind>();

  register(name: string, handler: JobHandler, options: JobKindOptions = {}): void {
    if (typeof name !== "string" || !/^[a-z][a-z0-9_-]*$/.test(name)) {
      throw new TypeError(`job kind name must match /^[a-z][a-z0-9_-]*$/, got ${JSON.stringify(name)}`);
    }
    if (typeof handler !== "function") throw new TypeError(`job kind "${name}" needs a handler function`);
    if (this.kinds.has(name)) {
      throw new TypeError(`job kind "${name}" is already registered: register each kind once`);
    }
    this.kinds.set(name, { name, handler, validate: options.validate });
  }

  get(name: string): JobKind | undefined {
    return this.kinds.get(name);
  }

  require(name: string): JobKind {
    const kind = this.kinds.get(name);
    if (!kind) throw new UnknownJobKindError(name, this.names());
    return kind;
  }

  names(): string[] {
    return [...this.kinds.keys()].sort();
  }
}

/** The process-wide registry the lab's queue uses. */
export const jobKinds: JobKinds = new JobKinds();

/** Registers a job kind in the process-wide registry (see lib/jobs/mod.ts). */
export function registerJobKind(name: string, handler: JobHandler, options: JobKindOptions = {}): void {
  jobKinds.register(name, handler, options);
}
