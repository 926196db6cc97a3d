/**
 * `deno task screenshots`: starts a throwaway lab on the tiny defaults (nothing downloaded), trains a tiny
 * full fine-tuning run and a tiny QLoRA run, and saves a screenshot of every page under docs/ with chromium
 * (playwright-core): runs, new-run, run, playground, compare, models, system.
 */
import * as path from "node:path";
import { chromiumPath, launchChromium } from "../tests/routes/_browser.ts";
import { postJson, startLabWithJobs, TINY_FULL_RUN } from "../tests/routes/_lab.ts";

const DOCS = import.meta.dirname!;
const VIEWPORT = { width: 1280, height: 860 };

async function launch(url: string, config: unknown, name: string): Promise<number> {
  const response = await postJson(`${url}/api/runs`, { kind: "train", config, name });
  const body = await response.json();
  if (response.status !== 201) throw new TypeError(`launching "${name}" failed: ${body.error}`);
  return body.id;
}

const executable = chromiumPath();
if (executable === null) {
  console.error("no chromium found: apt-get install chromium, or set CHROMIUM_PATH");
  Deno.exit(1);
}
const lab = await startLabWithJobs();
const browser = await launchChromium(executable);
try {
  console.error("training two tiny runs (a minute on a CPU driver)...");
  const full = await launch(lab.url, { ...TINY_FULL_RUN, maxSteps: 8, evalCount: 4, evalMaxNewTokens: 8 }, "tiny-gpt2 full FT");
  const qlora = await launch(lab.url, {
    recipe: "qlora",
    model: "tiny-qwen2",
    dataset: "sample",
    maxSteps: 4,
    batchSize: 1,
    gradAccum: 2,
    maxSeqLen: 64,
    limit: 40,
    checkpointEvery: 0,
    evalCount: 4,
    evalMaxNewTokens: 8,
  }, "tiny-qwen2 QLoRA");
  await lab.queue.idle();
  for (const id of [full, qlora]) {
    const run = lab.store.requireRun(id);
    if (run.status !== "completed") throw new Error(`run ${id} ended ${run.status}: ${run.error}`);
  }

  const page = await browser.newPage({ viewport: VIEWPORT });
  const shoot = async (name: string) => {
    const file = path.join(DOCS, `${name}.png`);
    await page.screenshot({ path: file });
    console.error(`${file}: ${(await Deno.stat(file)).size} bytes`);
  };

  await page.goto(`${lab.url}/runs`);
  await page.check(`input[name="compare"][value="${full}"]`);
  await page.check(`input[name="compare"][value="${qlora}"]`);
  await shoot("runs");

  await page.goto(`${lab.url}/new-run`);
  await page.waitForSelector('[data-field="memory-total"]');
  await shoot("new-run");

  await page.goto(`${lab.url}/runs/${full}`);
  await page.waitForSelector('[data-chart="loss"] .uplot');
  await shoot("run");

  await page.goto(`${lab.url}/playground`);
  await page.fill('input[name="maxTokens"]', "24");
  await page.click("button:has-text('Generate both')");
  for (const side of ["left", "right"]) {
    await page.waitForSelector(`[data-side="${side}"] [data-field="status"]:has-text("done")`, { timeout: 60_000 });
  }
  await shoot("playground");

  await page.goto(`${lab.url}/compare?ids=${full},${qlora}`);
  await shoot("compare");

  await page.goto(`${lab.url}/models`);
  await shoot("models");

  await page.goto(`${lab.url}/system`);
  await shoot("system");
} finally {
  await browser.close();
  await lab.close();
}
