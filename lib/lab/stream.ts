/**
 * A generation as a Server-Sent Events response. The response is returned only once the request has its
 * turn, its model is loaded and its prompt fits — so a bad request still gets a plain 400 — and from then on
 * every token is written as it comes. A client that disconnects cancels the body, which aborts the
 * generation: it stops at its next token. (The request's own signal is not used: Deno.serve also aborts it
 * once a response is delivered.)
 */
import type { GenerationRequest, GenerationResult, InferenceService, TokenEvent } from "./inference.ts";

export interface SseFrames {
  token(event: TokenEvent): string;
  done(result: GenerationResult): string;
  /** A failure after the stream started (the status line is already sent). */
  failed(error: Error): string;
}

export const SSE_HEADERS = {
  "content-type": "text/event-stream; charset=utf-8",
  "cache-control": "no-cache, no-transform",
  "x-accel-buffering": "no",
};

/** Starts the generation; rejects (before any byte is sent) when it cannot start. */
export async function streamGeneration(
  service: InferenceService,
  request: Omit<GenerationRequest, "signal" | "onStart">,
  frames: SseFrames,
): Promise<Response> {
  const encoder = new TextEncoder();
  const abort = new AbortController();
  let controller!: ReadableStreamDefaultController<Uint8Array>;
  let open = true;
  const body = new ReadableStream<Uint8Array>({
    start(c) {
      controller = c;
    },
    cancel() {
      open = false;
      abort.abort();
    },
  });
  const write = (text: string) => {
    if (!open) return;
    try {
      controller.enqueue(encoder.encode(text));
    } catch {
      // The client went away between two tokens.
      open = false;
      abort.abort();
    }
  };
  const close = () => {
    if (!open) return;
    open = false;
    try {
      controller.close();
    } catch {
      // Already closed by a cancel.
    }
  };
  const started = Promise.withResolvers<void>();
  const finished = service.generate(
    { ...request, signal: abort.signal, onStart: () => started.resolve() },
    (event) => write(frames.token(event)),
  );
  finished.then(
    (result) => {
      write(frames.done(result));
      close();
    },
    (err) => {
      started.reject(err);
      write(frames.failed(err instanceof Error ? err : new Error(String(err))));
      close();
    },
  );
  await started.promise;
  return new Response(body, { headers: SSE_HEADERS });
}
