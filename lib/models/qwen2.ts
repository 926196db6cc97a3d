/**
 * Qwen2 (Qwen2.5-Instruct): grouped-query attention with q/k/v biases, RMSNorm, SwiGLU MLP, rotary positions
 * (rotate-half, θ from the config), tied or untied lm_head. Mirrors transformers' Qwen2ForCausalLM.
 */
import { attention, attentionWithRope } from "../../compute/attention.ts";
import { needsGrad } from "../../compute/autograd.ts";
import { embedding } from "../../compute/embedding.ts";
import type { Nf4DecodeScales } from "../../compute/nf4.ts";
import { rmsNorm } from "../../compute/norm.ts";
import { rope, ropeAppend } from "../../compute/rope.ts";
import type { Tensor } from "../../compute/tensor.ts";
import type { Qwen2Config } from "../checkpoint/mod.ts";
import { Linear, type LinearLike, linearThen, NormedInput } from "./linear.ts";
import { Nf4Linear } from "./nf4_linear.ts";
import { runLayers } from "./layers.ts";
import { type CausalLM, DecoderDims, type ForwardOptions, type LinearSlot } from "./types.ts";
import type { WeightDType, WeightSource } from "./weights.ts";

const ATTENTION = ["q_proj", "k_proj", "v_proj", "o_proj"] as const;
const MLP = ["gate_proj", "up_proj", "down_proj"] as const;
type AttentionName = typeof ATTENTION[number];
type MlpName = typeof MLP[number];

interface Qwen2Layer {
  inputNorm: Tensor; // [C]
  postNorm: Tensor; // [C]
  attn: Record<AttentionName, LinearLike>;
  mlp: Record<MlpName, LinearLike>;
}

export interface LoadOptions {
  /** Storage of the weights: f32 (trainable or exact) or f16 (frozen). */
  dtype?: WeightDType;
  /** Full fine-tuning: every tensor requires gradients. */
  trainable?: boolean;
  /** QLoRA: store every decoder linear weight in NF4 (quantised on the GPU as it loads). */
  quantize?: "nf4";
  /** With quantize: also 8-bit-quantise the NF4 absmax values (bitsandbytes' double quantisation). */
  doubleQuant?: boolean;
  /**
   * With doubleQuant: decoding widens the absmax values to f32 once and keeps them ("widened", the default:
   * faster GEMVs for 4 bytes per 64 weights, dropped while the weights train) or reads the 8-bit ones ("stored").
   */
  decodeScales?: Nf4DecodeScales;
}

/** Validates options shared by every architecture's loader. */
export function checkLoadOptions(options: LoadOptions): void {
  if (options.trainable && (options.dtype ?? "f32") !== "f32") {
    throw new TypeError('full fine-tuning needs f32 weights (dtype: "f32")');
  }
  if (options.trainable && options.quantize) {
    throw new TypeError("quantised weights cannot be fully fine-tuned");
  }
  if (options.decodeScales !== undefined && !["widened", "stored"].includes(options.decodeScales)) {
    throw new TypeError(
      `decodeScales must be "widened" or "stored", got ${JSON.stringify(options.decodeScales)}`,
    );
  }
}

/** Builds a decoder linear layer as the options ask: plain (f32/f16) or NF4. */
export async function makeLinear(
  weight: Tensor,
  bias: Tensor | null,
  options: LoadOptions,
  name: string,
): Promise<LinearLike> {
  if (options.quantize === "nf4") {
    return await Nf4Linear.fromF32(weight, bias, options.doubleQuant ?? false, name, options.decodeScales);
  }
  return new Linear(weight, bias, name);
}

export class Qwen2Model extends DecoderDims implements CausalLM {
  private constructor(
    readonly config: Qwen2Config,
    readonly embedTokens: Tensor, // [V, C]
    readonly layers: Qwen2Layer[],
    readonly finalNorm: Tensor, // [C]
    readonly lmHeadWeight: Tensor | null, // [V, C], null when tied
  ) {
    super(config);
  }

  static async load(
    loader: WeightSource,
    config: Qwen2Config,
    options: LoadOptions = {},
  ): Promise<Qwen2Model> {
    checkLoadOptions(options);
    const dtype = options.dtype ?? "f32";
    const trainable = options.trainable ?? false;
    const { hiddenSize: c, intermediateSize: ff, numHeads, numKvHeads, headDim, vocabSize, numLayers } =
      config;
    const mark = (t: Tensor) => {
      t.requiresGrad = trainable;
      return t;
    };
    // Norm weights and biases are tiny: always f32, so RMSNorm and bias adds read one dtype.
    const load = async (name: string, shape: number[], as: WeightDType = dtype) =>
      mark(await loader.load(name, shape, as));
    const linear = async (prefix: string, out: number, inp: number, bias: boolean) =>
      makeLinear(
        await load(`${prefix}.weight`, [out, inp], options.quantize ? "f32" : dtype),
        bias ? await load(`${prefix}.bias`, [out], "f32") : null,
        options,
        prefix,
      );
    const embedTokens = await load("model.embed_tokens.weight", [vocabSize, c]);
    const layers: Qwen2Layer[] = [];
    for (let i = 0; i < numLayers; i++) {
      const p = `model.layers.${i}`;
      layers.push({
        inputNorm: await load(`${p}.input_layernorm.weight`, [c], "f32"),
        postNorm: await load(`${p}.post_attention_layernorm.weight`, [c], "f32"),
        attn: {
          q_proj: await linear(`${p}.self_attn.q_proj`, numHeads * headDim, c, true),
          k_proj: await linear(`${p}.self_attn.k_proj`, numKvHeads * headDim, c, true),
          v_proj: await linear(`${p}.self_attn.v_proj`, numKvHeads * headDim, c, true),
          o_proj: await linear(`${p}.self_attn.o_proj`, c, numHeads * headDim, false),
        },
        mlp: {
          gate_proj: await linear(`${p}.mlp.gate_proj`, ff, c, false),
          up_proj: await linear(`${p}.mlp.up_proj`, ff, c, false),
          down_proj: await linear(`${p}.mlp.down_proj`, c, ff, false),
        },
      });
    }
    const finalNorm = await load("model.norm.weight", [c], "f32");
    const tied = config.tieWordEmbeddings || !loader.has("lm_head.weight");
    const lmHead = tied ? null : await load("lm_head.weight", [vocabSize, c]);
    return new Qwen2Model(config, embedTokens, layers, finalNorm, lmHead);
  }

  hidden(ids: Tensor, options: ForwardOptions): Tensor {
    const [batch, seq] = ids.shape;
    let x = embedding(ids, this.embedTokens); // x: [B, T, C]
    x = runLayers(
      this.layers,
      x,
      options,
      (layer, input, opts, i) => this.layer(layer, input, opts, i, batch, seq),
    );
    return rmsNorm(x, this.finalNorm, this.config.rmsNormEps); // [B, T, C]
  }

  private layer(
    layer: Qwen2Layer,
    x: Tensor,
    options: ForwardOptions,
    index: number,
    batch: number,
    seq: number,
  ) {
    const { numHeads, numKvHeads, headDim, ropeTheta, rmsNormEps } = this.config;
    // When decoding, the norms ride on the projections' GEMVs, q/k/v share one, as do gate/up with SwiGLU's
    // gating (NormedInput), and the residual adds ride on o's and down's (linearThen).
    const h = new NormedInput(x, { kind: "rms", weight: layer.inputNorm, eps: rmsNormEps }); // h: [B, T, C]
    const [qh, kh, vh] = h.linears([layer.attn.q_proj, layer.attn.k_proj, layer.attn.v_proj]);
    let q = qh.reshape([batch, seq, numHeads, headDim]); // q: [B, T, Hq, D]
    let k = kh.reshape([batch, seq, numKvHeads, headDim]); // k: [B, T, Hkv, D]
    let v = vh.reshape([batch, seq, numKvHeads, headDim]); // v: [B, T, Hkv, D]
    const cache = options.caches?.[index];
    // Decoding one token: rotations, cache append and attention in one dispatch.
    let a = cache ? attentionWithRope(q, k, v, options.positions, ropeTheta, cache, options.keyMask) : null;
    if (!a) {
      if (cache && !needsGrad(q, k, v)) {
        // Inference: both rotations and the cache append in one dispatch.
        q = ropeAppend(q, k, v, options.positions, ropeTheta, cache);
      } else {
        q = rope(q, options.positions, ropeTheta);
        k = rope(k, options.positions, ropeTheta);
        cache?.append(k, v);
      }
      if (cache) {
        k = cache.keys(); // k: [B, S, Hkv, D]
        v = cache.values();
      }
      a = attention(q, k, v, { causal: true, keyMask: options.keyMask }); // a: [B, T, Hq, D]
    }
    x = linearThen(layer.attn.o_proj, a.reshape([batch, seq, numHeads * headDim]), {
      kind: "residual",
      residual: x,
    });
    const h2 = new NormedInput(x, { kind: "rms", weight: layer.postNorm, eps: rmsNormEps });
    const mlp = h2.swiglu(layer.mlp.gate_proj, layer.mlp.up_proj); // mlp: [B, T, FF]
    return linearThen(layer.mlp.down_proj, mlp, { kind: "residual", residual: x }); // [B, T, C]
  }

  lmHead(): Tensor {
    return this.lmHeadWeight ?? this.embedTokens;
  }

  linearSlots(): LinearSlot[] {
    const slots: LinearSlot[] = [];
    this.layers.forEach((layer, i) => {
      for (const name of ATTENTION) {
        slots.push({
          name: `model.layers.${i}.self_attn.${name}`,
          get: () => layer.attn[name],
          set: (l) => (layer.attn[name] = l),
        });
      }
      for (const name of MLP) {
        slots.push({
          name: `model.layers.${i}.mlp.${name}`,
          get: () => layer.mlp[name],
          set: (l) => (layer.mlp[name] = l),
        });
      }
    });
    return slots;
  }

  parameters(): Tensor[] {
    const out = [this.embedTokens];
    for (const layer of this.layers) {
      out.push(layer.inputNorm, layer.postNorm);
      for (const l of [...Object.values(layer.attn), ...Object.values(layer.mlp)]) {
        out.push(...l.parameters());
      }
    }
    out.push(this.finalNorm);
    if (this.lmHeadWeight) out.push(this.lmHeadWeight);
    return out;
  }

  async stateDict(): Promise<Map<string, { shape: number[]; data: Float32Array }>> {
    const out = new Map<string, { shape: number[]; data: Float32Array }>();
    const put = async (name: string, t: Tensor) => {
      if (t.dtype !== "f32") {
        throw new TypeError(`stateDict: ${name} is ${t.dtype}; export needs f32 weights`);
      }
      out.set(name, { shape: [...t.shape], data: (await t.read()) as Float32Array });
    };
    await put("model.embed_tokens.weight", this.embedTokens);
    for (const [i, layer] of this.layers.entries()) {
      const p = `model.layers.${i}`;
      await put(`${p}.input_layernorm.weight`, layer.inputNorm);
      await put(`${p}.post_attention_layernorm.weight`, layer.postNorm);
      for (const [group, modules] of [["self_attn", layer.attn], ["mlp", layer.mlp]] as const) {
        for (const [name, module] of Object.entries(modules)) {
          if (!(module instanceof Linear)) {
            throw new TypeError(`stateDict: ${p}.${group}.${name} is not a plain Linear`);
          }
          await put(`${p}.${group}.${name}.weight`, module.weight);
          if (module.bias) await put(`${p}.${group}.${name}.bias`, module.bias);
        }
      }
    }
    await put("model.norm.weight", this.finalNorm);
    if (this.lmHeadWeight) await put("lm_head.weight", this.lmHeadWeight);
    return out;
  }

  dispose(): void {
    this.embedTokens.dispose();
    for (const layer of this.layers) {
      layer.inputNorm.dispose();
      layer.postNorm.dispose();
      for (const l of [...Object.values(layer.attn), ...Object.values(layer.mlp)]) l.dispose();
    }
    this.finalNorm.dispose();
    this.lmHeadWeight?.dispose();
  }
}
