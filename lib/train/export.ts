/**
 * Writing models as Hugging Face folders: a fully fine-tuned model (its state dict, the source's config and
 * tokenizer files), and a base model merged with a LoRA adapter (W + scaling * B @ A), streamed tensor by tensor
 * so a 7B merge never holds the model in memory. Folders are written beside the target and renamed into place.
 */
import { noGrad } from "../../compute/autograd.ts";
import { axpby } from "../../compute/elementwise.ts";
import { matmul } from "../../compute/matmul.ts";
import { tensor, tidy } from "../../compute/tensor.ts";
import { joinPath } from "../checkpoint/file_io.ts";
import {
  loadModelConfig,
  openCheckpoint,
  type TensorToWrite,
  writeModelConfig,
  writeShardedSafetensors,
} from "../checkpoint/mod.ts";
import { loraScaling } from "../models/linear.ts";
import type { CausalLM } from "../models/types.ts";
import { matchesTarget, readAdapterConfig } from "../lora/peft.ts";

/** Files a model folder's tokenizer and generation settings live in. */
const SIDE_FILES = [
  "tokenizer.json",
  "tokenizer_config.json",
  "special_tokens_map.json",
  "vocab.json",
  "merges.txt",
  "chat_template.jinja",
  "generation_config.json",
];

const SHARD_BYTES = 4 * 2 ** 30;

async function copySideFiles(srcDir: string, outDir: string): Promise<void> {
  for (const name of SIDE_FILES) {
    try {
      await Deno.copyFile(joinPath(srcDir, name), joinPath(outDir, name));
    } catch (err) {
      if (!(err instanceof Deno.errors.NotFound)) throw err;
    }
  }
}

/** Writes into `<outDir>.tmp-<pid>` and renames, replacing `outDir` only once everything is written. */
async function atomicFolder(outDir: string, write: (dir: string) => Promise<void>): Promise<void> {
  const temp = `${outDir}.tmp-${Deno.pid}`;
  await Deno.remove(temp, { recursive: true }).catch(() => {});
  await Deno.mkdir(temp, { recursive: true });
  try {
    await write(temp);
    await Deno.remove(outDir, { recursive: true }).catch(() => {});
    await Deno.rename(temp, outDir);
  } catch (err) {
    await Deno.remove(temp, { recursive: true }).catch(() => {});
    throw err;
  }
}

/** Saves a (fully fine-tuned) model as an HF folder transformers loads; weights stored in `dtype`. */
export async function saveModelFolder(
  model: CausalLM,
  srcDir: string,
  outDir: string,
  dtype: "f32" | "f16" | "bf16" = "f32",
): Promise<void> {
  const state = await model.stateDict();
  await atomicFolder(outDir, async (dir) => {
    const tensors: TensorToWrite[] = [...state].map(([name, t]) => ({
      name,
      dtype,
      shape: t.shape,
      data: t.data,
    }));
    await writeShardedSafetensors(dir, tensors, { maxShardBytes: SHARD_BYTES, metadata: { format: "pt" } });
    await writeModelConfig(dir, { ...model.config, dtype });
    await copySideFiles(srcDir, dir);
  });
}

/**
 * Merges a PEFT adapter into its base: every targeted weight becomes W + scaling * B @ A (computed on the GPU
 * one tensor at a time), everything else is copied; written as `dtype` safetensors with the base's config and
 * tokenizer files. GPT-2 Conv1D weights ([in, out]) take the transposed update.
 */
export async function exportMerged(
  baseDir: string,
  adapterDir: string,
  outDir: string,
  dtype: "f16" | "bf16" | "f32",
): Promise<void> {
  const config = await loadModelConfig(baseDir);
  const adapter = await readAdapterConfig(adapterDir);
  const scaling = loraScaling(adapter);
  const base = await openCheckpoint(baseDir);
  const lora = await openCheckpoint(joinPath(adapterDir, "adapter_model.safetensors"));
  const conv1d = config.architecture === "gpt2";
  try {
    const names = base.names().filter((n) => !n.endsWith(".attn.bias") && !n.endsWith(".attn.masked_bias"));
    const merged = new Set<string>();
    const tensors: TensorToWrite[] = names.map((name) => ({
      name,
      dtype,
      shape: base.info(name).shape,
      data: async () => {
        const weight = (await base.read(name, { as: "f32" })).data as Float32Array;
        const module = name.endsWith(".weight") ? name.slice(0, -".weight".length) : "";
        const keyA = `base_model.model.${module}.lora_A.weight`;
        if (!module || !matchesTarget(module, adapter.targetModules) || !lora.has(keyA)) return weight;
        const a = await lora.read(keyA, { as: "f32" });
        const b = await lora.read(`base_model.model.${module}.lora_B.weight`, { as: "f32" });
        const shape = base.info(name).shape;
        const merge = noGrad(() =>
          tidy(() => {
            const w = tensor(weight, shape);
            const ta = tensor(a.data as Float32Array, a.shape);
            const tb = tensor(b.data as Float32Array, b.shape);
            const delta = conv1d ? matmul(ta, tb, { transA: true, transB: true }) : matmul(tb, ta); // [out, in] or [in, out]
            axpby(w, delta, 1, scaling);
            return w;
          })
        );
        const out = (await merge.read()) as Float32Array;
        merge.dispose();
        merged.add(name);
        return out;
      },
    }));
    await atomicFolder(outDir, async (dir) => {
      await writeShardedSafetensors(dir, tensors, { maxShardBytes: SHARD_BYTES, metadata: { format: "pt" } });
      if (merged.size === 0) {
        throw new TypeError(`${adapterDir}: no adapter tensor matched a weight of ${baseDir}`);
      }
      await writeModelConfig(dir, { ...config, dtype });
      await copySideFiles(baseDir, dir);
    });
  } finally {
    base.close();
    lora.close();
  }
}
