/**
 * Bearer secrets (session cookies, recovery links): 256 random bits, stored only as their
 * SHA-256. With that much entropy a plain hash is enough: nothing can be guessed from it.
 */
import { createHash, randomBytes, timingSafeEqual } from "node:crypto";

export const newSecretToken = () => randomBytes(32).toString("base64url");

export const hashSecretToken = (token: string) => createHash("sha256").update(token).digest("base64url");

/**
 * Whether two secrets (or their hashes) are the same, in time that does not depend on where
 * they differ. Compared as UTF-8 bytes: a string of the right length in characters may be
 * longer in bytes, which timingSafeEqual would refuse by throwing.
 */
export function sameSecret(given: string, expected: string): boolean {
  const [a, b] = [Buffer.from(given), Buffer.from(expected)];
  return a.length === b.length && timingSafeEqual(a, b);
}
