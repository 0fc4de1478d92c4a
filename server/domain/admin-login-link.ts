/**
 * One-time login links, made on the host's machine (`npm run admin -- login-link`): the way in
 * when the login throttle holds back every untrusted browser on the host's network (ADR 006).
 * One link at a time, valid for LINK_LIFETIME_MS, used at most once; only its SHA-256 is stored.
 * Its 256 random bits need no throttle.
 */
import { createHash, randomBytes, timingSafeEqual } from "node:crypto";
import { eq } from "drizzle-orm";
import type { Db } from "../db/client";
import { settings } from "../db/schema";

const KEY = "admin_login_link";
export const LINK_LIFETIME_MS = 15 * 60_000;

const hash = (token: string) => createHash("sha256").update(token).digest();

/** Makes a new link token (the previous link stops working). */
export function createLoginLink(db: Db, now = Date.now()): string {
  const token = randomBytes(32).toString("base64url");
  const value = JSON.stringify({ hash: hash(token).toString("base64url"), expiresAt: now + LINK_LIFETIME_MS });
  db.insert(settings).values({ key: KEY, value }).onConflictDoUpdate({ target: settings.key, set: { value } }).run();
  return token;
}

/** Whether `token` is the current, unexpired link; if so it is used up. */
export function redeemLoginLink(db: Db, token: string, now = Date.now()): boolean {
  // Synchronous transaction: two tabs redeeming the same link cannot both succeed.
  return db.transaction(
    (tx) => {
      const row = tx.select().from(settings).where(eq(settings.key, KEY)).get();
      if (!row) return false;
      const link = JSON.parse(row.value) as { hash: string; expiresAt: number };
      const expected = Buffer.from(link.hash, "base64url");
      const given = hash(token);
      if (link.expiresAt <= now || !timingSafeEqual(given, expected)) return false;
      tx.delete(settings).where(eq(settings.key, KEY)).run();
      return true;
    },
    { behavior: "immediate" },
  );
}
