/**
 * nginx `auth_request` (issue 9 §3, docs/deploy/nginx.conf): promptgate as the gate in front of
 * another site, such as the A1111 web UI.
 *
 * GET /auth/verify answers 204 with X-Promptgate-User and X-Promptgate-Role for a live admin or
 * moderator session cookie, a valid API token or a trusted proxy's admin or moderator identity
 * (server/http/trusted-proxy.ts), else 401; never a body. Both are looked up by
 * their SHA-256 (one indexed query), never argon2: nginx asks on every request it proxies.
 *
 * GET /auth/login sends a browser nginx turned away to the login page, with the address it
 * wanted (nginx passes it as X-Original-URI, since its config cannot percent-encode) as `next`.
 */
import type { Request, Response } from "express";
import { safeNext } from "../../app/lib/safe-next";
import type { Db } from "../db/client";
import type { AdminSessions } from "../domain/admin-sessions";
import { readBearer } from "./bearer";
import { COOKIES, readCookie } from "./cookies";
import { proxyStaff } from "./request-context";
import type { ProxyTrust } from "./trusted-proxy";

export function authVerify(db: Db, sessions: AdminSessions, proxyTrust: ProxyTrust | null) {
  return (req: Request, res: Response): void => {
    const bearer = readBearer(db, req);
    if (bearer.kind === "token") {
      // A `submit`-only token is a guest's bot, not staff: it opens nothing behind the gate.
      if (!bearer.token.scopes.some((scope) => scope === "read" || scope === "moderate")) return void res.status(403).end();
      res.set({ "X-Promptgate-User": `token:${bearer.token.name}`, "X-Promptgate-Role": "token", "X-Promptgate-Scopes": bearer.token.scopes.join(" ") });
      return void res.status(204).end();
    }
    const account = bearer.kind === "none" ? (proxyStaff({ db }, proxyTrust?.identityOf(req) ?? null) ?? sessions.live(readCookie(req, COOKIES.admin))) : null;
    if (!account) return void res.status(401).set("WWW-Authenticate", 'Bearer realm="promptgate"').end();
    res.set({ "X-Promptgate-User": account.name, "X-Promptgate-Role": account.role });
    res.status(204).end();
  };
}

export function loginRedirect(req: Request, res: Response): void {
  // The login page checks `next` again: this header is only a hint.
  const next = safeNext(req.headers["x-original-uri"], "");
  res.redirect(302, next ? `/admin/login?next=${encodeURIComponent(next)}` : "/admin/login");
}
