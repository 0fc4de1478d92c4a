/**
 * A tRPC subscription read with the browser's own EventSource, for the visitor page: the tRPC
 * client would be a tenth of its JavaScript (issue 10). It speaks the server's SSE format
 * (@trpc/server's sse.ts) as httpSubscriptionLink does, and reports to useLive (./live.tsx)
 * through the same handlers:
 * - `connected` opens the stream and says how long a silence may last (the server pings more
 *   often); after that long without a word, the connection is taken for dead and opened anew;
 * - each message is an event `tracked` by its id; the EventSource sends the last id back as
 *   `Last-Event-ID` when it reconnects by itself, and a stream opened anew carries it as
 *   `lastEventId` in its input, so the server resumes after it (ADR 012);
 * - `serialized-error` ends the stream: a server fault (tRPC's -32603, any 5xx) is retried as
 *   the EventSource reconnects, anything else (the visitor's cookie is gone) stops it.
 */
import type { LiveHandlers } from "./live";

/** tRPC's code for INTERNAL_SERVER_ERROR and the 502–504 family: the ones its client retries. */
const RETRYABLE_CODE = -32603;

export function followStream<T>(procedure: string, lastEventId: string, handlers: LiveHandlers<T>): { unsubscribe(): void } {
  let resumeFrom = lastEventId;
  let source: EventSource;
  let silence: ReturnType<typeof setTimeout> | undefined;
  let silenceMs = 0;

  const heard = () => {
    clearTimeout(silence);
    if (silenceMs) silence = setTimeout(reopen, silenceMs);
  };
  const close = () => {
    clearTimeout(silence);
    source.close();
  };
  const stop = (error: unknown) => {
    close();
    handlers.onError(error);
  };
  function reopen() {
    close();
    open();
  }
  function open() {
    handlers.onConnectionStateChange({ state: "connecting" });
    source = new EventSource(`/api/trpc/${procedure}?input=${encodeURIComponent(JSON.stringify({ lastEventId: resumeFrom }))}`);
    source.addEventListener("connected", (event) => {
      silenceMs = (JSON.parse(event.data) as { reconnectAfterInactivityMs?: number }).reconnectAfterInactivityMs ?? 0;
      heard();
      handlers.onConnectionStateChange({ state: "pending" });
    });
    source.addEventListener("ping", heard);
    source.addEventListener("message", (event) => {
      heard();
      resumeFrom = event.lastEventId;
      handlers.onData({ id: event.lastEventId, data: JSON.parse(event.data) as T });
    });
    source.addEventListener("serialized-error", (event) => {
      const error = JSON.parse(event.data) as { code?: number } | null;
      if (error?.code === RETRYABLE_CODE) handlers.onConnectionStateChange({ state: "connecting" });
      else stop(error);
    });
    // A lost connection is retried by the EventSource itself; an answer that is no stream at all
    // (a refusal, a proxy's error page) closes it for good.
    source.addEventListener("error", (event) => {
      if (source.readyState === EventSource.CLOSED) stop(event);
      else handlers.onConnectionStateChange({ state: "connecting" });
    });
  }

  open();
  return { unsubscribe: close };
}
