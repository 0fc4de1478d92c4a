/**
 * TRUSTED_PROXIES (issue 9 §4): the proxies whose word promptgate takes, as addresses and CIDRs.
 *
 * One list decides both things a proxy can tell: the client's address (X-Forwarded-For, through
 * Express's `trust proxy`: walking the list from the right, the first address that is not a
 * trusted proxy is the client, so whatever a client wrote further left is ignored) and who is
 * signed in (X-Forwarded-User, -Email, -Preferred-Username and -Groups, as oauth2-proxy sends
 * them), read only when the TCP peer itself is in the list. From any other peer those headers
 * change nothing.
 */
import { BlockList } from "node:net";
import type { Request } from "express";
import type { AccountRole } from "../db/schema";
import { parseIp } from "../domain/fingerprint";

/** What a trusted proxy says about the person behind a request. */
export interface ProxyIdentity {
  /**
   * Stable, the person's colour: `user:<X-Forwarded-User>`, else `email:<X-Forwarded-Email>` in
   * lower case. Apart, so a user name chosen equal to someone's email is not that someone.
   */
  subject: string;
  /** X-Forwarded-User and X-Forwarded-Email: an admin gives a role to a person by one of them (server/domain/accounts.ts). */
  user: string | null;
  email: string | null;
  /** For people: X-Forwarded-Preferred-Username, else the email, else the subject. */
  displayName: string;
  groups: string[];
  /** From ADMIN_GROUPS and MODERATOR_GROUPS; null: a guest with a colour, unless an admin added their identity. */
  groupRole: AccountRole | null;
}

export interface ProxyTrustConfig {
  /** Addresses and CIDRs ("loopback" for 127.0.0.0/8 and ::1). */
  proxies: string[];
  adminGroups: string[];
  moderatorGroups: string[];
}

/** Throws with a readable message for an entry that is no address or CIDR. */
export function createProxyList(entries: string[]): (address: string | undefined) => boolean {
  const list = new BlockList();
  for (const entry of entries) {
    if (entry === "loopback") {
      list.addSubnet("127.0.0.0", 8, "ipv4");
      list.addAddress("::1", "ipv6");
      continue;
    }
    const [address, bits, ...rest] = entry.split("/");
    const parsed = parseIp(address);
    const prefix = bits === undefined ? undefined : Number(bits);
    const max = parsed?.version === 4 ? 32 : 128;
    if (!parsed || rest.length || (prefix !== undefined && (!/^\d+$/.test(bits!) || prefix > max))) {
      throw new Error(`"${entry.slice(0, 60)}" is not an IP address or CIDR (e.g. 10.0.0.0/8, 127.0.0.1, loopback)`);
    }
    const type = parsed.version === 4 ? "ipv4" : "ipv6";
    const normal = parsed.version === 4 ? parsed.octets.join(".") : address!;
    if (prefix === undefined) list.addAddress(normal, type);
    else list.addSubnet(normal, prefix, type);
  }
  return (address) => {
    const parsed = parseIp(address);
    if (!parsed) return false;
    return parsed.version === 4 ? list.check(parsed.octets.join("."), "ipv4") : list.check(address!.replace(/%.*$/, ""), "ipv6");
  };
}

/** A header's one value: trimmed, bounded, printable; anything else counts as absent. */
function headerValue(req: Request, name: string): string | null {
  const value = req.headers[name];
  if (typeof value !== "string") return null;
  const trimmed = value.trim();
  return trimmed && trimmed.length <= 256 && !/[\u0000-\u001f\u007f]/.test(trimmed) ? trimmed : null;
}

export function createProxyTrust({ proxies, adminGroups, moderatorGroups }: ProxyTrustConfig) {
  const isTrusted = createProxyList(proxies);
  const admins = new Set(adminGroups);
  const moderators = new Set(moderatorGroups);
  return {
    /** For Express's `trust proxy`: each hop of X-Forwarded-For, from the peer leftwards. */
    isTrusted,

    /** The identity a trusted proxy vouches for, else null (no proxy, an untrusted peer, no user). */
    identityOf(req: Request): ProxyIdentity | null {
      // The TCP peer, never req.ip: the client's address is not who speaks to us.
      if (!isTrusted(req.socket.remoteAddress)) return null;
      const user = headerValue(req, "x-forwarded-user");
      const email = headerValue(req, "x-forwarded-email");
      const subject = user !== null ? `user:${user}` : email !== null ? `email:${email.toLowerCase()}` : null;
      if (!subject) return null;
      const groups = (headerValue(req, "x-forwarded-groups") ?? "")
        .split(",")
        .map((group) => group.trim())
        .filter(Boolean);
      const groupRole = groups.some((group) => admins.has(group)) ? "admin" : groups.some((group) => moderators.has(group)) ? "moderator" : null;
      return { subject, user, email, displayName: headerValue(req, "x-forwarded-preferred-username") ?? email ?? user!, groups, groupRole };
    },
  };
}

export type ProxyTrust = ReturnType<typeof createProxyTrust>;
