/**
 * Per-generator credentials for the embedded broker (issue 7 §4): the admin adds a generator by
 * name and gets its token once; the generator connects with username = name and password =
 * token. Only the token's SHA-256 is stored: 256 random bits need no slow hash. Revoking deletes
 * the row; the server disconnects the live client (server/generator-access.ts).
 */
import { createHash, timingSafeEqual } from "node:crypto";
import { asc, eq } from "drizzle-orm";
import { GeneratorIdSchema } from "../../broker/contract";
import type { Db } from "../db/client";
import { generatorCredentials } from "../db/schema";
import { LOCAL_GENERATOR_ID } from "../env";
import { DomainError } from "./errors";
import { newSecretToken } from "./secret-tokens";

export interface GeneratorCredential {
  name: string;
  createdAt: Date;
  lastSeenAt: Date | null;
}

const digest = (token: string) => createHash("sha256").update(token).digest();
/** Compared against when the name is unknown, so a miss costs what a hit costs. */
const NO_SUCH_GENERATOR = digest("");

function checkName(name: string): string {
  const parsed = GeneratorIdSchema.safeParse(name);
  if (!parsed.success) throw new DomainError("INVALID_GENERATOR_NAME", `"${name}" is not a generator name: use 1–128 letters, digits, '.', '_' or '-'.`);
  if (name === LOCAL_GENERATOR_ID) throw new DomainError("INVALID_GENERATOR_NAME", `"${name}" is the built-in generator's name: choose another.`);
  return name;
}

/** Adds a generator; returns its token, which is never shown again. */
export function addGeneratorCredential(db: Db, name: string): { name: string; token: string } {
  checkName(name);
  const token = newSecretToken();
  const inserted = db
    .insert(generatorCredentials)
    .values({ name, tokenHash: digest(token).toString("base64url") })
    .onConflictDoNothing()
    .run();
  if (inserted.changes === 0) throw new DomainError("GENERATOR_EXISTS", `A generator named "${name}" already exists: revoke it first to give it a new token.`);
  return { name, token };
}

/** Every generator with a credential, by name. */
export function listGeneratorCredentials(db: Db): GeneratorCredential[] {
  return db
    .select({ name: generatorCredentials.name, createdAt: generatorCredentials.createdAt, lastSeenAt: generatorCredentials.lastSeenAt })
    .from(generatorCredentials)
    .orderBy(asc(generatorCredentials.name))
    .all();
}

/** Deletes a generator's credential: it can no longer connect. */
export function revokeGeneratorCredential(db: Db, name: string): void {
  const deleted = db.delete(generatorCredentials).where(eq(generatorCredentials.name, name)).run();
  if (deleted.changes === 0) throw new DomainError("GENERATOR_NOT_FOUND", `There is no generator named "${name}".`);
}

/** Whether `token` is the token of generator `name`; constant time in the token. */
export function verifyGeneratorCredential(db: Db, name: string, token: string): boolean {
  const row = db.select({ tokenHash: generatorCredentials.tokenHash }).from(generatorCredentials).where(eq(generatorCredentials.name, name)).get();
  const expected = row ? Buffer.from(row.tokenHash, "base64url") : NO_SUCH_GENERATOR;
  return timingSafeEqual(digest(token), expected) && row !== undefined;
}

/** The name of every generator that has a credential. */
export function existingGeneratorNames(db: Db): Set<string> {
  return new Set(
    db
      .select({ name: generatorCredentials.name })
      .from(generatorCredentials)
      .all()
      .map((row) => row.name),
  );
}

/** Notes that a generator connected or disconnected just now. */
export function markGeneratorSeen(db: Db, name: string, at = new Date()): void {
  db.update(generatorCredentials).set({ lastSeenAt: at }).where(eq(generatorCredentials.name, name)).run();
}
