/**
 * Compares the tokenizers with transformers' AutoTokenizer (tests/fixtures/tokenizer/tokenizer_goldens.json)
 * and with the prompt ids of the model goldens (tests/fixtures/models/goldens.json), both written by
 * tests/goldens/make_model_goldens.py from the files writeQwenTokenizerFiles / writeGpt2TokenizerFiles write.
 * While a fixture is absent its tests are registered as ignored, with names that say so.
 */
import assert from "node:assert/strict";
import {
  type ChatMessage,
  loadTokenizer,
  type Tokenizer,
  writeGpt2TokenizerFiles,
  writeQwenTokenizerFiles,
} from "../../../lib/tokenizer/mod.ts";

const FIXTURES = new URL("../../fixtures/", import.meta.url).pathname;

interface TextCase {
  text: string;
  ids: number[];
  ids_add_special: number[];
  tokens: string[];
  decoded: string;
  decoded_skip_special: string;
}

interface ChatCase {
  name: string;
  messages: ChatMessage[];
  tools: unknown[] | null;
  add_generation_prompt: boolean;
  text: string;
  ids: number[];
}

interface TokenizerGolden {
  len: number;
  bos_token_id: number | null;
  eos_token_id: number | null;
  pad_token_id: number | null;
  cases: TextCase[];
  chat: ChatCase[];
}

interface ModelCase {
  name: string;
  prompt_text: string;
  prompt_ids: number[];
}

async function readJson<T>(path: string): Promise<T | undefined> {
  try {
    return JSON.parse(await Deno.readTextFile(path)) as T;
  } catch (error) {
    if (error instanceof Deno.errors.NotFound) return undefined;
    throw error;
  }
}

const tokenizerGoldens = await readJson<{ tokenizers: Record<string, TokenizerGolden> }>(
  `${FIXTURES}tokenizer/tokenizer_goldens.json`,
);
const modelGoldens = await readJson<
  { prompts: Record<string, string>; models: Record<string, { cases?: ModelCase[] }> }
>(`${FIXTURES}models/goldens.json`);

let tokenizers: Promise<Record<string, Tokenizer>> | undefined;

/** The Qwen and GPT-2 tokenizers, built from the same files prepare_inputs.ts gives the golden script. */
function loadBoth(): Promise<Record<string, Tokenizer>> {
  tokenizers ??= (async () => {
    const dir = await Deno.makeTempDir({ prefix: "ostrota-tokenizer-goldens-" });
    try {
      await writeQwenTokenizerFiles(`${dir}/qwen`);
      await writeGpt2TokenizerFiles(`${dir}/gpt2`);
      return { qwen: await loadTokenizer(`${dir}/qwen`), gpt2: await loadTokenizer(`${dir}/gpt2`) };
    } finally {
      await Deno.remove(dir, { recursive: true });
    }
  })();
  return tokenizers;
}

for (const kind of ["qwen", "gpt2"]) {
  const golden = tokenizerGoldens?.tokenizers[kind];
  const missing =
    " [IGNORED: fixture tests/fixtures/tokenizer/tokenizer_goldens.json missing; run make_model_goldens.py]";
  Deno.test({
    name: `tokenizer goldens (${kind}): ids, tokens and decodes equal transformers'${golden ? "" : missing}`,
    ignore: !golden,
    fn: async () => {
      const tok = (await loadBoth())[kind];
      assert.equal(tok.vocabSize, golden!.len);
      assert.equal(tok.bosId ?? null, golden!.bos_token_id);
      assert.equal(tok.padId ?? null, golden!.pad_token_id);
      assert.equal(tok.eosIds[0] ?? null, golden!.eos_token_id);
      for (const c of golden!.cases) {
        const label = JSON.stringify(c.text);
        assert.deepEqual(tok.encode(c.text), c.ids, `ids of ${label}`);
        assert.deepEqual(
          tok.encode(c.text, { addSpecialTokens: true }),
          c.ids_add_special,
          `special ids of ${label}`,
        );
        assert.deepEqual(c.ids.map((id) => tok.idToToken(id)), c.tokens, `tokens of ${label}`);
        assert.equal(tok.decode(c.ids), c.decoded, `decode of ${label}`);
        assert.equal(
          tok.decode(c.ids, { skipSpecialTokens: true }),
          c.decoded_skip_special,
          `skip decode of ${label}`,
        );
      }
    },
  });
  if (kind !== "qwen") continue;
  Deno.test({
    name: `tokenizer goldens (qwen): chat template strings and ids equal transformers'${
      golden ? "" : missing
    }`,
    ignore: !golden,
    fn: async () => {
      const tok = (await loadBoth()).qwen;
      assert.ok(golden!.chat.length >= 3);
      for (const c of golden!.chat) {
        const text = tok.applyChatTemplate(c.messages, {
          addGenerationPrompt: c.add_generation_prompt,
          ...(c.tools ? { tools: c.tools } : {}),
        });
        assert.equal(text, c.text, c.name);
        assert.deepEqual(tok.encode(text), c.ids, c.name);
      }
    },
  });
}

Deno.test({
  name: modelGoldens
    ? "model goldens: our prompt ids (raw and chat-templated) equal the ones transformers fed the models"
    : "model goldens: prompt ids [IGNORED: fixture tests/fixtures/models/goldens.json missing; run make_model_goldens.py]",
  ignore: !modelGoldens,
  fn: async () => {
    const both = await loadBoth();
    let checked = 0;
    for (const [model, golden] of Object.entries(modelGoldens!.models)) {
      const tok = model.startsWith("gpt2") ? both.gpt2 : both.qwen;
      for (const c of golden.cases ?? []) {
        if (c.name.startsWith("chat_")) {
          const prompt = modelGoldens!.prompts[c.name.slice("chat_".length)];
          const text = tok.applyChatTemplate([{ role: "user", content: prompt }], {
            addGenerationPrompt: true,
          });
          assert.equal(text, c.prompt_text, `${model} ${c.name}`);
        }
        assert.deepEqual(tok.encode(c.prompt_text), c.prompt_ids, `${model} ${c.name}`);
        checked++;
      }
    }
    assert.ok(checked > 0);
  },
});
