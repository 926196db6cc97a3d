/**
 * The lab's job kinds through the API and the queue: a tiny full fine-tuning run end to end (eval before,
 * training, eval after, artifacts), the Compare report of it, cancel mid-run, a tiny QLoRA run whose adapter
 * is exported merged and evaluated, and configs the validators refuse with a 400 naming the field.
 */
import assert from "node:assert/strict";
import * as path from "node:path";
import type { RunRecord } from "../../lib/store/mod.ts";
import { waitFor } from "./_harness.ts";
import { postJson, startLabWithJobs, TINY_FULL_RUN } from "./_lab.ts";

async function launch(url: string, kind: string, config: unknown, name?: string): Promise<RunRecord> {
  const response = await postJson(`${url}/api/runs`, { kind, config, ...(name ? { name } : {}) });
  const body = await response.json();
  assert.equal(response.status, 201, JSON.stringify(body));
  return body as RunRecord;
}

Deno.test("train runs end to end through the queue; Compare reports it; cancel, export and eval work", async (t) => {
  const lab = await startLabWithJobs();
  try {
    let trained: RunRecord;
    await t.step("a tiny full fine-tuning run stores metrics, evaluations and its model", async () => {
      const run = await launch(lab.url, "train", TINY_FULL_RUN, "tiny full");
      assert.equal(run.config.evalCount, 2);
      assert.equal(run.config.lr, 1e-5, "the recipe's defaults are filled in");
      await lab.queue.idle();
      trained = lab.store.requireRun(run.id);
      assert.equal(trained.status, "completed", trained.error ?? "");
      const metrics = lab.store.metrics(run.id);
      assert.deepEqual(metrics.map((m) => m.step), [1, 2]);
      assert.ok(metrics.every((m) => m.loss! > 0 && m.tokens_per_second! > 0 && m.gpu_bytes! > 0));
      assert.equal(trained.step, 2);
      assert.equal(trained.totalSteps, 2);
      for (const label of ["before", "after"]) {
        const result = trained.evalResults[label] as { bleu: number; meteor: number; count: number };
        assert.equal(typeof result.bleu, "number", label);
        assert.equal(result.count, 2, label);
      }
      const training = trained.evalResults.training as { trainSeconds: number; examplesUsed: number };
      assert.ok(training.trainSeconds > 0);
      assert.equal(training.examplesUsed, 4);
      assert.equal(
        trained.artifacts.model,
        path.join(await Deno.realPath(lab.roots.outputs[0]), `run-${run.id}`, "model"),
      );
      assert.ok((await Deno.stat(path.join(trained.artifacts.model, "config.json"))).isFile);
      assert.ok((await Deno.stat(trained.artifacts.checkpoint)).isDirectory);
      const log = lab.store.logTail(run.id, 100).join("\n");
      assert.match(log, /eval before: BLEU/);
      assert.match(log, /eval after: BLEU/);
    });

    await t.step("Compare: JSON, CSV and Markdown of the run, and the page", async () => {
      const id = trained.id;
      const json = await (await fetch(`${lab.url}/api/compare?ids=${id}`)).json();
      assert.equal(json.runs[0].recipe, "full");
      assert.equal(json.runs[0].model, "tiny-gpt2");
      const csv = await fetch(`${lab.url}/api/compare.csv?ids=${id}`);
      assert.equal(csv.status, 200);
      assert.match(csv.headers.get("content-type")!, /text\/csv/);
      assert.match(
        csv.headers.get("content-disposition")!,
        /attachment; filename="ostrota-compare-\d+\.csv"/,
      );
      const rows = (await csv.text()).trim().split("\n");
      assert.match(rows[0], /^name,recipe,model,train_seconds,examples_used,bleu_before,bleu_after/);
      assert.match(rows[1], new RegExp(`^#${id} tiny full,full,tiny-gpt2,`));
      const md = await (await fetch(`${lab.url}/api/compare.md?ids=${id}`)).text();
      assert.match(md, /\| run \| recipe \| model \| training time \|/);
      assert.match(md, /tiny-gpt2/);
      const page = await (await fetch(`${lab.url}/compare?ids=${id}`)).text();
      assert.match(page, /data-bars="BLEU"/);
      assert.match(page, /href="\/api\/compare.csv\?ids=\d+"/);
      const bad = await fetch(`${lab.url}/api/compare.csv?ids=abc`);
      assert.equal(bad.status, 400);
      assert.match((await bad.json()).error, /"abc" is not a run id/);
      const estimate = await postJson(`${lab.url}/api/estimate`, { ...TINY_FULL_RUN, maxSteps: 10 });
      const body = await estimate.json();
      assert.equal(estimate.status, 200, JSON.stringify(body));
      assert.ok(body.memory.totalBytes > 0);
      assert.ok(body.time.seconds > 0, "the earlier run's speed gives a time");
      assert.match(body.time.assumptions.join(" "), new RegExp(`#${id}`));
    });

    await t.step(
      "cancel mid-run keeps a checkpoint; resume continues from it and keeps the baseline",
      async () => {
        // Eight steps: the trainer reports a step once the next is submitted, so the cancel lands a step or two
        // after the first metric.
        const run = await launch(lab.url, "train", { ...TINY_FULL_RUN, maxSteps: 8, evalCount: 1 });
        await waitFor(() => lab.store.metrics(run.id).length >= 1, 60_000, "the first step");
        const cancel = await fetch(`${lab.url}/api/runs/${run.id}/cancel`, { method: "POST" });
        assert.equal(cancel.status, 200);
        await lab.queue.idle();
        const cancelled = lab.store.requireRun(run.id);
        assert.equal(cancelled.status, "cancelled");
        assert.ok(cancelled.step < 8, `cancelled at step ${cancelled.step}`);
        assert.ok(cancelled.artifacts.checkpoint, "the cancelled run saved a checkpoint to resume from");
        assert.equal(cancelled.evalResults.after, undefined);

        const resumed = await fetch(`${lab.url}/api/runs/${run.id}/resume`, { method: "POST" });
        assert.equal(resumed.status, 200);
        await lab.queue.idle();
        const done = lab.store.requireRun(run.id);
        assert.equal(done.status, "completed", done.error ?? "");
        assert.equal(done.step, 8);
        const steps = lab.store.metrics(run.id).map((m) => m.step);
        assert.deepEqual(steps, [...new Set(steps)].sort((a, b) => a - b), "no step trained twice");
        assert.equal(steps.at(-1), 8);
        const log = lab.store.logTail(run.id, 200).join("\n");
        assert.equal(log.match(/evaluating before/g)?.length, 1, "the baseline is not evaluated again");
        assert.match(log, /resumed at step \d/);
        assert.ok(done.evalResults.after);
      },
    );

    await t.step("a tiny QLoRA run's adapter is exported merged and evaluated", async () => {
      const qlora = await launch(lab.url, "train", {
        recipe: "qlora",
        model: "tiny-qwen2",
        dataset: "sample",
        maxSteps: 1,
        batchSize: 1,
        gradAccum: 1,
        maxSeqLen: 64,
        limit: 40,
        evalCount: 1,
        evalMaxNewTokens: 2,
      });
      await lab.queue.idle();
      const done = lab.store.requireRun(qlora.id);
      assert.equal(done.status, "completed", done.error ?? "");
      const adapter = path.relative(await Deno.realPath(lab.roots.outputs[0]), done.artifacts.adapter);
      assert.equal(adapter, `run-${qlora.id}/adapter`);

      const catalog = await (await fetch(`${lab.url}/api/catalog`)).json();
      assert.deepEqual(
        catalog.adapters.map((a: { id: string; base: string }) => [a.id, a.base]),
        [[adapter, "tiny-qwen2"]],
      );
      const exported = await launch(lab.url, "export", { adapter, dtype: "f32" });
      const evaluated = await launch(lab.url, "eval", {
        model: "tiny-qwen2",
        adapter,
        dataset: "sample",
        limit: 40,
        count: 1,
        maxNewTokens: 2,
      });
      await lab.queue.idle();
      const exportRun = lab.store.requireRun(exported.id);
      assert.equal(exportRun.status, "completed", exportRun.error ?? "");
      assert.ok((await Deno.stat(path.join(exportRun.artifacts.merged, "model.safetensors"))).isFile);
      const evalRun = lab.store.requireRun(evaluated.id);
      assert.equal(evalRun.status, "completed", evalRun.error ?? "");
      assert.equal((evalRun.evalResults.eval as { count: number }).count, 1);
      const models = await (await fetch(`${lab.url}/models`)).text();
      assert.match(models, new RegExp(`data-adapter="${adapter}"`));
      assert.match(models, new RegExp(`run-${exported.id}/merged`), "the merged model is listed");
    });

    await t.step("bad configs are refused with a 400 naming the field", async () => {
      const cases: [unknown, RegExp][] = [
        [{ ...TINY_FULL_RUN, lr: "fast" }, /lr must be a number, got string/],
        [{ ...TINY_FULL_RUN, lr: 5 }, /lr must be in \(0, 1\), got 5/],
        [{ ...TINY_FULL_RUN, learningRate: 1e-4 }, /learningRate is not a setting of this job kind/],
        [{ ...TINY_FULL_RUN, out: "/tmp/x" }, /out is set by the lab/],
        [{ ...TINY_FULL_RUN, model: "/etc" }, /outside the allowed folders/],
        [{ ...TINY_FULL_RUN, dataset: "../../../etc/passwd" }, /outside the allowed folders/],
        [{ ...TINY_FULL_RUN, recipe: "lora" }, /recipe must be "qlora" or "full"/],
        [{ ...TINY_FULL_RUN, evalCount: 0 }, /evalCount must be an integer in \[1, 100000\], got 0/],
        [{ recipe: "full", dataset: "sample" }, /model must be given/],
      ];
      for (const [config, message] of cases) {
        const response = await postJson(`${lab.url}/api/runs`, { kind: "train", config });
        assert.equal(response.status, 400, JSON.stringify(config));
        assert.match((await response.json()).error, message);
      }
      const exportBad = await postJson(`${lab.url}/api/runs`, {
        kind: "export",
        config: { adapter: "nope" },
      });
      assert.equal(exportBad.status, 400);
      assert.match((await exportBad.json()).error, /adapter "nope" is not found under/);
      const estimateBad = await postJson(`${lab.url}/api/estimate`, { ...TINY_FULL_RUN, batchSize: 0 });
      assert.equal(estimateBad.status, 400);
      assert.match((await estimateBad.json()).error, /batch-size must be an integer >= 1, got 0/);
    });
  } finally {
    await lab.close();
  }
});
