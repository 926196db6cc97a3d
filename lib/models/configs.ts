/**
 * Model configurations the lab knows by name (the tiny defaults it ships with and the seed's two real shapes),
 * the tensor layout of each architecture's checkpoint, and random weights for any config. No npm imports, so
 * benchmarks run it on a GPU machine from the source tree alone.
 */
import { fill } from "../../compute/elementwise.ts";
import { fillNormal } from "../../compute/random.ts";
import { empty, keep, type Tensor } from "../../compute/tensor.ts";
import { f32ToF16, type Gpt2Config, type ModelConfig, type Qwen2Config } from "../checkpoint/mod.ts";
import type { WeightDType, WeightSource } from "./weights.ts";

/** Qwen2.5's special ids: <|endoftext|> and <|im_end|>. */
const QWEN_EOS = [151645, 151643];
const GPT2_EOS = 50256;

const qwenBase = {
  architecture: "qwen2" as const,
  vocabSize: 151936,
  rmsNormEps: 1e-6,
  ropeTheta: 1_000_000,
  dtype: "f32" as const,
  eosTokenIds: QWEN_EOS,
};

export const PRESETS: Record<string, ModelConfig> = {
  /** The lab's default big-model stand-in: the real Qwen vocabulary and chat template, tiny width. */
  "tiny-qwen2": {
    ...qwenBase,
    hiddenSize: 64,
    intermediateSize: 176,
    numLayers: 2,
    numHeads: 4,
    numKvHeads: 2,
    headDim: 16,
    maxPositions: 2048,
    tieWordEmbeddings: true,
  } satisfies Qwen2Config,
  /** The lab's default small model: GPT-2 BPE vocabulary, tiny width. */
  "tiny-gpt2": {
    architecture: "gpt2",
    vocabSize: 50257,
    nEmbd: 64,
    nLayer: 2,
    nHead: 4,
    nPositions: 512,
    nInner: 256,
    layerNormEps: 1e-5,
    activation: "gelu_new",
    tieWordEmbeddings: true,
    dtype: "f32",
    bosTokenId: GPT2_EOS,
    eosTokenIds: [GPT2_EOS],
  } satisfies Gpt2Config,
  /** unsloth/Qwen2.5-7B-Instruct's shape (its embedding is padded to 152,064 rows). */
  "qwen2.5-7b-instruct": {
    ...qwenBase,
    vocabSize: 152064,
    hiddenSize: 3584,
    intermediateSize: 18944,
    numLayers: 28,
    numHeads: 28,
    numKvHeads: 4,
    headDim: 128,
    maxPositions: 32768,
    tieWordEmbeddings: false,
    dtype: "bf16",
  } satisfies Qwen2Config,
  /** ai-forever/rugpt3small_based_on_gpt2's shape. */
  rugpt3small: {
    architecture: "gpt2",
    vocabSize: 50264,
    nEmbd: 768,
    nLayer: 12,
    nHead: 12,
    nPositions: 2048,
    nInner: 3072,
    layerNormEps: 1e-5,
    activation: "gelu_new",
    tieWordEmbeddings: true,
    dtype: "f32",
    bosTokenId: 1,
    eosTokenIds: [2],
  } satisfies Gpt2Config,
};

export function preset(name: string): ModelConfig {
  const config = PRESETS[name];
  if (!config) {
    throw new RangeError(`unknown model preset "${name}"; known: ${Object.keys(PRESETS).join(", ")}`);
  }
  return config;
}

/** Tensor names and shapes of an architecture's checkpoint, in transformers' naming. */
export function checkpointLayout(
  config: ModelConfig,
): { name: string; shape: number[]; init: "normal" | "ones" | "zeros" }[] {
  const out: { name: string; shape: number[]; init: "normal" | "ones" | "zeros" }[] = [];
  const add = (name: string, shape: number[], init: "normal" | "ones" | "zeros" = "normal") =>
    out.push({ name, shape, init });
  if (config.architecture === "qwen2") {
    const { vocabSize: v, hiddenSize: c, intermediateSize: ff, numHeads: h, numKvHeads: kv, headDim: d } =
      config;
    add("model.embed_tokens.weight", [v, c]);
    for (let i = 0; i < config.numLayers; i++) {
      const p = `model.layers.${i}`;
      add(`${p}.input_layernorm.weight`, [c], "ones");
      add(`${p}.self_attn.q_proj.weight`, [h * d, c]);
      add(`${p}.self_attn.q_proj.bias`, [h * d], "zeros");
      add(`${p}.self_attn.k_proj.weight`, [kv * d, c]);
      add(`${p}.self_attn.k_proj.bias`, [kv * d], "zeros");
      add(`${p}.self_attn.v_proj.weight`, [kv * d, c]);
      add(`${p}.self_attn.v_proj.bias`, [kv * d], "zeros");
      add(`${p}.self_attn.o_proj.weight`, [c, h * d]);
      add(`${p}.post_attention_layernorm.weight`, [c], "ones");
      add(`${p}.mlp.gate_proj.weight`, [ff, c]);
      add(`${p}.mlp.up_proj.weight`, [ff, c]);
      add(`${p}.mlp.down_proj.weight`, [c, ff]);
    }
    add("model.norm.weight", [c], "ones");
    if (!config.tieWordEmbeddings) add("lm_head.weight", [v, c]);
  } else {
    const { vocabSize: v, nEmbd: c, nInner: ff } = config;
    add("transformer.wte.weight", [v, c]);
    add("transformer.wpe.weight", [config.nPositions, c]);
    for (let i = 0; i < config.nLayer; i++) {
      const p = `transformer.h.${i}`;
      add(`${p}.ln_1.weight`, [c], "ones");
      add(`${p}.ln_1.bias`, [c], "zeros");
      add(`${p}.attn.c_attn.weight`, [c, 3 * c]);
      add(`${p}.attn.c_attn.bias`, [3 * c], "zeros");
      add(`${p}.attn.c_proj.weight`, [c, c]);
      add(`${p}.attn.c_proj.bias`, [c], "zeros");
      add(`${p}.ln_2.weight`, [c], "ones");
      add(`${p}.ln_2.bias`, [c], "zeros");
      add(`${p}.mlp.c_fc.weight`, [c, ff]);
      add(`${p}.mlp.c_fc.bias`, [ff], "zeros");
      add(`${p}.mlp.c_proj.weight`, [ff, c]);
      add(`${p}.mlp.c_proj.bias`, [c], "zeros");
    }
    add("transformer.ln_f.weight", [c], "ones");
    add("transformer.ln_f.bias", [c], "zeros");
  }
  return out;
}

/** Seeded normal(0, std) values (Box–Muller over a 32-bit counter hash), reproducible across machines. */
export function normalValues(n: number, seed: number, std: number): Float32Array {
  const out = new Float32Array(n);
  let state = (seed * 0x9e3779b9) >>> 0;
  const next = () => {
    state = (state + 0x6d2b79f5) >>> 0;
    let t = state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return (((t ^ (t >>> 14)) >>> 0) + 0.5) / 4294967296;
  };
  for (let i = 0; i < n; i += 2) {
    const r = Math.sqrt(-2 * Math.log(next()));
    const a = 2 * Math.PI * next();
    out[i] = r * Math.cos(a) * std;
    if (i + 1 < n) out[i + 1] = r * Math.sin(a) * std;
  }
  return out;
}

/**
 * Random weights for a config without files: GPU-initialised tensors for `load`, host arrays for `host` (GPT-2's
 * loader transposes on the host). Benchmarks build real-shape models from it in seconds.
 */
export class RandomWeights implements WeightSource {
  private layout: Map<string, { shape: number[]; init: "normal" | "ones" | "zeros"; index: number }>;

  constructor(readonly config: ModelConfig, readonly seed = 0, readonly std = 0.02) {
    this.layout = new Map(checkpointLayout(config).map((t, index) => [t.name, { ...t, index }]));
  }

  has(name: string): boolean {
    return this.layout.has(name);
  }

  private entry(name: string, shape: number[]) {
    const entry = this.layout.get(name);
    if (!entry || entry.shape.join() !== shape.join()) {
      throw new RangeError(`random weights: no tensor ${name} [${shape}]`);
    }
    return entry;
  }

  host(name: string, shape: number[], as: "f32" | "f16" = "f32"): Promise<Float32Array | Uint16Array> {
    const { init, index } = this.entry(name, shape);
    const n = shape.reduce((a, b) => a * b, 1);
    const values = init === "ones"
      ? new Float32Array(n).fill(1)
      : init === "zeros"
      ? new Float32Array(n)
      : normalValues(n, this.seed * 100_003 + index, this.std);
    return Promise.resolve(as === "f16" ? f32ToF16(values) : values);
  }

  load(name: string, shape: number[], dtype: WeightDType = "f32"): Promise<Tensor> {
    const { init, index } = this.entry(name, shape);
    const t = keep(empty(shape, dtype, "weights"));
    t.name = name;
    if (init === "normal") fillNormal(t, this.seed * 100_003 + index, this.std);
    else if (dtype === "f32") fill(t, init === "ones" ? 1 : 0);
    else return this.host(name, shape, "f16").then((bits) => (t.write(bits), t));
    return Promise.resolve(t);
  }
}
