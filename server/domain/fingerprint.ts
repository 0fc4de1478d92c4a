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

export type ParsedIp = { version: 4; octets: string[] } | { version: 6; groups: string[] };

/** A client address, with IPv4-mapped IPv6 read as IPv4 and an IPv6 zone id dropped; null if it is no IP. */
export function parseIp(ip: string | undefined | null): ParsedIp | null {
  if (!ip) return null;
  const address = ip.trim().replace(/%.*$/, "");
  const v4 = /^::ffff:(\d+\.\d+\.\d+\.\d+)$/i.exec(address)?.[1] ?? address;
  if (isIPv4(v4)) return { version: 4, octets: v4.split(".") };
  return isIPv6(address) ? { version: 6, groups: expandIPv6(address) } : null;
}

/** The first `count` groups of an IPv6 address as a /(16 × count) prefix, e.g. "2001:db8:1::/48". */
export function ipv6Prefix(groups: string[], count: number): string {
  return `${groups.slice(0, count).map((group) => parseInt(group, 16).toString(16)).join(":")}::/${count * 16}`;
}

/** IPv4 → last octet zeroed; IPv6 → its /48; IPv4-mapped IPv6 → as IPv4; anything else → "unknown". */
export function anonymiseIp(ip: string | undefined | null): string {
  const parsed = parseIp(ip);
  if (!parsed) return "unknown";
  return parsed.version === 4 ? `${parsed.octets.slice(0, 3).join(".")}.0` : ipv6Prefix(parsed.groups, 3);
}

/** The eight 16-bit groups of a valid IPv6 address (handles "::" and a dotted IPv4 tail). */
function expandIPv6(address: string): string[] {
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
