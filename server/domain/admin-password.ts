/**
 * The admin password: only its argon2id hash is stored (settings table). It is set by
 * ADMIN_PASSWORD, generated on first start (and shown once), changed in the admin UI, or reset
 * with `npm run admin -- reset-password`. Every change ends all admin sessions.
 *
 * ADMIN_PASSWORD applies when it is first given or when its value changes: the hash it was last
 * applied as is kept, so a restart with the same variable does not undo a change made since.
 */
import { randomBytes } from "node:crypto";
import argon2 from "argon2";
import { eq } from "drizzle-orm";
import type { Db } from "../db/client";
import { settings } from "../db/schema";
import { endAdminSessions } from "./admin-sessions";

const HASH_KEY = "admin_password_hash";
/** The hash under which ADMIN_PASSWORD was last applied (argon2id too: the variable's value is never stored). */
const APPLIED_ENV_KEY = "admin_password_env_hash";

const read = (db: Db, key: string) => db.select().from(settings).where(eq(settings.key, key)).get()?.value;

async function matches(hash: string | undefined, password: string): Promise<boolean> {
  if (!hash) return false;
  try {
    return await argon2.verify(hash, password);
  } catch {
    return false;
  }
}

/** Stores a new password and ends every admin session in the same transaction. Returns its hash. */
export async function setAdminPassword(db: Db, password: string, { fromEnv = false } = {}): Promise<string> {
  const hash = await argon2.hash(password, { type: argon2.argon2id });
  const keys = fromEnv ? [HASH_KEY, APPLIED_ENV_KEY] : [HASH_KEY];
  db.transaction((tx) => {
    for (const key of keys) tx.insert(settings).values({ key, value: hash }).onConflictDoUpdate({ target: settings.key, set: { value: hash } }).run();
    endAdminSessions(tx);
  });
  return hash;
}

/** A new random password, stored (all admin sessions end); the caller shows it once. */
export async function resetAdminPassword(db: Db): Promise<string> {
  const password = randomBytes(12).toString("base64url");
  await setAdminPassword(db, password);
  return password;
}

/** At start: applies ADMIN_PASSWORD if new or changed; generates a password if none is stored. Returns a generated one (to print once), else null. */
export async function ensureAdminPassword(db: Db, given: string | undefined): Promise<string | null> {
  const stored = read(db, HASH_KEY);
  if (given === undefined) return stored ? null : resetAdminPassword(db);
  const applied = read(db, APPLIED_ENV_KEY);
  if (applied) {
    if (await matches(applied, given)) return null;
  } else if (stored && (await matches(stored, given))) {
    // A database from before the marker, already holding this password: only remember it was applied.
    db.insert(settings).values({ key: APPLIED_ENV_KEY, value: stored }).run();
    return null;
  }
  await setAdminPassword(db, given, { fromEnv: true });
  return null;
}

export async function verifyAdminPassword(db: Db, password: string): Promise<boolean> {
  return matches(read(db, HASH_KEY), password);
}
