/**
 * Staff sessions (admins and moderators): a random cookie token per login, of which only the
 * SHA-256 is stored (`admin_sessions`), with the account it belongs to. A session ends at
 * logout, when idle too long, at its absolute expiry, when its account's sessions are revoked
 * (log out everywhere, password change, `npm run admin`) or when its account is removed.
 * The server reads the table on every staff request, so revocation by another process (the
 * command line) takes effect at once.
 */
import { and, eq, isNull, lt, ne, or } from "drizzle-orm";
import type { Db, Queryable } from "../db/client";
import { accounts, adminSessions, type AccountRole } from "../db/schema";
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
