/**
 * The training loop end to end on the built-in tiny GPT-2 and the shipped sample data: the loss goes down, a
 * cancelled-then-resumed run follows the uninterrupted run's loss curve exactly, the full-FT result reloads
 * as a model folder, and bad settings fail before any work.
 */
import { deepStrictEqual as assertEquals } from "node:assert/strict";
import type { Qwen2Config } from "../../../lib/checkpoint/mod.ts";
import { loadModel } from "../../../lib/models/mod.ts";
import { preset, writeRandomModel } from "../../../lib/models/presets.ts";
import { SAMPLE_DATASET } from "../../../lib/cli/resolve.ts";
import { trainConfig } from "../../../lib/train/config.ts";
import { loadTrainingData, plannedSteps, train } from "../../../lib/train/trainer.ts";
import { listCheckpoints } from "../../../lib/train/state.ts";
import { gpuTest } from "../../compute/harness.ts";

const modelDir = await Deno.makeTempDir({ prefix: "ostrota-tiny-gpt2-" });
await writeRandomModel(modelDir, preset("tiny-gpt2"), { seed: 2 });

function config(out: string, overrides: Record<string, unknown> = {}) {
  return trainConfig("full", {
    model: modelDir,
    dataset: SAMPLE_DATASET,
    out,
    lr: 2e-3,
    batchSize: 2,
    maxSeqLen: 48,
    maxSteps: 6,
    checkpointEvery: 0,
    ...overrides,
  });
}

gpuTest(
  "trainer: full fine-tuning of the tiny GPT-2 on the sample drives the loss steadily down",
  async () => {
    const out = await Deno.makeTempDir({ prefix: "ostrota-train-" });
    try {
      const result = await train(config(out, { maxSteps: 8, batchSize: 4 }));
      const first = (result.losses[0] + result.losses[1]) / 2;
      const last = (result.losses[6] + result.losses[7]) / 2;
      if (!(last < first - 0.5)) {
        throw new Error(
          `loss did not fall enough: ${result.losses.map((l) => l.toFixed(3))}`,
        );
      }
      // The saved folder is a model this lab (and transformers) loads.
      const model = await loadModel(result.modelDir!);
      model.dispose();
    } finally {
      await Deno.remove(out, { recursive: true });
    }
  },
);

gpuTest("trainer: cancel + --resume continues with the same loss curve as an uninterrupted run", async () => {
  const straightDir = await Deno.makeTempDir({ prefix: "ostrota-straight-" });
  const resumedDir = await Deno.makeTempDir({ prefix: "ostrota-resumed-" });
  try {
    const straight = await train(config(straightDir, { maxSteps: 4 }));
    const controller = new AbortController();
    let cancelled = false;
    try {
      await train(config(resumedDir, { maxSteps: 4 }), {
        signal: controller.signal,
        onStep: (m) => {
          if (m.step === 2) controller.abort();
        },
      });
    } catch (err) {
      cancelled = (err as Error).name === "AbortError";
    }
    if (!cancelled) throw new Error("the run was not cancelled");
    if ((await listCheckpoints(`${resumedDir}/checkpoints`)).length === 0) {
      throw new Error("no checkpoint at cancel");
    }
    const resumed = await train(config(resumedDir, { maxSteps: 4, resume: true }));
    if (resumed.losses.length !== 4) throw new Error(`resumed run reports ${resumed.losses.length} losses`);
    resumed.losses.forEach((loss, i) => {
      if (Math.abs(loss - straight.losses[i]) > 1e-6) {
        throw new Error(`step ${i + 1}: resumed ${loss} vs uninterrupted ${straight.losses[i]}`);
      }
    });
  } finally {
    await Deno.remove(straightDir, { recursive: true });
    await Deno.remove(resumedDir, { recursive: true });
  }
});

gpuTest("trainer: absurd settings and unwritable outputs fail with the option named", async () => {
  const expectError = async (fn: () => unknown, text: string) => {
    try {
      await fn();
    } catch (err) {
      if (!(err as Error).message.includes(text)) {
        throw new Error(`expected "${text}", got: ${(err as Error).message}`);
      }
      return;
    }
    throw new Error(`expected an error mentioning "${text}"`);
  };
  await expectError(() => config("/tmp/x", { lr: -1 }), "lr must be in (0, 1)");
  await expectError(
    () => trainConfig("qlora", { model: modelDir, dataset: SAMPLE_DATASET, out: "/tmp/x", loraR: 0 }),
    "lora-r",
  );
  await expectError(
    () => train(config("/tmp/x", { maxSeqLen: 100000 })),
    "exceeds the model's 512 positions",
  );
  await expectError(() => train(config("/proc/forbidden/out")), "is not writable");
  const empty = await Deno.makeTempFile({ suffix: ".jsonl" });
  await expectError(() => train(config("/tmp/ostrota-empty-out", { dataset: empty })), empty);
  await Deno.remove(empty);
});

addEventListener("unload", () => Deno.removeSync(modelDir, { recursive: true }));

gpuTest(
  "trainer: QLoRA (NF4 base, 8-bit AdamW states in the checkpoint) resumes onto the same loss curve",
  async () => {
    const qwenDir = await Deno.makeTempDir({ prefix: "ostrota-qwen-" });
    const straightDir = await Deno.makeTempDir({ prefix: "ostrota-q-straight-" });
    const resumedDir = await Deno.makeTempDir({ prefix: "ostrota-q-resumed-" });
    try {
      const tiny = preset("tiny-qwen2") as Qwen2Config;
      await writeRandomModel(qwenDir, {
        ...tiny,
        hiddenSize: 32,
        intermediateSize: 48,
        numLayers: 1,
        headDim: 8,
      }, { seed: 5 });
      const qlora = (out: string, extra: Record<string, unknown> = {}) =>
        trainConfig("qlora", {
          model: qwenDir,
          dataset: SAMPLE_DATASET,
          out,
          maxSteps: 3,
          batchSize: 1,
          gradAccum: 2,
          maxSeqLen: 48,
          warmupSteps: 1,
          checkpointEvery: 0,
          ...extra,
        });
      const straight = await train(qlora(straightDir));
      const controller = new AbortController();
      await train(qlora(resumedDir), {
        signal: controller.signal,
        onStep: (m) => {
          if (m.step === 1) controller.abort();
        },
      }).catch((err) => {
        if ((err as Error).name !== "AbortError") throw err;
      });
      const resumed = await train(qlora(resumedDir, { resume: true }));
      resumed.losses.forEach((loss, i) => {
        if (Math.abs(loss - straight.losses[i]) > 1e-6) {
          throw new Error(`step ${i + 1}: resumed ${loss} vs uninterrupted ${straight.losses[i]}`);
        }
      });
      const adapter = JSON.parse(await Deno.readTextFile(`${resumedDir}/adapter/adapter_config.json`));
      if (adapter.r !== 16 || adapter.target_modules.length !== 7) {
        throw new Error(
          `adapter config ${JSON.stringify(adapter)}`,
        );
      }
    } finally {
      for (const dir of [qwenDir, straightDir, resumedDir]) await Deno.remove(dir, { recursive: true });
    }
  },
);

Deno.test("trainer: plannedSteps walks the epochs' batches in order, gradAccum per step, into the next epoch", async () => {
  const c = config(await Deno.makeTempDir({ prefix: "ostrota-plan-" }), { batchSize: 8, gradAccum: 3 });
  const data = await loadTrainingData(c);
  const epoch0 = data.epochBatches(0);
  const steps = Math.ceil(epoch0.length / 3) + 2; // runs past the end of the first epoch
  const planned = plannedSteps(data, c, steps);
  assertEquals(planned.length, steps);
  for (const step of planned) assertEquals(step.length, 3);
  const order = [...epoch0, ...data.epochBatches(1)];
  planned.flat().forEach((batch, i) => assertEquals(batch.ids, order[i].ids));
});
