/**
 * The lab in a real browser (Debian's chromium driven by playwright-core): the islands hydrate, the Run
 * page's charts grow live from the SSE stream, cancel/resume work from the buttons, a run launched from the
 * New run page trains on the tiny defaults, and the Playground shows tokens as they arrive. Ignored (and
 * reported as such) where no chromium is installed: `apt-get install chromium`, or set CHROMIUM_PATH.
 */
import assert from "node:assert/strict";
import { JobKinds } from "../../lib/jobs/mod.ts";
import { countingKind, startTestLab } from "./_harness.ts";
import { chromiumPath, launchChromium } from "./_browser.ts";
import { startLabWithJobs } from "./_lab.ts";

const executablePath = chromiumPath();

Deno.test({
  name: "the Run page hydrates, its charts grow live, and cancel/resume work from the buttons",
  ignore: executablePath === null,
  sanitizeResources: false,
  sanitizeOps: false,
  async fn() {
    const kinds = new JobKinds();
    countingKind(kinds, "count");
    const lab = await startTestLab({ kinds });
    const browser = await launchChromium(executablePath!);
    try {
      const page = await browser.newPage();
      const errors: string[] = [];
      page.on("console", (message) => {
        if (message.type() === "error") errors.push(message.text());
      });
      page.on("pageerror", (error) => errors.push(String(error)));
      const run = lab.queue.submit("count", { steps: 100_000, stepMs: 20 }, "browser");
      await page.goto(`${lab.url}/runs/${run.id}`);
      await page.waitForSelector('[data-chart="loss"] .uplot', { timeout: 10_000 });
      const points = async () =>
        Number(await page.getAttribute('[data-chart="loss"] .chart-host', "data-points"));
      const before = await points();
      await page.waitForFunction(
        (n) =>
          Number(document.querySelector('[data-chart="loss"] .chart-host')!.getAttribute("data-points")) >
            n + 5,
        before,
        { timeout: 10_000 },
      );
      assert.match(await page.textContent('[data-field="eta"]') ?? "", /^ETA /);
      await page.click("button:has-text('Cancel')");
      await page.waitForSelector('[data-field="status"]:has-text("cancelled")', { timeout: 10_000 });
      assert.equal(lab.store.requireRun(run.id).status, "cancelled");
      await page.click("button:has-text('Resume')");
      await page.waitForSelector('[data-field="status"]:has-text("running")', { timeout: 10_000 });
      assert.equal(lab.store.requireRun(run.id).resume, true);
      await page.click("button:has-text('Cancel')");
      await page.waitForSelector('[data-field="status"]:has-text("cancelled")', { timeout: 10_000 });

      await page.goto(`${lab.url}/runs`);
      await page.waitForSelector(`[data-run-id="${run.id}"] .status-cancelled`);
      await page.goto(`${lab.url}/system`);
      assert.ok((await page.textContent('[data-field="description"]'))!.length > 0);
      assert.deepEqual(errors, []);
    } finally {
      await browser.close();
      await lab.close();
    }
  },
});

Deno.test({
  name: "a run launched from the New run page charts live; the Playground streams tokens one by one",
  ignore: executablePath === null,
  sanitizeResources: false,
  sanitizeOps: false,
  async fn() {
    const lab = await startLabWithJobs();
    const browser = await launchChromium(executablePath!);
    try {
      const page = await browser.newPage();
      const errors: string[] = [];
      page.on("console", (message) => {
        if (message.type() === "error") errors.push(message.text());
      });
      page.on("pageerror", (error) => errors.push(String(error)));

      await page.goto(`${lab.url}/new-run`);
      await page.waitForSelector('[data-field="memory-total"]', { timeout: 10_000 });
      await page.check('input[name="recipe"][value="full"]');
      assert.equal(await page.inputValue('select[name="model"]'), "tiny-gpt2");
      assert.equal(await page.inputValue('input[name="lr"]'), "0.00001", "the seed's settings are prefilled");
      const settings: Record<string, string> = {
        maxSteps: "4",
        batchSize: "2",
        maxSeqLen: "64",
        limit: "40",
        checkpointEvery: "0",
        evalCount: "1",
        evalMaxNewTokens: "2",
      };
      for (const [name, value] of Object.entries(settings)) await page.fill(`input[name="${name}"]`, value);
      await page.waitForFunction(
        () => document.querySelector('[data-field="estimate"]')?.textContent?.includes("4 steps (max steps)"),
        undefined,
        { timeout: 10_000 },
      );
      assert.match(
        await page.textContent('[data-field="time"]') ?? "",
        /unknown/,
        "no earlier run of tiny-gpt2",
      );
      await page.click("button:has-text('Launch run')");
      await page.waitForURL(/\/runs\/\d+$/, { timeout: 10_000 });
      const runId = Number(page.url().split("/").at(-1));
      await page.waitForSelector('[data-chart="loss"] .uplot', { timeout: 10_000 });
      const points = () => page.getAttribute('[data-chart="loss"] .chart-host', "data-points").then(Number);
      assert.ok(await points() < 4, "the page opened before training ended");
      await page.waitForFunction(
        () =>
          Number(document.querySelector('[data-chart="loss"] .chart-host')!.getAttribute("data-points")) >= 2,
        undefined,
        { timeout: 60_000 },
      );
      await page.waitForSelector('[data-field="status"]:has-text("completed")', { timeout: 60_000 });
      assert.equal(lab.store.requireRun(runId).status, "completed");
      assert.equal(await points(), 4);

      await page.goto(`${lab.url}/playground`);
      await page.fill('input[name="maxTokens"]', "12");
      await page.fill('input[name="temperature"]', "1");
      // Every distinct token count the left output shows, as the DOM changes.
      await page.evaluate(() => {
        const output = document.querySelector('[data-side="left"] [data-field="output"]')!;
        const seen: number[] = [];
        (globalThis as unknown as { seenCounts: number[] }).seenCounts = seen;
        new MutationObserver(() => {
          const count = Number(output.getAttribute("data-tokens"));
          if (seen.at(-1) !== count) seen.push(count);
        }).observe(output, { childList: true, subtree: true, attributes: true, characterData: true });
      });
      await page.click("button:has-text('Generate both')");
      for (const side of ["left", "right"]) {
        await page.waitForSelector(`[data-side="${side}"] [data-field="status"]:has-text("done")`, {
          timeout: 30_000,
        });
      }
      const seen = await page.evaluate(() => (globalThis as unknown as { seenCounts: number[] }).seenCounts);
      const final = Number(
        await page.getAttribute('[data-side="left"] [data-field="output"]', "data-tokens"),
      );
      assert.ok(final >= 3, `the left side generated ${final} tokens`);
      assert.ok(seen.length >= 3, `tokens arrived in ${seen.length} DOM updates: ${seen.join(", ")}`);
      assert.deepEqual(seen, [...seen].sort((a, b) => a - b), "the count only grows");
      assert.match(
        await page.textContent('[data-side="left"] [data-field="rate"]') ?? "",
        /\d+(\.\d)? tokens\/s/,
      );
      assert.ok(Number(await page.textContent('[data-side="right"] [data-field="count"]')) >= 1);
      assert.deepEqual(errors, []);
    } finally {
      await browser.close();
      await lab.close();
    }
  },
});
