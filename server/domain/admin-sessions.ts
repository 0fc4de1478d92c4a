/**
 * Staff sessions (admins and moderators): a random cookie token per login, of which only the
 * SHA-256 is stored (`admin_sessions`), with the account it belongs to. A session ends at
 * logout, when idle too long, at its absolute expiry, when its account's sessions are revoked
 * (log out everywhere, password change, `npm run admin`) or when its account is removed.
 * The server reads the table on every staff request, so revocation by another process (the
 * command line) takes effect at once.
 */
import { createHmac, randomBytes } from "node:crypto";
import { and, desc, eq, gt, isNull, lt, ne, or } from "drizzle-orm";
import type { Db, Queryable } from "../db/client";
import { accounts, adminSessions, type AccountRole } from "../db/schema";
import { DomainError } from "./errors";
import { hashSecretToken, newSecretToken } from "./secret-tokens";

/** Seeing a session again within this long does not rewrite its row: one write a minute, not one per request. */
const TOUCH_INTERVAL_MS = 60_000;

export interface AdminSessionOptions {
  /** Ends a session nobody used for this long. */
  idleMs: number;
  /** Ends a session this long after login, however active. */
  absoluteMs: number;
  now?: () => number;
}

/** Who a live session belongs to. */
export interface SessionAccount {
  id: number;
  name: string;
  role: AccountRole;
}

/** One of an account's live sessions as its owner sees it; `id` names it to `endOne`, nothing more. */
export interface SessionView {
  id: string;
  createdAt: Date;
  lastSeenAt: Date;
  expiresAt: Date;
  /** The session of the browser that asks. */
  current: boolean;
}

/**
 * Ends sessions, returns how many: every one, or only `accountId`'s; never `keepToken`'s.
 * Usable inside a transaction.
 */
export function endAdminSessions(db: Queryable, { accountId, keepToken }: { accountId?: number; keepToken?: string } = {}): number {
  const conditions = [
    accountId === undefined ? undefined : eq(adminSessions.accountId, accountId),
    keepToken ? ne(adminSessions.tokenHash, hashSecretToken(keepToken)) : undefined,
  ];
  return db.delete(adminSessions).where(and(...conditions)).run().changes;
}

export function createAdminSessions(db: Db, { idleMs, absoluteMs, now = () => Date.now() }: AdminSessionOptions) {
  const end = (token: string | undefined) => {
    if (token) db.delete(adminSessions).where(eq(adminSessions.tokenHash, hashSecretToken(token))).run();
  };

  // A page names a session by a keyed hash of its token hash, never the hash itself: that is the
  // stored trace of a live cookie and has no business in HTML that gets saved or shared. Not the
  // rowid either: SQLite gives a deleted last rowid to the next login, so a page loaded before
  // could end a newer session.
  // The key lives as long as this process: after a restart an old page's ids are unknown (404,
  // nothing ended) and a reload names the sessions again.
  const idKey = randomBytes(32);
  const publicId = (tokenHash: string) => createHmac("sha256", idKey).update(tokenHash).digest("base64url").slice(0, 22);

  /** `accountId`'s sessions that have neither expired nor gone idle, most recently used first. */
  const liveOf = (accountId: number) => {
    const at = now();
    return db
      .select({ tokenHash: adminSessions.tokenHash, createdAt: adminSessions.createdAt, lastSeenAt: adminSessions.lastSeenAt, expiresAt: adminSessions.expiresAt })
      .from(adminSessions)
      .where(and(eq(adminSessions.accountId, accountId), gt(adminSessions.expiresAt, new Date(at)), gt(adminSessions.lastSeenAt, new Date(at - idleMs))))
      .orderBy(desc(adminSessions.lastSeenAt), desc(adminSessions.createdAt))
      .all();
  };

  return {
    /** Starts a session for `accountId` after its password was verified, ending `previousToken`'s (a new token at every login). */
    start(accountId: number, previousToken?: string): string {
      const token = newSecretToken();
      const at = new Date(now());
      db.transaction((tx) => {
        if (previousToken) tx.delete(adminSessions).where(eq(adminSessions.tokenHash, hashSecretToken(previousToken))).run();
        tx.insert(adminSessions)
          .values({ tokenHash: hashSecretToken(token), accountId, createdAt: at, lastSeenAt: at, expiresAt: new Date(at.getTime() + absoluteMs) })
          .run();
      });
      return token;
    },

    /** The account of `token`'s live session, else null; records the activity that keeps it from going idle. */
    live(token: string | undefined): SessionAccount | null {
      if (!token) return null;
      const tokenHash = hashSecretToken(token);
      const row = db
        .select({ lastSeenAt: adminSessions.lastSeenAt, expiresAt: adminSessions.expiresAt, id: accounts.id, name: accounts.name, role: accounts.role })
        .from(adminSessions)
        .innerJoin(accounts, eq(accounts.id, adminSessions.accountId))
        .where(eq(adminSessions.tokenHash, tokenHash))
        .get();
      if (!row) return null;
      const at = now();
      if (row.expiresAt.getTime() <= at || row.lastSeenAt.getTime() + idleMs <= at) {
        end(token);
        return null;
      }
      if (at - row.lastSeenAt.getTime() >= TOUCH_INTERVAL_MS) {
        db.update(adminSessions).set({ lastSeenAt: new Date(at) }).where(eq(adminSessions.tokenHash, tokenHash)).run();
      }
      return { id: row.id, name: row.name, role: row.role };
    },

    end,

    /** `accountId`'s live sessions; `currentToken`'s is marked current. */
    list(accountId: number, currentToken?: string): SessionView[] {
      const currentHash = currentToken ? hashSecretToken(currentToken) : undefined;
      return liveOf(accountId).map(({ tokenHash, ...times }) => ({ id: publicId(tokenHash), ...times, current: tokenHash === currentHash }));
    },

    /**
     * Ends the live session `id` (from `list`) of `accountId`, and only of it: an id of another
     * account's session, an ended one or a made-up one is SESSION_NOT_FOUND, and nothing ends.
     * Returns when the ended session started.
     */
    endOne(accountId: number, id: string): { createdAt: Date } {
      const session = liveOf(accountId).find((row) => publicId(row.tokenHash) === id);
      if (!session) throw new DomainError("SESSION_NOT_FOUND", "No live session of yours has this id: it may have ended already. Reload the page to see your sessions.");
      db.delete(adminSessions).where(and(eq(adminSessions.tokenHash, session.tokenHash), eq(adminSessions.accountId, accountId))).run();
      return { createdAt: session.createdAt };
    },

    /** Ends every session of `accountId` but `keepToken`'s; returns how many ended. */
    endAll: (accountId: number, keepToken?: string) => endAdminSessions(db, { accountId, keepToken }),

    /** Deletes expired and idle sessions, and those from before accounts; returns how many. */
    pruneExpired(): number {
      const at = now();
      return db
        .delete(adminSessions)
        .where(or(lt(adminSessions.expiresAt, new Date(at)), lt(adminSessions.lastSeenAt, new Date(at - idleMs)), isNull(adminSessions.accountId)))
        .run().changes;
    },
  };
}

export type AdminSessions = ReturnType<typeof createAdminSessions>;
