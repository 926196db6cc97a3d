/**
 * Incremental detokenisation for streaming generation. Byte-level BPE tokens can end in the middle of a
 * UTF-8 character (a Cyrillic letter is 2 bytes, an emoji 4), so `push` returns only complete characters and
 * keeps the rest until the next token completes them; `flush` emits what is left (as U+FFFD when the bytes
 * never form a character). The concatenation of all pushes and the flush equals `decode(allIds)`.
 */
import type { Tokenizer } from "./tokenizer.ts";

export interface StreamDecoder {
  /** Adds one generated id; returns the text it completes (possibly ""). */
  push(id: number): string;
  /** Ends the stream; returns any held text. */
  flush(): string;
}

export interface StreamDecoderOptions {
  /** Drop special tokens (as decode's skipSpecialTokens). */
  skipSpecialTokens?: boolean;
}

/**
 * Creates a stream decoder. Byte-level tokenizers (Qwen, GPT-2) stream the tokens' bytes through a UTF-8
 * decoder, which is exact; other tokenizers re-decode a short window of recent ids and emit the new text
 * once it no longer ends in an incomplete character.
 */
export function createStreamDecoder(tokenizer: Tokenizer, options: StreamDecoderOptions = {}): StreamDecoder {
  const skip = options.skipSpecialTokens ?? false;
  return tokenizer.byteLevel ? byteStreamDecoder(tokenizer, skip) : windowStreamDecoder(tokenizer, skip);
}

function byteStreamDecoder(tokenizer: Tokenizer, skip: boolean): StreamDecoder {
  let utf8 = new TextDecoder("utf-8", { ignoreBOM: true });
  const flushHeld = () => {
    const held = utf8.decode();
    utf8 = new TextDecoder("utf-8", { ignoreBOM: true });
    return held;
  };
  return {
    push(id: number): string {
      if (skip && tokenizer.isSpecial(id)) return "";
      const bytes = tokenizer.tokenBytes(id);
      // Ids past the tokenizer's vocabulary (models pad their embedding tables, e.g. Qwen's 151936 rows for
      // 151669 tokens) decode to nothing, as in decode() and transformers.
      if (bytes === undefined) return "";
      // decode() turns the bytes before an added token into text on their own, then appends its content.
      if (tokenizer.isAddedToken(id)) return flushHeld() + new TextDecoder().decode(bytes);
      return utf8.decode(bytes, { stream: true });
    },
    flush: flushHeld,
  };
}

function windowStreamDecoder(tokenizer: Tokenizer, skip: boolean): StreamDecoder {
  const ids: number[] = [];
  let prefixStart = 0;
  let readStart = 0;
  const decode = (from: number, to: number) =>
    tokenizer.decode(ids.slice(from, to), { skipSpecialTokens: skip });
  return {
    push(id: number): string {
      ids.push(id);
      const before = decode(prefixStart, readStart);
      const after = decode(prefixStart, ids.length);
      if (after.length <= before.length || after.endsWith("\uFFFD")) return "";
      prefixStart = readStart;
      readStart = ids.length;
      return after.slice(before.length);
    },
    flush(): string {
      const before = decode(prefixStart, readStart);
      const after = decode(prefixStart, ids.length);
      prefixStart = readStart = ids.length;
      return after.slice(before.length);
    },
  };
}
