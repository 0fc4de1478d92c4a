/**
 * The audit log: who did what to what, and when, for every moderation and admin action and every
 * login attempt (issue 9 §1). Rows are only ever added; admins page through them newest first.
 */
import { count, desc } from "drizzle-orm";
import type { Db, Queryable } from "../db/client";
import { auditLog } from "../db/schema";

/**
 * Who acts: an account's name, `token:<name>` for an API token, `cli` for `npm run admin`,
 * `visitor <id>` for a guest a trusted proxy signs in, `site password` for whoever tries it.
 */
export type Actor = string;

export interface AuditEntry {
  actor: Actor;
  /** What was done, dotted: `prompt.approve`, `login.failed`, `token.create`… */
  action: string;
  /** What it was done to: `prompt 12`, `visitor 3`, an account's or token's name. */
  target?: string | null;
  details?: Record<string, unknown> | null;
}

/** A stored value can come from a hostile form (a failed login's name): bounded, never trusted. */
const bounded = (text: string) => (text.length > 200 ? `${text.slice(0, 200)}…` : text);

export function recordAudit(db: Queryable, { actor, action, target = null, details = null }: AuditEntry): void {
  db.insert(auditLog)
    .values({ actor: bounded(actor), action, target: target === null ? null : bounded(target), details })
    .run();
}

/** How long refusals by a login throttle are counted before their line is written. */
const REFUSALS_COUNTED_MS = 60_000;

/**
 * Refusals by a login throttle. The throttle counts none of them, so a script could make any
 * number, and a line for each would flood the log: the first refusal of a minute is written at
 * once, the others of that minute as one counted line when it ends (or when the server stops).
 */
export function createRefusalAudit(db: Queryable, onError: (error: unknown) => void, countedMs = REFUSALS_COUNTED_MS) {
  // Names come from whoever types them: only whether they all were the same one is kept.
  let counting: { actor: Actor; alike: boolean; refused: number; timer: NodeJS.Timeout } | null = null;
  const flush = () => {
    if (!counting) return;
    const { actor, alike, refused, timer } = counting;
    clearTimeout(timer);
    counting = null;
    if (refused) recordAudit(db, { actor: alike ? actor : "several names", action: "login.failed", details: { reason: "throttled", refused } });
  };
  const flushLater = () => {
    try {
      flush();
    } catch (error) {
      // In a timer nothing would catch it (a full disk): the process must not end over a count.
      onError(error);
    }
  };
  return {
    refused(actor: Actor) {
      if (counting) {
        counting.refused++;
        counting.alike &&= counting.actor === actor;
        return;
      }
      recordAudit(db, { actor, action: "login.failed", details: { reason: "throttled", refused: 1 } });
      counting = { actor, alike: true, refused: 0, timer: setTimeout(flushLater, countedMs).unref() };
    },
    /** Writes what is still being counted: before the database closes. */
    close: flush,
  };
}
export type RefusalAudit = ReturnType<typeof createRefusalAudit>;

export const AUDIT_PAGE_SIZE = 50;

/** One page (1-based) of the log, newest first. */
export function listAudit(db: Db, page: number, pageSize = AUDIT_PAGE_SIZE) {
  const total = db.select({ n: count() }).from(auditLog).get()?.n ?? 0;
  const pages = Math.max(1, Math.ceil(total / pageSize));
  const entries = db
    .select()
    .from(auditLog)
    .orderBy(desc(auditLog.id))
    .limit(pageSize)
    .offset((Math.min(page, pages) - 1) * pageSize)
    .all();
  return { entries, total, page: Math.min(page, pages), pages };
}
