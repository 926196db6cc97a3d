/**
 * LoRA adapters in PEFT's folder layout: `adapter_config.json` + `adapter_model.safetensors` with keys like
 * `base_model.model.model.layers.0.self_attn.q_proj.lora_A.weight`. Attaching wraps the targeted linear modules
 * of a loaded model in `LoraLinear`; saving writes what PEFT's `PeftModel.from_pretrained` loads.
 */
import { keep, tensor } from "../../compute/tensor.ts";
import { joinPath, writeTextFileAtomic } from "../checkpoint/file_io.ts";
import { openCheckpoint, writeSafetensors } from "../checkpoint/mod.ts";
import { LoraLinear, type LoraOptions } from "../models/linear.ts";
import type { CausalLM, LinearSlot } from "../models/types.ts";

/** The Qwen2/Llama projection names QLoRA targets by default (the seed's choice). */
export const DEFAULT_TARGETS = ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"];

export interface AdapterConfig extends LoraOptions {
  targetModules: string[];
  baseModel?: string;
}

/** PEFT's rule: a module matches when its name equals a target or ends with "." + target. */
export function matchesTarget(name: string, targets: readonly string[]): boolean {
  return targets.some((t) => name === t || name.endsWith(`.${t}`));
}

function targetSlots(model: CausalLM, targets: readonly string[]): LinearSlot[] {
  const slots = model.linearSlots().filter((s) => matchesTarget(s.name, targets));
  if (slots.length === 0) {
    const names = [...new Set(model.linearSlots().map((s) => s.name.split(".").at(-1)))].join(", ");
    throw new RangeError(
      `no linear module matches target_modules [${targets.join(", ")}]; this model has: ${names}`,
    );
  }
  return slots;
}

/** Wraps every targeted module with fresh adapters (A Kaiming-uniform, B zero). Returns the adapted slots. */
export function attachLora(model: CausalLM, config: AdapterConfig, random: () => number): LinearSlot[] {
  const slots = targetSlots(model, config.targetModules);
  for (const slot of slots) {
    const current = slot.get();
    if (current instanceof LoraLinear) throw new TypeError(`${slot.name} already has an adapter`);
    slot.set(LoraLinear.fromLinear(current, config, random));
  }
  return slots;
}

/** Removes adapters, restoring the base layers (and freeing the adapter tensors). */
export function detachLora(model: CausalLM): void {
  for (const slot of model.linearSlots()) {
    const layer = slot.get();
    if (layer instanceof LoraLinear) {
      layer.loraA.dispose();
      layer.loraB.dispose();
      slot.set(layer.base);
    }
  }
}

/** Switches every attached adapter on or off (one loaded base serves both kinds of request). */
export function setLoraEnabled(model: CausalLM, enabled: boolean): void {
  for (const slot of model.linearSlots()) {
    const layer = slot.get();
    if (layer instanceof LoraLinear) layer.enabled = enabled;
  }
}

/** The adapters' trainable tensors in slot order. */
export function loraParameters(model: CausalLM): { name: string; layer: LoraLinear }[] {
  return model.linearSlots().flatMap((slot) => {
    const layer = slot.get();
    return layer instanceof LoraLinear ? [{ name: slot.name, layer }] : [];
  });
}

const PEFT_PREFIX = "base_model.model.";

/** Writes the adapter as PEFT does (atomic file writes). */
export async function saveAdapter(model: CausalLM, dir: string, config: AdapterConfig): Promise<void> {
  await Deno.mkdir(dir, { recursive: true });
  const tensors = [];
  for (const { name, layer } of loraParameters(model)) {
    tensors.push(
      {
        name: `${PEFT_PREFIX}${name}.lora_A.weight`,
        dtype: "f32" as const,
        shape: [...layer.loraA.shape],
        data: (await layer.loraA.read()) as Float32Array,
      },
      {
        name: `${PEFT_PREFIX}${name}.lora_B.weight`,
        dtype: "f32" as const,
        shape: [...layer.loraB.shape],
        data: (await layer.loraB.read()) as Float32Array,
      },
    );
  }
  if (tensors.length === 0) throw new TypeError("saveAdapter: the model has no LoRA adapters attached");
  await writeSafetensors(joinPath(dir, "adapter_model.safetensors"), tensors, { format: "pt" });
  const peftConfig = {
    peft_type: "LORA",
    task_type: "CAUSAL_LM",
    base_model_name_or_path: config.baseModel ?? null,
    r: config.r,
    lora_alpha: config.alpha,
    lora_dropout: config.dropout ?? 0,
    target_modules: config.targetModules,
    use_rslora: config.useRslora ?? false,
    bias: "none",
    // GPT-2's Conv1D stores weights [in, out]; PEFT marks adapters on such layers with fan_in_fan_out.
    fan_in_fan_out: model.config.architecture === "gpt2",
    inference_mode: true,
    init_lora_weights: true,
    modules_to_save: null,
    layers_to_transform: null,
    layers_pattern: null,
    rank_pattern: {},
    alpha_pattern: {},
    use_dora: false,
    revision: null,
  };
  await writeTextFileAtomic(joinPath(dir, "adapter_config.json"), JSON.stringify(peftConfig, null, 2) + "\n");
}

/** Reads and validates adapter_config.json. */
export async function readAdapterConfig(dir: string): Promise<AdapterConfig> {
  const path = joinPath(dir, "adapter_config.json");
  let raw: Record<string, unknown>;
  try {
    raw = JSON.parse(await Deno.readTextFile(path));
  } catch (err) {
    if (err instanceof Deno.errors.NotFound) {
      throw new TypeError(`${path} does not exist; is ${dir} a PEFT adapter folder?`);
    }
    throw new TypeError(`${path} is not valid JSON: ${(err as Error).message}`);
  }
  const fail = (field: string, problem: string): never => {
    throw new TypeError(`${path}: "${field}" ${problem}`);
  };
  if (raw.peft_type !== undefined && raw.peft_type !== "LORA") {
    fail("peft_type", `is ${JSON.stringify(raw.peft_type)}; only LORA is supported`);
  }
  const r = raw.r;
  if (!Number.isInteger(r) || (r as number) <= 0) {
    fail("r", `must be a positive integer, got ${JSON.stringify(r)}`);
  }
  const alpha = raw.lora_alpha;
  if (typeof alpha !== "number" || !(alpha > 0)) {
    fail("lora_alpha", `must be a positive number, got ${JSON.stringify(alpha)}`);
  }
  let targets = raw.target_modules;
  if (typeof targets === "string") targets = [targets];
  if (!Array.isArray(targets) || targets.length === 0 || targets.some((t) => typeof t !== "string")) {
    fail("target_modules", "must be a non-empty list of module names");
  }
  if (raw.use_dora === true) fail("use_dora", "is true; DoRA adapters are not supported");
  return {
    r: r as number,
    alpha: alpha as number,
    dropout: typeof raw.lora_dropout === "number" ? raw.lora_dropout : 0,
    useRslora: raw.use_rslora === true,
    targetModules: targets as string[],
    baseModel: typeof raw.base_model_name_or_path === "string" ? raw.base_model_name_or_path : undefined,
  };
}

/**
 * Loads a PEFT adapter folder onto a model (unmerged). Every targeted module must have both tensors with
 * shapes that fit the base; otherwise the error names the file, the key and the expected shape.
 */
export async function loadAdapter(model: CausalLM, dir: string): Promise<AdapterConfig> {
  const config = await readAdapterConfig(dir);
  const checkpoint = await openCheckpoint(joinPath(dir, "adapter_model.safetensors"));
  const file = joinPath(dir, "adapter_model.safetensors");
  try {
    const slots = targetSlots(model, config.targetModules);
    const loaded: { slot: LinearSlot; layer: LoraLinear }[] = [];
    for (const slot of slots) {
      const base = slot.get();
      if (base instanceof LoraLinear) {
        throw new TypeError(`${slot.name} already has an adapter; detach it first`);
      }
      const read = async (which: "lora_A" | "lora_B", shape: number[]) => {
        const candidates = [
          `${PEFT_PREFIX}${slot.name}.${which}.weight`,
          `${PEFT_PREFIX}${slot.name}.${which}.default.weight`,
        ];
        const key = candidates.find((k) => checkpoint.has(k));
        if (!key) throw new TypeError(`${file}: missing "${candidates[0]}" for target module ${slot.name}`);
        const info = checkpoint.info(key);
        if (info.shape.length !== 2 || info.shape[0] !== shape[0] || info.shape[1] !== shape[1]) {
          throw new RangeError(
            `${file}: "${key}" has shape [${info.shape}], the base model needs [${shape}]`,
          );
        }
        const host = await checkpoint.read(key, { as: "f32" });
        return keep(tensor(host.data as Float32Array, shape, "f32", "weights"));
      };
      const a = await read("lora_A", [config.r, base.inFeatures]);
      const b = await read("lora_B", [base.outFeatures, config.r]);
      loaded.push({ slot, layer: new LoraLinear(base, a, b, config) });
    }
    for (const { slot, layer } of loaded) slot.set(layer);
    return config;
  } finally {
    checkpoint.close();
  }
}
