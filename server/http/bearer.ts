/**
 * `Authorization: Bearer <API token>` (server/domain/api-tokens.ts), for scripts on /api/trpc,
 * /images and /auth/verify. A bearer request is never also a cookie request: one that carries
 * both is refused, so a token cannot borrow a browser's session, nor a page a token. With no
 * cookies, a bearer request needs no CSRF token (server/http/csrf.ts): no browser sends one by itself.
 */
import type { NextFunction, Request, Response } from "express";
import type { Db } from "../db/client";
import { authenticateApiToken, type ApiToken } from "../domain/api-tokens";

export type Bearer = { kind: "none" } | { kind: "refused"; status: 400 | 401; message: string } | { kind: "token"; token: ApiToken };

/** What the request's Authorization header says; the token is looked up by its SHA-256. */
export function readBearer(db: Db, req: Request): Bearer {
  const header = req.headers.authorization;
  if (header === undefined) return { kind: "none" };
  const secret = /^Bearer +(\S+)$/i.exec(header)?.[1];
  if (!secret) return { kind: "refused", status: 401, message: "The Authorization header must be `Bearer <API token>`." };
  if (req.headers.cookie !== undefined) {
    return { kind: "refused", status: 400, message: "A request with an API token must not also send cookies: use one or the other." };
  }
  const token = authenticateApiToken(db, secret);
  return token ? { kind: "token", token } : { kind: "refused", status: 401, message: "This API token is not valid (mistyped or revoked)." };
}

/** The token a `bearerAuth`-guarded request came with, else null. */
export const apiTokenOf = (res: Response): ApiToken | null => (res.locals as { apiToken?: ApiToken }).apiToken ?? null;

/** Middleware: a valid token is kept for the request context; a bad one is refused before any handler. */
export function bearerAuth(db: Db) {
  return (req: Request, res: Response, next: NextFunction): void => {
    const bearer = readBearer(db, req);
    if (bearer.kind === "refused") {
      res.status(bearer.status).set("WWW-Authenticate", 'Bearer realm="promptgate"');
      if (req.originalUrl.startsWith("/api/")) res.json({ error: { message: bearer.message } });
      else res.type("text/plain").send(bearer.message);
      return;
    }
    if (bearer.kind === "token") (res.locals as { apiToken?: ApiToken }).apiToken = bearer.token;
    next();
  };
}
