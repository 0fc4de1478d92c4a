/**
 * HMAC signatures under the session key ring (server/secrets.ts): signed with the newest key,
 * accepted under any live one. `verify` says which, so a caller can sign an older cookie again.
 */
import { createHmac } from "node:crypto";
import { sameSecret } from "../domain/secret-tokens";
import type { KeyRing } from "../secrets";

export type Verified = "current" | "older" | null;

export function createSigner(keys: KeyRing, purpose: string) {
  const mac = (key: string, data: string) => createHmac("sha256", key).update(`${purpose}:${data}`).digest("base64url");
  return {
    sign: (data: string) => mac(keys.current(), data),
    verify(data: string, signature: unknown): Verified {
      if (typeof signature !== "string") return null;
      const live = keys.verifying();
      for (const [index, key] of live.entries()) if (sameSecret(signature, mac(key, data))) return index === 0 ? "current" : "older";
      return null;
    },
  };
}

export type Signer = ReturnType<typeof createSigner>;
