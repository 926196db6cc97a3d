/** A test lab with the lab's own job kinds (train, eval, export) registered against its roots. */
import { JobKinds } from "../../lib/jobs/mod.ts";
import { registerLabJobs } from "../../lib/lab/jobs.ts";
import { type LabRoots, labRoots } from "../../lib/paths.ts";
import { startTestLab, type TestLab } from "./_harness.ts";

export interface LabWithJobs extends TestLab {
  roots: LabRoots;
}

export async function startLabWithJobs(): Promise<LabWithJobs> {
  const home = await Deno.makeTempDir({ prefix: "ostrota-lab-test-" });
  const roots = labRoots(home, new Map<string, string>());
  const kinds = new JobKinds();
  registerLabJobs(roots, kinds);
  const lab = await startTestLab({ kinds, home });
  return {
    ...lab,
    roots,
    async close() {
      await lab.close();
      await Deno.remove(home, { recursive: true });
    },
  };
}

export async function postJson(url: string, body: unknown): Promise<Response> {
  return await fetch(url, {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: JSON.stringify(body),
  });
}

/** A tiny full fine-tuning run of tiny-gpt2: two steps, two eval examples of four tokens. */
export const TINY_FULL_RUN = {
  recipe: "full",
  model: "tiny-gpt2",
  dataset: "sample",
  maxSteps: 2,
  batchSize: 2,
  maxSeqLen: 64,
  limit: 40,
  checkpointEvery: 0,
  evalCount: 2,
  evalMaxNewTokens: 4,
};
