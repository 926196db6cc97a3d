/**
 * Trains the artifacts whose loading in PEFT / transformers check_exports.py verifies: a QLoRA adapter on the
 * golden tiny Qwen2 and a fully fine-tuned golden tiny GPT-2, each a few steps on the sample data with this
 * lab's trainer. Writes them to tests/fixtures/exports/ (committed) with this lab's logits for a fixed prompt.
 *
 * Usage: deno run -A tests/goldens/make_export_inputs.ts
 */
import { SAMPLE_DATASET } from "../../lib/cli/resolve.ts";
import { loadAdapter } from "../../lib/lora/peft.ts";
import { loadModel } from "../../lib/models/mod.ts";
import type { CausalLM } from "../../lib/models/types.ts";
import { promptLogits } from "../lib/models/_logits.ts";
import { writeGpt2TokenizerFiles, writeQwenTokenizerFiles } from "../../lib/tokenizer/mod.ts";
import { trainConfig } from "../../lib/train/config.ts";
import { train } from "../../lib/train/trainer.ts";

const FIXTURES = new URL("../fixtures/", import.meta.url).pathname;
export const PROMPT_IDS = [9707, 11, 1879, 0, 42, 100, 2000, 13];
export const SUBSET_STRIDE = 37;

async function copyDir(src: string, dst: string): Promise<void> {
  await Deno.mkdir(dst, { recursive: true });
  for await (const e of Deno.readDir(src)) await Deno.copyFile(`${src}/${e.name}`, `${dst}/${e.name}`);
}

async function lastLogits(model: CausalLM): Promise<number[]> {
  // Every 37th vocabulary entry keeps the fixture small while still covering the whole vocabulary.
  return Array.from(await promptLogits(model, PROMPT_IDS)).filter((_, i) => i % SUBSET_STRIDE === 0);
}

const work = await Deno.makeTempDir({ prefix: "ostrota-exports-" });
const out = `${FIXTURES}exports`;
await Deno.remove(out, { recursive: true }).catch(() => {});
await Deno.mkdir(out, { recursive: true });

const qwen = `${work}/qwen`;
await copyDir(`${FIXTURES}models/qwen2_tied_bf16_sharded`, qwen);
await writeQwenTokenizerFiles(qwen);
const qlora = await train(trainConfig("qlora", {
  model: qwen,
  dataset: SAMPLE_DATASET,
  out: `${work}/qlora`,
  maxSteps: 3,
  lr: 5e-2,
  loraR: 4,
  loraAlpha: 8,
  maxSeqLen: 64,
  warmupSteps: 0,
  doubleQuant: false,
}));
await copyDir(qlora.adapterDir!, `${out}/qwen_adapter`);
// PEFT applies the adapter to the unquantised base: compare with the same (f32 base + adapter) here.
const base = await loadModel(`${FIXTURES}models/qwen2_tied_bf16_sharded`);
await loadAdapter(base, `${out}/qwen_adapter`);
const qwenLogits = await lastLogits(base);
base.dispose();

const gpt2 = `${work}/gpt2`;
await copyDir(`${FIXTURES}models/gpt2_f32`, gpt2);
await writeGpt2TokenizerFiles(gpt2);
const full = await train(trainConfig("full", {
  model: gpt2,
  dataset: SAMPLE_DATASET,
  out: `${work}/full`,
  maxSteps: 3,
  lr: 1e-2,
  batchSize: 2,
  maxSeqLen: 64,
}));
await copyDir(full.modelDir!, `${out}/gpt2_full`);
for (const name of ["vocab.json", "merges.txt", "tokenizer_config.json"]) {
  await Deno.remove(`${out}/gpt2_full/${name}`).catch(() => {});
}
const tuned = await loadModel(`${out}/gpt2_full`);
const gpt2Logits = await lastLogits(tuned);
tuned.dispose();

await Deno.writeTextFile(
  `${out}/ostrota_logits.json`,
  JSON.stringify({
    prompt_ids: PROMPT_IDS,
    stride: SUBSET_STRIDE,
    qwen_adapter: qwenLogits,
    gpt2_full: gpt2Logits,
  }),
);
await Deno.remove(work, { recursive: true });
console.log(`exports written to ${out}`);
