/**
 * CSRF protection for every state-changing request, in two layers:
 * 1. cross-site requests are refused outright (Sec-Fetch-Site, else Origin vs Host);
 * 2. a token must accompany the request: the `_csrf` form field (Remix actions, checked by
 *    the load context's `readForm`) or the `x-csrf-token` header (/api/trpc; not for API-token
 *    requests, which carry no cookies). The token is an
 *    HMAC of a random per-browser cookie under the server's session key ring (double submit).
 */
import { randomBytes } from "node:crypto";
import type { NextFunction, Request, Response } from "express";
import { apiTokenOf } from "./bearer";
import type { KeyRing } from "../secrets";
import { COOKIES, cookieName, readCookie, writeCookie } from "./cookies";
import { createSigner } from "./signing";

export const CSRF_FIELD = "_csrf";
export const CSRF_HEADER = "x-csrf-token";
const SAFE_METHODS = new Set(["GET", "HEAD", "OPTIONS"]);
const CSRF_COOKIE_MS = 400 * 24 * 3_600_000;

export function createCsrf(sessionKeys: KeyRing) {
  // A form rendered before a key rotation still posts: older live keys verify.
  const signer = createSigner(sessionKeys, "csrf");

  return {
    /** The token for this browser, setting its nonce cookie on first use. */
    tokenFor(req: Request, res: Response): string {
      let nonce = readCookie(req, COOKIES.csrf);
      if (!nonce) {
        nonce = randomBytes(18).toString("base64url");
        writeCookie(req, res, COOKIES.csrf, nonce, CSRF_COOKIE_MS);
        // Later reads in this same request must see the new nonce.
        req.headers.cookie = `${req.headers.cookie ? `${req.headers.cookie}; ` : ""}${cookieName(req, COOKIES.csrf)}=${nonce}`;
      }
      return signer.sign(nonce);
    },

    verify(req: Request, token: unknown): boolean {
      const nonce = readCookie(req, COOKIES.csrf);
      return nonce !== undefined && signer.verify(nonce, token) !== null;
    },
  };
}

export type Csrf = ReturnType<typeof createCsrf>;

function isSameHost(origin: string, host: string | undefined): boolean {
  try {
    return new URL(origin).host === host;
  } catch {
    return false; // "null" (sandboxed frames, file://) or garbage
  }
}

/** Whether a browser made this request for another site's page (Sec-Fetch-Site, else Origin vs Host). */
function isCrossSite(req: Request): boolean {
  const fetchSite = req.headers["sec-fetch-site"];
  const origin = req.headers.origin;
  return fetchSite !== undefined ? fetchSite !== "same-origin" && fetchSite !== "none" : origin !== undefined && !isSameHost(origin, req.headers.host);
}

function refuseCrossSite(req: Request, res: Response, next: NextFunction): void {
  if (isCrossSite(req)) {
    const message = "Cross-site request refused (CSRF protection).";
    // API clients get JSON in tRPC's error shape, browsers a line of text.
    if (req.originalUrl.startsWith("/api/")) res.status(403).json({ error: { message } });
    else res.status(403).type("text/plain").send(message);
    return;
  }
  next();
}

/** Layer 1, for every route: a browser-made cross-site write never reaches a handler. */
export function refuseCrossSiteWrites(req: Request, res: Response, next: NextFunction): void {
  if (SAFE_METHODS.has(req.method)) return next();
  refuseCrossSite(req, res, next);
}

/**
 * For /api/trpc, reads included: only this site's pages use the API. A live stream is a GET
 * (EventSource), and another site's page must not hold the admin's open, even unread.
 */
export const refuseCrossSiteApi = refuseCrossSite;

/** Layer 2 for /api/trpc: mutations carry the token in a header. */
export function requireCsrfHeader(csrf: Csrf) {
  return (req: Request, res: Response, next: NextFunction): void => {
    // A bearer request (server/http/bearer.ts) has no cookies, so nothing a forged request could ride on.
    if (SAFE_METHODS.has(req.method) || apiTokenOf(res) || csrf.verify(req, req.headers[CSRF_HEADER])) return next();
    res.status(403).json({ error: { message: `Missing or invalid ${CSRF_HEADER} header: reload the page and try again.` } });
  };
}
