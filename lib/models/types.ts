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

export interface CausalLM {
  readonly config: ModelConfig;
  readonly vocabSize: number;
  readonly hiddenSize: number;
  readonly numLayers: number;
  readonly maxPositions: number;
  readonly numKvHeads: number;
  readonly headDim: number;
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
