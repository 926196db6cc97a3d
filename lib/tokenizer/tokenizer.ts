/**
 * Tokenizers of Hugging Face model folders, through `@huggingface/tokenizers`:
 * - `tokenizer.json` when the folder has one;
 * - else GPT-2 style `vocab.json` + `merges.txt` (as ai-forever/rugpt3small ships), turned into the same
 *   byte-level BPE tokenizer.json that transformers' GPT2 converter builds.
 * Special tokens and ids come from tokenizer_config.json, special_tokens_map.json and generation_config.json
 * (whose eos_token_id may be a list); the chat template from tokenizer_config.json's `chat_template` or a
 * `chat_template.jinja` file, rendered with `@huggingface/jinja` the way transformers renders it.
 */
import { Tokenizer as HfTokenizer } from "@huggingface/tokenizers";
import { Template } from "@huggingface/jinja";

/** One chat message; extra fields (tool_calls, name, ...) are passed to the template as they are. */
export interface ChatMessage {
  role: string;
  content: string;
  [field: string]: unknown;
}

export interface ChatTemplateOptions {
  /** Append the assistant header so that the model writes the next reply. */
  addGenerationPrompt?: boolean;
  /** Tool (function) definitions in the JSON-schema form transformers accepts. */
  tools?: unknown[];
  /** Extra variables for templates that read them. */
  extra?: Record<string, unknown>;
}

export interface Tokenizer {
  /** Token ids of `text`; `addSpecialTokens` (default false) applies the post-processor (e.g. a bos). */
  encode(text: string, options?: { addSpecialTokens?: boolean }): number[];
  /**
   * Text of `ids` (malformed UTF-8 becomes U+FFFD, as transformers' errors="replace"); spaces before
   * punctuation are cleaned up only when tokenizer_config.json sets clean_up_tokenization_spaces.
   */
  decode(ids: readonly number[], options?: { skipSpecialTokens?: boolean }): string;
  /** Ids that end generation: generation_config.json's eos_token_id (one or several), else the eos token. */
  readonly eosIds: number[];
  readonly bosId?: number;
  readonly padId?: number;
  /** Number of ids the tokenizer knows (largest id + 1, added tokens included). */
  readonly vocabSize: number;
  tokenToId(token: string): number | undefined;
  idToToken(id: number): string | undefined;
  /** Whether `id` is a special token (skipped by decode's skipSpecialTokens). */
  isSpecial(id: number): boolean;
  /** Whether `id` is an added token (listed in tokenizer.json's added_tokens: decoded as its literal text). */
  isAddedToken(id: number): boolean;
  /** Whether decoding maps token characters back to bytes (GPT-2 style byte-level BPE). */
  readonly byteLevel: boolean;
  /**
   * The UTF-8 bytes a token contributes to decoded text: for byte-level tokenizers the byte-mapped token,
   * for added tokens the UTF-8 of their content; undefined for unknown ids or other tokenizers.
   */
  tokenBytes(id: number): Uint8Array | undefined;
  readonly chatTemplate?: string;
  /** Renders the chat template; throws a TypeError when the folder has none. */
  applyChatTemplate(messages: readonly ChatMessage[], options?: ChatTemplateOptions): string;
}

type Json = Record<string, unknown>;

async function readJsonIfExists(path: string): Promise<Json | undefined> {
  let text: string;
  try {
    text = await Deno.readTextFile(path);
  } catch (error) {
    if (error instanceof Deno.errors.NotFound) return undefined;
    throw error;
  }
  try {
    const value = JSON.parse(text);
    if (value === null || typeof value !== "object" || Array.isArray(value)) {
      throw new Error("not a JSON object");
    }
    return value as Json;
  } catch (error) {
    throw new TypeError(`${path}: not a valid JSON object (${(error as Error).message})`);
  }
}

async function readTextIfExists(path: string): Promise<string | undefined> {
  try {
    return await Deno.readTextFile(path);
  } catch (error) {
    if (error instanceof Deno.errors.NotFound) return undefined;
    throw error;
  }
}

/** GPT-2's byte -> printable character table (bytes_to_unicode in the GPT-2 and HF sources). */
export const BYTE_TO_CHAR: readonly string[] = (() => {
  const printable: number[] = [];
  for (let b = 0x21; b <= 0x7e; b++) printable.push(b);
  for (let b = 0xa1; b <= 0xac; b++) printable.push(b);
  for (let b = 0xae; b <= 0xff; b++) printable.push(b);
  const table = new Array<string>(256);
  let next = 256;
  for (let b = 0; b < 256; b++) table[b] = String.fromCodePoint(printable.includes(b) ? b : next++);
  return table;
})();

const CHAR_TO_BYTE: ReadonlyMap<string, number> = new Map(BYTE_TO_CHAR.map((c, b) => [c, b]));

/** A special-token entry of tokenizer_config.json: a string or an AddedToken object `{content, ...}`. */
function tokenContent(value: unknown): string | undefined {
  if (typeof value === "string") return value;
  if (value && typeof value === "object" && typeof (value as Json).content === "string") {
    return (value as Json).content as string;
  }
  return undefined;
}

function idList(value: unknown): number[] {
  const list = Array.isArray(value) ? value : value === undefined || value === null ? [] : [value];
  return list.filter((v): v is number => Number.isSafeInteger(v) && (v as number) >= 0);
}

export interface Gpt2TokenizerOptions {
  /** Tokens to register as special added tokens (bos/eos/unk/pad of tokenizer_config.json). */
  specialTokens: readonly string[];
  addPrefixSpace: boolean;
  /** When set (tokenizer_config.json's add_bos_token), encoding with special tokens prepends this token. */
  bosToken?: string;
}

/** tokenizer.json for a GPT-2 style vocab.json + merges.txt, as transformers' GPT2 converter writes it. */
export function gpt2TokenizerJson(
  vocab: Record<string, number>,
  mergesText: string,
  options: Gpt2TokenizerOptions,
): Json {
  const { specialTokens, addPrefixSpace, bosToken } = options;
  const merges = mergesText.split("\n").filter((line, i) =>
    line.trim().length > 0 && !(i === 0 && line.startsWith("#version"))
  );
  const added = [...new Set(specialTokens)].filter((t) => t in vocab).map((content) => ({
    id: vocab[content],
    content,
    single_word: false,
    lstrip: false,
    rstrip: false,
    normalized: true,
    special: true,
  }));
  return {
    version: "1.0",
    truncation: null,
    padding: null,
    added_tokens: added,
    normalizer: null,
    pre_tokenizer: {
      type: "ByteLevel",
      add_prefix_space: addPrefixSpace,
      trim_offsets: true,
      use_regex: true,
    },
    post_processor: bosToken === undefined
      ? { type: "ByteLevel", add_prefix_space: true, trim_offsets: false, use_regex: true }
      : bosTemplate(bosToken, vocab),
    decoder: { type: "ByteLevel", add_prefix_space: true, trim_offsets: true, use_regex: true },
    model: {
      type: "BPE",
      dropout: null,
      unk_token: null,
      continuing_subword_prefix: "",
      end_of_word_suffix: "",
      fuse_unk: false,
      byte_fallback: false,
      ignore_merges: false,
      vocab,
      merges,
    },
  };
}

/** A post-processor that prepends `bos` to each sequence, as GPT2Tokenizer does with add_bos_token. */
function bosTemplate(bos: string, vocab: Record<string, number>): Json {
  if (!(bos in vocab)) {
    throw new TypeError(`add_bos_token is set but the bos token ${JSON.stringify(bos)} is not in vocab.json`);
  }
  const special = { SpecialToken: { id: bos, type_id: 0 } };
  return {
    type: "TemplateProcessing",
    single: [special, { Sequence: { id: "A", type_id: 0 } }],
    pair: [special, { Sequence: { id: "A", type_id: 0 } }, special, { Sequence: { id: "B", type_id: 1 } }],
    special_tokens: { [bos]: { id: bos, ids: [vocab[bos]], tokens: [bos] } },
  };
}

class LoadedTokenizer implements Tokenizer {
  readonly eosIds: number[];
  readonly bosId?: number;
  readonly padId?: number;
  readonly vocabSize: number;
  readonly chatTemplate?: string;
  readonly byteLevel: boolean;
  #tokenizer: HfTokenizer;
  #specialIds: Set<number>;
  #addedContent: Map<number, string>;
  #cleanUpSpaces: boolean;
  #templateVariables: Record<string, unknown>;
  #template?: Template;
  #dir: string;

  constructor(
    dir: string,
    tokenizer: HfTokenizer,
    tokenizerJson: Json,
    config: Json,
    specialMap: Json,
    generation: Json,
    chatTemplate: string | undefined,
  ) {
    this.#dir = dir;
    this.#tokenizer = tokenizer;
    const special = (field: string) => tokenContent(config[field]) ?? tokenContent(specialMap[field]);
    const idOf = (
      token: string | undefined,
    ) => (token === undefined ? undefined : tokenizer.token_to_id(token));
    const eosToken = special("eos_token");
    const generationEos = idList(generation.eos_token_id);
    const eosId = idOf(eosToken);
    this.eosIds = generationEos.length > 0 ? generationEos : eosId === undefined ? [] : [eosId];
    this.bosId = idOf(special("bos_token"));
    this.padId = idOf(special("pad_token"));
    const added = (tokenizerJson.added_tokens ?? []) as { id: number; content: string; special?: boolean }[];
    this.#addedContent = new Map(added.map((t) => [t.id, t.content]));
    this.#specialIds = new Set(added.filter((t) => t.special).map((t) => t.id));
    for (const field of ["bos_token", "eos_token", "unk_token", "pad_token"]) {
      const id = idOf(special(field));
      if (id !== undefined) this.#specialIds.add(id);
    }
    const extraSpecial = [config.additional_special_tokens, specialMap.additional_special_tokens].flatMap((
      list,
    ) => Array.isArray(list) ? list.map(tokenContent) : []);
    for (const token of extraSpecial) {
      const id = idOf(token);
      if (id !== undefined) this.#specialIds.add(id);
    }
    let largestId = -1;
    for (const id of tokenizer.get_vocab(true).values()) largestId = Math.max(largestId, id);
    this.vocabSize = largestId + 1;
    this.#cleanUpSpaces = config.clean_up_tokenization_spaces === true;
    this.byteLevel = (tokenizerJson.decoder as Json | null)?.type === "ByteLevel";
    this.chatTemplate = chatTemplate;
    // transformers passes every special token of the tokenizer to the template (bos_token, eos_token, ...).
    this.#templateVariables = {};
    for (const field of ["bos_token", "eos_token", "unk_token", "pad_token"]) {
      const token = special(field);
      if (token !== undefined) this.#templateVariables[field] = token;
    }
  }

  encode(text: string, options: { addSpecialTokens?: boolean } = {}): number[] {
    if (text.length === 0) return [];
    return this.#tokenizer.encode(text, { add_special_tokens: options.addSpecialTokens ?? false }).ids;
  }

  decode(ids: readonly number[], options: { skipSpecialTokens?: boolean } = {}): string {
    if (ids.length === 0) return "";
    return this.#tokenizer.decode([...ids], {
      skip_special_tokens: options.skipSpecialTokens ?? false,
      clean_up_tokenization_spaces: this.#cleanUpSpaces,
    });
  }

  tokenToId(token: string): number | undefined {
    return this.#tokenizer.token_to_id(token);
  }

  idToToken(id: number): string | undefined {
    return this.#tokenizer.id_to_token(id);
  }

  isSpecial(id: number): boolean {
    return this.#specialIds.has(id);
  }

  isAddedToken(id: number): boolean {
    return this.#addedContent.has(id);
  }

  tokenBytes(id: number): Uint8Array | undefined {
    const added = this.#addedContent.get(id);
    if (added !== undefined) return new TextEncoder().encode(added);
    const token = this.#tokenizer.id_to_token(id);
    if (token === undefined || !this.byteLevel) return undefined;
    const bytes: number[] = [];
    for (const char of token) {
      const byte = CHAR_TO_BYTE.get(char);
      if (byte === undefined) return new TextEncoder().encode(token);
      bytes.push(byte);
    }
    return new Uint8Array(bytes);
  }

  applyChatTemplate(messages: readonly ChatMessage[], options: ChatTemplateOptions = {}): string {
    if (this.chatTemplate === undefined) {
      throw new TypeError(
        `tokenizer ${this.#dir} has no chat template (no "chat_template" in tokenizer_config.json and no ` +
          "chat_template.jinja); format prompts without one or add a template",
      );
    }
    this.#template ??= new Template(this.chatTemplate);
    return this.#template.render({
      ...this.#templateVariables,
      ...options.extra,
      messages,
      add_generation_prompt: options.addGenerationPrompt ?? false,
      ...(options.tools ? { tools: options.tools } : {}),
    });
  }
}

/** The chat template text: tokenizer_config.json's `chat_template` (a string, or the "default" of a list). */
function chatTemplateFrom(config: Json, jinjaFile: string | undefined, dir: string): string | undefined {
  const value = config.chat_template;
  if (typeof value === "string") return value;
  if (Array.isArray(value)) {
    const named = value.find((t) => t && typeof t === "object" && (t as Json).name === "default") as
      | Json
      | undefined;
    if (named && typeof named.template === "string") return named.template;
    throw new TypeError(`${dir}/tokenizer_config.json: chat_template is a list without a "default" template`);
  }
  return jinjaFile;
}

/** Loads the tokenizer of a model folder. */
export async function loadTokenizer(dir: string): Promise<Tokenizer> {
  const config = (await readJsonIfExists(`${dir}/tokenizer_config.json`)) ?? {};
  const specialMap = (await readJsonIfExists(`${dir}/special_tokens_map.json`)) ?? {};
  const generation = (await readJsonIfExists(`${dir}/generation_config.json`)) ?? {};
  let tokenizerJson = await readJsonIfExists(`${dir}/tokenizer.json`);
  if (!tokenizerJson) {
    const vocab = await readJsonIfExists(`${dir}/vocab.json`);
    const merges = await readTextIfExists(`${dir}/merges.txt`);
    if (!vocab || merges === undefined) {
      throw new TypeError(
        `tokenizer ${dir}: found neither tokenizer.json nor vocab.json + merges.txt; copy the model's tokenizer ` +
          "files into the folder",
      );
    }
    const specials = ["bos_token", "eos_token", "unk_token", "pad_token"].map((f) =>
      tokenContent(config[f]) ?? tokenContent(specialMap[f])
    ).filter((t): t is string => t !== undefined);
    // GPT-2's tokenizer treats <|endoftext|> as its bos/eos/unk token when nothing else is configured.
    if (specials.length === 0 && "<|endoftext|>" in vocab) specials.push("<|endoftext|>");
    const bosToken = tokenContent(config.bos_token) ?? tokenContent(specialMap.bos_token) ?? "<|endoftext|>";
    tokenizerJson = gpt2TokenizerJson(vocab as Record<string, number>, merges, {
      specialTokens: specials,
      addPrefixSpace: config.add_prefix_space === true,
      bosToken: config.add_bos_token === true ? bosToken : undefined,
    });
  }
  let tokenizer: HfTokenizer;
  try {
    tokenizer = new HfTokenizer(tokenizerJson, config);
  } catch (error) {
    throw new TypeError(`tokenizer ${dir}: the tokenizer files are not usable (${(error as Error).message})`);
  }
  const template = chatTemplateFrom(config, await readTextIfExists(`${dir}/chat_template.jinja`), dir);
  return new LoadedTokenizer(dir, tokenizer, tokenizerJson, config, specialMap, generation, template);
}
