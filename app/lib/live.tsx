/**
 * Following a live stream (server/trpc/live.ts, ADR 012) from a page: events go to the page's
 * handler, a `resync` to its `onResync` (fetch a fresh snapshot), and the connection's state
 * to a status line that says when the page is reconnecting.
 */
import { useEffect, useRef, useState } from "react";

/**
 * "connecting" before the first connection; "reconnecting" after one was lost, until it is back;
 * "stopped" when the server refused the stream (the admin's session ended).
 */
export type LiveState = "connecting" | "live" | "reconnecting" | "stopped";

export type LiveHandlers<T> = {
  onData: (envelope: { id: string; data: T }) => void;
  onConnectionStateChange: (state: { state: "idle" | "connecting" | "pending" }) => void;
  onError: (error: unknown) => void;
};

type Resync = { type: "resync" };
const isResync = (data: unknown): data is Resync => typeof data === "object" && data !== null && (data as { type?: unknown }).type === "resync";

/**
 * Follows the changes after the snapshot the page was loaded with (`cursor`, read before it):
 * a new snapshot (another cursor) subscribes again from there, so no change falls between the
 * two. `subscribe` is a tRPC `.subscribe` call; the callbacks may change between renders.
 */
export function useLive<T>(
  cursor: string,
  subscribe: (cursor: string, handlers: LiveHandlers<T | Resync>) => { unsubscribe(): void },
  onEvent: (event: T) => void,
  onResync: () => void,
): LiveState {
  const [state, setState] = useState<LiveState>("connecting");
  const latest = useRef({ subscribe, onEvent, onResync });
  latest.current = { subscribe, onEvent, onResync };
  // Per page, not per subscription: a stream that breaks while a new snapshot's replaces it is
  // still a page that lost its connection.
  const connected = useRef(false);

  useEffect(() => {
    const subscription = latest.current.subscribe(cursor, {
      onData: ({ data }) => (isResync(data) ? latest.current.onResync() : latest.current.onEvent(data)),
      onConnectionStateChange: ({ state: connection }) => {
        if (connection === "pending") {
          connected.current = true;
          setState("live");
        } else if (connection === "connecting" && connected.current) {
          setState("reconnecting");
        }
      },
      onError: () => setState("stopped"),
    });
    return () => subscription.unsubscribe();
  }, [cursor]);
  return state;
}

/** Replaces the item with `id` (or drops it when `item` is null); a new one goes in `order`. */
export function upsertById<P extends { id: number }>(list: P[], id: number, item: P | null, order: (a: P, b: P) => number): P[] {
  const rest = list.filter((existing) => existing.id !== id);
  return item ? [...rest, item].sort(order) : rest;
}

export const newestFirst = (a: { id: number }, b: { id: number }) => b.id - a.id;

/** The connection's state for screen readers and eyes: says something only when it is not live. */
export function LiveStatus({ state }: { state: LiveState }) {
  return (
    <p className="live-status" role="status" aria-live="polite" data-live={state}>
      {state === "reconnecting" ? "Reconnecting…" : state === "stopped" ? "Live updates stopped: reload the page." : ""}
    </p>
  );
}
