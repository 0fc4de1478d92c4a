/**
 * The headers that make browsers hold the pages to what they are: scripts only from this
 * origin or carrying this response's nonce, never framed, never cached when private, and
 * https-only once served over https.
 */
import { randomFillSync } from "node:crypto";
import type { RequestHandler, Response } from "express";

/** A year, the value HSTS preload lists ask for. */
const HSTS = "max-age=31536000; includeSubDomains";

function contentSecurityPolicy(nonce: string): string {
  return [
    "default-src 'self'",
    // No 'unsafe-inline': Remix's inline scripts (hydration data, scroll restoration, the module
    // import) carry the nonce, so an injected <script> or on* handler does not run.
    `script-src 'self' 'nonce-${nonce}'`,
    // Style attributes are how the pages paint every visitor's colour (ColourChip, the reveal's
    // --author); CSP can allow them only with 'unsafe-inline'. Styles cannot run code.
    "style-src 'self' 'unsafe-inline'",
    "img-src 'self' data:",
    "connect-src 'self'",
    "object-src 'none'",
    "base-uri 'none'",
    "form-action 'self'",
    "frame-ancestors 'none'",
  ].join("; ");
}

const NONCE_BYTES = 16;
// Drawn from a pool filled 256 nonces at a time: one call into the system's generator per
// request cost more than the rest of these headers (Node's randomUUID pools the same way).
const noncePool = Buffer.alloc(NONCE_BYTES * 256);
let nonceOffset = noncePool.length;

function newNonce(): string {
  if (nonceOffset === noncePool.length) {
    randomFillSync(noncePool);
    nonceOffset = 0;
  }
  nonceOffset += NONCE_BYTES;
  return noncePool.toString("base64", nonceOffset - NONCE_BYTES, nonceOffset);
}

/** Sets this response's CSP nonce (read it with `cspNonceOf`) and the security headers every response carries. */
export const securityHeaders: RequestHandler = (req, res, next) => {
  const nonce = newNonce();
  res.locals.cspNonce = nonce;
  res.set({
    "Content-Security-Policy": contentSecurityPolicy(nonce),
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
    // frame-ancestors' predecessor, for browsers that predate it.
    "X-Frame-Options": "DENY",
  });
  // req.secure is true over https, seen directly or (behind TRUST_PROXY) in X-Forwarded-Proto:
  // over plain http the header means nothing, and a LAN party without TLS must keep working.
  if (req.secure) res.set("Strict-Transport-Security", HSTS);
  next();
};

/** This response's script nonce, set by `securityHeaders`. */
export const cspNonceOf = (res: Response): string => res.locals.cspNonce as string;

/**
 * For everything but static files: pages and data requests show a visitor's own prompts or
 * the admin's data, API answers carry them and CSRF tokens; no browser or proxy may keep them.
 */
export const noStore: RequestHandler = (_req, res, next) => {
  res.set("Cache-Control", "no-store");
  next();
};
