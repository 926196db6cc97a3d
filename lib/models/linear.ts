/**
 * Linear layers. `Linear` holds a PyTorch-layout weight [out, in] (f32 trainable, or frozen f16) and an optional
 * bias; `LoraLinear` wraps one with low-rank adapters as PEFT does (`fromLinear`, `merge`), and can be switched
 * off per call so one loaded base serves requests with and without the adapter.
 */
import { swiglu } from "../../compute/activations.ts";
import { needsGrad, noGrad } from "../../compute/autograd.ts";
import { add, axpby, gelu, scale } from "../../compute/elementwise.ts";
import {
  gemvApplies,
  type GemvEpilogue,
  gemvFits,
  gemvInto,
  type GemvOptions,
  type GemvSource,
  gemvStackInto,
  gemvSwigluInto,
  type GemvWeight,
  type Nf4Scales,
} from "../../compute/gemv.ts";
import type { BufferRange } from "../../compute/runtime.ts";
import { layerNorm, rmsNorm } from "../../compute/norm.ts";
import { matmul } from "../../compute/matmul.ts";
import { dropout } from "../../compute/dropout.ts";
import { empty, keep, shapeString, type Tensor, tensor, tidy } from "../../compute/tensor.ts";

/** Anything that maps [..., in] to [..., out]: a plain, quantized or adapted linear layer. */
export interface LinearLike {
  readonly inFeatures: number;
  readonly outFeatures: number;
  forward(x: Tensor): Tensor;
  /**
   * The weight as the decode GEMV reads it (as stored, with the bias), or null when a single row through this
   * layer is not one GEMV (an active adapter adds its own products).
   */
  gemvOperand?(): GemvOperand | null;
  parameters(): Tensor[];
  dispose(): void;
}

/** A layer's weight [out, in] as one source of a decode GEMV. */
export interface GemvOperand {
  storage: GemvWeight;
  weight: BufferRange;
  scales: Nf4Scales | null;
  bias: Tensor | null;
}

/** What follows a linear layer in the decoders: nothing, a residual add, SwiGLU's gating of `up`, or GELU. */
export type LinearEpilogue =
  | { kind: "none" }
  | { kind: "residual"; residual: Tensor }
  | { kind: "silu-gate"; gate: Tensor }
  | { kind: "gelu" };

/** The normalisation that precedes a projection: RMSNorm (Qwen2) or LayerNorm (GPT-2). */
export type LinearNorm =
  | { kind: "rms"; weight: Tensor; eps: number }
  | { kind: "layer"; weight: Tensor; bias: Tensor; eps: number };

const NONE: LinearEpilogue = { kind: "none" };

/**
 * A normalised input shared by several projections (q, k, v; gate, up): when decoding, the projections' GEMVs
 * normalise x themselves (no dispatch for the norm, no normalised tensor), and projections that read it together
 * (`linears`, `swiglu`) share one dispatch; otherwise norm(x) is computed once, on first use, and fed to the
 * layers' forward.
 */
export class NormedInput {
  private normed: Tensor | null = null;

  constructor(readonly x: Tensor, readonly norm: LinearNorm) {}

  /** epilogue(layer(norm(x))). */
  linear(layer: LinearLike, epilogue: LinearEpilogue = NONE): Tensor {
    return this.decode([layer], "stack", epilogue)?.[0] ?? linearThen(layer, this.normedX(), epilogue);
  }

  /** layer(norm(x)) for each layer (q, k and v): one GEMV dispatch for all of them when decoding. */
  linears(layers: readonly LinearLike[]): Tensor[] {
    return this.decode(layers, "stack", NONE) ?? layers.map((layer) => this.linear(layer));
  }

  /** silu(gate(norm(x))) * up(norm(x)), SwiGLU: one GEMV dispatch for both projections when decoding. */
  swiglu(gate: LinearLike, up: LinearLike): Tensor {
    return this.decode([gate, up], "swiglu", NONE)?.[0] ??
      this.linear(up, { kind: "silu-gate", gate: this.linear(gate) });
  }

  private decode(layers: readonly LinearLike[], combine: "stack" | "swiglu", epilogue: LinearEpilogue) {
    const { weight } = this.norm;
    const bias = this.norm.kind === "layer" ? this.norm.bias : null;
    if (needsGrad(this.x, weight, bias, epilogueInput(epilogue), ...layers.flatMap((l) => l.parameters()))) {
      return null;
    }
    return decodeGemv(layers, this.x, combine, epilogue, this.norm);
  }

  private normedX(): Tensor {
    this.normed ??= this.norm.kind === "rms"
      ? rmsNorm(this.x, this.norm.weight, this.norm.eps)
      : layerNorm(this.x, this.norm.weight, this.norm.bias, this.norm.eps);
    return this.normed;
  }
}

function epilogueInput(epilogue: LinearEpilogue): Tensor | null {
  return epilogue.kind === "residual"
    ? epilogue.residual
    : epilogue.kind === "silu-gate"
    ? epilogue.gate
    : null;
}

/**
 * epilogue(layer(x)): fused into the decode GEMV when nothing needs gradients and the layer can, otherwise the
 * layer's forward followed by the op (so training and prefill are unchanged).
 */
export function linearThen(layer: LinearLike, x: Tensor, epilogue: LinearEpilogue): Tensor {
  if (!needsGrad(x, epilogueInput(epilogue), ...layer.parameters())) {
    const fused = decodeGemv([layer], x, "stack", epilogue);
    if (fused) return fused[0];
  }
  const y = layer.forward(x);
  switch (epilogue.kind) {
    case "none":
      return y;
    case "residual":
      return add(epilogue.residual, y);
    case "silu-gate":
      return swiglu(epilogue.gate, y);
    case "gelu":
      return gelu(y);
  }
}

/**
 * The layers applied to one row x (decoding) by the GEMV, without recording gradients: each layer's output
 * ("stack", with `epilogue` for a single layer; one dispatch unless the device cannot bind them all), or
 * silu(first) * second ("swiglu", one dispatch). Null when they cannot be: x is not one f32 row of the layers'
 * common input length, a layer has no GEMV operand (an active adapter), the layers' storages differ or the GEMV
 * does not take their row length, f16 norm parameters, or a pair the device cannot bind at once.
 */
function decodeGemv(
  layers: readonly LinearLike[],
  x: Tensor,
  combine: "stack" | "swiglu",
  epilogue: LinearEpilogue,
  norm?: LinearNorm,
): Tensor[] | null {
  const k = layers[0].inFeatures;
  if (x.size !== k || x.dtype !== "f32" || layers.some((l) => l.inFeatures !== k)) return null;
  const operands = layers.map((l) => l.gemvOperand?.() ?? null);
  if (operands.some((o) => !o || o.bias?.dtype === "f16")) return null;
  const ops = operands as GemvOperand[];
  const { storage } = ops[0];
  if (ops.some((o) => o.storage !== storage || o.scales?.kind !== ops[0].scales?.kind)) return null;
  if (!gemvApplies(k, storage)) return null;
  const normParams = norm ? (norm.kind === "layer" ? [norm.weight, norm.bias] : [norm.weight]) : [];
  if (normParams.some((t) => t.dtype !== "f32" || t.size !== k)) return null;
  const input = epilogueInput(epilogue);
  if (input && (input.size !== layers[0].outFeatures || input.dtype !== "f32")) {
    throw new RangeError(
      `${epilogue.kind} input ${shapeString(input.shape)} does not match ${layers[0].outFeatures} outputs`,
    );
  }
  const options: GemvOptions = {
    storage,
    norm: !norm
      ? null
      : norm.kind === "rms"
      ? { kind: "rms", weight: norm.weight.range, eps: norm.eps }
      : { kind: "layer", weight: norm.weight.range, bias: norm.bias.range, eps: norm.eps },
  };
  const sources: GemvSource[] = ops.map((o, i) => ({
    weight: o.weight,
    scales: o.scales,
    bias: o.bias?.range ?? null,
    rows: layers[i].outFeatures,
  }));
  const lead = x.shape.slice(0, -1);
  if (combine === "swiglu") {
    // A stack the device cannot bind at once is split by gemvStackInto; a pair cannot be.
    if (layers[1].outFeatures !== layers[0].outFeatures || !gemvFits(options, sources, combine)) return null;
    const y = empty([...lead, layers[0].outFeatures]);
    gemvSwigluInto(y.range, x.range, k, sources[0], sources[1], options);
    return [y];
  }
  const ys = layers.map((l) => empty([...lead, l.outFeatures]));
  if (layers.length === 1) {
    const gemvEpilogue: GemvEpilogue = epilogue.kind === "residual"
      ? { kind: "residual", residual: epilogue.residual.range }
      : epilogue.kind === "silu-gate"
      ? { kind: "silu-gate", gate: epilogue.gate.range }
      : epilogue;
    const { weight, scales, bias, rows } = sources[0];
    gemvInto(
      ys[0].range,
      x.range,
      weight,
      storage,
      rows,
      k,
      bias,
      false,
      scales,
      undefined,
      gemvEpilogue,
      options.norm,
    );
  } else {
    gemvStackInto(x.range, k, sources, ys.map((y) => y.range), options);
  }
  return ys;
}

export class Linear implements LinearLike {
  readonly inFeatures: number;
  readonly outFeatures: number;

  /** weight: [out, in] (f32 or f16); bias: [out] or null. */
  constructor(public weight: Tensor, public bias: Tensor | null, readonly name = "") {
    if (weight.ndim !== 2) {
      throw new RangeError(`${name}: linear weight must be 2-D, got ${shapeString(weight.shape)}`);
    }
    [this.outFeatures, this.inFeatures] = weight.shape;
    if (bias && (bias.ndim !== 1 || bias.shape[0] !== this.outFeatures)) {
      throw new RangeError(
        `${name}: bias ${shapeString(bias.shape)} does not match weight ${shapeString(weight.shape)}`,
      );
    }
  }

  forward(x: Tensor): Tensor {
    const lead = x.shape.slice(0, -1);
    const x2 = x.reshape([-1, this.inFeatures]); // x2: [N, in]
    const y = matmul(x2, this.weight, { transB: true, bias: this.bias }); // y: [N, out]
    return y.reshape([...lead, this.outFeatures]);
  }

  gemvOperand(): GemvOperand {
    const storage = this.weight.dtype === "f16" ? "f16" : "f32";
    return { storage, weight: this.weight.range, scales: null, bias: this.bias };
  }

  parameters(): Tensor[] {
    return this.bias ? [this.weight, this.bias] : [this.weight];
  }

  dispose(): void {
    this.weight.dispose();
    this.bias?.dispose();
  }
}

export interface LoraOptions {
  r: number;
  alpha: number;
  dropout?: number;
  /** rsLoRA: scale alpha / sqrt(r) instead of alpha / r. */
  useRslora?: boolean;
}

/** PEFT's scaling factor for a LoRA adapter. */
export function loraScaling({ r, alpha, useRslora = false }: LoraOptions): number {
  return useRslora ? alpha / Math.sqrt(r) : alpha / r;
}

export class LoraLinear implements LinearLike {
  readonly inFeatures: number;
  readonly outFeatures: number;
  readonly scaling: number;
  readonly dropoutP: number;
  /** When false, forward is the base layer alone (adapter switched off for this call). */
  enabled = true;

  /** loraA: [r, in]; loraB: [out, r] (PEFT's lora_A.weight / lora_B.weight). */
  constructor(
    readonly base: LinearLike,
    public loraA: Tensor,
    public loraB: Tensor,
    readonly options: LoraOptions,
  ) {
    const { r } = options;
    if (!Number.isInteger(r) || r <= 0) {
      throw new RangeError(`LoRA rank r must be a positive integer, got ${r}`);
    }
    if (!(options.alpha > 0)) throw new RangeError(`LoRA alpha must be > 0, got ${options.alpha}`);
    this.inFeatures = base.inFeatures;
    this.outFeatures = base.outFeatures;
    if (loraA.shape[0] !== r || loraA.shape[1] !== this.inFeatures) {
      throw new RangeError(`lora_A ${shapeString(loraA.shape)} does not fit r=${r}, in=${this.inFeatures}`);
    }
    if (loraB.shape[0] !== this.outFeatures || loraB.shape[1] !== r) {
      throw new RangeError(`lora_B ${shapeString(loraB.shape)} does not fit out=${this.outFeatures}, r=${r}`);
    }
    this.scaling = loraScaling(options);
    this.dropoutP = options.dropout ?? 0;
    if (!(this.dropoutP >= 0 && this.dropoutP < 1)) {
      throw new RangeError(`LoRA dropout must be in [0, 1), got ${this.dropoutP}`);
    }
  }

  /**
   * Wraps a layer with fresh adapters initialised as PEFT does: A Kaiming-uniform (a = sqrt(5), i.e.
   * U(-1/sqrt(in), 1/sqrt(in))), B zero — so the adapted layer starts equal to the base.
   */
  static fromLinear(base: LinearLike, options: LoraOptions, random: () => number): LoraLinear {
    const { r } = options;
    const bound = 1 / Math.sqrt(base.inFeatures);
    const a = new Float32Array(r * base.inFeatures);
    for (let i = 0; i < a.length; i++) a[i] = (random() * 2 - 1) * bound;
    const loraA = keep(trainableTensor(a, [r, base.inFeatures]));
    const loraB = keep(trainableTensor(new Float32Array(base.outFeatures * r), [base.outFeatures, r]));
    return new LoraLinear(base, loraA, loraB, options);
  }

  forward(x: Tensor): Tensor {
    const y = this.base.forward(x);
    if (!this.enabled) return y;
    const lead = x.shape.slice(0, -1);
    const x2 = x.reshape([-1, this.inFeatures]); // x2: [N, in]
    const dropped = this.dropoutP > 0 ? dropout(x2, this.dropoutP) : x2;
    const low = matmul(dropped, this.loraA, { transB: true }); // low: [N, r]
    const delta = matmul(low, this.loraB, { transB: true }); // delta: [N, out]
    return add(y, scale(delta, this.scaling).reshape([...lead, this.outFeatures]));
  }

  /** Only with the adapter switched off: an active adapter adds its own products. */
  gemvOperand(): GemvOperand | null {
    return this.enabled ? null : this.base.gemvOperand?.() ?? null;
  }

  /** Only the adapters train. */
  parameters(): Tensor[] {
    return [this.loraA, this.loraB];
  }

  /** Folds scaling * B @ A into the base weight (f32 base only) and returns the base layer. */
  merge(): LinearLike {
    if (!(this.base instanceof Linear) || this.base.weight.dtype !== "f32") {
      throw new TypeError("merge needs an f32 base Linear; dequantize or widen the base first");
    }
    const weight = this.base.weight;
    noGrad(() =>
      tidy(() => {
        const delta = matmul(this.loraB, this.loraA); // delta: [out, in]
        axpby(weight, delta, 1, this.scaling);
      })
    );
    this.loraA.dispose();
    this.loraB.dispose();
    return this.base;
  }

  dispose(): void {
    this.base.dispose();
    this.loraA.dispose();
    this.loraB.dispose();
  }
}

/** Uploads f32 data as a trainable leaf tagged "weights". */
export function trainableTensor(data: Float32Array, shape: number[]): Tensor {
  const t = tensor(data, shape, "f32", "weights");
  t.requiresGrad = true;
  return t;
}
