/**
 * Chat examples -> token ids and labels for supervised fine-tuning, loss on the assistant's replies only.
 *
 * Chat models (a folder with a chat template): the conversation is rendered with the template and tokenized
 * whole; labels are -100 everywhere except the tokens after each assistant header up to the next user header
 * (unsloth's `train_on_responses_only`: the reply, its end-of-turn token and the newline after it). The two
 * headers are found from the template itself: the assistant header is what `add_generation_prompt` appends, the
 * user header is what precedes a user message's content.
 *
 * Plain models (no chat template, e.g. rugpt3small): the documented prompt/answer format
 *   [bos] "Вопрос: {user}\nОтвет:" " {assistant}" [eos]
 * with labels on the answer and the eos only. Generation uses the same prompt and stops at eos or a newline.
 */
import type { ChatMessage } from "../data/types.ts";
import type { Tokenizer } from "../tokenizer/mod.ts";

export const IGNORE = -100;

export const PLAIN_QUESTION_PREFIX = "Вопрос: ";
export const PLAIN_ANSWER_PREFIX = "\nОтвет:";

export interface SftExample {
  ids: number[];
  labels: number[];
}

export interface ChatMarkers {
  /** Token ids that open an assistant turn (e.g. "<|im_start|>assistant\n"). */
  response: number[];
  /** Token ids that open a user turn (e.g. "<|im_start|>user\n"). */
  instruction: number[];
}

const PROBE = "\u2063probe\u2063";

/** Derives the assistant and user headers from the tokenizer's chat template. */
export function chatMarkers(tokenizer: Tokenizer): ChatMarkers {
  const user: ChatMessage[] = [{ role: "user", content: PROBE }];
  const withPrompt = tokenizer.applyChatTemplate(user, { addGenerationPrompt: true });
  const without = tokenizer.applyChatTemplate(user, { addGenerationPrompt: false });
  if (!withPrompt.startsWith(without) || withPrompt.length === without.length) {
    throw new TypeError("the chat template adds no generation prompt; cannot find the assistant header");
  }
  const responseText = withPrompt.slice(without.length);
  // Templates that spell roles out (ChatML, Llama 3) open a user turn like an assistant turn, role renamed.
  const instructionText = responseText.replace(/assistant/i, "user");
  const beforeProbe = without.slice(0, without.indexOf(PROBE));
  if (instructionText === responseText || !beforeProbe.endsWith(instructionText)) {
    throw new TypeError("could not find the user header in the chat template (roles are not spelled out)");
  }
  return { response: tokenizer.encode(responseText), instruction: tokenizer.encode(instructionText) };
}

function indexOf(ids: readonly number[], sub: readonly number[], from: number): number {
  outer: for (let i = from; i + sub.length <= ids.length; i++) {
    for (let k = 0; k < sub.length; k++) if (ids[i + k] !== sub[k]) continue outer;
    return i;
  }
  return -1;
}

/** Labels for replies only: tokens after each response header up to the next instruction header. */
export function repliesOnlyLabels(ids: readonly number[], markers: ChatMarkers): number[] {
  const labels = new Array(ids.length).fill(IGNORE);
  let i = indexOf(ids, markers.response, 0);
  while (i >= 0) {
    const start = i + markers.response.length;
    const next = indexOf(ids, markers.instruction, start);
    const stop = next < 0 ? ids.length : next;
    for (let t = start; t < stop; t++) labels[t] = ids[t];
    i = indexOf(ids, markers.response, stop);
  }
  return labels;
}

/** How a model's examples are formatted: its chat template, or the plain prompt/answer format. */
export type SftFormat =
  | { kind: "chat"; markers: ChatMarkers }
  | { kind: "plain" };

export function sftFormat(tokenizer: Tokenizer): SftFormat {
  return tokenizer.chatTemplate ? { kind: "chat", markers: chatMarkers(tokenizer) } : { kind: "plain" };
}

function lastUser(messages: readonly ChatMessage[]): string {
  const user = [...messages].reverse().find((m) => m.role === "user");
  if (!user) throw new TypeError("an example has no user message");
  return user.content;
}

/** The prompt ids a model is given at generation time for `messages` (everything before the reply). */
export function promptIds(
  tokenizer: Tokenizer,
  format: SftFormat,
  messages: readonly ChatMessage[],
): number[] {
  if (format.kind === "chat") {
    return tokenizer.encode(tokenizer.applyChatTemplate(messages, { addGenerationPrompt: true }));
  }
  const bos = tokenizer.bosId !== undefined ? [tokenizer.bosId] : [];
  return [...bos, ...tokenizer.encode(`${PLAIN_QUESTION_PREFIX}${lastUser(messages)}${PLAIN_ANSWER_PREFIX}`)];
}

/** Tokens and replies-only labels of one conversation (which must end with the assistant's reply). */
export function encodeExample(
  tokenizer: Tokenizer,
  format: SftFormat,
  messages: readonly ChatMessage[],
): SftExample {
  if (messages.at(-1)?.role !== "assistant") {
    throw new TypeError("a training example must end with an assistant reply");
  }
  if (format.kind === "chat") {
    const ids = tokenizer.encode(tokenizer.applyChatTemplate(messages, { addGenerationPrompt: false }));
    return { ids, labels: repliesOnlyLabels(ids, format.markers) };
  }
  const prompt = promptIds(tokenizer, format, messages.slice(0, -1));
  const eos = tokenizer.eosIds[0];
  if (eos === undefined) {
    throw new TypeError("the tokenizer has no eos token; the plain format ends answers with one");
  }
  const answer = [...tokenizer.encode(` ${messages.at(-1)!.content}`), eos];
  return { ids: [...prompt, ...answer], labels: [...new Array(prompt.length).fill(IGNORE), ...answer] };
}

/** Cuts an example to `maxLen` tokens (from the right, as transformers truncates). */
export function truncate(example: SftExample, maxLen: number): SftExample {
  if (example.ids.length <= maxLen) return example;
  return { ids: example.ids.slice(0, maxLen), labels: example.labels.slice(0, maxLen) };
}

/** Number of tokens that carry a loss (labels shifted by one, as the model predicts the next token). */
export function trainableTokens(example: SftExample): number {
  let n = 0;
  for (let t = 1; t < example.labels.length; t++) if (example.labels[t] !== IGNORE) n++;
  return n;
}
