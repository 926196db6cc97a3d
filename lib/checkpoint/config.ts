/**
 * config.json of Hugging Face causal LMs, read into validated, typed configs for the architectures the lab
 * implements (Qwen2, GPT-2), and written back in a form transformers 4.x and 5.x both load.
 *
 * Spellings seen in the wild are all accepted: `rope_theta` at the top level (transformers 4) or inside
 * transformers 5's `rope_parameters: {rope_theta, rope_type}`; `torch_dtype` (4) or `dtype` (5).
 */
import { joinPath, writeTextFileAtomic } from "./file_io.ts";

export type ConfigDType = "f32" | "f16" | "bf16";

export interface Qwen2Config {
  architecture: "qwen2";
  vocabSize: number;
  hiddenSize: number;
  intermediateSize: number;
  numLayers: number;
  numHeads: number;
  numKvHeads: number;
  /** Per-head width: `head_dim` when given, else hiddenSize / numHeads. */
  headDim: number;
  rmsNormEps: number;
  ropeTheta: number;
  maxPositions: number;
  tieWordEmbeddings: boolean;
  /** The dtype the weights were saved in. */
  dtype: ConfigDType;
  bosTokenId?: number;
  /** Token ids that end generation (config.json's eos_token_id, a number or a list). */
  eosTokenIds: number[];
}

export interface Gpt2Config {
  architecture: "gpt2";
  vocabSize: number;
  nEmbd: number;
  nLayer: number;
  nHead: number;
  nPositions: number;
  /** Width of the MLP: `n_inner`, or 4 * nEmbd when it is null. */
  nInner: number;
  layerNormEps: number;
  activation: "gelu_new";
  /** GPT-2's lm_head always shares the token embedding matrix. */
  tieWordEmbeddings: true;
  dtype: ConfigDType;
  bosTokenId?: number;
  eosTokenIds: number[];
}

export type ModelConfig = Qwen2Config | Gpt2Config;

const DTYPE_NAMES: Record<string, ConfigDType> = { float32: "f32", float16: "f16", bfloat16: "bf16" };

class ConfigReader {
  constructor(readonly source: string, readonly raw: Record<string, unknown>) {}

  fail(field: string, problem: string): never {
    throw new TypeError(`${this.source}: field "${field}" ${problem}`);
  }

  has(field: string): boolean {
    return this.raw[field] !== undefined && this.raw[field] !== null;
  }

  positiveInt(field: string, fallback?: number): number {
    const v = this.raw[field];
    if ((v === undefined || v === null) && fallback !== undefined) return fallback;
    if (v === undefined || v === null) this.fail(field, "is missing; it is required for this architecture");
    if (!Number.isSafeInteger(v) || (v as number) <= 0) {
      this.fail(field, `must be a positive integer, got ${JSON.stringify(v)}`);
    }
    return v as number;
  }

  positiveNumber(field: string, value: unknown = this.raw[field]): number {
    if (value === undefined || value === null) {
      this.fail(field, "is missing; it is required for this architecture");
    }
    if (typeof value !== "number" || !Number.isFinite(value) || value <= 0) {
      this.fail(field, `must be a positive number, got ${JSON.stringify(value)}`);
    }
    return value;
  }

  bool(field: string, fallback: boolean): boolean {
    const v = this.raw[field];
    if (v === undefined || v === null) return fallback;
    if (typeof v !== "boolean") this.fail(field, `must be true or false, got ${JSON.stringify(v)}`);
    return v;
  }

  optionalTokenId(field: string): number | undefined {
    const v = this.raw[field];
    if (v === undefined || v === null) return undefined;
    if (!Number.isSafeInteger(v) || (v as number) < 0) {
      this.fail(field, `must be a token id, got ${JSON.stringify(v)}`);
    }
    return v as number;
  }

  tokenIds(field: string): number[] {
    const v = this.raw[field];
    if (v === undefined || v === null) return [];
    const list = Array.isArray(v) ? v : [v];
    if (!list.every((id) => Number.isSafeInteger(id) && id >= 0)) {
      this.fail(field, `must be a token id or a list of token ids, got ${JSON.stringify(v)}`);
    }
    return list as number[];
  }

  dtype(): ConfigDType {
    const field = this.has("dtype") ? "dtype" : "torch_dtype";
    const v = this.raw[field];
    if (v === undefined || v === null) return "f32";
    const dtype = typeof v === "string" ? DTYPE_NAMES[v] : undefined;
    if (!dtype) {
      this.fail(field, `is ${JSON.stringify(v)}; supported: ${Object.keys(DTYPE_NAMES).join(", ")}`);
    }
    return dtype;
  }
}

function architectureOf(reader: ConfigReader): "qwen2" | "gpt2" {
  const modelType = reader.raw.model_type;
  const architectures = Array.isArray(reader.raw.architectures) ? reader.raw.architectures : [];
  if (modelType === "qwen2" || architectures.includes("Qwen2ForCausalLM")) return "qwen2";
  if (modelType === "gpt2" || architectures.includes("GPT2LMHeadModel")) return "gpt2";
  return reader.fail(
    "model_type",
    `is ${JSON.stringify(modelType)} (architectures ${JSON.stringify(architectures)}); supported: ` +
      '"qwen2" (Qwen2ForCausalLM), "gpt2" (GPT2LMHeadModel)',
  );
}

function parseQwen2(r: ConfigReader): Qwen2Config {
  const hiddenSize = r.positiveInt("hidden_size");
  const numHeads = r.positiveInt("num_attention_heads");
  const numKvHeads = r.positiveInt("num_key_value_heads", numHeads);
  if (numHeads % numKvHeads !== 0) {
    r.fail("num_key_value_heads", `(${numKvHeads}) must divide num_attention_heads (${numHeads})`);
  }
  if (!r.has("head_dim") && hiddenSize % numHeads !== 0) {
    r.fail(
      "num_attention_heads",
      `(${numHeads}) must divide hidden_size (${hiddenSize}) when head_dim is absent`,
    );
  }
  const headDim = r.positiveInt("head_dim", hiddenSize / numHeads);
  if (headDim % 2 !== 0) r.fail("head_dim", `(${headDim}) must be even for rotary embeddings`);
  if (r.bool("use_sliding_window", false)) {
    r.fail("use_sliding_window", "is true; sliding-window attention is not supported");
  }
  const activation = r.raw.hidden_act ?? "silu";
  if (activation !== "silu") {
    r.fail("hidden_act", `is ${JSON.stringify(activation)}; Qwen2 support needs "silu"`);
  }
  return {
    architecture: "qwen2",
    vocabSize: r.positiveInt("vocab_size"),
    hiddenSize,
    intermediateSize: r.positiveInt("intermediate_size"),
    numLayers: r.positiveInt("num_hidden_layers"),
    numHeads,
    numKvHeads,
    headDim,
    rmsNormEps: r.positiveNumber("rms_norm_eps"),
    ropeTheta: ropeTheta(r),
    maxPositions: r.positiveInt("max_position_embeddings"),
    tieWordEmbeddings: r.bool("tie_word_embeddings", false),
    dtype: r.dtype(),
    bosTokenId: r.optionalTokenId("bos_token_id"),
    eosTokenIds: r.tokenIds("eos_token_id"),
  };
}

function ropeTheta(r: ConfigReader): number {
  const params = r.raw.rope_parameters;
  if (params !== undefined && params !== null) {
    if (typeof params !== "object" || Array.isArray(params)) r.fail("rope_parameters", "must be an object");
    const { rope_type: type, rope_theta: theta } = params as Record<string, unknown>;
    if (type !== undefined && type !== "default") {
      r.fail("rope_parameters.rope_type", `is ${JSON.stringify(type)}; only "default" RoPE is supported`);
    }
    if (theta !== undefined) return r.positiveNumber("rope_parameters.rope_theta", theta);
  }
  const scaling = r.raw.rope_scaling;
  if (scaling !== undefined && scaling !== null) {
    const type = (scaling as Record<string, unknown>).rope_type ?? (scaling as Record<string, unknown>).type;
    if (type !== "default") {
      r.fail("rope_scaling", `is ${JSON.stringify(scaling)}; only default RoPE is supported`);
    }
  }
  if (!r.has("rope_theta")) {
    r.fail("rope_theta", "is missing (and rope_parameters.rope_theta too); it is required for Qwen2");
  }
  return r.positiveNumber("rope_theta");
}

function parseGpt2(r: ConfigReader): Gpt2Config {
  const nEmbd = r.positiveInt("n_embd");
  const nHead = r.positiveInt("n_head");
  if (nEmbd % nHead !== 0) r.fail("n_head", `(${nHead}) must divide n_embd (${nEmbd})`);
  const activation = r.raw.activation_function ?? "gelu_new";
  if (activation !== "gelu_new") {
    r.fail("activation_function", `is ${JSON.stringify(activation)}; GPT-2 support needs "gelu_new"`);
  }
  if (!r.bool("tie_word_embeddings", true)) {
    r.fail("tie_word_embeddings", "is false; GPT-2 support needs the lm_head tied to the embeddings");
  }
  if (r.bool("scale_attn_by_inverse_layer_idx", false)) {
    r.fail("scale_attn_by_inverse_layer_idx", "is true; it is not supported");
  }
  if (!r.bool("scale_attn_weights", true)) r.fail("scale_attn_weights", "is false; it is not supported");
  return {
    architecture: "gpt2",
    vocabSize: r.positiveInt("vocab_size"),
    nEmbd,
    nLayer: r.positiveInt("n_layer"),
    nHead,
    nPositions: r.positiveInt("n_positions"),
    nInner: r.positiveInt("n_inner", 4 * nEmbd),
    layerNormEps: r.positiveNumber("layer_norm_epsilon"),
    activation: "gelu_new",
    tieWordEmbeddings: true,
    dtype: r.dtype(),
    bosTokenId: r.optionalTokenId("bos_token_id"),
    eosTokenIds: r.tokenIds("eos_token_id"),
  };
}

/** Validates a parsed config.json object; `source` names it in errors. */
export function parseModelConfig(raw: unknown, source = "config.json"): ModelConfig {
  if (raw === null || typeof raw !== "object" || Array.isArray(raw)) {
    throw new TypeError(`${source}: expected a JSON object`);
  }
  const reader = new ConfigReader(source, raw as Record<string, unknown>);
  return architectureOf(reader) === "qwen2" ? parseQwen2(reader) : parseGpt2(reader);
}

/** Reads and validates `<dir>/config.json`. */
export async function loadModelConfig(dir: string): Promise<ModelConfig> {
  const path = joinPath(dir, "config.json");
  let text: string;
  try {
    text = await Deno.readTextFile(path);
  } catch (error) {
    if (error instanceof Deno.errors.NotFound) {
      throw new TypeError(`${path} does not exist; is ${dir} a model folder?`);
    }
    throw error;
  }
  let raw: unknown;
  try {
    raw = JSON.parse(text);
  } catch (error) {
    throw new TypeError(`${path}: not valid JSON (${(error as Error).message})`);
  }
  return parseModelConfig(raw, path);
}

const DTYPE_TO_TORCH: Record<ConfigDType, string> = { f32: "float32", f16: "float16", bf16: "bfloat16" };

/** The config.json object transformers expects for `cfg`. */
export function modelConfigJson(cfg: ModelConfig): Record<string, unknown> {
  const eos = cfg.eosTokenIds.length === 1
    ? cfg.eosTokenIds[0]
    : cfg.eosTokenIds.length === 0
    ? null
    : cfg.eosTokenIds;
  const dtype = DTYPE_TO_TORCH[cfg.dtype];
  if (cfg.architecture === "qwen2") {
    return {
      architectures: ["Qwen2ForCausalLM"],
      model_type: "qwen2",
      vocab_size: cfg.vocabSize,
      hidden_size: cfg.hiddenSize,
      intermediate_size: cfg.intermediateSize,
      num_hidden_layers: cfg.numLayers,
      num_attention_heads: cfg.numHeads,
      num_key_value_heads: cfg.numKvHeads,
      // transformers' Qwen2 derives head_dim from hidden_size / num_attention_heads; write it only otherwise.
      ...(cfg.headDim * cfg.numHeads !== cfg.hiddenSize ? { head_dim: cfg.headDim } : {}),
      hidden_act: "silu",
      max_position_embeddings: cfg.maxPositions,
      rms_norm_eps: cfg.rmsNormEps,
      // Both spellings, so that transformers 4 (rope_theta) and 5 (rope_parameters) read the same value.
      rope_theta: cfg.ropeTheta,
      rope_parameters: { rope_type: "default", rope_theta: cfg.ropeTheta },
      tie_word_embeddings: cfg.tieWordEmbeddings,
      use_sliding_window: false,
      attention_dropout: 0.0,
      initializer_range: 0.02,
      use_cache: true,
      bos_token_id: cfg.bosTokenId ?? null,
      eos_token_id: eos,
      dtype,
      torch_dtype: dtype,
    };
  }
  return {
    architectures: ["GPT2LMHeadModel"],
    model_type: "gpt2",
    vocab_size: cfg.vocabSize,
    n_positions: cfg.nPositions,
    n_embd: cfg.nEmbd,
    n_layer: cfg.nLayer,
    n_head: cfg.nHead,
    n_inner: cfg.nInner === 4 * cfg.nEmbd ? null : cfg.nInner,
    activation_function: cfg.activation,
    layer_norm_epsilon: cfg.layerNormEps,
    resid_pdrop: 0.0,
    embd_pdrop: 0.0,
    attn_pdrop: 0.0,
    initializer_range: 0.02,
    scale_attn_weights: true,
    tie_word_embeddings: true,
    use_cache: true,
    bos_token_id: cfg.bosTokenId ?? null,
    eos_token_id: eos,
    dtype,
    torch_dtype: dtype,
  };
}

/** Writes `<dir>/config.json` (atomically) for `cfg`; the folder is created if needed. */
export async function writeModelConfig(dir: string, cfg: ModelConfig): Promise<void> {
  await Deno.mkdir(dir, { recursive: true });
  await writeTextFileAtomic(
    joinPath(dir, "config.json"),
    JSON.stringify(modelConfigJson(cfg), null, 2) + "\n",
  );
}

export interface GenerationDefaults {
  bosTokenId?: number;
  eosTokenIds: number[];
  padTokenId?: number;
}

/** Writes `<dir>/generation_config.json` with the ids generation stops on (eos may be several). */
export async function writeGenerationConfig(dir: string, defaults: GenerationDefaults): Promise<void> {
  const { bosTokenId, eosTokenIds, padTokenId } = defaults;
  const json = {
    bos_token_id: bosTokenId ?? null,
    eos_token_id: eosTokenIds.length === 1 ? eosTokenIds[0] : eosTokenIds,
    pad_token_id: padTokenId ?? null,
  };
  await Deno.mkdir(dir, { recursive: true });
  await writeTextFileAtomic(joinPath(dir, "generation_config.json"), JSON.stringify(json, null, 2) + "\n");
}
