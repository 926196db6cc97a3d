/**
 * Tokenizers of Hugging Face model folders (tokenizer.json, or GPT-2 vocab.json + merges.txt), chat
 * templates, incremental detokenisation for streaming, and writers of the tokenizer files the lab ships.
 */
export {
  BYTE_TO_CHAR,
  type ChatMessage,
  type ChatTemplateOptions,
  gpt2TokenizerJson,
  type Gpt2TokenizerOptions,
  loadTokenizer,
  type Tokenizer,
} from "./tokenizer.ts";
export { createStreamDecoder, type StreamDecoder, type StreamDecoderOptions } from "./stream.ts";
export { QWEN25_CHAT_TEMPLATE, QWEN25_DEFAULT_SYSTEM_PROMPT } from "./chat_templates.ts";
export { writeGpt2TokenizerFiles, writeQwenTokenizerFiles } from "./files.ts";
