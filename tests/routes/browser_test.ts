/**
 * The Run, Runs and System pages in a real browser (Debian's chromium driven by playwright-core): the islands
 * hydrate, the charts grow live from the SSE stream, and cancel/resume work from the buttons. Ignored (and
 * reported as such) where no chromium is installed: `apt-get install chromium`, or set CHROMIUM_PATH.
 */
import assert from "node:assert/strict";
import { chromium } from "playwright-core";
import { JobKinds } from "../../lib/jobs/mod.ts";
import { countingKind, startTestLab } from "./_harness.ts";

function chromiumPath(): string | null {
  for (const candidate of [Deno.env.get("CHROMIUM_PATH"), "/usr/bin/chromium", "/usr/bin/chromium-browser"]) {
    if (!candidate) continue;
    try {
      if (Deno.statSync(candidate).isFile) return candidate;
    } catch {
      // Not installed there; try the next place.
    }
  }
  return null;
}

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
    const browser = await chromium.launch({
      executablePath: executablePath!,
      args: ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking"],
    });
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
