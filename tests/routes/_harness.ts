/** Starts the lab's app on a free port over a temporary store, with job kinds defined by the test. */
import * as path from "node:path";
import { initRuntime } from "../../compute/runtime.ts";
import { type GpuMemory, JobKinds, JobQueue } from "../../lib/jobs/mod.ts";
import { labRoots } from "../../lib/paths.ts";
import { createApp } from "../../lib/server/app.tsx";
import { buildIslands } from "../../lib/server/islands.ts";
import { RunStore } from "../../lib/store/mod.ts";

export interface TestLab {
  url: string;
  home: string;
  store: RunStore;
  queue: JobQueue;
  memory: GpuMemory & { trims: number };
  /** Simulates the process dying: stops serving without letting the queue finish its run. */
  crash(): Promise<void>;
  close(): Promise<void>;
}

export interface TestLabOptions {
  kinds: JobKinds;
  token?: string | null;
  /** Reuse a lab home (and its store) left by an earlier TestLab: a restart. */
  home?: string;
}

export async function startTestLab(options: TestLabOptions): Promise<TestLab> {
  const runtime = await initRuntime();
  const home = options.home ?? await Deno.makeTempDir({ prefix: "ostrota-test-" });
  const roots = labRoots(home, new Map<string, string>());
  await Deno.mkdir(roots.outputs[0], { recursive: true });
  const store = new RunStore(path.join(home, "runs.db"));
  const memory = {
    trims: 0,
    stats: () => runtime.pool.stats(),
    trim() {
      this.trims++;
      runtime.trim();
    },
  };
  const queue = new JobQueue({ store, memory, outputRoots: roots.outputs, kinds: options.kinds });
  const islands = await buildIslands(home);
  const closing = new AbortController();
  const app = await createApp({
    store,
    queue,
    adapter: runtime.gpu.adapter,
    memory,
    islands,
    roots,
    token: options.token ?? null,
    closing: closing.signal,
  });
  queue.start();
  const server = Deno.serve({ hostname: "127.0.0.1", port: 0, onListen: () => {} }, app.fetch);
  const url = `http://127.0.0.1:${server.addr.port}`;
  let closed = false;
  return {
    url,
    home,
    store,
    queue,
    memory,
    async crash() {
      closed = true;
      closing.abort();
      await server.shutdown();
      store.close();
    },
    async close() {
      if (closed) return;
      closed = true;
      await queue.close();
      closing.abort();
      await server.shutdown();
      store.close();
      if (options.home === undefined) await Deno.remove(home, { recursive: true });
    },
  };
}

/** Polls `check` until it returns true (or throws after `ms`). */
export async function waitFor(check: () => boolean, ms = 10_000, what = "condition"): Promise<void> {
  const deadline = Date.now() + ms;
  while (!check()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
}

/**
 * A job kind for tests: counts `steps` steps of `stepMs`, one metric and progress per step, allocates a GPU
 * buffer for its lifetime (released to the pool at the end, so trim() has something to free), honours the
 * signal, and remembers whether it was resumed.
 */
export function countingKind(kinds: JobKinds, name: string, seen: { runId: number; resume: boolean }[] = []) {
  kinds.register(name, async (ctx) => {
    seen.push({ runId: ctx.run.id, resume: ctx.resume });
    const runtime = await initRuntime();
    const steps = Number(ctx.config.steps ?? 5);
    const stepMs = Number(ctx.config.stepMs ?? 5);
    const buffer = runtime.pool.alloc(1 << 20, "test-activations");
    try {
      for (let step = 1; step <= steps; step++) {
        if (ctx.signal.aborted) return;
        await new Promise((resolve) => setTimeout(resolve, stepMs));
        ctx.metric({ step, loss: 1 / step, lr: 1e-3, grad_norm: 0.5, tokens_per_second: 100 });
        ctx.progress(step, steps);
        ctx.log(`step ${step}`);
      }
      ctx.sample(steps, "Вопрос?", "Ответ!");
    } finally {
      runtime.pool.release(buffer);
    }
  }, {
    validate(config) {
      for (const field of Object.keys(config)) {
        if (field !== "steps" && field !== "stepMs") {
          throw new TypeError(`config.${field} is not a known field`);
        }
      }
      if (config.steps !== undefined && (!Number.isInteger(config.steps) || (config.steps as number) < 1)) {
        throw new RangeError(`config.steps must be an integer >= 1, got ${JSON.stringify(config.steps)}`);
      }
      return config;
    },
  });
}
