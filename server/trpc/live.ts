/**
 * Turns the live event log (server/domain/live-events.ts, ADR 012) into a tRPC subscription's
 * stream: each event this subscriber may see, in its view, `tracked` by its id, so that
 * httpSubscriptionLink reconnects with `lastEventId` and misses or repeats nothing.
 */
import { tracked, type TrackedEnvelope } from "@trpc/server";
import { z } from "zod";
import type { LiveEvent, LiveEvents } from "../domain/live-events";

/** The subscription input: where to resume. Also filled in by tRPC from the `Last-Event-ID` header. */
export const LiveInputSchema = z.object({ lastEventId: z.string().max(100).nullish() }).optional();

/** Sent instead of events that cannot be replayed (another server start, past the log): fetch a fresh snapshot. */
export type Resync = { type: "resync" };

export async function* liveStream<T>(
  live: LiveEvents,
  { lastEventId, signal, view }: { lastEventId: string | null | undefined; signal: AbortSignal | undefined; view: (event: LiveEvent) => T | null },
): AsyncGenerator<TrackedEnvelope<T | Resync>> {
  // Listen first, read the backlog second: nothing logged in between is lost; anything seen
  // twice is skipped by its number.
  const queue: LiveEvent[] = [];
  let wake: (() => void) | null = null;
  const stop = live.listen((event) => {
    queue.push(event);
    wake?.();
  });
  // Wakes the wait below; not a race against one long-pending promise, which would keep a
  // handler per wait for the life of the stream.
  const onAbort = () => wake?.();
  signal?.addEventListener("abort", onAbort, { once: true });
  let sent = live.headSeq();
  try {
    if (lastEventId) {
      const backlog = live.since(lastEventId);
      if (backlog) {
        queue.unshift(...backlog);
        sent = backlog.length ? backlog[0]!.seq - 1 : sent;
      } else {
        yield tracked(live.headId(), { type: "resync" });
      }
    }
    while (!signal?.aborted) {
      // A client that reads slower than events come is not given an unbounded backlog.
      if (queue.length > live.capacity) {
        queue.length = 0;
        sent = live.headSeq();
        yield tracked(live.headId(), { type: "resync" });
      }
      while (queue.length) {
        const event = queue.shift()!;
        if (event.seq <= sent) continue;
        sent = event.seq;
        const data = view(event);
        if (data !== null) yield tracked(live.idOf(event.seq), data);
      }
      if (signal?.aborted) break;
      await new Promise<void>((resolve) => (wake = resolve));
      wake = null;
    }
  } finally {
    stop();
    signal?.removeEventListener("abort", onAbort);
  }
}
