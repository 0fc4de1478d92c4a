/**
 * Live updates (ADR 012): every change to a prompt or to the generators view becomes one event
 * in an ordered, bounded in-memory log. An event only says *what* changed (prompt #12, whose
 * author is visitor 3; the generators); each subscriber reads the current state when it sends
 * it, in its own view (a visitor's never carries an image before the reveal). So a spurious or
 * repeated event is harmless, and a resumed stream never replays stale data.
 *
 * Ids are `<boot>.<seq>`: `seq` grows by one per event; `boot` is drawn at every start, so an id
 * from before a restart (or older than the log's first event) is recognised as one that cannot
 * be resumed from, and the subscriber is told to `resync` (fetch a fresh snapshot).
 */
import { randomBytes } from "node:crypto";
import { eq, sql } from "drizzle-orm";
import type { Db } from "../db/client";
import { prompts } from "../db/schema";

/**
 * `line`: the order of the approved jobs or the estimates may have moved (any prompt or the
 * generators changed, or the admin reordered): places in line and ETAs are read anew.
 * `show`: the presenter changed the show (server/domain/show.ts): both of its views are read anew.
 */
type Change =
  | { kind: "prompt"; promptId: number; visitorId: number }
  /** Only the progress of the prompt's job moved: no line to work out again (server/domain/progress.ts). */
  | { kind: "progress"; promptId: number; visitorId: number }
  | { kind: "generators" }
  | { kind: "line" }
  | { kind: "show" };
export type LiveEvent = Change & { seq: number };

/** What services call when something a page shows has changed. */
export interface ChangeNotes {
  /** The prompts (their status, image, notice, author's mute…) may have changed, or been deleted. */
  promptChanged(ids: number | number[]): void;
}

export interface LiveEventsOptions {
  /** How many events are kept for resuming streams. */
  capacity: number;
  /** The generators view: an event is logged only when it differs from the last one logged. */
  generatorsView: () => unknown;
}

export function createLiveEvents(db: Db, { capacity, generatorsView }: LiveEventsOptions) {
  const boot = randomBytes(6).toString("base64url");
  const ring: Array<LiveEvent | undefined> = new Array(capacity);
  let head = 0;
  const listeners = new Set<(event: LiveEvent) => void>();
  const visitorOf = db.select({ visitorId: prompts.visitorId }).from(prompts).where(eq(prompts.id, sql.placeholder("id"))).prepare();

  // Changes are noted inside transactions and logged in a microtask, after the synchronous
  // transaction has committed: a subscriber that reads at once sees the committed row. Several
  // notes of one prompt within a task make one event.
  const pending = new Map<number, number | null>();
  const progressPending = new Set<number>();
  let generatorsPending = false;
  let linePending = false;
  let lastGenerators = "";
  let scheduled = false;

  function append(change: Change) {
    const logged = { ...change, seq: ++head };
    ring[logged.seq % capacity] = logged;
    for (const listener of listeners) listener(logged);
  }

  function flush() {
    scheduled = false;
    for (const [promptId, noted] of pending) {
      // A prompt deleted since it was noted keeps the author it had then: its deletion is theirs to hear.
      const visitorId = noted ?? visitorOf.get({ id: promptId })?.visitorId;
      if (visitorId !== undefined) append({ kind: "prompt", promptId, visitorId });
    }
    if (pending.size) linePending = true;
    for (const promptId of progressPending) {
      const visitorId = pending.has(promptId) ? undefined : visitorOf.get({ id: promptId })?.visitorId;
      if (visitorId !== undefined) append({ kind: "progress", promptId, visitorId });
    }
    progressPending.clear();
    pending.clear();
    if (generatorsPending) {
      generatorsPending = false;
      const view = JSON.stringify(generatorsView());
      if (view !== lastGenerators) {
        lastGenerators = view;
        append({ kind: "generators" });
        linePending = true;
      }
    }
    // One per flush, after the changes that moved it: readers work the line out once for all of them.
    if (linePending) {
      linePending = false;
      append({ kind: "line" });
    }
  }

  function schedule() {
    if (scheduled) return;
    scheduled = true;
    queueMicrotask(flush);
  }

  const idOf = (seq: number) => `${boot}.${seq}`;

  return {
    promptChanged(ids: number | number[]): void {
      for (const id of typeof ids === "number" ? [ids] : ids) {
        // Read now, inside the caller's transaction: a deletion that follows must still reach the author.
        if (!pending.get(id)) pending.set(id, visitorOf.get({ id })?.visitorId ?? null);
      }
      schedule();
    },

    /** A prompt's progress moved; a change of the prompt in the same task says it already. */
    progressChanged(promptId: number): void {
      progressPending.add(promptId);
      schedule();
    },

    /** The line was reordered (the admin pinned or moved a job). */
    lineChanged(): void {
      linePending = true;
      schedule();
    },

    /** The show moved on or changed its settings or link. Logged at once: it is noted after its transaction. */
    showChanged(): void {
      append({ kind: "show" });
    },

    /** The generators view may have changed (presence, health, leases, results); cheap to call often. */
    generatorsChanged(): void {
      generatorsPending = true;
      schedule();
    },

    idOf,
    capacity,

    /** The latest event's number and id: a snapshot read after it is resumed from it. */
    headSeq: (): number => head,
    headId: (): string => idOf(head),

    /** Calls `listener` with every event from now on; returns the function that stops it. */
    listen(listener: (event: LiveEvent) => void): () => void {
      listeners.add(listener);
      return () => void listeners.delete(listener);
    },

    /**
     * The events after `lastEventId`, oldest first; null when they cannot all be given: an id
     * from another start of the server, one older than the log, or not an id of ours.
     */
    since(lastEventId: string): LiveEvent[] | null {
      const match = /^([\w-]+)\.(\d{1,15})$/.exec(lastEventId);
      if (!match || match[1] !== boot) return null;
      const after = Number(match[2]);
      if (after > head || after < head - capacity) return null;
      const events: LiveEvent[] = [];
      for (let seq = after + 1; seq <= head; seq++) events.push(ring[seq % capacity]!);
      return events;
    },
  };
}

export type LiveEvents = ReturnType<typeof createLiveEvents>;
