/**
 * Self-consistency of the models on the engine (the transformers goldens are in golden_test.ts): a KV-cached
 * decode equals a full recompute, batched greedy equals one-by-one, PEFT adapters round-trip, NF4 loading runs.
 */
import { noGrad } from "../../../compute/autograd.ts";
import { embedding } from "../../../compute/embedding.ts";
import { matmul } from "../../../compute/matmul.ts";
import { keep, tensor, tidy } from "../../../compute/tensor.ts";
import { generate, generateGreedyBatch } from "../../../lib/generate/generate.ts";
import { argmax } from "../../../lib/generate/sampling.ts";
import { attachLora, detachLora, loadAdapter, saveAdapter, setLoraEnabled } from "../../../lib/lora/peft.ts";
import { loadModel } from "../../../lib/models/mod.ts";
import { normalValues } from "../../../lib/models/presets.ts";
import type { CausalLM } from "../../../lib/models/types.ts";
import { Linear, LoraLinear } from "../../../lib/models/linear.ts";
import { Nf4Linear } from "../../../lib/models/nf4_linear.ts";
import { dequantizeNf4 } from "../../../compute/nf4.ts";
import { promptLogits } from "./_logits.ts";
import { GPT2, QWEN, tempModel } from "./_configs.ts";
import { assertClose, gpuTest, rng } from "../../compute/harness.ts";

/** Greedy continuation by recomputing the whole sequence every step (no cache). */
async function greedyNoCache(model: CausalLM, prompt: number[], steps: number): Promise<number[]> {
  const ids = [...prompt];
  for (let s = 0; s < steps; s++) {
    const logits = noGrad(() =>
      tidy(() => {
        const t = ids.length;
        const input = tensor(Int32Array.from(ids), [1, t], "i32");
        const positions = tensor(Int32Array.from(ids, (_, i) => i), [1, t], "i32");
        const hidden = model.hidden(input, { positions }).reshape([t, model.hiddenSize]);
        const last = embedding(tensor([t - 1], [1], "i32"), hidden);
        return matmul(last, model.lmHead(), { transB: true });
      })
    );
    ids.push(argmax(await logits.read()));
    logits.dispose();
  }
  return ids.slice(prompt.length);
}

for (const [name, config] of [["qwen2", QWEN], ["gpt2", GPT2]] as const) {
  gpuTest(`${name}: KV-cached greedy decode equals full recompute; batched equals one by one`, async () => {
    const dir = await tempModel(config);
    const model = await loadModel(dir);
    try {
      const prompts = [[5, 17, 99, 3], [42], [7, 7, 7, 7, 7, 7, 1]];
      const singles: number[][] = [];
      for (const prompt of prompts) {
        const cached = await generate(model, prompt, { maxNewTokens: 6 });
        const full = await greedyNoCache(model, prompt, 6);
        if (cached.ids.join() !== full.join()) throw new Error(`cache ${cached.ids} vs recompute ${full}`);
        singles.push(cached.ids);
      }
      const batched = await generateGreedyBatch(model, prompts, { maxNewTokens: 6 });
      if (JSON.stringify(batched) !== JSON.stringify(singles)) {
        throw new Error(`batched ${JSON.stringify(batched)} vs single ${JSON.stringify(singles)}`);
      }
      let message = "";
      try {
        await generate(model, new Array(60).fill(1), { maxNewTokens: 10 });
      } catch (err) {
        message = (err as Error).message;
      }
      if (!message.includes("60 tokens") || !message.includes("positions")) {
        throw new Error(`unexpected: ${message}`);
      }
    } finally {
      model.dispose();
      await Deno.remove(dir, { recursive: true });
    }
  });
}

gpuTest(
  "qwen2: a LoRA adapter saved in PEFT layout loads back to the same logits; switched off it is the base",
  async () => {
    const dir = await tempModel(QWEN);
    const adapterDir = await Deno.makeTempDir({ prefix: "ostrota-adapter-" });
    const model = await loadModel(dir);
    try {
      const ids = [3, 14, 15, 92, 65];
      const base = await promptLogits(model, ids);
      const config = { r: 4, alpha: 8, targetModules: ["q_proj", "v_proj", "down_proj"] };
      attachLora(model, config, rng(1));
      // PEFT starts B at zero; give it values so the adapter changes the output.
      for (const slot of model.linearSlots()) {
        const layer = slot.get();
        if (layer instanceof LoraLinear) layer.loraB.write(normalValues(layer.loraB.size, 3, 0.3));
      }
      const adapted = await promptLogits(model, ids);
      if (adapted.every((v, i) => Math.abs(v - base[i]) < 1e-4)) throw new Error("adapter had no effect");
      await saveAdapter(model, adapterDir, config);
      detachLora(model);
      assertClose("after detach", await promptLogits(model, ids), base, 0);
      const loaded = await loadAdapter(model, adapterDir);
      if (loaded.r !== 4 || loaded.alpha !== 8) {
        throw new Error(`config read back as ${JSON.stringify(loaded)}`);
      }
      assertClose("reloaded adapter", await promptLogits(model, ids), adapted, 1e-6);
      setLoraEnabled(model, false);
      assertClose("adapter switched off", await promptLogits(model, ids), base, 0);
      setLoraEnabled(model, true);
      detachLora(model);
    } finally {
      model.dispose();
      await Deno.remove(dir, { recursive: true });
      await Deno.remove(adapterDir, { recursive: true });
    }
  },
);

gpuTest("qwen2: an NF4-loaded model computes exactly what its dequantised weights compute", async () => {
  const dir = await tempModel(QWEN);
  const reference = await loadModel(dir);
  const quantized = await loadModel(dir, { quantize: "nf4", doubleQuant: true });
  try {
    // Put the dequantised NF4 weights into the f32 model: both must then agree to f32 rounding.
    const slots = reference.linearSlots();
    quantized.linearSlots().forEach((slot, i) => {
      const layer = slot.get();
      if (!(layer instanceof Nf4Linear)) throw new Error(`${slot.name} was not quantised`);
      const plain = slots[i].get() as Linear;
      plain.weight.dispose();
      plain.weight = keep(dequantizeNf4(layer.weight));
    });
    const ids = [1, 2, 3, 4, 5, 6];
    assertClose(
      "nf4 model vs dequantised f32 model",
      await promptLogits(quantized, ids),
      await promptLogits(reference, ids),
      1e-5,
    );
  } finally {
    reference.dispose();
    quantized.dispose();
    await Deno.remove(dir, { recursive: true });
  }
});
