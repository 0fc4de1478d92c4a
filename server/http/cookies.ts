/**
 * Cookie names and reading; all promptgate cookies are HttpOnly, SameSite=Lax, Path=/, without
 * Domain, and over https Secure with the `__Host-` prefix: a browser then keeps such a cookie
 * only from this very host over https, so neither a sibling subdomain nor a plain-http page on
 * the way can plant or overwrite a session, CSRF nonce or pass (ASVS 3.4.4). Plain http (a party
 * on a LAN without TLS) cannot have the prefix, and uses the bare names.
 */
import type { Request, Response } from "express";

export const COOKIES = {
  visitor: "pg_visitor",
  admin: "pg_admin",
  csrf: "pg_csrf",
  device: "pg_device",
  site: "pg_site",
} as const;

/** The name a cookie has on this request: over https, a bare name is one anybody could have planted, and is never read. */
export const cookieName = (req: Request, name: string): string => (req.secure ? `__Host-${name}` : name);

export function readCookie(req: Request, name: string): string | undefined {
  const header = req.headers.cookie;
  if (!header) return undefined;
  const wanted = cookieName(req, name);
  for (const part of header.split(";")) {
    const eq = part.indexOf("=");
    if (eq > 0 && part.slice(0, eq).trim() === wanted) {
      try {
        return decodeURIComponent(part.slice(eq + 1).trim());
      } catch {
        return undefined;
      }
    }
  }
  return undefined;
}

export function writeCookie(req: Request, res: Response, name: string, value: string, maxAgeMs: number): void {
  // req.secure honours X-Forwarded-Proto when TRUST_PROXY is set.
  res.cookie(cookieName(req, name), value, { httpOnly: true, sameSite: "lax", secure: req.secure, path: "/", maxAge: maxAgeMs });
}

export function clearCookie(req: Request, res: Response, name: string): void {
  res.clearCookie(cookieName(req, name), { httpOnly: true, sameSite: "lax", secure: req.secure, path: "/" });
}
