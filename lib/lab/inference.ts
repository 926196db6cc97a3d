/**
 * The inference service behind the Playground and the OpenAI-compatible API. Models load lazily and stay in
 * an LRU of at most `maxLoaded` (2 by default); an adapter is attached to its base per request (the base's
 * current adapter is switched off with setLoraEnabled for plain requests, and replaced when another adapter
 * is asked for). Generation requests run one at a time, first come first served, so two streams never
 * fight over GPU memory; each streams text as tokens complete characters (createStreamDecoder), and a request
 * whose signal aborts (the client went away) stops at the next token.
 */
import { initRuntime } from "../../compute/runtime.ts";
import { generate } from "../generate/generate.ts";
import { detachLora, loadAdapter, setLoraEnabled } from "../lora/peft.ts";
import { loadModel } from "../models/mod.ts";
import type { CausalLM } from "../models/types.ts";
import type { LabRoots } from "../paths.ts";
import { createStreamDecoder, loadTokenizer, type Tokenizer } from "../tokenizer/mod.ts";
import { promptIds, type SftFormat, sftFormat } from "../train/format.ts";
import { confineAdapter, modelDir } from "./catalog.ts";

export const DEFAULT_MAX_LOADED = 2;

/** Thrown when the prompt plus the asked-for tokens do not fit the model; the message names the limit and the fix. */
export class PromptTooLongError extends RangeError {
  constructor(readonly promptTokens: number, readonly maxTokens: number, readonly limit: number) {
    super(
      `the prompt is ${promptTokens} tokens and ${maxTokens} new tokens were asked for, but the model's ` +
        `context is ${limit} tokens: ${promptFix(promptTokens, maxTokens, limit)}`,
    );
    this.name = "PromptTooLongError";
  }
}

/** What makes a prompt of `promptTokens` and `maxTokens` new ones fit a context of `limit` tokens. */
function promptFix(promptTokens: number, maxTokens: number, limit: number): string {
  if (promptTokens < limit) {
    return `shorten the prompt or lower max_tokens to at most ${limit - promptTokens}`;
  }
  if (maxTokens < limit) return `shorten the prompt to at most ${limit - maxTokens} tokens`;
  return `lower max_tokens below ${limit} and shorten the prompt to fit the rest`;
}

export interface ChatTurn {
  role: "system" | "user" | "assistant";
  content: string;
}

export interface GenerationRequest {
  /** A model name as the catalog resolves it (built-in, relative to the roots, or a path). */
  model: string;
  adapter: string | null;
  messages: ChatTurn[];
  maxTokens: number;
  temperature: number;
  topP: number;
  topK: number;
  seed: number;
  /** Strings that end the answer; none of them appears in the output (OpenAI's rule). */
  stop: string[];
  /** Aborted when the client goes away: generation stops at the next token. */
  signal?: AbortSignal;
  /** Called once the model is ready and the prompt fits, just before the first token is generated. */
  onStart?(info: { promptTokens: number }): void;
}

export interface GenerationResult {
  text: string;
  promptTokens: number;
  completionTokens: number;
  /** "stop": an end token or a stop string; "length": max tokens reached; "cancelled": the client left. */
  finishReason: "stop" | "length" | "cancelled";
  /** From the first generated token to the last (prefill excluded). */
  seconds: number;
  tokensPerSecond: number;
  /** Time spent waiting for earlier requests. */
  queuedSeconds: number;
}

/** One streamed piece: the text the token completed ("" while a character is still partial). */
export interface TokenEvent {
  index: number;
  text: string;
}

interface LoadedModel {
  dir: string;
  model: CausalLM;
  tokenizer: Tokenizer;
  format: SftFormat;
  /** The adapter folder attached now (maybe switched off), or null. */
  adapter: string | null;
}

/**
 * Holds back the end of the text that could still become a stop string, and cuts at the first stop string
 * seen, so a streamed answer never shows any part of one.
 */
export class StopFilter {
  private held = "";
  stopped = false;

  constructor(private readonly stops: readonly string[]) {}

  /** Adds text; returns what is safe to emit now. */
  push(text: string): string {
    if (this.stopped) return "";
    this.held += text;
    let cut = -1;
    for (const stop of this.stops) {
      const at = this.held.indexOf(stop);
      if (at >= 0 && (cut < 0 || at < cut)) cut = at;
    }
    if (cut >= 0) {
      this.stopped = true;
      const out = this.held.slice(0, cut);
      this.held = "";
      return out;
    }
    let keep = 0;
    for (const stop of this.stops) {
      for (let n = Math.min(stop.length - 1, this.held.length); n > keep; n--) {
        if (this.held.endsWith(stop.slice(0, n))) {
          keep = n;
          break;
        }
      }
    }
    const out = this.held.slice(0, this.held.length - keep);
    this.held = this.held.slice(this.held.length - keep);
    return out;
  }

  /** The held text, once the answer ended without a stop string. */
  flush(): string {
    const out = this.stopped ? "" : this.held;
    this.held = "";
    return out;
  }
}

/** Checks a request's fields; throws a TypeError/RangeError naming the field (OpenAI's names). */
export function validateGenerationRequest(r: GenerationRequest): void {
  if (!Array.isArray(r.messages) || r.messages.length === 0) {
    throw new TypeError("messages must be a non-empty list of {role, content}");
  }
  r.messages.forEach((m, i) => {
    if (!["system", "user", "assistant"].includes(m?.role)) {
      throw new TypeError(
        `messages[${i}].role must be "system", "user" or "assistant", got ${JSON.stringify(m?.role)}`,
      );
    }
    if (typeof m.content !== "string") throw new TypeError(`messages[${i}].content must be a string`);
  });
  if (!r.messages.some((m) => m.role === "user")) throw new TypeError("messages must contain a user message");
  if (!Number.isInteger(r.maxTokens) || r.maxTokens < 1 || r.maxTokens > 8192) {
    throw new RangeError(`max_tokens must be an integer in [1, 8192], got ${r.maxTokens}`);
  }
  if (!(typeof r.temperature === "number" && r.temperature >= 0 && r.temperature <= 2)) {
    throw new RangeError(`temperature must be a number in [0, 2], got ${r.temperature}`);
  }
  if (!(typeof r.topP === "number" && r.topP > 0 && r.topP <= 1)) {
    throw new RangeError(`top_p must be a number in (0, 1], got ${r.topP}`);
  }
  if (!Number.isInteger(r.topK) || r.topK < 0) {
    throw new RangeError(`top_k must be an integer >= 0, got ${r.topK}`);
  }
  if (!Number.isSafeInteger(r.seed)) throw new RangeError(`seed must be an integer, got ${r.seed}`);
  if (!Array.isArray(r.stop) || r.stop.length > 4 || r.stop.some((s) => typeof s !== "string" || s === "")) {
    throw new TypeError("stop must be a non-empty string or a list of at most 4 non-empty strings");
  }
}

export interface InferenceOptions {
  /** Models kept loaded at once (least recently used goes first). */
  maxLoaded?: number;
}

export class InferenceService {
  readonly maxLoaded: number;
  private loaded: LoadedModel[] = [];
  private tail: Promise<unknown> = Promise.resolve();
  private waiting = 0;
  private closed = false;

  constructor(readonly roots: LabRoots, options: InferenceOptions = {}) {
    const maxLoaded = options.maxLoaded ?? DEFAULT_MAX_LOADED;
    if (!Number.isInteger(maxLoaded) || maxLoaded < 1) {
      throw new RangeError(`maxLoaded (OSTROTA_MAX_LOADED_MODELS) must be an integer >= 1, got ${maxLoaded}`);
    }
    this.maxLoaded = maxLoaded;
  }

  /** Folders of the models loaded now, most recently used first. */
  loadedModels(): { dir: string; adapter: string | null }[] {
    return this.loaded.map(({ dir, adapter }) => ({ dir, adapter }));
  }

  /** Requests waiting for or holding the GPU. */
  pending(): number {
    return this.waiting;
  }

  /**
   * Generates an answer, calling `onToken` for every token as it is chosen. Runs after every earlier request
   * has finished. Throws PromptTooLongError (before generating) when the prompt does not fit.
   */
  generate(request: GenerationRequest, onToken?: (event: TokenEvent) => void): Promise<GenerationResult> {
    if (this.closed) return Promise.reject(new TypeError("the inference service is closed"));
    try {
      validateGenerationRequest(request);
    } catch (err) {
      return Promise.reject(err);
    }
    const queuedAt = performance.now();
    this.waiting++;
    const run = this.tail.then(() => this.run(request, onToken, (performance.now() - queuedAt) / 1000));
    // The queue goes on whatever this request does.
    this.tail = run.catch(() => {}).finally(() => this.waiting--);
    return run;
  }

  /** Frees every loaded model; requests after this fail. */
  async close(): Promise<void> {
    this.closed = true;
    await this.tail;
    for (const entry of this.loaded) entry.model.dispose();
    this.loaded = [];
    (await initRuntime()).trim();
  }

  private async run(
    request: GenerationRequest,
    onToken: ((event: TokenEvent) => void) | undefined,
    queuedSeconds: number,
  ): Promise<GenerationResult> {
    if (request.signal?.aborted) {
      // The client left while it waited for its turn: nothing to load or generate.
      return {
        text: "",
        promptTokens: 0,
        completionTokens: 0,
        finishReason: "cancelled",
        seconds: 0,
        tokensPerSecond: 0,
        queuedSeconds,
      };
    }
    const entry = await this.acquire(request.model, request.adapter);
    const ids = promptIds(entry.tokenizer, entry.format, request.messages);
    const limit = entry.model.maxPositions;
    if (ids.length + request.maxTokens > limit) {
      throw new PromptTooLongError(ids.length, request.maxTokens, limit);
    }
    request.onStart?.({ promptTokens: ids.length });
    // The plain (GPT-2) format answers on one line, as training taught it: a newline ends the answer.
    const stopIds = entry.format.kind === "plain"
      ? [...entry.tokenizer.eosIds, ...entry.tokenizer.encode("\n")]
      : entry.tokenizer.eosIds;
    const decoder = createStreamDecoder(entry.tokenizer, { skipSpecialTokens: true });
    const stops = new StopFilter(request.stop);
    let text = "";
    let count = 0;
    let firstTokenAt = 0;
    let cancelled = request.signal?.aborted ?? false;
    const emit = (piece: string) => {
      text += piece;
      onToken?.({ index: count - 1, text: piece });
    };
    let stoppedBy: "stop-id" | "max-new-tokens" | "callback" = "callback";
    if (!cancelled) {
      const result = await generate(entry.model, ids, {
        maxNewTokens: request.maxTokens,
        temperature: request.temperature,
        topP: request.topP,
        topK: request.topK,
        seed: request.seed,
        stopIds,
      }, (id) => {
        if (count === 0) firstTokenAt = performance.now();
        count++;
        if (request.signal?.aborted) {
          cancelled = true;
          return false;
        }
        if (stopIds.includes(id)) return;
        emit(stops.push(decoder.push(id)));
        if (stops.stopped) return false;
      });
      stoppedBy = result.stoppedBy;
    }
    if (!cancelled && !stops.stopped) {
      const rest = stops.push(decoder.flush()) + stops.flush();
      if (rest) {
        text += rest;
        onToken?.({ index: count, text: rest });
      }
    }
    const seconds = count > 0 ? (performance.now() - firstTokenAt) / 1000 : 0;
    return {
      text,
      promptTokens: ids.length,
      completionTokens: count,
      finishReason: cancelled ? "cancelled" : stoppedBy === "max-new-tokens" ? "length" : "stop",
      seconds,
      // The first token's time is prefill: the rate is over the tokens after it.
      tokensPerSecond: count > 1 && seconds > 0 ? (count - 1) / seconds : 0,
      queuedSeconds,
    };
  }

  /** The loaded model for `name` with `adapter` attached and on (or its adapter off), loading as needed. */
  private async acquire(name: string, adapterName: string | null): Promise<LoadedModel> {
    const dir = await modelDir(this.roots, name);
    const adapter = adapterName === null ? null : confineAdapter(this.roots, adapterName);
    let entry = this.loaded.find((e) => e.dir === dir);
    if (entry) this.loaded = [entry, ...this.loaded.filter((e) => e !== entry)];
    else {
      while (this.loaded.length >= this.maxLoaded) {
        this.loaded.pop()!.model.dispose();
        // Hand the evicted weights back to the driver before the next model takes their place.
        (await initRuntime()).trim();
      }
      const runtime = await initRuntime();
      const tokenizer = await loadTokenizer(dir);
      const model = await loadModel(dir, { dtype: runtime.gpu.hasF16 ? "f16" : "f32" });
      entry = { dir, model, tokenizer, format: sftFormat(tokenizer), adapter: null };
      this.loaded.unshift(entry);
    }
    if (adapter !== null && entry.adapter !== adapter) {
      if (entry.adapter !== null) detachLora(entry.model);
      entry.adapter = null;
      await loadAdapter(entry.model, adapter);
      entry.adapter = adapter;
    }
    if (entry.adapter !== null) setLoraEnabled(entry.model, adapter !== null);
    return entry;
  }
}

const services = new WeakMap<object, InferenceService>();

/**
 * The service of one lab (keyed by its deps object, so the Playground and the OpenAI routes share it and a
 * test's lab gets its own). `maxLoaded` comes from OSTROTA_MAX_LOADED_MODELS.
 */
export function inferenceFor(
  lab: { roots: LabRoots; closing: AbortSignal },
  env: { get(name: string): string | undefined } = Deno.env,
): InferenceService {
  let service = services.get(lab);
  if (!service) {
    const configured = env.get("OSTROTA_MAX_LOADED_MODELS");
    service = new InferenceService(lab.roots, {
      maxLoaded: configured === undefined || configured === "" ? DEFAULT_MAX_LOADED : Number(configured),
    });
    services.set(lab, service);
    const created = service;
    lab.closing.addEventListener("abort", () => {
      created.close().catch((err) => console.error("closing the inference service failed:", err));
    }, { once: true });
  }
  return service;
}
