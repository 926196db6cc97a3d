/**
 * Checks the checkpoint readers against the tiny models transformers saved (tests/goldens/make_model_goldens.py,
 * committed under tests/fixtures/models). While the fixtures are absent the tests are registered as ignored,
 * with names that say so.
 */
import assert from "node:assert/strict";
import {
  loadModelConfig,
  openCheckpoint,
  parseModelConfig,
  SafetensorsFile,
  type TensorInfo,
  TorchBinFile,
  writeSafetensors,
} from "../../../lib/checkpoint/mod.ts";

const MODELS = new URL("../../fixtures/models/", import.meta.url).pathname;
const GOLDENS = `${MODELS}goldens.json`;

interface ModelGolden {
  keys?: string[];
  shards?: string[];
  gap_ok?: boolean;
  shared_storage?: string[];
}

interface Goldens {
  models: Record<string, ModelGolden>;
  errors: string[];
}

async function loadGoldens(): Promise<Goldens | undefined> {
  try {
    return JSON.parse(await Deno.readTextFile(GOLDENS));
  } catch (error) {
    if (error instanceof Deno.errors.NotFound) return undefined;
    throw error;
  }
}

const goldens = await loadGoldens();

function fixtureTest(name: string, model: string, fn: (golden: ModelGolden) => Promise<void>): void {
  const golden = goldens?.models[model];
  Deno.test({
    name: golden
      ? name
      : `${name} [IGNORED: fixture tests/fixtures/models/${model} missing; run make_model_goldens.py]`,
    ignore: !golden,
    fn: () => fn(golden!),
  });
}

Deno.test({
  name: goldens
    ? "fixtures: goldens.json reports no errors and no near-tie greedy steps"
    : "fixtures: goldens.json [IGNORED: fixture tests/fixtures/models/goldens.json missing; run make_model_goldens.py]",
  ignore: !goldens,
  fn: () => {
    assert.deepEqual(goldens!.errors, []);
    for (const [name, g] of Object.entries(goldens!.models)) {
      if (g.gap_ok !== undefined) assert.ok(g.gap_ok, `${name}: a greedy step is a near-tie`);
    }
  },
});

async function readAllFinite(dir: string): Promise<Map<string, TensorInfo>> {
  const ckpt = await openCheckpoint(dir);
  try {
    const infos = new Map<string, TensorInfo>();
    for (const name of ckpt.names()) {
      const info = ckpt.info(name);
      infos.set(name, info);
      const t = await ckpt.read(name);
      assert.equal(t.dtype, "f32");
      assert.deepEqual(t.shape, info.shape);
      for (const v of t.data as Float32Array) assert.ok(Number.isFinite(v), `${name} holds ${v}`);
    }
    return infos;
  } finally {
    ckpt.close();
  }
}

fixtureTest("fixtures: Qwen2 tied bf16 sharded checkpoint", "qwen2_tied_bf16_sharded", async (golden) => {
  const dir = `${MODELS}qwen2_tied_bf16_sharded`;
  const ckpt = await openCheckpoint(dir);
  try {
    assert.equal(ckpt.format, "safetensors");
    assert.ok(ckpt.files[0].endsWith("model.safetensors.index.json"));
    assert.ok(ckpt.files.length >= 3, "an index and at least two shards");
    assert.deepEqual(ckpt.names(), [...golden.keys!].sort());
    assert.ok(!ckpt.has("lm_head.weight"), "tied: transformers does not save lm_head.weight");
    for (const name of ckpt.names()) assert.equal(ckpt.info(name).dtype, "bf16", name);
    const embed = await ckpt.read("model.embed_tokens.weight", { as: "raw" });
    const widened = await ckpt.read("model.embed_tokens.weight", { rows: [100, 102] });
    const rowWidth = embed.shape[1];
    const bits = (embed.data as Uint16Array).subarray(100 * rowWidth, 102 * rowWidth);
    assert.deepEqual(
      [...new Uint32Array((widened.data as Float32Array).buffer)],
      [...bits].map((b) => (b << 16) >>> 0),
    );
  } finally {
    ckpt.close();
  }
  await readAllFinite(dir);
  const cfg = await loadModelConfig(dir);
  assert.equal(cfg.architecture, "qwen2");
  assert.ok(cfg.architecture === "qwen2" && cfg.tieWordEmbeddings && cfg.dtype === "bf16");
  assert.equal(cfg.vocabSize, 151936);
});

fixtureTest(
  "fixtures: Qwen2 untied f16 checkpoint and both rope spellings",
  "qwen2_untied_f16",
  async (golden) => {
    const dir = `${MODELS}qwen2_untied_f16`;
    const infos = await readAllFinite(dir);
    assert.deepEqual([...infos.keys()], [...golden.keys!].sort());
    assert.ok(infos.has("lm_head.weight"));
    for (const [name, info] of infos) assert.equal(info.dtype, "f16", name);
    const ckpt = await openCheckpoint(dir);
    try {
      assert.deepEqual(ckpt.files.map((f) => f.split("/").pop()), ["model.safetensors"]);
      const bits = await ckpt.read("lm_head.weight", { as: "f16" });
      assert.equal(bits.dtype, "f16");
      assert.ok(bits.data instanceof Uint16Array);
    } finally {
      ckpt.close();
    }
    const raw = JSON.parse(await Deno.readTextFile(`${dir}/config.json`));
    const cfg = parseModelConfig(raw);
    assert.ok(cfg.architecture === "qwen2" && !cfg.tieWordEmbeddings && cfg.dtype === "f16");
    // The other spelling of the same config (transformers 4: rope_theta at the top level, torch_dtype).
    const theta = raw.rope_parameters?.rope_theta ?? raw.rope_theta;
    const { rope_parameters: _params, dtype: _dtype, ...rest } = raw;
    assert.deepEqual(
      parseModelConfig({ ...rest, rope_theta: theta, torch_dtype: raw.dtype ?? raw.torch_dtype }),
      cfg,
    );
  },
);

fixtureTest(
  "fixtures: GPT-2 pytorch_model.bin holds the same tensors as its safetensors twin",
  "gpt2_f32_bin",
  async () => {
    const st = await openCheckpoint(`${MODELS}gpt2_f32`);
    const bin = await openCheckpoint(`${MODELS}gpt2_f32_bin`);
    try {
      assert.equal(bin.format, "pytorch");
      for (const name of st.names()) {
        assert.ok(bin.has(name), `${name} missing from the .bin`);
        const a = await st.read(name, { as: "raw" });
        const b = await bin.read(name, { as: "raw" });
        assert.deepEqual(b.shape, a.shape, name);
        assert.deepEqual(
          new Uint8Array(b.data.buffer, b.data.byteOffset, b.data.byteLength),
          new Uint8Array(a.data.buffer, a.data.byteOffset, a.data.byteLength),
          name,
        );
      }
      if (bin.has("lm_head.weight")) {
        const lm = await bin.read("lm_head.weight");
        const wte = await st.read("transformer.wte.weight");
        assert.deepEqual(lm.data, wte.data);
      }
    } finally {
      st.close();
      bin.close();
    }
    const file = await TorchBinFile.open(`${MODELS}gpt2_f32_bin/pytorch_model.bin`);
    try {
      if (file.has("lm_head.weight")) {
        assert.equal(
          file.view("lm_head.weight").storage.key,
          file.view("transformer.wte.weight").storage.key,
        );
      }
    } finally {
      file.close();
    }
    const cfg = await loadModelConfig(`${MODELS}gpt2_f32_bin`);
    assert.ok(cfg.architecture === "gpt2" && cfg.vocabSize === 50257 && cfg.dtype === "f32");
  },
);

fixtureTest(
  "fixtures: PEFT LoRA adapter (r=4 on q,k,v,o,gate,up,down)",
  "qwen2_tied_bf16_sharded_lora",
  async (golden) => {
    const dir = `${MODELS}qwen2_tied_bf16_sharded_lora`;
    const adapterConfig = JSON.parse(await Deno.readTextFile(`${dir}/adapter_config.json`));
    assert.equal(adapterConfig.r, 4);
    assert.deepEqual(
      [...adapterConfig.target_modules].sort(),
      ["down_proj", "gate_proj", "k_proj", "o_proj", "q_proj", "up_proj", "v_proj"],
    );
    const infos = await readAllFinite(dir);
    assert.deepEqual([...infos.keys()], [...golden.keys!].sort());
    let loraA = 0;
    for (const [name, info] of infos) {
      assert.match(
        name,
        /^base_model\.model\.model\.layers\.\d+\.(self_attn|mlp)\.\w+_proj\.lora_[AB]\.weight$/,
      );
      if (name.includes("lora_A")) {
        loraA++;
        assert.equal(info.shape[0], 4, name);
      } else {
        assert.equal(info.shape[1], 4, name);
      }
    }
    assert.equal(loraA, 7 * 2, "7 target modules in each of 2 layers");
  },
);

fixtureTest(
  "fixtures: rewriting transformers' GPT-2 model.safetensors gives the same bytes",
  "gpt2_f32",
  async () => {
    const path = `${MODELS}gpt2_f32/model.safetensors`;
    const file = await SafetensorsFile.open(path);
    const tmp = await Deno.makeTempFile({ suffix: ".safetensors" });
    try {
      const tensors = [];
      for (const name of file.names()) {
        const t = await file.read(name, { as: "raw" });
        tensors.push({ name, dtype: t.dtype, shape: t.shape, data: t.data });
      }
      await writeSafetensors(tmp, tensors, file.header.metadata);
      assert.deepEqual(await Deno.readFile(tmp), await Deno.readFile(path));
    } finally {
      file.close();
      await Deno.remove(tmp);
    }
  },
);
