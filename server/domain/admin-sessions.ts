/**
 * Admin sessions: a random cookie token per login, of which only the SHA-256 is stored
 * (`admin_sessions`). A session ends at logout, when idle too long, at its absolute expiry, or
 * when every session is revoked (log out everywhere, password change, `npm run admin`).
 * The server reads the table on every admin request, so revocation by another process (the
 * command line) takes effect at once.
 */
import { eq, lt, ne, or } from "drizzle-orm";
import type { Db, Queryable } from "../db/client";
import { adminSessions } from "../db/schema";
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

/** Ends every admin session but `keepToken`'s; returns how many ended. Usable inside a transaction. */
export function endAdminSessions(db: Queryable, keepToken?: string): number {
  const query = db.delete(adminSessions);
  return (keepToken ? query.where(ne(adminSessions.tokenHash, hashSecretToken(keepToken))) : query).run().changes;
}

export function createAdminSessions(db: Db, { idleMs, absoluteMs, now = () => Date.now() }: AdminSessionOptions) {
  const end = (token: string | undefined) => {
    if (token) db.delete(adminSessions).where(eq(adminSessions.tokenHash, hashSecretToken(token))).run();
  };

  return {
    /** Starts a session after the password was verified, ending `previousToken`'s (a new token at every login). */
    start(previousToken?: string): string {
      const token = newSecretToken();
      const at = new Date(now());
      db.transaction((tx) => {
        if (previousToken) tx.delete(adminSessions).where(eq(adminSessions.tokenHash, hashSecretToken(previousToken))).run();
        tx.insert(adminSessions)
          .values({ tokenHash: hashSecretToken(token), createdAt: at, lastSeenAt: at, expiresAt: new Date(at.getTime() + absoluteMs) })
          .run();
      });
      return token;
    },

    /** Whether `token` is a live session; records the activity that keeps it from going idle. */
    isLive(token: string | undefined): boolean {
      if (!token) return false;
      const tokenHash = hashSecretToken(token);
      const row = db.select().from(adminSessions).where(eq(adminSessions.tokenHash, tokenHash)).get();
      if (!row) return false;
      const at = now();
      if (row.expiresAt.getTime() <= at || row.lastSeenAt.getTime() + idleMs <= at) {
        end(token);
        return false;
      }
      if (at - row.lastSeenAt.getTime() >= TOUCH_INTERVAL_MS) {
        db.update(adminSessions).set({ lastSeenAt: new Date(at) }).where(eq(adminSessions.tokenHash, tokenHash)).run();
      }
      return true;
    },

    end,

    /** Ends every session but `keepToken`'s; returns how many ended. */
    endAll: (keepToken?: string) => endAdminSessions(db, keepToken),

    /** Deletes expired and idle sessions; returns how many. */
    pruneExpired(): number {
      const at = now();
      return db
        .delete(adminSessions)
        .where(or(lt(adminSessions.expiresAt, new Date(at)), lt(adminSessions.lastSeenAt, new Date(at - idleMs))))
        .run().changes;
    },
  };
}

export type AdminSessions = ReturnType<typeof createAdminSessions>;
