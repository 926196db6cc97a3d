/**
 * A run's event stream as Server-Sent Events: the stored events after `Last-Event-ID` first, then live ones
 * as the store publishes them, with heartbeat comments so proxies and browsers keep the connection open.
 * The subscription is taken before the replay is read, and live events at or below the last replayed id are
 * dropped, so nothing is lost or repeated between the two. A client that goes away cancels the stream, which
 * unsubscribes and stops the heartbeat; nothing else notices.
 */
import type { RunEvent, RunStore } from "../store/mod.ts";

export const HEARTBEAT_MS = 15_000;

function frame(event: RunEvent): string {
  const data = JSON.stringify({ type: event.type, payload: event.payload, t: event.t });
  return `id: ${event.id}\nevent: ${event.type}\ndata: ${data}\n\n`;
}

export interface RunEventStreamOptions {
  /** Replay events with an id above this one (from the Last-Event-ID header or `?after=`). */
  afterId: number;
  heartbeatMs?: number;
  /** Aborted when the server shuts down: the stream ends so the server's graceful shutdown can finish. */
  closed?: AbortSignal;
}

export function runEventStream(store: RunStore, runId: number, options: RunEventStreamOptions): Response {
  const encoder = new TextEncoder();
  let cleanup = () => {};
  const body = new ReadableStream<Uint8Array>({
    start(controller) {
      let lastSent = options.afterId;
      let open = true;
      const send = (text: string) => {
        if (!open) return;
        try {
          controller.enqueue(encoder.encode(text));
        } catch {
          // The stream was closed under us (client gone): stop writing.
          cleanup();
        }
      };
      const pending: RunEvent[] = [];
      let replaying = true;
      const unsubscribe = store.subscribe(runId, (event) => {
        if (replaying) pending.push(event);
        else if (event.id > lastSent) {
          lastSent = event.id;
          send(frame(event));
        }
      });
      const heartbeat = setInterval(() => send(": heartbeat\n\n"), options.heartbeatMs ?? HEARTBEAT_MS);
      const onClosed = () => {
        cleanup();
        controller.close();
      };
      cleanup = () => {
        if (!open) return;
        open = false;
        clearInterval(heartbeat);
        unsubscribe();
        options.closed?.removeEventListener("abort", onClosed);
      };
      if (options.closed?.aborted) {
        onClosed();
        return;
      }
      options.closed?.addEventListener("abort", onClosed);
      // A retry hint and a comment at once, so the browser knows the stream is up before any event.
      send(`retry: 2000\n: run ${runId} events after ${options.afterId}\n\n`);
      for (const event of store.events(runId, options.afterId)) {
        lastSent = event.id;
        send(frame(event));
      }
      replaying = false;
      for (const event of pending) {
        if (event.id > lastSent) {
          lastSent = event.id;
          send(frame(event));
        }
      }
    },
    cancel() {
      cleanup();
    },
  });
  return new Response(body, {
    headers: {
      "content-type": "text/event-stream; charset=utf-8",
      "cache-control": "no-cache, no-transform",
      "x-accel-buffering": "no",
    },
  });
}

/** The id to resume after: the larger of the Last-Event-ID header and `?after=` (0 when neither is valid). */
export function resumeAfterId(lastEventIdHeader: string | undefined, afterQuery: string | undefined): number {
  const parse = (value: string | undefined) => (value && /^\d{1,15}$/.test(value) ? Number(value) : 0);
  return Math.max(parse(lastEventIdHeader), parse(afterQuery));
}
