/**
 * API tokens for scripts (issue 9 §5), sent as `Authorization: Bearer <token>`. Each is 256
 * random bits, shown once; only its SHA-256 is stored and looked up by equality, so checking one
 * costs a hash, never argon2 (and it is never derived from a password, unlike seed 004's).
 * Scopes: `submit` (send prompts as the token's own colour), `moderate` (approve, deny, retry,
 * mute, reveal), `read` (the moderation list and images). Revoking deletes the row: the next
 * request with it is refused.
 */
import { asc, eq } from "drizzle-orm";
import { z } from "zod";
import type { Db } from "../db/client";
import { API_TOKEN_SCOPES, apiTokens, visitors, type ApiTokenScope } from "../db/schema";
import { checkAccountName } from "./accounts";
import { DomainError } from "./errors";
import { hashSecretToken, newSecretToken } from "./secret-tokens";

/** A recognisable prefix lets secret scanners find leaked tokens. */
const PREFIX = "pgt_";
const TOKEN_SHAPE = /^pgt_[A-Za-z0-9_-]{43}$/;
const TOUCH_INTERVAL_MS = 60_000;

export const ApiTokenScopesSchema = z.array(z.enum(API_TOKEN_SCOPES)).min(1, { message: "Choose at least one scope." }).max(API_TOKEN_SCOPES.length);

export interface ApiToken {
  id: number;
  name: string;
  scopes: ApiTokenScope[];
  visitorId: number | null;
}

export interface ApiTokenListing extends ApiToken {
  createdBy: string;
  createdAt: Date;
  lastUsedAt: Date | null;
}

/** Creates a token; the secret is in this answer only. `visitorId` is the colour a `submit` token sends as. */
export function createApiToken(db: Db, { name, scopes, createdBy, visitorId }: { name: string; scopes: ApiTokenScope[]; createdBy: string; visitorId: number | null }) {
  checkAccountName(name);
  const unique = [...new Set(scopes)];
  const token = `${PREFIX}${newSecretToken()}`;
  const row = db.insert(apiTokens).values({ name, scopes: unique, createdBy, visitorId, tokenHash: hashSecretToken(token) }).onConflictDoNothing({ target: apiTokens.name }).returning({ id: apiTokens.id }).get();
  if (!row) throw new DomainError("TOKEN_EXISTS", `There is already a token named "${name}": revoke it first, or choose another name.`);
  return { name, scopes: unique, token };
}

export function listApiTokens(db: Db): ApiTokenListing[] {
  return db
    .select({
      id: apiTokens.id,
      name: apiTokens.name,
      scopes: apiTokens.scopes,
      visitorId: apiTokens.visitorId,
      createdBy: apiTokens.createdBy,
      createdAt: apiTokens.createdAt,
      lastUsedAt: apiTokens.lastUsedAt,
    })
    .from(apiTokens)
    .orderBy(asc(apiTokens.name))
    .all();
}

export function revokeApiToken(db: Db, name: string): void {
  db.transaction(
    (tx) => {
      const revoked = tx.delete(apiTokens).where(eq(apiTokens.name, name)).returning({ visitorId: apiTokens.visitorId }).get();
      if (!revoked) throw new DomainError("TOKEN_NOT_FOUND", `There is no token named "${name.slice(0, 80)}".`);
      // The colour stays with its prompts, but nobody may become it: no code or link opens it
      // any more, even one a database from before tokens lost their recovery proof still holds.
      if (revoked.visitorId !== null) {
        tx.update(visitors).set({ recoverySalt: null, recoveryCodeHash: null, recoveryLinkHash: null }).where(eq(visitors.id, revoked.visitorId)).run();
      }
    },
    { behavior: "immediate" },
  );
}

/** Whether the token is still there (not revoked): streams opened with it ask on every event. */
export function isApiTokenLive(db: Db, id: number): boolean {
  return db.select({ id: apiTokens.id }).from(apiTokens).where(eq(apiTokens.id, id)).get() !== undefined;
}

/** The live token `secret` is, else null; records its use (at most once a minute). A malformed secret costs no query. */
export function authenticateApiToken(db: Db, secret: string, now = Date.now()): ApiToken | null {
  if (!TOKEN_SHAPE.test(secret)) return null;
  const row = db.select().from(apiTokens).where(eq(apiTokens.tokenHash, hashSecretToken(secret))).get();
  if (!row) return null;
  if (!row.lastUsedAt || now - row.lastUsedAt.getTime() >= TOUCH_INTERVAL_MS) {
    db.update(apiTokens).set({ lastUsedAt: new Date(now) }).where(eq(apiTokens.id, row.id)).run();
  }
  return { id: row.id, name: row.name, scopes: row.scopes, visitorId: row.visitorId };
}
