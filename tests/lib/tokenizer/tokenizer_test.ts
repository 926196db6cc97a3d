import assert from "node:assert/strict";
import { encode as gpt3Encode } from "gpt-3-encoder";
import {
  createStreamDecoder,
  loadTokenizer,
  QWEN25_CHAT_TEMPLATE,
  type Tokenizer,
  writeGpt2TokenizerFiles,
  writeQwenTokenizerFiles,
} from "../../../lib/tokenizer/mod.ts";

const root = await Deno.makeTempDir({ prefix: "ostrota-tokenizer-" });
await writeQwenTokenizerFiles(`${root}/qwen`);
await writeGpt2TokenizerFiles(`${root}/gpt2`);
const qwen = await loadTokenizer(`${root}/qwen`);
const gpt2 = await loadTokenizer(`${root}/gpt2`);

const TEXTS = [
  "Hello, world! How are you?",
  "Привет, мир! Как дела? Ёжик в тумане — «ёлки»…",
  "emoji 😀👍🏽 and flags 🇷🇺, hedgehog 🦔",
  "tabs\tand\t\ttabs\n\nnewlines\r\n  \n   end   ",
  " leading space and digits 1234567890 3.14159",
  "don't I'll we've THEY'RE it's",
  "你好，世界",
  "",
  "   ",
];

Deno.test("tokenizer files: both folders have the Hugging Face layout", async () => {
  const names = async (dir: string) => (await Array.fromAsync(Deno.readDir(dir))).map((e) => e.name).sort();
  assert.deepEqual(await names(`${root}/qwen`), ["tokenizer.json", "tokenizer_config.json"]);
  assert.deepEqual(await names(`${root}/gpt2`), ["merges.txt", "tokenizer_config.json", "vocab.json"]);
  const config = JSON.parse(await Deno.readTextFile(`${root}/qwen/tokenizer_config.json`));
  assert.equal(config.chat_template, QWEN25_CHAT_TEMPLATE);
  assert.equal(config.eos_token, "<|im_end|>");
});

Deno.test("tokenizer: well-known ids, special ids and vocabulary sizes", () => {
  assert.deepEqual(qwen.encode("Hello world"), [9707, 1879]);
  assert.deepEqual(gpt2.encode("Hello world"), [15496, 995]);
  assert.deepEqual(qwen.eosIds, [151645]);
  assert.equal(qwen.padId, 151643);
  assert.equal(qwen.bosId, undefined);
  assert.deepEqual(gpt2.eosIds, [50256]);
  assert.equal(gpt2.bosId, 50256);
  assert.equal(gpt2.vocabSize, 50257);
  assert.equal(qwen.vocabSize, 151669);
  assert.equal(qwen.tokenToId("<|im_start|>"), 151644);
  assert.equal(qwen.idToToken(151645), "<|im_end|>");
  assert.ok(qwen.isSpecial(151644) && !qwen.isSpecial(9707));
});

Deno.test("tokenizer: GPT-2 BPE from vocab.json + merges.txt matches gpt-3-encoder's own encoder", () => {
  for (const text of TEXTS) {
    assert.deepEqual(gpt2.encode(text), gpt3Encode(text), JSON.stringify(text));
  }
});

Deno.test("tokenizer: decode(encode(text)) round trips", () => {
  for (const tok of [qwen, gpt2]) {
    for (const text of TEXTS) assert.equal(tok.decode(tok.encode(text)), text, JSON.stringify(text));
  }
});

Deno.test("tokenizer: special tokens inside text are single ids; skipSpecialTokens drops them", () => {
  const ids = qwen.encode("Сообщение <|im_start|>user в середине<|im_end|> текста");
  assert.ok(ids.includes(151644) && ids.includes(151645));
  assert.equal(qwen.decode(ids, { skipSpecialTokens: true }), "Сообщение user в середине текста");
  const g = gpt2.encode("before<|endoftext|>after");
  assert.deepEqual(g, [...gpt2.encode("before"), 50256, ...gpt2.encode("after")]);
  assert.equal(gpt2.decode(g, { skipSpecialTokens: true }), "beforeafter");
});

function streamAll(tok: Tokenizer, ids: number[], skipSpecialTokens = false): string[] {
  const stream = createStreamDecoder(tok, { skipSpecialTokens });
  const parts = ids.map((id) => stream.push(id));
  parts.push(stream.flush());
  return parts;
}

Deno.test("stream decoder: never emits half a character; the pieces add up to decode(ids)", () => {
  let splitSeen = 0;
  for (const tok of [qwen, gpt2]) {
    for (const text of TEXTS) {
      const ids = tok.encode(text);
      const parts = streamAll(tok, ids);
      assert.equal(parts.join(""), tok.decode(ids), JSON.stringify(text));
      for (const part of parts) assert.ok(!part.includes("\uFFFD"), `${JSON.stringify(part)} holds U+FFFD`);
      splitSeen += parts.filter((p) => p === "").length - 1;
    }
  }
  // GPT-2 splits every Cyrillic letter and emoji across tokens, so some pushes must have held bytes back.
  assert.ok(splitSeen > 10, `only ${splitSeen} pushes held bytes back`);
  // "П" is bytes D0 9F; in GPT-2 they are tokens 140 ("Ð") and 253 ("Ł").
  assert.deepEqual(streamAll(gpt2, [140, 253]), ["", "П", ""]);
  // An emoji split in bytes: 😀 = F0 9F 98 80.
  const emoji = gpt2.encode("😀");
  assert.ok(emoji.length > 1);
  assert.deepEqual(streamAll(gpt2, emoji).join(""), "😀");
  assert.equal(streamAll(gpt2, emoji).slice(0, -2).join(""), "");
});

Deno.test("stream decoder: incomplete bytes before an added token and at the end match decode", () => {
  for (const ids of [[140], [140, 50256, 253], [9707, 140, 50256]]) {
    assert.equal(streamAll(gpt2, ids).join(""), gpt2.decode(ids), JSON.stringify(ids));
  }
  assert.equal(streamAll(gpt2, [140]).join(""), "\uFFFD");
  const qwenIds = [...qwen.encode("Да"), 151645, ...qwen.encode("нет")];
  assert.equal(streamAll(qwen, qwenIds, true).join(""), "Данет");
  // Ids past the vocabulary (a model's padded embedding rows) decode to nothing, in decode and in the stream.
  assert.equal(qwen.decode([9707, 151800, 1879]), "Hello world");
  assert.deepEqual(streamAll(qwen, [9707, 151800, 1879]), ["Hello", "", " world", ""]);
});

Deno.test("stream decoder: tokenizers that are not byte-level (byte fallback) are streamed by windows", async () => {
  const dir = await Deno.makeTempDir({ prefix: "ostrota-bytefallback-" });
  try {
    const vocab: Record<string, number> = { "<unk>": 0, "▁a": 1, "b": 2 };
    for (let byte = 0; byte < 256; byte++) {
      vocab[`<0x${byte.toString(16).toUpperCase().padStart(2, "0")}>`] = 3 + byte;
    }
    const tokenizerJson = {
      version: "1.0",
      added_tokens: [],
      normalizer: null,
      pre_tokenizer: { type: "Metaspace", replacement: "▁", prepend_scheme: "first", split: false },
      post_processor: null,
      decoder: {
        type: "Sequence",
        decoders: [
          { type: "Replace", pattern: { String: "▁" }, content: " " },
          { type: "ByteFallback" },
          { type: "Fuse" },
          { type: "Strip", content: " ", start: 1, stop: 0 },
        ],
      },
      model: { type: "BPE", unk_token: "<unk>", byte_fallback: true, fuse_unk: true, vocab, merges: [] },
    };
    await Deno.writeTextFile(`${dir}/tokenizer.json`, JSON.stringify(tokenizerJson));
    const tok = await loadTokenizer(dir);
    assert.equal(tok.byteLevel, false);
    const ids = [1, 3 + 0xd0, 3 + 0x9f, 2, 3 + 0xf0, 3 + 0x9f, 3 + 0x98, 3 + 0x80];
    const parts = streamAll(tok, ids);
    assert.equal(parts.join(""), tok.decode(ids));
    assert.equal(parts.join(""), "aПb😀");
    assert.equal(parts[1], "", "half of П is held back");
    for (const part of parts) assert.ok(!part.includes("\uFFFD"));
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

const CONVERSATION = [
  { role: "user", content: "Привет! Расскажи анекдот." },
  { role: "assistant", content: "Колобок повесился." },
  { role: "user", content: "Ещё один." },
];

Deno.test("chat template: Qwen2.5 ChatML with the default system prompt", () => {
  assert.equal(
    qwen.applyChatTemplate([CONVERSATION[0]], { addGenerationPrompt: true }),
    "<|im_start|>system\nYou are Qwen, created by Alibaba Cloud. You are a helpful assistant.<|im_end|>\n" +
      "<|im_start|>user\nПривет! Расскажи анекдот.<|im_end|>\n<|im_start|>assistant\n",
  );
  assert.equal(
    qwen.applyChatTemplate(CONVERSATION.slice(0, 2)),
    "<|im_start|>system\nYou are Qwen, created by Alibaba Cloud. You are a helpful assistant.<|im_end|>\n" +
      "<|im_start|>user\nПривет! Расскажи анекдот.<|im_end|>\n<|im_start|>assistant\nКолобок повесился.<|im_end|>\n",
  );
  assert.equal(
    qwen.applyChatTemplate([{ role: "system", content: "Ты остроумный." }, ...CONVERSATION], {
      addGenerationPrompt: true,
    }),
    "<|im_start|>system\nТы остроумный.<|im_end|>\n<|im_start|>user\nПривет! Расскажи анекдот.<|im_end|>\n" +
      "<|im_start|>assistant\nКолобок повесился.<|im_end|>\n<|im_start|>user\nЕщё один.<|im_end|>\n" +
      "<|im_start|>assistant\n",
  );
});

Deno.test("chat template: Qwen2.5 tools and tool calls", () => {
  const tools = [{
    type: "function",
    function: {
      name: "get_joke",
      description: "Returns a joke",
      parameters: { type: "object", properties: { topic: { type: "string" } }, required: ["topic"] },
    },
  }];
  assert.equal(
    qwen.applyChatTemplate([CONVERSATION[0]], { addGenerationPrompt: true, tools }),
    "<|im_start|>system\nYou are Qwen, created by Alibaba Cloud. You are a helpful assistant.\n\n# Tools\n\n" +
      "You may call one or more functions to assist with the user query.\n\n" +
      "You are provided with function signatures within <tools></tools> XML tags:\n<tools>\n" +
      '{"type": "function", "function": {"name": "get_joke", "description": "Returns a joke", "parameters": ' +
      '{"type": "object", "properties": {"topic": {"type": "string"}}, "required": ["topic"]}}}\n</tools>\n\n' +
      "For each function call, return a json object with function name and arguments within " +
      "<tool_call></tool_call> XML tags:\n<tool_call>\n" +
      '{"name": <function-name>, "arguments": <args-json-object>}\n</tool_call><|im_end|>\n' +
      "<|im_start|>user\nПривет! Расскажи анекдот.<|im_end|>\n<|im_start|>assistant\n",
  );
  const withCall = [
    CONVERSATION[0],
    {
      role: "assistant",
      content: "",
      tool_calls: [{ type: "function", function: { name: "get_joke", arguments: { topic: "колобок" } } }],
    },
    { role: "tool", content: "Колобок повесился." },
  ];
  assert.equal(
    qwen.applyChatTemplate(withCall, { addGenerationPrompt: true }),
    "<|im_start|>system\nYou are Qwen, created by Alibaba Cloud. You are a helpful assistant.<|im_end|>\n" +
      "<|im_start|>user\nПривет! Расскажи анекдот.<|im_end|>\n<|im_start|>assistant\n<tool_call>\n" +
      '{"name": "get_joke", "arguments": {"topic": "колобок"}}\n</tool_call><|im_end|>\n' +
      "<|im_start|>user\n<tool_response>\nКолобок повесился.\n</tool_response><|im_end|>\n<|im_start|>assistant\n",
  );
});

Deno.test("chat template: chat_template.jinja, list-form templates, bos/eos variables, and no template", async () => {
  const dir = await Deno.makeTempDir({ prefix: "ostrota-template-" });
  try {
    await writeGpt2TokenizerFiles(dir);
    await assert.rejects(
      async () => (await loadTokenizer(dir)).applyChatTemplate(CONVERSATION),
      /has no chat template/,
    );
    await Deno.writeTextFile(
      `${dir}/chat_template.jinja`,
      "{{ bos_token }}{% for m in messages %}{{ m.role }}: {{ m.content }}{{ eos_token }}{% endfor %}",
    );
    assert.equal(
      (await loadTokenizer(dir)).applyChatTemplate(CONVERSATION.slice(0, 2)),
      "<|endoftext|>user: Привет! Расскажи анекдот.<|endoftext|>assistant: Колобок повесился.<|endoftext|>",
    );
    const config = JSON.parse(await Deno.readTextFile(`${dir}/tokenizer_config.json`));
    config.chat_template = [{ name: "tool_use", template: "T" }, {
      name: "default",
      template: "D{{ messages|length }}",
    }];
    await Deno.writeTextFile(`${dir}/tokenizer_config.json`, JSON.stringify(config));
    assert.equal((await loadTokenizer(dir)).applyChatTemplate(CONVERSATION), "D3");
    config.add_bos_token = true;
    await Deno.writeTextFile(`${dir}/tokenizer_config.json`, JSON.stringify(config));
    const withBos = await loadTokenizer(dir);
    assert.deepEqual(withBos.encode("Hello world", { addSpecialTokens: true }), [50256, 15496, 995]);
    assert.deepEqual(withBos.encode("Hello world"), [15496, 995]);
    await Deno.writeTextFile(`${dir}/generation_config.json`, JSON.stringify({ eos_token_id: [7, 50256] }));
    assert.deepEqual((await loadTokenizer(dir)).eosIds, [7, 50256]);
    await assert.rejects(
      () => loadTokenizer(`${dir}/nowhere`),
      /found neither tokenizer.json nor vocab.json/,
    );
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

globalThis.addEventListener("unload", () => Deno.removeSync(root, { recursive: true }));
