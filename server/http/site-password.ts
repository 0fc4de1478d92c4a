/**
 * SITE_PASSWORD (issue 9 §2): with it set, every page, API call and image first asks for it.
 * A browser that gave it gets the `pg_site` cookie, SITE_SESSION_DAYS long: its expiry signed
 * under the session key ring together with a digest of the password, so changing the password
 * ends every pass, and a pass signed by a retiring key is signed again on its next request.
 *
 * Let through without a pass: /healthz (monitoring), /auth/verify and /auth/login (nginx asks
 * them for other sites; they answer for staff sessions and tokens only), a valid API token
 * (stronger than the shared password), a person a trusted proxy vouches for (they signed in
 * there), and the compiled assets. MQTT over WebSocket (/mqtt) is
 * not HTTP here: generators authenticate with their own credentials.
 *
 * Guesses are throttled like the admin login (ADR 006: per device cookie, per network), and the
 * password is compared as keyed hashes with a constant-time compare, never argon2: it is not
 * stored anywhere but the environment. Wrong guesses are in the audit log (never their text);
 * refusals by the throttle counted, one line a minute (createRefusalAudit).
 */
import { createHash, createHmac, randomBytes, timingSafeEqual } from "node:crypto";
import express, { type NextFunction, type Request, type Response } from "express";
import { safeNext } from "../../app/lib/safe-next";
import type { Db } from "../db/client";
import type { ReportError } from "../error-ref";
import { createRefusalAudit, recordAudit } from "../domain/audit";
import { describeWait, type LoginThrottle } from "../domain/login-throttle";
import type { KeyRing } from "../secrets";
import { readBearer } from "./bearer";
import { COOKIES, readCookie, writeCookie } from "./cookies";
import { CSRF_FIELD, type Csrf } from "./csrf";
import type { DeviceCookies } from "./device-cookie";
import { createSigner } from "./signing";

export const SITE_LOGIN_PATH = "/site-login";
/** Who the audit log says tried the site password: whoever stood at the door, unnamed. */
const SITE_PASSWORD_ACTOR = "site password";
/**
 * GUEST_MODE=submit: what a guest without the password may use: their visitor page, their own
 * prompts, images and live updates, and their recovery code and link (their own colour on
 * another browser). Not the gallery, the show, the admin pages or anyone else's images.
 */
const GUEST_PROCEDURES = new Set([
  "visitor.me",
  "visitor.page",
  "visitor.declineOffer",
  "visitor.recover",
  "visitor.linkTarget",
  "visitor.useLink",
  "visitor.renewRecovery",
  "prompt.submit",
  "prompt.mine",
  "prompt.liveCursor",
  "prompt.onChange",
]);

function guestMayUse(path: string): boolean {
  // The visitor page and a recovery link, each also as Remix's data request (single fetch:
  // `/_root.data` is `/`'s), which a page with JavaScript makes for its form and reloads; and
  // Remix's route manifest (lazy route discovery), the compiled assets' table of contents.
  if (path === "/" || path === "/_root.data" || path === "/__manifest" || path === "/me/recovery-qr.svg" || /^\/recover\/[^/]+?(\.data)?$/.test(path) || /^\/images\/\d+\.png$/.test(path)) return true;
  // A batch ("/api/trpc/a,b") only if every procedure in it is allowed.
  const procedures = /^\/api\/trpc\/([^/]+)$/.exec(path)?.[1];
  return procedures !== undefined && procedures.split(",").every((name) => GUEST_PROCEDURES.has(name));
}

/** Whether this request was let in as a guest (GUEST_MODE=submit): it sees only its own. */
export const isGuest = (res: Response): boolean => (res.locals as { guest?: boolean }).guest === true;
/** Paths that answer for themselves (see the header). */
const OPEN_PATHS = new Set(["/healthz", "/auth/verify", "/auth/login", SITE_LOGIN_PATH]);

export interface SitePasswordOptions {
  password: string;
  sessionMs: number;
  keys: KeyRing;
  db: Db;
  csrf: Csrf;
  devices: DeviceCookies;
  throttle: LoginThrottle;
  /** GUEST_MODE=submit: without the password, the visitor page and one's own prompts stay open. */
  guestMode: boolean;
  /** Whether a trusted proxy vouches for this request's person (TRUSTED_PROXIES): they signed in there. */
  vouched: (req: Request) => boolean;
  /** A failure nothing else would catch: writing a count of refusals from a timer. */
  reportError: ReportError;
}

const escapeHtml = (text: string) => text.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);

function page(res: Response, status: number, { next, csrfToken, message }: { next: string; csrfToken: string; message?: string }): void {
  res
    .status(status)
    .type("html")
    .send(
      `<!doctype html><html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">` +
        `<title>Password – promptgate</title></head><body style="font-family:system-ui,sans-serif;max-width:24rem;margin:15vh auto;padding:0 1rem">` +
        `<h1>This site needs a password</h1>` +
        (message ? `<p role="alert">${escapeHtml(message)}</p>` : "") +
        `<form method="post" action="${SITE_LOGIN_PATH}"><input type="hidden" name="${CSRF_FIELD}" value="${escapeHtml(csrfToken)}">` +
        `<input type="hidden" name="next" value="${escapeHtml(next)}">` +
        `<label>Password <input type="password" name="password" autocomplete="current-password" required autofocus maxlength="1024"></label> ` +
        `<button type="submit">Enter</button></form></body></html>`,
    );
}

export function createSitePassword({ password, sessionMs, keys, db, csrf, devices, throttle, guestMode, vouched, reportError }: SitePasswordOptions) {
  const signer = createSigner(keys, "site");
  const passwordDigest = createHash("sha256").update(password).digest("base64url");
  // Compared as HMACs under a per-process key: equal lengths, so timingSafeEqual applies.
  const compareKey = randomBytes(32);
  const keyed = (text: string) => createHmac("sha256", compareKey).update(text).digest();
  const expected = keyed(password);

  const issue = (req: Request, res: Response, expiresAt: number) =>
    writeCookie(req, res, COOKIES.site, `${expiresAt}.${signer.sign(`${expiresAt}:${passwordDigest}`)}`, expiresAt - Date.now());

  /** Whether this request holds a live pass; one signed by an older key is signed again. */
  const hasPass = (req: Request, res: Response): boolean => {
    const [expires, mac, ...rest] = (readCookie(req, COOKIES.site) ?? "").split(".");
    const expiresAt = Number(expires);
    if (!mac || rest.length || !Number.isSafeInteger(expiresAt) || expiresAt <= Date.now()) return false;
    const verified = signer.verify(`${expiresAt}:${passwordDigest}`, mac);
    if (verified === "older") issue(req, res, expiresAt);
    return verified !== null;
  };

  const guard = (req: Request, res: Response, next: NextFunction): void => {
    if (OPEN_PATHS.has(req.path) || hasPass(req, res) || vouched(req) || readBearer(db, req).kind === "token") return next();
    if (guestMode && guestMayUse(req.path)) {
      (res.locals as { guest?: boolean }).guest = true;
      return next();
    }
    const message = "This site needs its password first.";
    if (req.path.startsWith("/api/")) return void res.status(401).json({ error: { message: `${message} Open ${SITE_LOGIN_PATH} in a browser, or use an API token.` } });
    if (req.method === "GET" || req.method === "HEAD") {
      // 303 so a browser ends up at the form; `next` brings it back where it was going.
      if (!req.path.startsWith("/images/")) return void res.redirect(303, `${SITE_LOGIN_PATH}?next=${encodeURIComponent(req.originalUrl)}`);
    }
    res.status(401).type("text/plain").send(message);
  };

  const refusals = createRefusalAudit(db, (error) => reportError(error, "counting refused site passwords"));

  const router = express.Router();
  router.get(SITE_LOGIN_PATH, (req, res) => {
    if (hasPass(req, res)) return void res.redirect(303, safeNext(req.query.next, "/"));
    page(res, 200, { next: safeNext(req.query.next, "/"), csrfToken: csrf.tokenFor(req, res) });
  });
  router.post(SITE_LOGIN_PATH, express.urlencoded({ extended: false, limit: "8kb", parameterLimit: 10 }), (req, res) => {
    const body = (req.body ?? {}) as Record<string, unknown>;
    const next = safeNext(body.next, "/");
    if (!csrf.verify(req, body[CSRF_FIELD])) {
      return void page(res, 403, { next, csrfToken: csrf.tokenFor(req, res), message: "The form expired: enter the password again." });
    }
    const device = devices.read(req, res);
    const attempt = { device: device.id, trusted: device.trusted, ip: req.ip ?? req.socket.remoteAddress ?? "unknown" };
    const refusal = throttle.admit(attempt);
    if (refusal) {
      refusals.refused(SITE_PASSWORD_ACTOR);
      res.set("Retry-After", String(Math.ceil(refusal.waitMs / 1000)));
      return void page(res, 429, { next, csrfToken: csrf.tokenFor(req, res), message: `Too many wrong passwords: wait ${describeWait(refusal.waitMs)} and try again.` });
    }
    const given = typeof body.password === "string" ? body.password : "";
    if (!timingSafeEqual(keyed(given), expected)) {
      recordAudit(db, { actor: SITE_PASSWORD_ACTOR, action: "login.failed", details: { reason: "wrong password" } });
      return void page(res, 401, { next, csrfToken: csrf.tokenFor(req, res), message: "That is not the password." });
    }
    throttle.succeeded(attempt);
    // Not devices.trust: everyone at the party may know this password, and a trusted device
    // escapes the admin login's per-network count (ADR 006).
    issue(req, res, Date.now() + sessionMs);
    res.redirect(303, next);
  });

  return { guard, router, close: refusals.close };
}
