/**
 * `deno task start [--host H] [--port P]`: the lab. Without a usable WebGPU adapter it prints what to install
 * and exits 1. Job kinds must be registered (their modules imported) before the queue starts.
 */
import { GpuUnavailableError } from "../../compute/gpu.ts";
import { registerLabJobs } from "../lab/jobs.ts";
import { labRoots } from "../paths.ts";
import { parseServeOptions, SERVE_USAGE } from "../server/options.ts";
import { startLab } from "../server/start.ts";

export async function run(args: string[]): Promise<number> {
  const options = parseServeOptions(args);
  if (options === "help") {
    console.log(SERVE_USAGE);
    return 0;
  }
  // Before the queue starts, so runs left queued by a previous process find their kind.
  registerLabJobs(labRoots(options.home));
  let lab;
  try {
    lab = await startLab(options);
  } catch (err) {
    if (err instanceof GpuUnavailableError) {
      console.error(err.message);
      return 1;
    }
    throw err;
  }
  const a = lab.adapter;
  console.log(
    `Ostrota lab on ${lab.url}${options.token ? " (token required)" : ""} — GPU: ${a.description} ` +
      `(${a.vendor || "unknown vendor"}${a.isFallback ? ", CPU fallback" : ""})`,
  );
  let signals = 0;
  const stop = () => {
    // A job that ignores its abort signal would hold the shutdown forever; a second Ctrl-C leaves at once,
    // and the next start marks that run interrupted.
    if (++signals > 1) Deno.exit(130);
    console.log("stopping: the running job (if any) is marked interrupted (Ctrl-C again to quit now)");
    lab.shutdown().catch((err) => console.error("shutdown failed:", err));
  };
  Deno.addSignalListener("SIGINT", stop);
  Deno.addSignalListener("SIGTERM", stop);
  await lab.server.finished;
  await lab.shutdown();
  Deno.removeSignalListener("SIGINT", stop);
  Deno.removeSignalListener("SIGTERM", stop);
  return 0;
}
