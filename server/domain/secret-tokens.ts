/**
 * Bearer secrets (session cookies, recovery links): 256 random bits, stored only as their
 * SHA-256. With that much entropy a plain hash is enough: nothing can be guessed from it.
 */
import { createHash, randomBytes } from "node:crypto";

export const newSecretToken = () => randomBytes(32).toString("base64url");

export const hashSecretToken = (token: string) => createHash("sha256").update(token).digest("base64url");
