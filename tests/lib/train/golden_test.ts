/**
 * Training against transformers + PEFT (tests/fixtures/train, made by tests/goldens/make_train_goldens.py on a
 * fixed two-conversation batch): our replies-only labels equal the reference masking, the first loss is within
 * 1e-4, LoRA gradients within 1e-3 (relative, per tensor), and the adapter after three AdamW steps within 1e-4.
 */
import { backward } from "../../../compute/autograd.ts";
import { linearCrossEntropy } from "../../../compute/loss.ts";
import { adamwStates, adamwStep, zeroGrads } from "../../../compute/optim.ts";
import { keep, type Tensor, tensor, tidy } from "../../../compute/tensor.ts";
import { openCheckpoint } from "../../../lib/checkpoint/mod.ts";
import type { ChatMessage } from "../../../lib/data/types.ts";
import { loadAdapter, loraParameters } from "../../../lib/lora/peft.ts";
import { loadModel } from "../../../lib/models/mod.ts";
import type { CausalLM } from "../../../lib/models/types.ts";
import { loadTokenizer, writeQwenTokenizerFiles } from "../../../lib/tokenizer/mod.ts";
import { encodeExample, sftFormat } from "../../../lib/train/format.ts";
import { assertClose, gpuTest } from "../../compute/harness.ts";

const FIXTURES = new URL("../../fixtures/", import.meta.url).pathname;
const batch = JSON.parse(Deno.readTextFileSync(`${FIXTURES}train/batch.json`)) as {
  rows: { messages: ChatMessage[]; input_ids: number[]; labels: number[] }[];
  input_ids: number[][];
  labels: number[][];
};
const goldens = JSON.parse(Deno.readTextFileSync(`${FIXTURES}train/train_goldens.json`)) as {
  losses: number[];
  adamw: { lr: number; betas: [number, number]; eps: number; weight_decay: number };
};

gpuTest("train golden: replies-only labels from the chat template equal the reference masking", async () => {
  const dir = await Deno.makeTempDir({ prefix: "ostrota-tok-" });
  try {
    await writeQwenTokenizerFiles(dir);
    const tokenizer = await loadTokenizer(dir);
    const format = sftFormat(tokenizer);
    for (const row of batch.rows) {
      const ex = encodeExample(tokenizer, format, row.messages);
      if (ex.ids.join() !== row.input_ids.join()) {
        throw new Error(`ids differ for ${JSON.stringify(row.messages[0])}`);
      }
      if (ex.labels.join() !== row.labels.join()) {
        throw new Error(`labels differ: ${ex.labels} vs ${row.labels}`);
      }
    }
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

function batchLoss(model: CausalLM): Tensor {
  const [b, t] = [batch.input_ids.length, batch.input_ids[0].length];
  // transformers shifts labels inside the model: position i predicts labels[i + 1].
  const targets = batch.labels.flatMap((row) => [...row.slice(1), -100]);
  return tidy(() => {
    const hidden = model.hidden(tensor(Int32Array.from(batch.input_ids.flat()), [b, t], "i32"), {
      positions: tensor(Int32Array.from({ length: b * t }, (_, i) => i % t), [b, t], "i32"),
    });
    return linearCrossEntropy(
      hidden.reshape([b * t, model.hiddenSize]),
      model.lmHead(),
      tensor(Int32Array.from(targets), [b * t], "i32"),
    );
  });
}

gpuTest(
  "train golden: first loss ≤ 1e-4, LoRA gradients ≤ 1e-3, adapter after 3 AdamW steps ≤ 1e-4 vs PEFT",
  async () => {
    const model = await loadModel(`${FIXTURES}models/qwen2_tied_bf16_sharded`);
    try {
      await loadAdapter(model, `${FIXTURES}train/lora_init`);
      const layers = loraParameters(model);
      const params = layers.flatMap(({ layer }) => [layer.loraA, layer.loraB]);
      for (const p of params) p.requiresGrad = true;
      const names = layers.flatMap((
        { name },
      ) => [`base_model.model.${name}.lora_A.weight`, `base_model.model.${name}.lora_B.weight`]);
      const states = adamwStates(params);
      const grads = await openCheckpoint(`${FIXTURES}train/lora_grads.safetensors`);
      const { lr, betas, eps, weight_decay } = goldens.adamw;
      for (let step = 1; step <= 3; step++) {
        const loss = keep(batchLoss(model));
        backward(loss);
        const value = await loss.item();
        loss.dispose();
        if (Math.abs(value - goldens.losses[step - 1]) > 1e-4 * Math.abs(goldens.losses[step - 1])) {
          throw new Error(`step ${step}: loss ${value}, PEFT ${goldens.losses[step - 1]}`);
        }
        if (step === 1) {
          for (const [i, p] of params.entries()) {
            const want = (await grads.read(names[i], { as: "f32" })).data as Float32Array;
            if (!p.grad) throw new Error(`no gradient reached ${names[i]}`);
            assertClose(`grad ${names[i]}`, await p.grad.toArray(), want, 1e-3);
          }
        }
        adamwStep(params, states, {
          lr,
          beta1: betas[0],
          beta2: betas[1],
          eps,
          weightDecay: weight_decay,
          step,
        });
        zeroGrads(params);
      }
      grads.close();
      const after = await openCheckpoint(`${FIXTURES}train/lora_step3/adapter_model.safetensors`);
      for (const [i, p] of params.entries()) {
        const want = (await after.read(names[i], { as: "f32" })).data as Float32Array;
        assertClose(`after 3 steps ${names[i]}`, await p.toArray(), want, 1e-4);
      }
      after.close();
      for (const s of states) {
        s.m.dispose();
        s.v.dispose();
      }
    } finally {
      model.dispose();
    }
  },
);
