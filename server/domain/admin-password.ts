/**
 * The first admin's password (the account named "admin", ./accounts.ts): set by ADMIN_PASSWORD,
 * generated on first start (and shown once), changed in the admin UI, or reset with
 * `npm run admin -- reset-password`. Every change ends that account's sessions.
 *
 * ADMIN_PASSWORD applies when it is first given or when its value changes: the hash it was last
 * applied as is kept (settings), so a restart with the same variable does not undo a change made since.
 * A common one is refused when it would be applied, so one applied before that rule stops no start.
 */
import { randomBytes } from "node:crypto";
import argon2 from "argon2";
import { eq } from "drizzle-orm";
import type { Db } from "../db/client";
import { accounts, adminSessions, settings } from "../db/schema";
import { StartupError } from "../startup-error";
import { FIRST_ADMIN, hashPassword } from "./accounts";
import { isCommonPassword } from "./common-passwords";

/** Where the hash lived before accounts: moved into the admin's account at start. */
const LEGACY_HASH_KEY = "admin_password_hash";
/** The hash under which ADMIN_PASSWORD was last applied (argon2id too: the variable's value is never stored). */
const APPLIED_ENV_KEY = "admin_password_env_hash";

const read = (db: Db, key: string) => db.select().from(settings).where(eq(settings.key, key)).get()?.value;
const storedHash = (db: Db) => db.select({ hash: accounts.passwordHash }).from(accounts).where(eq(accounts.name, FIRST_ADMIN)).get()?.hash;

async function matches(hash: string | undefined, password: string): Promise<boolean> {
  if (!hash) return false;
  try {
    return await argon2.verify(hash, password);
  } catch {
    return false;
  }
}

/** Stores a new password for "admin" (creating the account) and ends its sessions in the same transaction. */
export async function setAdminPassword(db: Db, password: string, { fromEnv = false } = {}): Promise<string> {
  const hash = await hashPassword(password);
  db.transaction((tx) => {
    const account = tx
      .insert(accounts)
      .values({ name: FIRST_ADMIN, role: "admin", passwordHash: hash })
      .onConflictDoUpdate({ target: accounts.name, set: { passwordHash: hash } })
      .returning({ id: accounts.id })
      .get();
    if (fromEnv) tx.insert(settings).values({ key: APPLIED_ENV_KEY, value: hash }).onConflictDoUpdate({ target: settings.key, set: { value: hash } }).run();
    tx.delete(adminSessions).where(eq(adminSessions.accountId, account.id)).run();
  });
  return hash;
}

/** A new random password, stored (the admin's sessions end); the caller shows it once. */
export async function resetAdminPassword(db: Db): Promise<string> {
  const password = randomBytes(12).toString("base64url");
  await setAdminPassword(db, password);
  return password;
}

/** A database from before accounts keeps its admin password: the hash moves into the "admin" account. */
function adoptLegacyHash(db: Db): void {
  const legacy = read(db, LEGACY_HASH_KEY);
  if (!legacy) return;
  db.transaction((tx) => {
    tx.insert(accounts).values({ name: FIRST_ADMIN, role: "admin", passwordHash: legacy }).onConflictDoNothing().run();
    tx.delete(settings).where(eq(settings.key, LEGACY_HASH_KEY)).run();
  });
}

/** At start: applies ADMIN_PASSWORD if new or changed; generates a password if none is stored. Returns a generated one (to print once), else null. */
export async function ensureAdminPassword(db: Db, given: string | undefined): Promise<string | null> {
  adoptLegacyHash(db);
  const stored = storedHash(db);
  if (given === undefined) return stored ? null : resetAdminPassword(db);
  const applied = read(db, APPLIED_ENV_KEY);
  if (applied) {
    if (await matches(applied, given)) return null;
  } else if (stored && (await matches(stored, given))) {
    // A database from before the marker, already holding this password: only remember it was applied.
    db.insert(settings).values({ key: APPLIED_ENV_KEY, value: stored }).run();
    return null;
  }
  if (isCommonPassword(given)) throw new StartupError("ADMIN_PASSWORD is among the 10,000 most common passwords, the first an attacker tries: choose another");
  await setAdminPassword(db, given, { fromEnv: true });
  return null;
}
