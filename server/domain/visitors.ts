/**
 * Visitors and their cookie sessions. The cookie, not the fingerprint, is the identity:
 * a fingerprint only recovers a visitor whose cookie is gone, and recovery gives nothing
 * beyond that visitor's own prompts.
 */
import { createHash, randomBytes } from "node:crypto";
import { and, eq, gt, lt, max } from "drizzle-orm";
import type { Db, Queryable } from "../db/client";
import { fingerprints, sessions, visitors } from "../db/schema";
import { colourFor, swatchCandidates, swatchOf, type Colour } from "./colours";
import { DomainError } from "./errors";
import type { FingerprintHasher, FingerprintSource } from "./fingerprint";

export interface Visitor {
  id: number;
  colour: Colour;
}

export interface VisitorSession {
  /** The cookie value; only its SHA-256 is stored. */
  token: string;
  visitor: Visitor;
  /** "new": first visit (or a fresh start); "recognised": cookie lost, fingerprint matched. */
  origin: "new" | "recognised";
}

const VISITOR_SESSION_MS = 400 * 24 * 3_600_000; // the longest cookie lifetime browsers honour

const hashToken = (token: string) => createHash("sha256").update(token).digest("base64url");
const newToken = () => randomBytes(32).toString("base64url");

export function createVisitorService(db: Db, hashFingerprint: FingerprintHasher) {
  function toVisitor(row: { id: number; hex: string }): Visitor {
    return { id: row.id, colour: { name: colourFor(row.id).name, ...swatchOf(row.hex) } };
  }

  /** Inserts a visitor with the next id and the first free swatch. Call inside a transaction. */
  function insertVisitor(tx: Queryable): Visitor {
    const id = (tx.select({ last: max(visitors.id) }).from(visitors).get()?.last ?? 0) + 1;
    for (const hex of swatchCandidates(colourFor(id).hex)) {
      const taken = tx.select({ id: visitors.id }).from(visitors).where(eq(visitors.hex, hex)).get();
      if (taken) continue;
      tx.insert(visitors).values({ id, hex }).run();
      return toVisitor({ id, hex });
    }
    throw new Error(`no free swatch near ${colourFor(id).hex}`);
  }

  function insertSession(tx: Queryable, values: Omit<typeof sessions.$inferInsert, "tokenHash" | "expiresAt">, lifetimeMs: number) {
    const token = newToken();
    tx.insert(sessions)
      .values({ ...values, tokenHash: hashToken(token), expiresAt: new Date(Date.now() + lifetimeMs) })
      .run();
    return token;
  }

  function findSession(token: string | undefined, kind: "visitor") {
    if (!token) return undefined;
    return db
      .select()
      .from(sessions)
      .where(and(eq(sessions.tokenHash, hashToken(token)), eq(sessions.kind, kind), gt(sessions.expiresAt, new Date())))
      .get();
  }

  return {
    /** The visitor of a session cookie, or null. Costs one indexed lookup, never a hash. */
    bySession(token: string | undefined): Visitor | null {
      const session = findSession(token, "visitor");
      if (!session?.visitorId) return null;
      const row = db.select().from(visitors).where(eq(visitors.id, session.visitorId)).get();
      return row ? toVisitor(row) : null;
    },

    /**
     * For a request without a valid cookie: recognise the visitor by fingerprint, or create one.
     * One argon2 hash (outside the transaction), then one indexed lookup.
     */
    async recognise(source: FingerprintSource): Promise<VisitorSession> {
      const fingerprintHash = await hashFingerprint(source);
      // Synchronous transaction: concurrent first visits are serialised here, never racing on ids.
      return db.transaction(
        (tx) => {
          const known = tx.select().from(fingerprints).where(eq(fingerprints.hash, fingerprintHash)).get();
          if (known?.visitorId && !known.shared) {
            const row = tx.select().from(visitors).where(eq(visitors.id, known.visitorId)).get()!;
            const token = insertSession(tx, { kind: "visitor", visitorId: row.id, origin: "recognised", fingerprintHash }, VISITOR_SESSION_MS);
            return { token, visitor: toVisitor(row), origin: "recognised" as const };
          }
          const visitor = insertVisitor(tx);
          if (!known) tx.insert(fingerprints).values({ hash: fingerprintHash, visitorId: visitor.id }).run();
          const token = insertSession(tx, { kind: "visitor", visitorId: visitor.id, origin: "new" }, VISITOR_SESSION_MS);
          return { token, visitor, origin: "new" as const };
        },
        { behavior: "immediate" },
      );
    },

    /**
     * "That's not me, I'm new": only for a session recognised by fingerprint. The fingerprint
     * is marked shared (never used to recognise anyone again) and the caller gets a new visitor.
     */
    startFresh(token: string | undefined): VisitorSession {
      const session = findSession(token, "visitor");
      if (!session || session.origin !== "recognised" || !session.fingerprintHash) {
        throw new DomainError("NOT_RECOGNISED", "This browser was not recognised by its fingerprint, so it already has its own colour.");
      }
      return db.transaction(
        (tx) => {
          tx.update(fingerprints).set({ shared: true }).where(eq(fingerprints.hash, session.fingerprintHash!)).run();
          tx.delete(sessions).where(eq(sessions.tokenHash, session.tokenHash)).run();
          const visitor = insertVisitor(tx);
          const newSessionToken = insertSession(tx, { kind: "visitor", visitorId: visitor.id, origin: "new" }, VISITOR_SESSION_MS);
          return { token: newSessionToken, visitor, origin: "new" as const };
        },
        { behavior: "immediate" },
      );
    },

    /** Deletes expired sessions; returns how many. */
    pruneExpiredSessions(): number {
      return db.delete(sessions).where(lt(sessions.expiresAt, new Date())).run().changes;
    },
  };
}

export type VisitorService = ReturnType<typeof createVisitorService>;
