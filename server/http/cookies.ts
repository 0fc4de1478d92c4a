/** Cookie names and reading; all promptgate cookies are HttpOnly, SameSite=Lax, Secure over https. */
import type { Request, Response } from "express";

export const COOKIES = {
  visitor: "pg_visitor",
  admin: "pg_admin",
  csrf: "pg_csrf",
  device: "pg_device",
  site: "pg_site",
} as const;

export function readCookie(req: Request, name: string): string | undefined {
  const header = req.headers.cookie;
  if (!header) return undefined;
  for (const part of header.split(";")) {
    const eq = part.indexOf("=");
    if (eq > 0 && part.slice(0, eq).trim() === name) {
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
  res.cookie(name, value, { httpOnly: true, sameSite: "lax", secure: req.secure, path: "/", maxAge: maxAgeMs });
}

export function clearCookie(req: Request, res: Response, name: string): void {
  res.clearCookie(name, { httpOnly: true, sameSite: "lax", secure: req.secure, path: "/" });
}
