/**
 * The OpenAI-compatible API's logic: the model list (built-ins, local models, and "base:adapter" pairs),
 * chat-completion requests checked field by field, and responses and stream chunks in OpenAI's shapes, so the
 * official `openai` client works against the lab unchanged.
 */
import type { LabRoots } from "../paths.ts";
import type { JsonObject } from "../store/mod.ts";
import { listAdapters, listModels, NotInCatalogError } from "./catalog.ts";
import type { ChatTurn, GenerationRequest, GenerationResult, TokenEvent } from "./inference.ts";
import { PromptTooLongError } from "./inference.ts";

/** Separators between a base model and an adapter in a model id: "tiny-qwen2:run-3/adapter" (or "+"). */
const ADAPTER_SEPARATORS = /[:+]/;
export const OWNER = "ostrota";
/** max_tokens when the request does not say. */
export const DEFAULT_MAX_TOKENS = 256;

/** An error in OpenAI's shape: `{"error": {message, type, param, code}}` with an HTTP status. */
export class OpenAIError extends TypeError {
  constructor(
    message: string,
    readonly status: 400 | 404 | 500,
    readonly type: "invalid_request_error" | "server_error",
    readonly param: string | null = null,
    readonly code: string | null = null,
  ) {
    super(message);
    this.name = "OpenAIError";
  }

  toJSON(): JsonObject {
    return { error: { message: this.message, type: this.type, param: this.param, code: this.code } };
  }
}

/**
 * Maps any error to an OpenAIError: an unknown model or adapter is a 404, other bad input (TypeError/RangeError)
 * a 400, anything else a 500.
 */
export function toOpenAIError(err: unknown): OpenAIError {
  if (err instanceof OpenAIError) return err;
  if (err instanceof PromptTooLongError) {
    return new OpenAIError(err.message, 400, "invalid_request_error", "messages", "context_length_exceeded");
  }
  // The only names a chat request gives are its model's and adapter's: OpenAI answers an unknown one with a 404.
  if (err instanceof NotInCatalogError) {
    return new OpenAIError(err.message, 404, "invalid_request_error", "model", "model_not_found");
  }
  if (err instanceof TypeError || err instanceof RangeError) {
    const param = err.message.match(/^(\w+(?:\[\d+\])?(?:\.\w+)?) (?:must|is|has)/)?.[1] ?? null;
    return new OpenAIError(err.message, 400, "invalid_request_error", param);
  }
  return new OpenAIError(
    `internal error: ${err instanceof Error ? err.message : String(err)}`,
    500,
    "server_error",
  );
}

export interface ModelCard {
  id: string;
  object: "model";
  created: number;
  owned_by: string;
}

/** GET /v1/models: every model and every adapter whose base is a listed model. */
export async function modelCards(roots: LabRoots): Promise<ModelCard[]> {
  const models = await listModels(roots);
  const adapters = await listAdapters(roots, models);
  const ids = models.map((m) => m.id);
  for (const adapter of adapters) {
    if (adapter.base !== null && ids.includes(adapter.base)) ids.push(`${adapter.base}:${adapter.id}`);
  }
  // A fixed timestamp: the ids are folders, not releases; 0 would read as "unknown" to some clients.
  const created = 1_700_000_000;
  return ids.map((id) => ({ id, object: "model", created, owned_by: OWNER }));
}

/** Splits "base:adapter" (or "base+adapter"). */
export function splitModelId(id: string): { model: string; adapter: string | null } {
  const at = id.search(ADAPTER_SEPARATORS);
  if (at < 0) return { model: id, adapter: null };
  const model = id.slice(0, at);
  const adapter = id.slice(at + 1);
  if (model === "" || adapter === "") {
    throw new OpenAIError(
      `model "${id}" must be "base" or "base:adapter"`,
      400,
      "invalid_request_error",
      "model",
    );
  }
  return { model, adapter };
}

const CHAT_FIELDS = [
  "model",
  "messages",
  "stream",
  "stream_options",
  "temperature",
  "top_p",
  "max_tokens",
  "max_completion_tokens",
  "stop",
  "seed",
  "n",
  "user",
  "frequency_penalty",
  "presence_penalty",
];

export interface ChatRequest {
  generation: Omit<GenerationRequest, "signal" | "onStart">;
  /** The id as the client gave it (echoed in responses). */
  modelId: string;
  stream: boolean;
  includeUsage: boolean;
}

function invalid(message: string, param: string): never {
  throw new OpenAIError(message, 400, "invalid_request_error", param);
}

function optionalNumber(body: JsonObject, field: string, fallback: number): number {
  const value = body[field];
  if (value === undefined || value === null) return fallback;
  if (typeof value !== "number" || !Number.isFinite(value)) invalid(`${field} must be a number`, field);
  return value as number;
}

function messageContent(value: unknown, i: number): string {
  if (typeof value === "string") return value;
  // The content-parts form: only text parts are meaningful to a text model.
  if (Array.isArray(value)) {
    return value.map((part, j) => {
      if (part?.type !== "text" || typeof part.text !== "string") {
        invalid(`messages[${i}].content[${j}] must be {"type": "text", "text": string}`, "messages");
      }
      return part.text as string;
    }).join("");
  }
  return invalid(`messages[${i}].content must be a string or a list of text parts`, "messages");
}

/** Checks a POST /v1/chat/completions body; throws OpenAIError (400) naming the field. */
export function parseChatRequest(body: JsonObject): ChatRequest {
  for (const field of Object.keys(body)) {
    if (!CHAT_FIELDS.includes(field)) {
      invalid(`unknown field "${field}"; supported fields: ${CHAT_FIELDS.join(", ")}`, field);
    }
  }
  if (typeof body.model !== "string" || body.model === "") {
    invalid('model must be a model id from GET /v1/models ("base" or "base:adapter")', "model");
  }
  const modelId = body.model as string;
  const { model, adapter } = splitModelId(modelId);
  if (!Array.isArray(body.messages) || body.messages.length === 0) {
    invalid("messages must be a non-empty list of {role, content}", "messages");
  }
  const messages: ChatTurn[] = (body.messages as unknown[]).map((m, i) => {
    const message = m as { role?: unknown; content?: unknown } | null;
    if (typeof message !== "object" || message === null) {
      invalid(`messages[${i}] must be an object`, "messages");
    }
    const role = message!.role;
    if (role !== "system" && role !== "user" && role !== "assistant" && role !== "developer") {
      invalid(`messages[${i}].role must be system, developer, user or assistant`, "messages");
    }
    // "developer" is the newer name of "system".
    return {
      role: role === "developer" ? "system" : role as ChatTurn["role"],
      content: messageContent(message!.content, i),
    };
  });
  if (body.stream !== undefined && body.stream !== null && typeof body.stream !== "boolean") {
    invalid("stream must be true or false", "stream");
  }
  if (body.n !== undefined && body.n !== null && body.n !== 1) {
    invalid("n must be 1: one choice per request", "n");
  }
  for (const field of ["frequency_penalty", "presence_penalty"]) {
    if (body[field] !== undefined && body[field] !== null && body[field] !== 0) {
      invalid(`${field} is not supported: leave it out or 0`, field);
    }
  }
  let stop: string[] = [];
  if (typeof body.stop === "string") stop = [body.stop];
  else if (Array.isArray(body.stop)) stop = body.stop as string[];
  else if (body.stop !== undefined && body.stop !== null) {
    invalid("stop must be a string or a list of strings", "stop");
  }
  const maxTokensField = body.max_completion_tokens !== undefined ? "max_completion_tokens" : "max_tokens";
  const maxTokens = optionalNumber(body, maxTokensField, DEFAULT_MAX_TOKENS);
  if (!Number.isInteger(maxTokens) || maxTokens < 1) {
    invalid(`${maxTokensField} must be an integer >= 1, got ${maxTokens}`, maxTokensField);
  }
  const options = body.stream_options as { include_usage?: unknown } | undefined | null;
  if (options !== undefined && options !== null && (typeof options !== "object" || Array.isArray(options))) {
    invalid("stream_options must be an object", "stream_options");
  }
  return {
    modelId,
    stream: body.stream === true,
    includeUsage: options?.include_usage === true,
    generation: {
      model,
      adapter,
      messages,
      maxTokens,
      temperature: optionalNumber(body, "temperature", 1),
      topP: optionalNumber(body, "top_p", 1),
      topK: 0,
      seed: optionalNumber(body, "seed", 0),
      stop,
    },
  };
}

function finishReason(result: GenerationResult): "stop" | "length" {
  return result.finishReason === "length" ? "length" : "stop";
}

function usage(result: GenerationResult): JsonObject {
  return {
    prompt_tokens: result.promptTokens,
    completion_tokens: result.completionTokens,
    total_tokens: result.promptTokens + result.completionTokens,
  };
}

export function completionId(): string {
  return `chatcmpl-${crypto.randomUUID().replaceAll("-", "")}`;
}

/** The non-streamed response. */
export function chatCompletion(
  id: string,
  model: string,
  created: number,
  result: GenerationResult,
): JsonObject {
  return {
    id,
    object: "chat.completion",
    created,
    model,
    system_fingerprint: null,
    choices: [{
      index: 0,
      message: { role: "assistant", content: result.text, refusal: null },
      logprobs: null,
      finish_reason: finishReason(result),
    }],
    usage: usage(result),
  };
}

/** Stream chunks: `data: {chat.completion.chunk}` lines, a finish chunk, optional usage, then `data: [DONE]`. */
export function chunkFrames(id: string, model: string, created: number, includeUsage: boolean) {
  const chunk = (choices: JsonObject[], extra: JsonObject = {}) =>
    `data: ${
      JSON.stringify({
        id,
        object: "chat.completion.chunk",
        created,
        model,
        system_fingerprint: null,
        choices,
        ...extra,
      })
    }\n\n`;
  let first = true;
  return {
    token(event: TokenEvent): string {
      // The first chunk carries the role, as OpenAI's does; later ones only text (empty pieces are skipped:
      // a token that ended mid-character has nothing to show yet).
      if (!first && event.text === "") return "";
      const delta: JsonObject = first ? { role: "assistant", content: event.text } : { content: event.text };
      first = false;
      return chunk([{ index: 0, delta, logprobs: null, finish_reason: null }]);
    },
    done(result: GenerationResult): string {
      const opening = first
        ? chunk([{
          index: 0,
          delta: { role: "assistant", content: "" },
          logprobs: null,
          finish_reason: null,
        }])
        : "";
      const finish = chunk([{ index: 0, delta: {}, logprobs: null, finish_reason: finishReason(result) }]);
      const usageChunk = includeUsage ? chunk([], { usage: usage(result) }) : "";
      return `${opening}${finish}${usageChunk}data: [DONE]\n\n`;
    },
    failed(error: Error): string {
      return `data: ${JSON.stringify(toOpenAIError(error).toJSON())}\n\n`;
    },
  };
}
