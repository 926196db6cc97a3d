/**
 * GPT-2 (rugpt3small_based_on_gpt2): learned positions, pre-LayerNorm blocks, gelu_new MLP, lm_head tied to the
 * token embedding. Mirrors transformers' GPT2LMHeadModel. Its Conv1D weights are stored [in, out]; they are
 * transposed to [out, in] on load, and the fused c_attn is split into q, k, v so attention reads them without
 * a copy (the state dict puts both back as transformers expects).
 */
import { attention, attentionWithAppend } from "../../compute/attention.ts";
import { add } from "../../compute/elementwise.ts";
import { embedding } from "../../compute/embedding.ts";
import { layerNorm } from "../../compute/norm.ts";
import { keep, type Tensor, tensor } from "../../compute/tensor.ts";
import { f32ToF16, type Gpt2Config } from "../checkpoint/mod.ts";
import { Linear, type LinearLike, linearThen, NormedInput } from "./linear.ts";
import { runLayers } from "./layers.ts";
import { type CausalLM, DecoderDims, type ForwardOptions, type LinearSlot } from "./types.ts";
import { transposeHost, type WeightDType, type WeightSource } from "./weights.ts";
import { checkLoadOptions, type LoadOptions, makeLinear } from "./qwen2.ts";

interface Gpt2Block {
  ln1: { weight: Tensor; bias: Tensor };
  ln2: { weight: Tensor; bias: Tensor };
  q: LinearLike;
  k: LinearLike;
  v: LinearLike;
  attnProj: LinearLike;
  fc: LinearLike;
  mlpProj: LinearLike;
}

export class Gpt2Model extends DecoderDims implements CausalLM {
  private constructor(
    readonly config: Gpt2Config,
    readonly wte: Tensor, // [V, C]
    readonly wpe: Tensor, // [P, C]
    readonly blocks: Gpt2Block[],
    readonly lnF: { weight: Tensor; bias: Tensor },
    /** Checkpoint key prefix ("transformer." in HF saves, "" in the original OpenAI export). */
    readonly prefix: string,
  ) {
    super(config);
  }

  static async load(loader: WeightSource, config: Gpt2Config, options: LoadOptions = {}): Promise<Gpt2Model> {
    checkLoadOptions(options);
    const dtype: WeightDType = options.dtype ?? "f32";
    const trainable = options.trainable ?? false;
    const { nEmbd: c, nLayer, nPositions, vocabSize, nInner } = config;
    const prefix = loader.has("transformer.wte.weight") ? "transformer." : "";
    const upload = (name: string, data: Float32Array | Uint16Array, shape: number[], as: WeightDType) => {
      const t = keep(tensor(data, shape, as, "weights"));
      t.name = name;
      t.requiresGrad = trainable;
      return t;
    };
    const vector = async (name: string, n: number) => upload(name, await loader.host(name, [n]), [n], "f32");
    const norm = async (name: string) => ({
      weight: await vector(`${name}.weight`, c),
      bias: await vector(`${name}.bias`, c),
    });
    // Conv1D: weight [in, out] -> Linear [out, in]; `parts` splits the output columns (c_attn -> q, k, v).
    const linearDtype: WeightDType = options.quantize ? "f32" : dtype;
    const conv1d = async (name: string, inp: number, out: number, parts = 1): Promise<LinearLike[]> => {
      const w = transposeHost((await loader.host(`${name}.weight`, [inp, out])) as Float32Array, inp, out); // [out, in]
      const b = (await loader.host(`${name}.bias`, [out])) as Float32Array;
      const width = out / parts;
      const layers: LinearLike[] = [];
      for (let k = 0; k < parts; k++) {
        const rows = w.subarray(k * width * inp, (k + 1) * width * inp);
        const weight = upload(
          `${name}.weight`,
          linearDtype === "f16" ? f32ToF16(rows) : rows,
          [width, inp],
          linearDtype,
        );
        const bias = upload(`${name}.bias`, b.slice(k * width, (k + 1) * width), [width], "f32");
        layers.push(await makeLinear(weight, bias, options, name));
      }
      return layers;
    };
    const wteName = `${prefix}wte.weight`;
    const wteHost = await loader.host(wteName, [vocabSize, c], dtype);
    const wte = upload(wteName, wteHost, [vocabSize, c], dtype);
    const wpe = upload(`${prefix}wpe.weight`, await loader.host(`${prefix}wpe.weight`, [nPositions, c]), [
      nPositions,
      c,
    ], "f32");
    const blocks: Gpt2Block[] = [];
    for (let i = 0; i < nLayer; i++) {
      const p = `${prefix}h.${i}`;
      const [q, k, v] = await conv1d(`${p}.attn.c_attn`, c, 3 * c, 3);
      blocks.push({
        ln1: await norm(`${p}.ln_1`),
        ln2: await norm(`${p}.ln_2`),
        q,
        k,
        v,
        attnProj: (await conv1d(`${p}.attn.c_proj`, c, c))[0],
        fc: (await conv1d(`${p}.mlp.c_fc`, c, nInner))[0],
        mlpProj: (await conv1d(`${p}.mlp.c_proj`, nInner, c))[0],
      });
    }
    const lnF = await norm(`${prefix}ln_f`);
    return new Gpt2Model(config, wte, wpe, blocks, lnF, prefix);
  }

  hidden(ids: Tensor, options: ForwardOptions): Tensor {
    const [batch, seq] = ids.shape;
    let x = add(embedding(ids, this.wte), embedding(options.positions, this.wpe)); // x: [B, T, C]
    x = runLayers(
      this.blocks,
      x,
      options,
      (block, input, opts, i) => this.block(block, input, opts, i, batch, seq),
    );
    return layerNorm(x, this.lnF.weight, this.lnF.bias, this.config.layerNormEps); // [B, T, C]
  }

  private block(
    block: Gpt2Block,
    x: Tensor,
    options: ForwardOptions,
    index: number,
    batch: number,
    seq: number,
  ) {
    const { nHead, layerNormEps } = this.config;
    const d = this.headDim;
    // When decoding, the norms ride on the projections' GEMVs, q/k/v share one (NormedInput), and the residual
    // adds and GELU ride on theirs (linearThen).
    const ln1 = { kind: "layer" as const, weight: block.ln1.weight, bias: block.ln1.bias, eps: layerNormEps };
    const h = new NormedInput(x, ln1); // h: [B, T, C]
    const [qh, kh, vh] = h.linears([block.q, block.k, block.v]);
    const q = qh.reshape([batch, seq, nHead, d]); // q: [B, T, H, D]
    let k = kh.reshape([batch, seq, nHead, d]);
    let v = vh.reshape([batch, seq, nHead, d]);
    const cache = options.caches?.[index];
    // Decoding one token: the cache append and attention in one dispatch.
    let a = cache ? attentionWithAppend(q, k, v, cache, options.keyMask) : null;
    if (!a) {
      if (cache) {
        cache.append(k, v);
        k = cache.keys();
        v = cache.values();
      }
      a = attention(q, k, v, { causal: true, keyMask: options.keyMask }); // a: [B, T, H, D]
    }
    x = linearThen(block.attnProj, a.reshape([batch, seq, nHead * d]), { kind: "residual", residual: x });
    const ln2 = { kind: "layer" as const, weight: block.ln2.weight, bias: block.ln2.bias, eps: layerNormEps };
    const f = new NormedInput(x, ln2).linear(block.fc, { kind: "gelu" }); // f: [B, T, 4C]
    return linearThen(block.mlpProj, f, { kind: "residual", residual: x }); // [B, T, C]
  }

  lmHead(): Tensor {
    return this.wte;
  }

  linearSlots(): LinearSlot[] {
    const slots: LinearSlot[] = [];
    this.blocks.forEach((block, i) => {
      const p = `${this.prefix}h.${i}`;
      for (
        const [name, key] of [["attn.c_proj", "attnProj"], ["mlp.c_fc", "fc"], [
          "mlp.c_proj",
          "mlpProj",
        ]] as const
      ) {
        slots.push({ name: `${p}.${name}`, get: () => block[key], set: (l) => (block[key] = l) });
      }
    });
    return slots;
  }

  parameters(): Tensor[] {
    const out = [this.wte, this.wpe];
    for (const b of this.blocks) {
      out.push(b.ln1.weight, b.ln1.bias, b.ln2.weight, b.ln2.bias);
      for (const l of [b.q, b.k, b.v, b.attnProj, b.fc, b.mlpProj]) out.push(...l.parameters());
    }
    out.push(this.lnF.weight, this.lnF.bias);
    return out;
  }

  async stateDict(): Promise<Map<string, { shape: number[]; data: Float32Array }>> {
    const out = new Map<string, { shape: number[]; data: Float32Array }>();
    const read = async (t: Tensor) => {
      if (t.dtype !== "f32") {
        throw new TypeError(`stateDict: ${t.name} is ${t.dtype}; export needs f32 weights`);
      }
      return (await t.read()) as Float32Array;
    };
    const put = async (name: string, t: Tensor) =>
      out.set(name, { shape: [...t.shape], data: await read(t) });
    // Linear [out, in] parts -> Conv1D [in, out] with the parts' columns side by side.
    const conv1d = async (name: string, parts: LinearLike[]) => {
      const linears = parts.map((l) => {
        if (!(l instanceof Linear) || !l.bias) {
          throw new TypeError(`stateDict: ${name} is not a plain Linear`);
        }
        return l;
      });
      const inp = linears[0].inFeatures;
      const widths = linears.map((l) => l.outFeatures);
      const total = widths.reduce((a, b) => a + b, 0);
      const weight = new Float32Array(inp * total);
      const bias = new Float32Array(total);
      let col = 0;
      for (const l of linears) {
        const w = await read(l.weight); // [out, in]
        for (let o = 0; o < l.outFeatures; o++) {
          for (let i = 0; i < inp; i++) weight[i * total + col + o] = w[o * inp + i];
        }
        bias.set(await read(l.bias!), col);
        col += l.outFeatures;
      }
      out.set(`${name}.weight`, { shape: [inp, total], data: weight });
      out.set(`${name}.bias`, { shape: [total], data: bias });
    };
    const p0 = this.prefix;
    await put(`${p0}wte.weight`, this.wte);
    await put(`${p0}wpe.weight`, this.wpe);
    for (const [i, b] of this.blocks.entries()) {
      const p = `${p0}h.${i}`;
      await put(`${p}.ln_1.weight`, b.ln1.weight);
      await put(`${p}.ln_1.bias`, b.ln1.bias);
      await conv1d(`${p}.attn.c_attn`, [b.q, b.k, b.v]);
      await conv1d(`${p}.attn.c_proj`, [b.attnProj]);
      await put(`${p}.ln_2.weight`, b.ln2.weight);
      await put(`${p}.ln_2.bias`, b.ln2.bias);
      await conv1d(`${p}.mlp.c_fc`, [b.fc]);
      await conv1d(`${p}.mlp.c_proj`, [b.mlpProj]);
    }
    await put(`${p0}ln_f.weight`, this.lnF.weight);
    await put(`${p0}ln_f.bias`, this.lnF.bias);
    return out;
  }

  dispose(): void {
    this.wte.dispose();
    this.wpe.dispose();
    for (const b of this.blocks) {
      for (const t of [b.ln1.weight, b.ln1.bias, b.ln2.weight, b.ln2.bias]) t.dispose();
      for (const l of [b.q, b.k, b.v, b.attnProj, b.fc, b.mlpProj]) l.dispose();
    }
    this.lnF.weight.dispose();
    this.lnF.bias.dispose();
  }
}
