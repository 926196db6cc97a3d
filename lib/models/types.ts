/**
 * What every causal language model on the engine offers: a forward pass to final hidden states, the lm_head
 * weight (the loss and the sampler project through it in chunks), named linear modules for LoRA, and its
 * trainable parameters.
 */
import type { KVCache } from "../../compute/attention.ts";
import type { Tensor } from "../../compute/tensor.ts";
import type { ModelConfig } from "../checkpoint/mod.ts";
import type { LinearLike } from "./linear.ts";

export interface ForwardOptions {
  /** Absolute position of every token: i32 [B, T] (left-padded batches and decoding offsets). */
  positions: Tensor;
  /** One cache per layer when decoding; new keys/values are appended before attending. */
  caches?: KVCache[];
  /** i32 [B, S]: 1 where a key may be attended, 0 for padding. */
  keyMask?: Tensor;
  /** Gradient checkpointing: keep only each decoder layer's input between forward and backward. */
  checkpointing?: boolean;
}

/** A linear module addressed by its Hugging Face name (e.g. "model.layers.0.self_attn.q_proj"). */
export interface LinearSlot {
  name: string;
  get(): LinearLike;
  set(layer: LinearLike): void;
}

/** The sizes every architecture reports, whatever its config calls them. */
export interface ModelDims {
  readonly vocabSize: number;
  readonly hiddenSize: number;
  readonly numLayers: number;
  readonly maxPositions: number;
  readonly numKvHeads: number;
  readonly headDim: number;
}

/** The sizes of a model from its config (GPT-2 has no grouped KV heads: every head is a KV head). */
export function modelDims(config: ModelConfig): ModelDims {
  if (config.architecture === "qwen2") {
    const { vocabSize, hiddenSize, numLayers, maxPositions, numKvHeads, headDim } = config;
    return { vocabSize, hiddenSize, numLayers, maxPositions, numKvHeads, headDim };
  }
  return {
    vocabSize: config.vocabSize,
    hiddenSize: config.nEmbd,
    numLayers: config.nLayer,
    maxPositions: config.nPositions,
    numKvHeads: config.nHead,
    headDim: config.nEmbd / config.nHead,
  };
}

/** Holds a model's sizes, derived once from its config; the architectures extend it. */
export abstract class DecoderDims implements ModelDims {
  readonly vocabSize: number;
  readonly hiddenSize: number;
  readonly numLayers: number;
  readonly maxPositions: number;
  readonly numKvHeads: number;
  readonly headDim: number;

  protected constructor(config: ModelConfig) {
    const dims = modelDims(config);
    this.vocabSize = dims.vocabSize;
    this.hiddenSize = dims.hiddenSize;
    this.numLayers = dims.numLayers;
    this.maxPositions = dims.maxPositions;
    this.numKvHeads = dims.numKvHeads;
    this.headDim = dims.headDim;
  }
}

export interface CausalLM extends ModelDims {
  readonly config: ModelConfig;
  /** Final (normed) hidden states: ids i32 [B, T] -> [B, T, C]. */
  hidden(ids: Tensor, options: ForwardOptions): Tensor;
  /** lm_head weight [V, C] (the token embedding when tied). */
  lmHead(): Tensor;
  /** Every linear module, for LoRA targeting. */
  linearSlots(): LinearSlot[];
  /** Tensors that receive gradients in full fine-tuning. */
  parameters(): Tensor[];
  /** Named tensors in the checkpoint's own layout and names (for saving). */
  stateDict(): Promise<Map<string, { shape: number[]; data: Float32Array }>>;
  dispose(): void;
}
