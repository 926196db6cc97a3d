/**
 * Starting the lab: open the GPU (failing early with what to install), the run store and queue, bundle the
 * islands, serve the app, and shut down cleanly on SIGINT/SIGTERM (the running job is marked interrupted).
 */
import * as path from "node:path";
import type { AdapterSummary } from "../../compute/gpu.ts";
import { initRuntime } from "../../compute/runtime.ts";
import { type GpuMemory, JobQueue } from "../jobs/mod.ts";
import { labRoots } from "../paths.ts";
import { RunStore } from "../store/mod.ts";
import { createApp } from "./app.tsx";
import { buildIslands } from "./islands.ts";
import type { ServeOptions } from "./options.ts";

export interface RunningLab {
  server: Deno.HttpServer<Deno.NetAddr>;
  url: string;
  adapter: AdapterSummary;
  /** Stops taking requests and runs, marks the running job interrupted, closes the store. */
  shutdown(): Promise<void>;
}

/** Starts the lab; throws GpuUnavailableError (from compute/gpu.ts) when there is no WebGPU adapter. */
export async function startLab(options: ServeOptions): Promise<RunningLab> {
  const runtime = await initRuntime();
  const memory: GpuMemory = { stats: () => runtime.pool.stats(), trim: () => runtime.trim() };
  await Deno.mkdir(options.home, { recursive: true });
  const roots = labRoots(options.home);
  for (const root of roots.outputs) await Deno.mkdir(root, { recursive: true });
  const store = new RunStore(path.join(options.home, "runs.db"));
  const queue = new JobQueue({ store, memory, outputRoots: roots.outputs });
  const islands = await buildIslands(options.home);
  const closing = new AbortController();
  const app = await createApp({
    store,
    queue,
    adapter: runtime.gpu.adapter,
    memory,
    islands,
    roots,
    token: options.token,
    closing: closing.signal,
  });
  const interrupted = queue.start();
  if (interrupted.length > 0) {
    console.log(`runs interrupted by the last stop (resume them on their pages): ${interrupted.join(", ")}`);
  }
  const listening = Promise.withResolvers<Deno.NetAddr>();
  const server = Deno.serve({
    hostname: options.host,
    port: options.port,
    onListen: (addr) => listening.resolve(addr),
  }, app.fetch);
  const addr = await listening.promise;
  const host = addr.hostname.includes(":") ? `[${addr.hostname}]` : addr.hostname;
  let stopping: Promise<void> | null = null;
  const shutdown = () =>
    stopping ??= (async () => {
      await queue.close();
      closing.abort();
      await server.shutdown();
      store.close();
    })();
  return { server, url: `http://${host}:${addr.port}/`, adapter: runtime.gpu.adapter, shutdown };
}
