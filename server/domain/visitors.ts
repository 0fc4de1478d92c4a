/**
 * Visitors and their cookie sessions. The cookie is the identity. A browser without one is a
 * new visitor unless it proves otherwise with a recovery code or link (./recovery.ts): at a
 * party many guests have identical phones on one network, so a fingerprint (./fingerprint.ts)
 * only decides whether to *offer* recovery ("are you Teal?"), never hands over an identity.
 */
import { and, eq, gt, lt, max, ne, sql } from "drizzle-orm";
import type { Db, Queryable } from "../db/client";
import { fingerprints, proxyIdentities, sessions, visitors } from "../db/schema";
import { colourFor, swatchCandidates, swatchOf, visitorIdForColourName, type Colour } from "./colours";
import { recordAudit } from "./audit";
import { DomainError } from "./errors";
import { anonymiseIp, type FingerprintHasher, type FingerprintSource } from "./fingerprint";
import { createRateLimiter, describeWait, type RateLimit } from "./rate-limit";
import { hashSecretToken, newSecretToken } from "./secret-tokens";
import { newRecoverySalt, recoveryLinkHash, type RecoveryKeys, type RecoveryProof } from "./recovery";

export interface Visitor {
  id: number;
  colour: Colour;
}

export interface VisitorState {
  visitor: Visitor;
  /** The identity this browser was offered ("are you Teal?") and has not answered yet. */
  offer: Visitor | null;
}

export interface NewSession extends VisitorState {
  /** The cookie value; only its SHA-256 is stored. */
  token: string;
}

export interface VisitorLimits {
  /** New identities per anonymised network (IPv4 /24, IPv6 /48). */
  newVisitorsPerNetwork: RateLimit;
  /** Wrong recovery codes or links per browser fingerprint, per network and per identity tried. */
  wrongRecoveryPerBrowser: RateLimit;
  wrongRecoveryPerNetwork: RateLimit;
  wrongRecoveryPerIdentity: RateLimit;
}

const VISITOR_SESSION_MS = 400 * 24 * 3_600_000; // the longest cookie lifetime browsers honour
/** An identity used by a browser this recently is in use: a look-alike newcomer is not offered it. */
export const IN_USE_MS = 5 * 60_000;
/** lastSeenAt is written at most this often per visitor (reads happen on every request). */
const LAST_SEEN_RESOLUTION_MS = 60_000;


type VisitorRow = typeof visitors.$inferSelect;
/** A live session's visitor and offered visitor, as SQLite answers (milliseconds, no Dates). */
interface SessionVisitorRow {
  id: number;
  hex: string;
  lastSeenAt: number | null;
  offerId: number | null;
  offerHex: string | null;
}
interface RecoveryRow {
  salt: string | null;
  codeHash: string | null;
  linkHash: string | null;
}
type SessionRow = typeof sessions.$inferSelect;

export interface VisitorServiceOptions {
  hashFingerprint: FingerprintHasher;
  recoveryKeys: RecoveryKeys;
  limits: VisitorLimits;
  now?: () => number;
}

export function createVisitorService(db: Db, { hashFingerprint, recoveryKeys, limits, now = Date.now }: VisitorServiceOptions) {
  const newVisitorLimiter = createRateLimiter(limits.newVisitorsPerNetwork, now);
  const wrongRecovery = {
    browser: createRateLimiter(limits.wrongRecoveryPerBrowser, now),
    network: createRateLimiter(limits.wrongRecoveryPerNetwork, now),
    identity: createRateLimiter(limits.wrongRecoveryPerIdentity, now),
  };

  function toVisitor(row: { id: number; hex: string }): Visitor {
    return { id: row.id, colour: { name: colourFor(row.id).name, ...swatchOf(row.hex) } };
  }

  // Prepared once. They run on the one connection, inside transactions too.
  const statements = {
    visitorById: db.select().from(visitors).where(eq(visitors.id, sql.placeholder("id"))).prepare(),
    liveSession: db
      .select()
      .from(sessions)
      .where(and(eq(sessions.tokenHash, sql.placeholder("tokenHash")), eq(sessions.kind, sql.placeholder("kind")), gt(sessions.expiresAt, sql.placeholder("nowMs"))))
      .prepare(),
    // Every page view and API call of a visitor runs this and the next: plain SQL, one join and
    // only the columns used, without the ORM's mapping of every column of three rows.
    sessionVisitor: db.$client.prepare<[string, number], SessionVisitorRow>(
      `SELECT v.id, v.hex, v.last_seen_at AS lastSeenAt, o.id AS offerId, o.hex AS offerHex
       FROM sessions s JOIN visitors v ON v.id = s.visitor_id LEFT JOIN visitors o ON o.id = s.offer_visitor_id
       WHERE s.token_hash = ? AND s.kind = 'visitor' AND s.expires_at > ?`,
    ),
    recoveryColumns: db.$client.prepare<[number], RecoveryRow>(
      "SELECT recovery_salt AS salt, recovery_code_hash AS codeHash, recovery_link_hash AS linkHash FROM visitors WHERE id = ?",
    ),
  };
  const visitorRow = (id: number | null | undefined) => (id ? statements.visitorById.get({ id }) : undefined);

  /** A fresh salt and the hashes of the code and link derived from it. */
  function recoveryColumns(visitorId: number) {
    const recoverySalt = newRecoverySalt();
    const { codeHash, linkHash } = recoveryKeys.hashesOf(visitorId, recoveryKeys.proofFor(visitorId, recoverySalt));
    return { recoverySalt, recoveryCodeHash: codeHash, recoveryLinkHash: linkHash };
  }

  /** Inserts a visitor with the next id and the first free swatch. Call inside a transaction. */
  /** `recovery: false` for a colour no browser may become (an API token's): no code or link exists for it. */
  function insertVisitor(tx: Queryable, { recovery = true } = {}): VisitorRow {
    const id = (tx.select({ last: max(visitors.id) }).from(visitors).get()?.last ?? 0) + 1;
    for (const hex of swatchCandidates(colourFor(id).hex)) {
      const taken = tx.select({ id: visitors.id }).from(visitors).where(eq(visitors.hex, hex)).get();
      if (taken) continue;
      return tx
        .insert(visitors)
        .values({ id, hex, lastSeenAt: new Date(now()), ...(recovery ? recoveryColumns(id) : {}) })
        .returning()
        .get();
    }
    throw new Error(`no free swatch near ${colourFor(id).hex}`);
  }

  function insertSession(tx: Queryable, values: Omit<typeof sessions.$inferInsert, "tokenHash" | "expiresAt">, lifetimeMs: number) {
    const token = newSecretToken();
    tx.insert(sessions)
      .values({ ...values, tokenHash: hashSecretToken(token), expiresAt: new Date(now() + lifetimeMs) })
      .run();
    return token;
  }

  function findSession(token: string | undefined, kind: "visitor") {
    if (!token) return undefined;
    return statements.liveSession.get({ tokenHash: hashSecretToken(token), kind, nowMs: now() });
  }

  function touch(id: number, lastSeenAt: Date | number | null): void {
    const time = now();
    if (lastSeenAt !== null && time - Number(lastSeenAt) < LAST_SEEN_RESOLUTION_MS) return;
    db.update(visitors).set({ lastSeenAt: new Date(time) }).where(eq(visitors.id, id)).run();
  }

  /**
   * Ends `session` and opens one for `visitorId` in its place (a new token: whoever knew the old
   * cookie does not get the recovered identity). Keeps the browser's fingerprint for its limits.
   */
  function switchSession(session: SessionRow | undefined, visitorId: number): NewSession {
    return db.transaction(
      (tx) => {
        if (session) tx.delete(sessions).where(eq(sessions.tokenHash, session.tokenHash)).run();
        // The fingerprint of this browser now stands for the proven identity, not the one just left.
        if (session?.fingerprintHash && session.visitorId) {
          tx.update(fingerprints)
            .set({ visitorId })
            .where(and(eq(fingerprints.hash, session.fingerprintHash), eq(fingerprints.visitorId, session.visitorId), eq(fingerprints.shared, false)))
            .run();
        }
        tx.update(visitors).set({ lastSeenAt: new Date(now()) }).where(eq(visitors.id, visitorId)).run();
        const token = insertSession(tx, { kind: "visitor", visitorId, origin: "recovered", fingerprintHash: session?.fingerprintHash ?? null }, VISITOR_SESSION_MS);
        return { token, visitor: toVisitor(visitorRow(visitorId)!), offer: null };
      },
      { behavior: "immediate" },
    );
  }

  function linkTarget(linkSecret: string): Visitor {
    const row = db.select().from(visitors).where(eq(visitors.recoveryLinkHash, recoveryLinkHash(linkSecret))).get();
    if (!row) throw new DomainError("RECOVERY_LINK_INVALID", "This link does not work (any more): its owner may have made a new one.");
    return toVisitor(row);
  }

  function renewRecovery(visitorId: number): RecoveryProof {
    const columns = recoveryColumns(visitorId);
    db.update(visitors).set(columns).where(eq(visitors.id, visitorId)).run();
    return recoveryKeys.proofFor(visitorId, columns.recoverySalt);
  }

  /**
   * "Make a new code and link": the old ones stop working, and every other browser that is this
   * visitor (perhaps through them) is signed out; `keepToken`'s browser stays.
   */
  function replaceRecovery(visitorId: number, keepToken: string | undefined): void {
    db.transaction(
      (tx) => {
        renewRecovery(visitorId);
        const keep = keepToken ? hashSecretToken(keepToken) : "";
        tx.delete(sessions)
          .where(and(eq(sessions.visitorId, visitorId), eq(sessions.kind, "visitor"), ne(sessions.tokenHash, keep)))
          .run();
      },
      { behavior: "immediate" },
    );
  }

  function rateLimited(waitMs: number, what: string): DomainError {
    return new DomainError("RATE_LIMITED", `${what} Try again in ${describeWait(waitMs)}.`, waitMs);
  }

  return {
    /** A new visitor with no browser behind it: the colour an API token with the `submit` scope sends as. */
    createDetached(): Visitor {
      return db.transaction((tx) => toVisitor(insertVisitor(tx, { recovery: false })), { behavior: "immediate" });
    },

    /**
     * The colour of a person a trusted proxy vouches for (server/http/trusted-proxy.ts): the same
     * on every device, made on their first request, which the audit log keeps as a login of that
     * visitor (never the identity: it is stored only hashed). No cookie, no fingerprint: the
     * proxy's headers are the identity on every request.
     */
    forProxyIdentity(subject: string): Visitor {
      const subjectHash = hashSecretToken(`proxy:${subject}`);
      const boundVisitor = (tx: Queryable) =>
        visitorRow(tx.select({ visitorId: proxyIdentities.visitorId }).from(proxyIdentities).where(eq(proxyIdentities.subjectHash, subjectHash)).get()?.visitorId);
      const row = boundVisitor(db);
      if (row) {
        touch(row.id, row.lastSeenAt);
        return toVisitor(row);
      }
      // Immediate, and looked up again inside: two first requests at once make one colour, not two.
      return db.transaction(
        (tx) => {
          const bound = boundVisitor(tx);
          if (bound) return toVisitor(bound);
          const visitor = insertVisitor(tx);
          // Its visitor deleted (retention, end of the event): the identity gets a new colour.
          tx.insert(proxyIdentities).values({ subjectHash, visitorId: visitor.id }).onConflictDoUpdate({ target: proxyIdentities.subjectHash, set: { visitorId: visitor.id } }).run();
          recordAudit(tx, { actor: `visitor ${visitor.id}`, action: "login.proxy", details: { role: "guest", change: "created" } });
          return toVisitor(visitor);
        },
        { behavior: "immediate" },
      );
    },

    /** A visitor by id, or null (an API token's own colour). */
    byId(id: number | null): Visitor | null {
      const row = visitorRow(id);
      return row ? toVisitor(row) : null;
    },

    /** The visitor of a session cookie and any open offer, or null. One indexed lookup, never a hash. */
    bySession(token: string | undefined): VisitorState | null {
      const row = token ? statements.sessionVisitor.get(hashSecretToken(token), now()) : undefined;
      if (!row) return null;
      touch(row.id, row.lastSeenAt);
      return { visitor: toVisitor(row), offer: row.offerId !== null ? toVisitor({ id: row.offerId, hex: row.offerHex! }) : null };
    },

    /**
     * A browser without a valid cookie: always a new visitor. Its fingerprint (one argon2 hash,
     * outside the transaction) may match an earlier visitor, who is then *offered*, unless that
     * identity is in use in another browser right now: then two people share the fingerprint,
     * which is marked shared and never offers anyone again.
     */
    async arrive(source: FingerprintSource): Promise<NewSession> {
      // Before the hash: a flood of cookie-less requests must not buy an argon2 hash each.
      const waitMs = newVisitorLimiter.take(`net:${anonymiseIp(source.ip)}`);
      if (waitMs > 0) throw rateLimited(waitMs, "Too many new visitors from your network right now.");
      const fingerprintHash = await hashFingerprint(source);
      // Synchronous and immediate: concurrent first visits are serialised here, never racing on ids.
      return db.transaction(
        (tx) => {
          const visitor = insertVisitor(tx);
          const known = tx.select().from(fingerprints).where(eq(fingerprints.hash, fingerprintHash)).get();
          let offer: VisitorRow | undefined;
          if (!known) {
            tx.insert(fingerprints).values({ hash: fingerprintHash, visitorId: visitor.id }).run();
          } else if (!known.shared) {
            const earlier = visitorRow(known.visitorId);
            const inUse = !earlier || (earlier.lastSeenAt !== null && now() - earlier.lastSeenAt.getTime() < IN_USE_MS);
            if (inUse) tx.update(fingerprints).set({ shared: true }).where(eq(fingerprints.hash, fingerprintHash)).run();
            else offer = earlier;
          }
          const token = insertSession(
            tx,
            { kind: "visitor", visitorId: visitor.id, origin: "new", fingerprintHash, offerVisitorId: offer?.id ?? null },
            VISITOR_SESSION_MS,
          );
          return { token, visitor: toVisitor(visitor), offer: offer ? toVisitor(offer) : null };
        },
        { behavior: "immediate" },
      );
    },

    /**
     * "I'm new": the offer is withdrawn for good, and the fingerprint that made it is marked
     * shared, so it never offers anyone again.
     */
    declineOffer(token: string | undefined): void {
      const session = findSession(token, "visitor");
      if (!session?.offerVisitorId) throw new DomainError("NO_SUCH_OFFER", "There is nothing to answer: you already have your own colour.");
      db.transaction(
        (tx) => {
          if (session.fingerprintHash) tx.update(fingerprints).set({ shared: true }).where(eq(fingerprints.hash, session.fingerprintHash)).run();
          tx.update(sessions).set({ offerVisitorId: null }).where(eq(sessions.tokenHash, session.tokenHash)).run();
        },
        { behavior: "immediate" },
      );
    },

    /**
     * Proves an identity with its recovery code: the offered one, or the one named by its colour.
     * Wrong codes count against the browser, its network and the identity tried, and say nothing
     * about whether the colour exists.
     */
    recoverWithCode(token: string | undefined, attempt: { code: string; colourName?: string }, source: Pick<FingerprintSource, "ip">): NewSession {
      const session = findSession(token, "visitor");
      const targetId = attempt.colourName ? visitorIdForColourName(attempt.colourName) : session?.offerVisitorId;
      const browserKey = `fp:${session?.fingerprintHash ?? anonymiseIp(source.ip)}`;
      const networkKey = `net:${anonymiseIp(source.ip)}`;
      const identityKey = `id:${targetId ?? "none"}`;
      // The network's count stops only browsers that have failed themselves: one guest typing
      // junk must not lock every other guest on the party Wi-Fi out of their colours. The
      // colour's own count is what bounds guessing a code from many browsers or networks.
      const waits = [wrongRecovery.browser.retryAfterMs(browserKey), wrongRecovery.identity.retryAfterMs(identityKey)];
      if (wrongRecovery.browser.hasUsed(browserKey)) waits.push(wrongRecovery.network.retryAfterMs(networkKey));
      const waitMs = Math.max(...waits);
      if (waitMs > 0) throw rateLimited(waitMs, "Too many wrong codes.");

      const target = visitorRow(targetId);
      if (!target || !recoveryKeys.codeMatches(target.id, target.recoveryCodeHash, attempt.code)) {
        wrongRecovery.browser.take(browserKey);
        wrongRecovery.network.take(networkKey);
        wrongRecovery.identity.take(identityKey);
        throw new DomainError("RECOVERY_FAILED", "That code does not match. It is shown on your colour's page on your other device.");
      }
      return switchSession(session, target.id);
    },

    /** The colour a recovery link restores (to confirm before using it). */
    linkTarget,

    /** Opens a recovery link: this browser becomes its visitor (replacing any session it had). */
    recoverWithLink(token: string | undefined, linkSecret: string): NewSession {
      const target = linkTarget(linkSecret);
      return switchSession(findSession(token, "visitor"), target.id);
    },

    /** The visitor's recovery code and link secret, for their own page. */
    recoveryProof(visitorId: number): RecoveryProof {
      const row = statements.recoveryColumns.get(visitorId)!;
      if (row.salt) {
        const proof = recoveryKeys.proofFor(visitorId, row.salt);
        // The stored hashes follow the key: if it changed, the proof shown is the one that works.
        const hashes = recoveryKeys.hashesOf(visitorId, proof);
        if (hashes.codeHash === row.codeHash && hashes.linkHash === row.linkHash) return proof;
      }
      return renewRecovery(visitorId);
    },

    replaceRecovery,

    /** Deletes expired sessions; returns how many. */
    pruneExpiredSessions(): number {
      return db.delete(sessions).where(lt(sessions.expiresAt, new Date(now()))).run().changes;
    },
  };
}

export type VisitorService = ReturnType<typeof createVisitorService>;
