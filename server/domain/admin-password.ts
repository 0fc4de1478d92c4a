/**
 * The admin password: only its argon2id hash is stored (settings table). ADMIN_PASSWORD sets
 * or replaces it; without it, a password is generated on first start and shown once.
 */
import { randomBytes } from "node:crypto";
import argon2 from "argon2";
import { eq } from "drizzle-orm";
import type { Db } from "../db/client";
import { settings } from "../db/schema";

const KEY = "admin_password_hash";

/** Returns the generated password when one had to be made (to print once), else null. */
export async function ensureAdminPassword(db: Db, given: string | undefined): Promise<string | null> {
  const stored = db.select().from(settings).where(eq(settings.key, KEY)).get()?.value;
  if (given !== undefined && stored && (await argon2.verify(stored, given))) return null;
  if (given === undefined && stored) return null;
  const password = given ?? randomBytes(12).toString("base64url");
  const hash = await argon2.hash(password, { type: argon2.argon2id });
  db.insert(settings).values({ key: KEY, value: hash }).onConflictDoUpdate({ target: settings.key, set: { value: hash } }).run();
  return given === undefined ? password : null;
}

export async function verifyAdminPassword(db: Db, password: string): Promise<boolean> {
  const stored = db.select().from(settings).where(eq(settings.key, KEY)).get()?.value;
  if (!stored) return false;
  try {
    return await argon2.verify(stored, password);
  } catch {
    return false;
  }
}
