import assert from "node:assert/strict";
import {
  loadModelConfig,
  type ModelConfig,
  parseModelConfig,
  writeGenerationConfig,
  writeModelConfig,
} from "../../../lib/checkpoint/mod.ts";

/** Qwen2.5-7B-Instruct's config.json as transformers 4 wrote it. */
const QWEN25_7B_V4 = {
  architectures: ["Qwen2ForCausalLM"],
  attention_dropout: 0.0,
  bos_token_id: 151643,
  eos_token_id: 151645,
  hidden_act: "silu",
  hidden_size: 3584,
  initializer_range: 0.02,
  intermediate_size: 18944,
  max_position_embeddings: 32768,
  max_window_layers: 28,
  model_type: "qwen2",
  num_attention_heads: 28,
  num_hidden_layers: 28,
  num_key_value_heads: 4,
  rms_norm_eps: 1e-06,
  rope_scaling: null,
  rope_theta: 1000000.0,
  sliding_window: 131072,
  tie_word_embeddings: false,
  torch_dtype: "bfloat16",
  transformers_version: "4.43.1",
  use_cache: true,
  use_sliding_window: false,
  vocab_size: 152064,
};

/** ai-forever/rugpt3small_based_on_gpt2's config.json fields that matter. */
const RUGPT3SMALL = {
  activation_function: "gelu_new",
  architectures: ["GPT2LMHeadModel"],
  attn_pdrop: 0.1,
  bos_token_id: 50256,
  embd_pdrop: 0.1,
  eos_token_id: 50256,
  initializer_range: 0.02,
  layer_norm_epsilon: 1e-05,
  model_type: "gpt2",
  n_ctx: 2048,
  n_embd: 768,
  n_head: 12,
  n_inner: null,
  n_layer: 12,
  n_positions: 2048,
  resid_pdrop: 0.1,
  vocab_size: 50264,
};

const QWEN_EXPECTED: ModelConfig = {
  architecture: "qwen2",
  vocabSize: 152064,
  hiddenSize: 3584,
  intermediateSize: 18944,
  numLayers: 28,
  numHeads: 28,
  numKvHeads: 4,
  headDim: 128,
  rmsNormEps: 1e-6,
  ropeTheta: 1e6,
  maxPositions: 32768,
  tieWordEmbeddings: false,
  dtype: "bf16",
  bosTokenId: 151643,
  eosTokenIds: [151645],
};

Deno.test("config: Qwen2.5-7B in the transformers 4 spelling (rope_theta, torch_dtype)", () => {
  assert.deepEqual(parseModelConfig(QWEN25_7B_V4), QWEN_EXPECTED);
});

Deno.test("config: the transformers 5 spelling (rope_parameters, dtype) reads the same", () => {
  const { rope_theta: _theta, torch_dtype: _dtype, rope_scaling: _scaling, ...rest } = QWEN25_7B_V4;
  const v5 = { ...rest, rope_parameters: { rope_theta: 1000000.0, rope_type: "default" }, dtype: "bfloat16" };
  assert.deepEqual(parseModelConfig(v5), QWEN_EXPECTED);
  const listEos = parseModelConfig({ ...v5, eos_token_id: [151645, 151643], head_dim: 64 });
  assert.deepEqual(listEos.eosTokenIds, [151645, 151643]);
  assert.equal(listEos.architecture === "qwen2" && listEos.headDim, 64);
});

Deno.test("config: rugpt3small (GPT-2)", () => {
  assert.deepEqual(parseModelConfig(RUGPT3SMALL), {
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
    bosTokenId: 50256,
    eosTokenIds: [50256],
  });
});

Deno.test("config: unsupported or missing fields name config.json and the field", () => {
  const cases: [Record<string, unknown>, RegExp][] = [
    [
      { ...QWEN25_7B_V4, model_type: "llama", architectures: ["LlamaForCausalLM"] },
      /field "model_type" is "llama"/,
    ],
    [{ ...QWEN25_7B_V4, hidden_size: undefined }, /field "hidden_size" is missing/],
    [
      { ...QWEN25_7B_V4, torch_dtype: "float8_e4m3fn" },
      /field "torch_dtype" is "float8_e4m3fn"; supported: float32/,
    ],
    [{ ...QWEN25_7B_V4, num_key_value_heads: 5 }, /field "num_key_value_heads" \(5\) must divide/],
    [{ ...QWEN25_7B_V4, rope_theta: undefined }, /field "rope_theta" is missing/],
    [{ ...QWEN25_7B_V4, rope_scaling: { type: "yarn", factor: 4 } }, /field "rope_scaling"/],
    [
      { ...QWEN25_7B_V4, rope_parameters: { rope_type: "yarn", rope_theta: 1e6 } },
      /rope_parameters.rope_type/,
    ],
    [{ ...QWEN25_7B_V4, use_sliding_window: true }, /field "use_sliding_window" is true/],
    [{ ...QWEN25_7B_V4, vocab_size: 1.5 }, /field "vocab_size" must be a positive integer, got 1.5/],
    [{ ...QWEN25_7B_V4, eos_token_id: "x" }, /field "eos_token_id" must be a token id/],
    [{ ...RUGPT3SMALL, activation_function: "relu" }, /field "activation_function" is "relu"/],
    [{ ...RUGPT3SMALL, n_head: 7 }, /field "n_head" \(7\) must divide n_embd \(768\)/],
  ];
  for (const [raw, pattern] of cases) {
    assert.throws(() => parseModelConfig(raw, "/models/x/config.json"), (error: Error) => {
      assert.ok(error instanceof TypeError);
      assert.match(error.message, /^\/models\/x\/config\.json: /);
      assert.match(error.message, pattern);
      return true;
    });
  }
});

Deno.test("config: writeModelConfig -> loadModelConfig round trips both architectures; both rope spellings written", async () => {
  const dir = await Deno.makeTempDir({ prefix: "ostrota-config-" });
  try {
    const gpt2 = parseModelConfig(RUGPT3SMALL);
    for (
      const cfg of [QWEN_EXPECTED, { ...QWEN_EXPECTED, eosTokenIds: [1, 2], tieWordEmbeddings: true }, gpt2]
    ) {
      await writeModelConfig(dir, cfg);
      assert.deepEqual(await loadModelConfig(dir), cfg);
    }
    await writeModelConfig(dir, QWEN_EXPECTED);
    const json = JSON.parse(await Deno.readTextFile(`${dir}/config.json`));
    assert.equal(json.rope_theta, 1e6);
    assert.deepEqual(json.rope_parameters, { rope_type: "default", rope_theta: 1e6 });
    assert.equal(json.torch_dtype, "bfloat16");
    assert.equal(json.dtype, "bfloat16");
    assert.equal(json.head_dim, undefined, "head_dim is derived by transformers when it equals hidden/heads");
    await writeGenerationConfig(dir, {
      bosTokenId: 151643,
      eosTokenIds: [151645, 151643],
      padTokenId: 151643,
    });
    assert.deepEqual(JSON.parse(await Deno.readTextFile(`${dir}/generation_config.json`)), {
      bos_token_id: 151643,
      eos_token_id: [151645, 151643],
      pad_token_id: 151643,
    });
    await assert.rejects(() => loadModelConfig(`${dir}/missing`), /config\.json does not exist/);
    await Deno.writeTextFile(`${dir}/config.json`, "{oops");
    await assert.rejects(() => loadModelConfig(dir), /config\.json: not valid JSON/);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
