/**
 * `deno task bench [--suite micro,train,decode,seed] [--json] [--torch FILE] [--quick] [--profile]`: Ostrota's
 * kernels and the seed's two models at their real shapes on random weights. Prints a table (and with --json one
 * JSON object); with --torch (bench/torch_ref.py's output from the same machine) it prints the ratio table last;
 * with --profile, where each training step's and decoded token's GPU time goes, kernel by kernel.
 * Imports nothing from npm, so it runs on a GPU machine from the source tree alone.
 */
import { argmax } from "../compute/argmax.ts";
import { attention, attentionWithRope, KVCache } from "../compute/attention.ts";
import { backward, noGrad } from "../compute/autograd.ts";
import { copy } from "../compute/elementwise.ts";
import { matmul, matmulInto } from "../compute/matmul.ts";
import { type GemmShape, tuneMatmul } from "../compute/matmul_tune.ts";
import { gemvStackInto, gemvSwigluInto } from "../compute/gemv.ts";
import {
  disposeNf4,
  nf4Bytes,
  nf4DecodeScales,
  nf4Linear,
  nf4Scales,
  type Nf4Weight,
  quantizeNf4,
} from "../compute/nf4.ts";
import { fillNormal } from "../compute/random.ts";
import { initRuntime, type KernelSpec, type KernelTime, Params, type Runtime } from "../compute/runtime.ts";
import { coldCopies, timeCalls } from "../compute/timing.ts";
import { empty, keep, type Tensor, tensor, tidy } from "../compute/tensor.ts";
import type { Gpt2Config, Qwen2Config } from "../lib/checkpoint/mod.ts";
import { EVAL_BATCH, generate, generateGreedyBatch } from "../lib/generate/generate.ts";
import { attachLora, DEFAULT_TARGETS, loraParameters } from "../lib/lora/peft.ts";
import { Gpt2Model } from "../lib/models/gpt2.ts";
import { Qwen2Model } from "../lib/models/qwen2.ts";
import { preset, RandomWeights } from "../lib/models/configs.ts";
import type { CausalLM } from "../lib/models/types.ts";
import { seededRandom } from "../lib/generate/sampling.ts";
import type { Batch } from "../lib/train/batches.ts";
import { lrMultiplier } from "../lib/train/schedule.ts";
import { Optimizer, optimizerStep, type StepResult } from "../lib/train/step.ts";

/** FP32 FMA peak of an H100/H200 SXM (the ceiling without tensor cores), for MFU. */
const FP32_PEAK_TFLOPS = 67;

interface Row {
  suite: string;
  name: string;
  value: number;
  unit: string;
  note?: string;
}

const rows: Row[] = [];
const args = Deno.args;
const suites = (args.includes("--suite") ? args[args.indexOf("--suite") + 1] : "micro,train,decode").split(
  ",",
);
const quick = args.includes("--quick");
/** Smoke-test the suites on the tiny presets (CPU driver) instead of the real shapes. */
const tiny = args.includes("--tiny");
const qwenName = tiny ? "tiny-qwen2" : "qwen2.5-7b";
const gpt2Name = tiny ? "tiny-gpt2" : "rugpt3small";
const json = args.includes("--json");
const torchFile = args.includes("--torch") ? args[args.indexOf("--torch") + 1] : null;
const profiling = args.includes("--profile");
const profiles: Record<string, KernelTime[]> = {};

function record(row: Row): void {
  rows.push(row);
  console.error(
    `${row.suite.padEnd(7)} ${row.name.padEnd(52)} ${row.value.toFixed(2).padStart(10)} ${row.unit}${
      row.note ? `  (${row.note})` : ""
    }`,
  );
}

function randomTensor(shape: number[], seed: number, std = 1, dtype: "f32" | "f16" = "f32"): Tensor {
  return fillNormal(keep(empty(shape, dtype, "bench")), seed, std);
}

/** Picks each product's fastest tile on this GPU first (compute/matmul_tune.ts); --no-tune keeps the defaults. */
async function tune(shapes: GemmShape[]): Promise<void> {
  if (args.includes("--no-tune")) return;
  const t0 = performance.now();
  const chosen = await tuneMatmul(shapes);
  for (const c of chosen) {
    const { BM, BN, BK, TM, TN } = c.tile;
    console.error(
      `tune    ${c.m}x${c.n}x${c.k}${c.transA ? " At" : ""}${c.transB ? " Bt" : ""} ${c.b ?? "f32"}: ` +
        `${BM}x${BN}x${BK} ${TM}x${TN} ${c.ms.toFixed(2)} ms`,
    );
  }
  record({
    suite: "tune",
    name: `matmul tiles tuned for ${shapes.length} products`,
    value: (performance.now() - t0) / 1000,
    unit: "s",
  });
}

/** The products a training step at [tokens, ...] runs through each linear layer [out, in]. */
function linearShapes(
  tokens: number,
  layers: [number, number][],
  b: "f32" | "nf4",
  weightGrad: boolean,
): GemmShape[] {
  return layers.flatMap(([out, inp]) => [
    { m: tokens, n: out, k: inp, transB: true, b },
    { m: tokens, n: inp, k: out, b },
    ...(weightGrad ? [{ m: out, n: inp, k: tokens, transA: true }] : []),
  ]);
}

/** Threads of a streaming-read workgroup (bench/read_bandwidth.wgsl's WG). */
const READ_WG = 256;

/**
 * The memory ceiling as WGSL reaches it: a streaming read (16-byte loads, weights from memory as the GEMV rows
 * read them) of buffers the size of Qwen's gate/up NF4 weight, the best over grid sizes and loads in flight per
 * thread. The NF4 GEMV's ratio to it says how much of what this stack can read the kernel gets.
 */
async function readBandwidth(rt: Runtime): Promise<void> {
  const bytes = quick ? 2 ** 21 : (18944 * 3584) / 2;
  const vec4s = bytes / 16;
  const copies = Array.from({ length: coldCopies(bytes) }, (_, i) => randomTensor([bytes / 4], 7 + i));
  const sink = keep(empty([vec4s], "u32", "bench"));
  // Grids of 4, 8 and 16 workgroups per SM of an H100/H200, and one that reads the buffer in one pass.
  const sms = 132;
  let best = { gbps: 0, note: "" };
  for (const unroll of [1, 4, 8]) {
    const spec: KernelSpec = {
      file: new URL("./read_bandwidth.wgsl", import.meta.url),
      entry: "main",
      bindings: ["read", "write"],
      defines: {
        WG: READ_WG,
        UNROLL: unroll,
        LOADS: Array.from(
          { length: unroll },
          (_, j) => `    acc ^= src[min(i + ${j}u * threads, p.n - 1u)];`,
        ).join("\n"),
      },
    };
    for (const groups of [4 * sms, 8 * sms, 16 * sms, Math.ceil(vec4s / READ_WG / unroll)]) {
      let turn = 0;
      const ms = await timeCalls(rt, () => {
        const src = copies[turn++ % copies.length];
        rt.dispatch(spec, new Params().u32(vec4s), [src.range, sink.range], groups);
      }, 3);
      const gbps = bytes / ms / 1e6;
      if (gbps > best.gbps) {
        best = { gbps, note: `${(ms * 1000).toFixed(1)} us; ${groups} workgroups, ${unroll} loads a step` };
      }
    }
  }
  record({
    suite: "micro",
    name: `WGSL streaming read ${(bytes / 2 ** 20).toFixed(1)} MiB, best layout`,
    value: best.gbps,
    unit: "GB/s",
    note: best.note,
  });
  copies.forEach((c) => c.dispose());
  sink.dispose();
}

async function micro(rt: Runtime): Promise<void> {
  // Copy bandwidth (bytes read + written), the memory ceiling the GEMV is judged against.
  const n = Math.min((quick ? 16 : 256) * 2 ** 20, Math.floor(rt.gpu.maxBindingSize / 4 / 2 ** 20) * 2 ** 20);
  const src = randomTensor([n], 1);
  const copyMs = await timeCalls(rt, () => copy(src).dispose(), 5);
  record({
    suite: "micro",
    name: `copy ${(n * 4) / 2 ** 20} MiB (read+write)`,
    value: (2 * n * 4) / copyMs / 1e6,
    unit: "GB/s",
  });
  src.dispose();

  await readBandwidth(rt);

  const gemms: [string, number, number, number, boolean][] = [
    ["gemm 4096^3 f32", 4096, 4096, 4096, false],
    ["gemm qwen q/o 2048x3584x3584 (x@Wt)", 2048, 3584, 3584, true],
    ["gemm qwen k/v 2048x512x3584 (x@Wt)", 2048, 512, 3584, true],
    ["gemm qwen gate/up 2048x18944x3584 (x@Wt)", 2048, 18944, 3584, true],
    ["gemm qwen down 2048x3584x18944 (x@Wt)", 2048, 3584, 18944, true],
    ["gemm gpt2 qkv 2048x2304x768 (x@Wt)", 2048, 2304, 768, true],
    ["gemm gpt2 fc 2048x3072x768 (x@Wt)", 2048, 3072, 768, true],
    ["gemm gpt2 lm_head 2048x50264x768 (x@Wt)", 2048, 50264, 768, true],
  ];
  const measured = quick ? gemms.slice(0, 2) : gemms;
  await tune(measured.map(([, m, n, k, transB]) => ({ m, n, k, transB })));
  for (const [name, m, nn, k, transB] of measured) {
    const a = randomTensor([m, k], 2);
    const b = randomTensor(transB ? [nn, k] : [k, nn], 3);
    const c = keep(empty([m, nn], "f32", "bench"));
    const ms = await timeCalls(rt, () => matmulInto(c, a, b, { transB }), 3);
    record({
      suite: "micro",
      name,
      value: (2 * m * nn * k) / ms / 1e9,
      unit: "TFLOP/s",
      note: `${ms.toFixed(2)} ms`,
    });
    for (const t of [a, b, c]) t.dispose();
  }

  // NF4 dequant-GEMV at Qwen2.5-7B's layer shapes (one decoded token): bytes of packed weights + scales, with
  // per-64 f32 absmax and with double quantisation (what the QLoRA model decodes with). Each product reads the
  // next of enough copies to overflow the L2 cache (50 MB on an H100/H200), so weights come from memory, as in
  // decoding, where every layer's weights are read once per token.
  for (
    const [name, out, inp] of [["q/o", 3584, 3584], ["k/v", 512, 3584], ["gate/up", 18944, 3584], [
      "down",
      3584,
      18944,
    ]] as const
  ) {
    for (const double of [false, true]) {
      const quantized = async (seed: number) => {
        const w = randomTensor([out, inp], seed, 0.02);
        const q = await quantizeNf4(w, double);
        w.dispose();
        return q;
      };
      const copies = [await quantized(4)];
      const bytes = nf4Bytes(copies[0]);
      while (copies.length < coldCopies(bytes)) {
        copies.push(await quantized(4 + copies.length));
      }
      const x = randomTensor([1, inp], 5);
      let turn = 0;
      const ms = await timeCalls(
        rt,
        () => noGrad(() => tidy(() => nf4Linear(x, copies[turn++ % copies.length]).dispose())),
        5,
      );
      record({
        suite: "micro",
        name: `nf4${double ? " (double quant)" : ""} gemv ${name} ${out}x${inp}`,
        value: bytes / ms / 1e6,
        unit: "GB/s",
        note: `${(ms * 1000).toFixed(1)} us, weights from memory`,
      });
      copies.forEach(disposeNf4);
      x.dispose();
      // The copies' buffers go back to the GPU, not to the pool's cache (hundreds of them for k/v).
      rt.trim();
    }
  }
  // The fused decode GEMVs: q, k and v stacked in one dispatch, gate and up paired with SwiGLU in another, with
  // the scales decoding reads (double-quantised weights' absmax widened to f32 once) and with the 8-bit scales
  // as stored (weights from memory as above). Bytes count the scales read.
  for (const widened of [true, false]) {
    for (
      const [name, shapes] of [["q+k+v stacked", [3584, 512, 512]], ["gate+up SwiGLU pair", [
        18944,
        18944,
      ]]] as const
    ) {
      const inp = 3584;
      const group = async (seed: number) =>
        await Promise.all(shapes.map(async (out, i) => {
          const w = randomTensor([out, inp], seed * 8 + i, 0.02);
          const q = await quantizeNf4(w, true);
          w.dispose();
          if (widened) nf4DecodeScales(q);
          return q;
        }));
      const copies = [await group(20)];
      const bytes = copies[0].reduce(
        (sum, q) => sum + q.packed.bytes + (widened ? q.decodeAbsmax!.bytes : nf4Bytes(q) - q.packed.bytes),
        0,
      );
      while (copies.length < coldCopies(bytes)) copies.push(await group(20 + copies.length));
      const x = randomTensor([1, inp], 21);
      const ys = shapes.map((out) => keep(empty([out], "f32", "bench")));
      const source = (q: Nf4Weight) => ({
        weight: q.packed.range,
        scales: widened ? nf4DecodeScales(q) : nf4Scales(q),
        bias: null,
        rows: q.shape[0],
      });
      let turn = 0;
      const ms = await timeCalls(rt, () => {
        const sources = copies[turn++ % copies.length].map(source);
        if (shapes.length === 2) {
          gemvSwigluInto(ys[0].range, x.range, inp, sources[0], sources[1], { storage: "nf4" });
        } else gemvStackInto(x.range, inp, sources, ys.map((y) => y.range), { storage: "nf4" });
      }, 5);
      record({
        suite: "micro",
        name: `nf4 (${widened ? "scales widened" : "double quant"}) gemv ${name} ${shapes.join("+")}x${inp}`,
        value: bytes / ms / 1e6,
        unit: "GB/s",
        note: `${(ms * 1000).toFixed(1)} us, weights from memory`,
      });
      copies.flat().forEach(disposeNf4);
      for (const t of [x, ...ys]) t.dispose();
      rt.trim();
    }
  }
  // The f16 lm_head of the 7B (152,064 x 3584, 1.09 GB), read once per decoded token.
  {
    const vocab = quick ? 4096 : 152064;
    const w = randomTensor([vocab, 3584], 12, 0.02, "f16");
    const x = randomTensor([1, 3584], 13);
    const y = keep(empty([1, vocab], "f32", "bench"));
    const ms = await timeCalls(rt, () => matmulInto(y, x, w, { transB: true }), 3);
    record({
      suite: "micro",
      name: `f16 gemv lm_head ${vocab}x3584`,
      value: w.bytes / ms / 1e6,
      unit: "GB/s",
      note: `${(ms * 1000).toFixed(1)} us`,
    });
    for (const t of [w, x, y]) t.dispose();
  }

  // Attention, Qwen2.5-7B heads: prefill of 8 x 256 (forward and forward+backward), and one decoded token.
  const [b, t, hq, hkv, d] = [8, 256, 28, 4, 128];
  const q = randomTensor([b, t, hq, d], 6);
  const kk = randomTensor([b, t, hkv, d], 7);
  const v = randomTensor([b, t, hkv, d], 8);
  const flops = 4 * b * hq * t * t * d / 2;
  const fwd = await timeCalls(rt, () => noGrad(() => attention(q, kk, v, { causal: true }).dispose()), 3);
  record({
    suite: "micro",
    name: "attention prefill fwd 8x256 28/4 heads d128",
    value: flops / fwd / 1e9,
    unit: "TFLOP/s",
    note: `${fwd.toFixed(2)} ms`,
  });
  q.requiresGrad = true;
  const fwdBwd = await timeCalls(rt, () => {
    const out = keep(attention(q, kk, v, { causal: true }));
    backward(out, out);
    out.dispose();
    q.grad?.dispose();
    q.grad = null;
  }, 3);
  record({
    suite: "micro",
    name: "attention prefill fwd+bwd 8x256",
    value: 3.5 * flops / fwdBwd / 1e9,
    unit: "TFLOP/s",
    note: `${fwdBwd.toFixed(2)} ms`,
  });
  for (const keys of [64, 512]) {
    const q1 = randomTensor([1, 1, hq, d], 9);
    const k1 = randomTensor([1, keys, hkv, d], 10);
    const v1 = randomTensor([1, keys, hkv, d], 11);
    const dec = await timeCalls(rt, () => noGrad(() => attention(q1, k1, v1, { causal: true }).dispose()), 5);
    record({
      suite: "micro",
      name: `attention decode 1 query x ${keys} keys`,
      value: dec * 1000,
      unit: "us",
    });
    for (const x of [q1, k1, v1]) x.dispose();
  }
  // Decoding's own attention: the new token's RoPE rotation and cache append fused (attentionWithRope) at the
  // 64th position, over one cache (hot) or a different cache each call, more of them than L2 holds (cold, as
  // in decoding, where a token's weights stream through L2 between two uses of a layer's cache).
  const q1 = randomTensor([1, 1, hq, d], 12);
  const k1 = randomTensor([1, 1, hkv, d], 13);
  const v1 = randomTensor([1, 1, hkv, d], 14);
  const position = tensor(Int32Array.of(63), [1, 1], "i32");
  const past = [randomTensor([1, 63, hkv, d], 15), randomTensor([1, 63, hkv, d], 16)];
  const caches = Array.from({ length: coldCopies(2 * 64 * hkv * d * 4) }, () => {
    const cache = new KVCache(1, 64, hkv, d);
    cache.append(past[0], past[1]);
    return cache;
  });
  for (const cold of [false, true]) {
    let turn = 0;
    const fused = await timeCalls(rt, () => {
      const cache = caches[cold ? turn++ % caches.length : 0];
      cache.length = 63;
      noGrad(() => attentionWithRope(q1, k1, v1, position, 1e6, cache)!.dispose());
    }, 5);
    record({
      suite: "micro",
      name: `attention decode, RoPE + append fused, 64 keys, cache ${cold ? "cold" : "hot"}`,
      value: fused * 1000,
      unit: "us",
    });
  }
  for (const x of [q1, k1, v1, position, ...past, ...caches]) x.dispose();
  for (const x of [q, kk, v]) x.dispose();
}

function qwenConfig(): Qwen2Config {
  return preset(tiny ? "tiny-qwen2" : "qwen2.5-7b-instruct") as Qwen2Config;
}

function gpt2Config(): Gpt2Config {
  return preset(tiny ? "tiny-gpt2" : "rugpt3small") as Gpt2Config;
}

/** Parameters of the full model (embeddings and lm_head included). */
function paramCount(c: Qwen2Config | Gpt2Config): number {
  if (c.architecture === "qwen2") {
    const attn = c.hiddenSize * c.numHeads * c.headDim * 2 + c.hiddenSize * c.numKvHeads * c.headDim * 2;
    const mlp = 3 * c.hiddenSize * c.intermediateSize;
    return c.numLayers * (attn + mlp) + c.vocabSize * c.hiddenSize * (c.tieWordEmbeddings ? 1 : 2);
  }
  return c.nLayer * (12 * c.nEmbd * c.nEmbd) + (c.vocabSize + c.nPositions) * c.nEmbd;
}

/**
 * With --profile, runs `work` once more with every dispatch timed on its own and prints the kernels that take
 * the most GPU time, by kernel and by kernel and grid (the same kernel at different shapes).
 */
async function profileKernels(rt: Runtime, name: string, work: () => unknown): Promise<void> {
  if (!profiling) return;
  const byGrid = await rt.profile(work);
  if (!byGrid) return;
  profiles[name] = byGrid;
  const byKernel = new Map<string, KernelTime>();
  for (const row of byGrid) {
    const k = byKernel.get(row.kernel) ?? { kernel: row.kernel, grid: "all", count: 0, ms: 0 };
    k.count += row.count;
    k.ms += row.ms;
    byKernel.set(row.kernel, k);
  }
  const total = byGrid.reduce((sum, r) => sum + r.ms, 0);
  const dispatches = byGrid.reduce((sum, r) => sum + r.count, 0);
  console.error(`profile ${name}: ${total.toFixed(2)} ms of kernel time in ${dispatches} dispatches`);
  const show = (r: KernelTime) =>
    console.error(
      `profile   ${`${r.kernel} ${r.grid}`.padEnd(50)} ${String(r.count).padStart(6)} x ${
        (r.ms / r.count * 1000).toFixed(1).padStart(9)
      } us = ${r.ms.toFixed(2).padStart(9)} ms ${(100 * r.ms / total).toFixed(1).padStart(5)} %`,
    );
  [...byKernel.values()].sort((a, b) => b.ms - a.ms).slice(0, 14).forEach(show);
  console.error(`profile   by grid:`);
  byGrid.slice(0, 14).forEach(show);
}

/**
 * `count` optimizer steps as the trainer runs them (lib/train/trainer.ts): step s + 1 is encoded before step s's
 * result is awaited and handed to `take`.
 */
async function runSteps(
  count: number,
  start: (s: number) => Promise<StepResult>,
  take: (result: StepResult) => void,
): Promise<void> {
  let previous: Promise<StepResult> | null = null;
  for (let s = 0; s < count; s++) {
    const current = start(s);
    if (previous) take(await previous);
    previous = current;
  }
  if (previous) take(await previous);
}

async function trainStep(
  rt: Runtime,
  model: CausalLM,
  params: Tensor[],
  optimizer: Optimizer,
  batch: number,
  seq: number,
  checkpointing: boolean,
) {
  const random = seededRandom(7);
  const ids = Int32Array.from(
    { length: batch * seq },
    () => Math.floor(random() * Math.min(30000, model.vocabSize)),
  );
  const targets = Int32Array.from(
    { length: batch * seq },
    (_, i) => ((i + 1) % seq === 0 ? -100 : ids[i + 1]),
  );
  const data = { ids, targets, batch, seq, tokens: batch * seq, trainable: batch * (seq - 1) };
  let step = 0;
  const start = () =>
    optimizerStep(model, params, optimizer, [data], {
      lr: 1e-5,
      step: ++step,
      maxGradNorm: 1.0,
      checkpointing,
    });
  const check = ({ loss }: StepResult) => {
    if (!Number.isFinite(loss)) throw new Error(`non-finite loss ${loss}`);
  };
  check(await start());
  await profileKernels(
    rt,
    `${model.numLayers}-layer ${checkpointing ? "QLoRA" : "full-FT"} step`,
    async () => check(await start()),
  );
  rt.pool.resetPeak();
  const steps = quick ? 2 : 6;
  const t0 = performance.now();
  await runSteps(steps, start, check);
  return {
    ms: (performance.now() - t0) / steps,
    peak: rt.pool.stats().peakAllocatedBytes,
    peakLive: rt.pool.stats().peakLiveBytes,
  };
}

/**
 * The Qwen2.5-7B shape as QLoRA trains it: random weights quantised to NF4 with double quantisation (f16 for
 * the rest), LoRA on all seven projections, 8-bit AdamW. Records the build time and the GPU memory it holds.
 */
async function qloraModel(
  rt: Runtime,
  suite: string,
  seed: number,
  r: number,
  alpha: number,
  weightDecay: number,
) {
  const config = qwenConfig();
  const t0 = performance.now();
  const model = await Qwen2Model.load(new RandomWeights(config), config, {
    quantize: "nf4",
    doubleQuant: true,
    dtype: "f16",
  });
  attachLora(model, { r, alpha, targetModules: DEFAULT_TARGETS }, seededRandom(seed));
  const params = loraParameters(model).flatMap(({ layer }) => [layer.loraA, layer.loraB]);
  const optimizer = new Optimizer(params, "adamw8bit", weightDecay);
  record({
    suite,
    name: `${qwenName} NF4 model build (random weights)`,
    value: (performance.now() - t0) / 1000,
    unit: "s",
    note: `${(rt.pool.stats().liveBytes / 2 ** 30).toFixed(2)} GiB`,
  });
  return { model, params, optimizer };
}

/** A micro-batch of bench/data/seed-qlora-batches.json as the trainer's Batch. */
interface SeedBatch {
  batch: number;
  seq: number;
  ids: number[];
  targets: number[];
}

/**
 * The seed's QLoRA recipe end to end at the real shapes: the 60 optimizer steps (2 sequences x 4 accumulated,
 * the trainer's length-grouped batches of the sample data, made by bench/make_seed_batches.ts) through the
 * Qwen2.5-7B shape, with the recipe's learning-rate schedule, clipping and 8-bit AdamW. Wall clock, from the
 * first step to the last loss read back (the model build is reported apart).
 */
async function seedRecipe(rt: Runtime): Promise<void> {
  const file = JSON.parse(
    await Deno.readTextFile(new URL("./data/seed-qlora-batches.json", import.meta.url)),
  );
  const recipe = file.recipe;
  const steps: Batch[][] = (file.steps as SeedBatch[][]).map((micro) =>
    micro.map((b) => {
      const targets = Int32Array.from(b.targets);
      return {
        batch: b.batch,
        seq: b.seq,
        ids: Int32Array.from(b.ids),
        targets,
        tokens: b.batch * b.seq,
        trainable: targets.filter((t) => t !== -100).length,
      };
    })
  );
  const { model, params, optimizer } = await qloraModel(
    rt,
    "seed",
    recipe.seed,
    recipe.loraR,
    recipe.loraAlpha,
    recipe.weightDecay,
  );
  rt.pool.resetPeak();
  const total = quick ? 3 : steps.length;
  const losses: number[] = [];
  const t0 = performance.now();
  await runSteps(
    total,
    (s) =>
      optimizerStep(model, params, optimizer, steps[s], {
        lr: recipe.lr * lrMultiplier(recipe.schedule, s, recipe.warmupSteps, recipe.steps),
        step: s + 1,
        maxGradNorm: recipe.maxGradNorm,
        checkpointing: true,
      }),
    ({ loss }) => {
      if (!Number.isFinite(loss)) throw new Error(`non-finite loss ${loss} at step ${losses.length + 1}`);
      losses.push(loss);
    },
  );
  const seconds = (performance.now() - t0) / 1000;
  const tokens = steps.slice(0, total).flat().reduce((n, b) => n + b.ids.length, 0);
  record({
    suite: "seed",
    name: `seed recipe: ${total} steps x ${recipe.batchSize}x${recipe.gradAccum} sample dialogs, ${qwenName}`,
    value: seconds / 60,
    unit: "min",
    note: `${seconds.toFixed(1)} s, ${Math.round(tokens / seconds)} tok/s (padded); seed: 4 min`,
  });
  record({
    suite: "seed",
    name: "seed recipe: loss first step -> last step",
    value: losses.at(-1)!,
    unit: "",
    note: `from ${losses[0].toFixed(3)}`,
  });
  record({
    suite: "seed",
    name: "seed recipe peak GPU memory",
    value: rt.pool.stats().peakAllocatedBytes / 2 ** 30,
    unit: "GiB",
  });
  optimizer.dispose();
  model.dispose();
  rt.trim();
}

async function train(rt: Runtime): Promise<void> {
  const [batch, seq] = tiny ? [2, 32] : [8, 256];
  const tokens = batch * seq;
  const q = qwenConfig();
  const g = gpt2Config();
  const qkv = q.numKvHeads * q.headDim;
  await tune([
    ...linearShapes(
      tokens,
      [[q.numHeads * q.headDim, q.hiddenSize], [qkv, q.hiddenSize], [q.hiddenSize, q.numHeads * q.headDim], [
        q.intermediateSize,
        q.hiddenSize,
      ], [q.hiddenSize, q.intermediateSize]],
      "nf4",
      false,
    ),
    ...linearShapes(tokens, [[g.nEmbd, g.nEmbd], [g.nInner, g.nEmbd], [g.nEmbd, g.nInner]], "f32", true),
  ]);
  {
    const { model, params, optimizer } = await qloraModel(rt, "train", 1, 16, 16, 0.01);
    const { ms, peak, peakLive } = await trainStep(rt, model, params, optimizer, batch, seq, true);
    const flops = 6 * paramCount(qwenConfig()) * tokens;
    record({
      suite: "train",
      name: `qlora step ${qwenName} ${batch}x${seq} (r16 all, ckpt, 8-bit AdamW)`,
      value: ms,
      unit: "ms",
      note: `${Math.round(tokens / (ms / 1000))} tok/s`,
    });
    record({
      suite: "train",
      name: "qlora step MFU (6*N*tokens vs 67 TFLOP/s fp32)",
      value: 100 * flops / (ms / 1000) / (FP32_PEAK_TFLOPS * 1e12),
      unit: "%",
    });
    record({
      suite: "train",
      name: "qlora step peak GPU memory",
      value: peak / 2 ** 30,
      unit: "GiB",
      note: `buffers held, live and cached; live tensors alone ${(peakLive / 2 ** 30).toFixed(2)} GiB`,
    });
    record({
      suite: "train",
      name: "seed recipe projected: 60 steps of this step",
      value: (60 * ms) / 60000,
      unit: "min",
      note: "60 x measured step; seed: 4 min on its GPU",
    });
    optimizer.dispose();
    model.dispose();
    rt.trim();
  }
  {
    const config = gpt2Config();
    const model = await Gpt2Model.load(new RandomWeights(config), config, { trainable: true });
    const params = model.parameters();
    const optimizer = new Optimizer(params, "adamw", 0);
    const { ms, peak } = await trainStep(rt, model, params, optimizer, batch, seq, false);
    record({
      suite: "train",
      name: `full-FT step ${gpt2Name} ${batch}x${seq} (f32 AdamW)`,
      value: ms,
      unit: "ms",
      note: `${Math.round((batch * seq) / (ms / 1000))} tok/s`,
    });
    record({ suite: "train", name: "full-FT step peak GPU memory", value: peak / 2 ** 30, unit: "GiB" });
    optimizer.dispose();
    model.dispose();
    rt.trim();
  }
}

/**
 * Where a decoded token's time goes: host time to encode its dispatches and to submit them, and GPU time
 * (timestamp queries) to run them; medians of 5 tokens at a 64-token context (the middle of the decode
 * measured above, where attention reads as many keys as the average token there).
 */
async function profileDecodeStep(rt: Runtime, model: CausalLM) {
  const caches = Array.from(
    { length: model.numLayers },
    () => new KVCache(1, 96, model.numKvHeads, model.headDim),
  );
  // All positions in one buffer at bindable offsets, as generate() keeps them (a step's bind groups are then
  // reused from the step before).
  const stride = rt.gpu.storageAlign / 4;
  const positions = keep(
    tensor(Int32Array.from({ length: 96 * stride }, (_, i) => i / stride), [96 * stride], "i32"),
  );
  const ids = keep(tensor(Int32Array.of(100), [1, 1], "i32"));
  const chosen = keep(empty([1], "i32"));
  const step = (p: number) =>
    noGrad(() =>
      tidy(() => {
        const hidden = model.hidden(ids, {
          positions: positions.rows(p * stride, p * stride + 1).reshape([1, 1]),
          caches,
        }); // [1, 1, C]
        argmax(matmul(hidden.reshape([1, hidden.shape[2]]), model.lmHead(), { transB: true }), chosen);
      })
    );
  for (let p = 0; p < 64; p++) step(p);
  await rt.sync();
  const encode: number[] = [];
  const submit: number[] = [];
  const gpu: number[] = [];
  let dispatches = 0;
  // Each round: one step timed on the host, then GPU time per step over STEPS back to back (a step timed alone,
  // after an idle GPU, runs slower than decoding's steady stream).
  const STEPS = 4;
  for (let p = 64; p < 64 + 3 * (STEPS + 1); p += STEPS + 1) {
    const d0 = rt.dispatchCount;
    const t0 = performance.now();
    let t1 = t0;
    rt.asOneSubmission(() => {
      step(p);
      t1 = performance.now();
    });
    submit.push(performance.now() - t1);
    encode.push(t1 - t0);
    dispatches = rt.dispatchCount - d0;
    await rt.sync();
    const ms = await rt.gpuTime(() => {
      for (let k = 1; k <= STEPS; k++) step(p + k);
    });
    gpu.push((ms ?? NaN) / STEPS);
  }
  await profileKernels(rt, `decoded token (${model.numLayers} layers)`, () => step(64 + 3 * (STEPS + 1)));
  const median = (v: number[]) => v.sort((a, b) => a - b)[Math.floor(v.length / 2)];
  for (const t of [positions, ids, chosen]) t.dispose();
  for (const cache of caches) cache.dispose();
  return { encodeMs: median(encode), submitMs: median(submit), gpuMs: median(gpu), dispatches };
}

/** Rounds of decode-rate measurement per model variant, interleaved so that drifts (host JIT, GPU clocks) hit all alike. */
const DECODE_ROUNDS = 3;

async function decode(rt: Runtime): Promise<void> {
  const prompt = Array.from({ length: 16 }, (_, i) => 100 + i);
  const tokens = quick ? 8 : 128;
  /** Tokens per second from the first to the last new token (the prefill is excluded). */
  const rate = async (model: CausalLM) => {
    const times: number[] = [];
    await generate(model, prompt, { maxNewTokens: tokens }, () => {
      times.push(performance.now());
    });
    return 1000 * (times.length - 1) / (times.at(-1)! - times[0]);
  };
  const qwenModel = (decodeScales: "widened" | "stored") => {
    const config = qwenConfig();
    return Qwen2Model.load(new RandomWeights(config), config, {
      quantize: "nf4",
      doubleQuant: true,
      decodeScales,
      dtype: "f16",
    });
  };
  const gpt2 = gpt2Config();
  // The QLoRA model as the lab loads it (double quantisation; decoding widens the scales to f32 once), reading
  // the 8-bit scales as stored (~0.3 GB less GPU memory), with the kernels' subgroup-free variants (what a device
  // without subgroups runs), and rugpt3small.
  const widened = await qwenModel("widened");
  const stored = await qwenModel("stored");
  const small = await Gpt2Model.load(new RandomWeights(gpt2), gpt2, { dtype: "f16" });
  const variants = [
    { name: `decode ${qwenName} NF4 batch 1`, model: widened, subgroups: true },
    { name: `decode ${qwenName} NF4 batch 1 (8-bit scales as stored)`, model: stored, subgroups: true },
    ...(rt.subgroups === null
      ? []
      : [{ name: `decode ${qwenName} NF4 batch 1 (no subgroups)`, model: widened, subgroups: false }]),
    { name: `decode ${gpt2Name} f16 batch 1`, model: small, subgroups: true },
  ];
  const rates = variants.map(() => [] as number[]);
  try {
    for (let round = -1; round < DECODE_ROUNDS; round++) {
      for (const [i, { model, subgroups }] of variants.entries()) {
        rt.useSubgroups(subgroups);
        // Round -1 warms up (pipelines, bind groups, the host's JIT) and is not counted.
        const r = await rate(model);
        if (round >= 0) rates[i].push(r);
      }
    }
    for (const [i, { name, model, subgroups }] of variants.entries()) {
      const median = rates[i].sort((a, b) => a - b)[Math.floor(rates[i].length / 2)];
      record({
        suite: "decode",
        name,
        value: median,
        unit: "tok/s",
        note: `${(1000 / median).toFixed(2)} ms/token; median of ${DECODE_ROUNDS} (${
          rates[i].map((r) => r.toFixed(0)).join(", ")
        })`,
      });
      rt.useSubgroups(subgroups);
      const step = await profileDecodeStep(rt, model);
      record({
        suite: "decode",
        name: `  one token: GPU time (${step.dispatches} dispatches)`,
        value: step.gpuMs,
        unit: "ms",
      });
      record({
        suite: "decode",
        name: "  one token: host encode / submit",
        value: step.encodeMs,
        unit: "ms",
        note: `submit ${step.submitMs.toFixed(2)} ms`,
      });
    }
    // Evaluation's batched greedy decoding (lib/eval: 16 prompts at a time), where every linear layer is a GEMM
    // of 16 rows: new tokens of all rows per second, the prefill included, after a warm-up call.
    for (const [name, model] of [[`${qwenName} NF4`, widened], [`${gpt2Name} f16`, small]] as const) {
      const prompts = Array.from({ length: EVAL_BATCH }, (_, b) => prompt.map((id) => id + b));
      const newTokens = quick ? 8 : 64;
      await generateGreedyBatch(model, prompts, { maxNewTokens: 4 });
      const t0 = performance.now();
      await generateGreedyBatch(model, prompts, { maxNewTokens: newTokens });
      const seconds = (performance.now() - t0) / 1000;
      record({
        suite: "decode",
        name: `decode ${name} batch ${EVAL_BATCH} (evaluation's greedy batches)`,
        value: (EVAL_BATCH * newTokens) / seconds,
        unit: "tok/s",
        note: `${newTokens} new tokens a row in ${
          seconds.toFixed(2)
        } s, prefill of ${prompt.length} included`,
      });
      await profileKernels(
        rt,
        `decode ${name} batch ${EVAL_BATCH}, prefill and 8 tokens`,
        () => generateGreedyBatch(model, prompts, { maxNewTokens: 8 }),
      );
    }
  } finally {
    rt.useSubgroups(true);
    for (const model of [widened, stored, small]) model.dispose();
    rt.trim();
  }
}

const rt = await initRuntime();
console.error(
  `adapter: ${rt.gpu.adapter.description}${rt.gpu.adapter.isFallback ? " (CPU fallback)" : ""}; subgroups: ${
    rt.subgroups ?? "none"
  }`,
);
console.error(
  `micro timings: ${
    rt.gpu.device.features.has("timestamp-query") ? "GPU timestamps" : "wall clock (no timestamp queries)"
  }; ` +
    "decode and train: wall clock, host work included",
);
if (suites.includes("micro")) await micro(rt);
if (suites.includes("decode")) await decode(rt);
if (suites.includes("train")) await train(rt);
if (suites.includes("seed")) await seedRecipe(rt);

if (torchFile) {
  const torch = JSON.parse(await Deno.readTextFile(torchFile)) as Record<string, number>;
  const find = (name: string) => rows.find((r) => r.name.startsWith(name))?.value;
  const ratios: [string, number | undefined, number | undefined, string][] = [
    ["GEMM 4096^3 f32 vs cuBLAS SGEMM (TF32 off)", find("gemm 4096^3"), torch.sgemm_tflops, "target >= 0.7"],
    ["NF4 GEMV gate/up vs torch copy bandwidth", find("nf4 gemv gate/up"), torch.copy_gbps, "target >= 0.75"],
    [
      "NF4 GEMV gate+up pair as decoded vs torch copy",
      find("nf4 (scales widened) gemv gate+up"),
      torch.copy_gbps,
      "target >= 0.75",
    ],
    [
      "NF4 GEMV gate+up pair as decoded vs WGSL streaming read",
      find("nf4 (scales widened) gemv gate+up"),
      find("WGSL streaming read"),
      "",
    ],
    ["WGSL streaming read vs torch copy bandwidth", find("WGSL streaming read"), torch.copy_gbps, ""],
    [
      "full-FT step: torch fp32 ms / ours ms",
      torch.full_ft_step_ms,
      find("full-FT step"),
      "target >= 0.5",
    ],
    [
      "QLoRA step: peft bf16 ms / ours ms",
      torch.lora_step_ms,
      find("qlora step "),
      "(bf16 tensor cores vs our fp32)",
    ],
    [
      "decode 7B: ours tok/s / transformers bf16 tok/s",
      find(`decode ${qwenName}`),
      torch.generate_7b_tps,
      "",
    ],
    [
      "decode small: ours tok/s / transformers fp32 tok/s",
      find(`decode ${gpt2Name}`),
      torch.generate_small_tps,
      "",
    ],
  ];
  console.error("\nratio (same GPU, same call)");
  for (const [name, ours, theirs, note] of ratios) {
    const ratio = ours !== undefined && theirs !== undefined ? ours / theirs : NaN;
    console.error(`  ${name.padEnd(52)} ${Number.isFinite(ratio) ? ratio.toFixed(3) : "n/a"}  ${note}`);
  }
}
if (json) console.log(JSON.stringify({ adapter: rt.gpu.adapter.description, rows, profiles }));
