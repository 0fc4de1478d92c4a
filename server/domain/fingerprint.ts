/**
 * Visitor fingerprints: the anonymised client IP (IPv4 /24, IPv6 /48), User-Agent and
 * Accept-Language, hashed with argon2id keyed by the server's fingerprint secret (as both
 * salt source and argon2 "secret"). The hash is deterministic, so it can be looked up by
 * equality; without the secret a stolen database cannot be used to test guesses.
 * Raw IPs and User-Agents are never stored or logged.
 */
import { createHmac } from "node:crypto";
import { isIPv4, isIPv6 } from "node:net";
import argon2 from "argon2";

/** IPv4 → last octet zeroed; IPv6 → its /48; IPv4-mapped IPv6 → as IPv4; anything else → "unknown". */
export function anonymiseIp(ip: string | undefined | null): string {
  if (!ip) return "unknown";
  const address = ip.trim().replace(/%.*$/, ""); // drop an IPv6 zone id
  const mapped = /^::ffff:(\d+\.\d+\.\d+\.\d+)$/i.exec(address);
  const v4 = mapped ? mapped[1]! : address;
  if (isIPv4(v4)) return `${v4.split(".").slice(0, 3).join(".")}.0`;
  if (!isIPv6(address)) return "unknown";
  const groups = expandIPv6(address);
  return `${groups.slice(0, 3).map((group) => parseInt(group, 16).toString(16)).join(":")}::/48`;
}

/** The eight 16-bit groups of a valid IPv6 address (handles "::" and a dotted IPv4 tail). */
export function expandIPv6(address: string): string[] {
  let text = address.toLowerCase();
  const dotted = /(\d+\.\d+\.\d+\.\d+)$/.exec(text);
  if (dotted) {
    const [a, b, c, d] = dotted[1]!.split(".").map(Number) as [number, number, number, number];
    text = text.slice(0, -dotted[1]!.length) + `${((a << 8) | b).toString(16)}:${((c << 8) | d).toString(16)}`;
  }
  const [head, tail] = text.split("::") as [string, string | undefined];
  const headGroups = head ? head.split(":") : [];
  const tailGroups = tail ? tail.split(":") : [];
  const zeros = tail === undefined ? [] : Array(8 - headGroups.length - tailGroups.length).fill("0");
  return [...headGroups, ...zeros, ...tailGroups];
}

export interface FingerprintSource {
  ip: string | undefined | null;
  userAgent: string | undefined | null;
  acceptLanguage: string | undefined | null;
}

/** The text that is hashed: headers are trimmed and capped, so a huge header cannot make hashing slow. */
export function fingerprintMaterial(source: FingerprintSource): string {
  const clean = (value: string | undefined | null) => (value ?? "").trim().slice(0, 512);
  return [anonymiseIp(source.ip), clean(source.userAgent), clean(source.acceptLanguage)].join("\n");
}

export type FingerprintHasher = (source: FingerprintSource) => Promise<string>;

export function createFingerprintHasher(secret: string, memoryCostKib: number): FingerprintHasher {
  const key = Buffer.from(secret);
  // A fixed, secret salt keeps the hash deterministic (needed for the indexed lookup) yet keyed.
  const salt = createHmac("sha256", key).update("promptgate fingerprint salt v1").digest().subarray(0, 16);
  return async (source) => {
    const hash = await argon2.hash(fingerprintMaterial(source), {
      type: argon2.argon2id,
      salt,
      secret: key,
      memoryCost: memoryCostKib,
      timeCost: 2,
      parallelism: 1,
      hashLength: 32,
      raw: true,
    });
    return hash.toString("base64url");
  };
}
