/**
 * The per-request context shared by /api/trpc and Remix loaders: the services, and the
 * request's identity, resolved lazily from cookies so that a request that never asks
 * "who is this visitor?" (an admin page, an image) never creates one.
 */
import type { Request, Response } from "express";
import type { Db } from "../db/client";
import type { AdminSessions } from "../domain/admin-sessions";
import type { JobService } from "../domain/jobs";
import type { LoginAttempt, LoginThrottle } from "../domain/login-throttle";
import type { PromptService } from "../domain/prompts";
import type { Visitor, VisitorService, VisitorSession } from "../domain/visitors";
import type { Link } from "../link";
import { COOKIES, clearCookie, readCookie, writeCookie } from "./cookies";
import type { Csrf } from "./csrf";
import type { Device, DeviceCookies } from "./device-cookie";

export interface Services {
  db: Db;
  loginThrottle: LoginThrottle;
  adminSessions: AdminSessions;
  /** What a generator needs to connect (shown to the admin); the port is known once the broker listens. */
  brokerAccess: { token: string; port: number };
  visitors: VisitorService;
  prompts: PromptService;
  jobs: JobService;
  link: Link;
}

export interface RequestIdentity {
  /** The visitor of this request: by cookie, else recognised by fingerprint, else new (sets the cookie). */
  visitor(): Promise<Pick<VisitorSession, "visitor" | "origin">>;
  /** The visitor of the session cookie only: never hashes, never creates. */
  cookieVisitor(): Visitor | null;
  startFresh(): Visitor;
  isAdmin(): boolean;
  /** Who is trying the admin password: this browser's device cookie (issued if missing) and address. */
  loginAttempt(): LoginAttempt;
  /** After the password was verified: a new session token (the old one ends), and this browser becomes trusted. */
  signInAdmin(): void;
  signOutAdmin(): void;
  /** Ends every admin session, this one included. */
  signOutEverywhere(): void;
  /** Sets the Retry-After header of this response. */
  retryAfter(waitMs: number): void;
  csrfToken(): string;
  verifyCsrf(token: unknown): boolean;
}

export interface RequestContext {
  services: Services;
  identity: RequestIdentity;
}

/** What every request context shares: the signing helpers and the admin cookie's lifetime. */
export interface RequestTools {
  csrf: Csrf;
  devices: DeviceCookies;
  adminSessionMs: number;
}

const VISITOR_COOKIE_MS = 400 * 24 * 3_600_000;

export function createRequestContext(services: Services, { csrf, devices, adminSessionMs }: RequestTools, req: Request, res: Response): RequestContext {
  let resolved: Promise<Pick<VisitorSession, "visitor" | "origin">> | undefined;
  let adminToken = readCookie(req, COOKIES.admin);
  let device: Device | undefined;
  const clientDevice = () => (device ??= devices.read(req, res));

  const identity: RequestIdentity = {
    visitor() {
      resolved ??= (async () => {
        const known = identity.cookieVisitor();
        if (known) return { visitor: known, origin: "new" as const };
        const session = await services.visitors.recognise({
          ip: req.ip ?? req.socket.remoteAddress,
          userAgent: req.headers["user-agent"],
          acceptLanguage: req.headers["accept-language"],
        });
        writeCookie(req, res, COOKIES.visitor, session.token, VISITOR_COOKIE_MS);
        return session;
      })();
      return resolved;
    },
    cookieVisitor: () => services.visitors.bySession(readCookie(req, COOKIES.visitor)),
    startFresh() {
      const session = services.visitors.startFresh(readCookie(req, COOKIES.visitor));
      writeCookie(req, res, COOKIES.visitor, session.token, VISITOR_COOKIE_MS);
      resolved = Promise.resolve(session);
      return session.visitor;
    },
    isAdmin: () => services.adminSessions.isLive(adminToken),
    loginAttempt() {
      const { id, trusted } = clientDevice();
      // Behind TRUST_PROXY, the forwarded address; only ever a key in the in-memory throttle.
      return { device: id, trusted, ip: req.ip ?? req.socket.remoteAddress ?? "unknown" };
    },
    signInAdmin() {
      adminToken = services.adminSessions.start(adminToken);
      writeCookie(req, res, COOKIES.admin, adminToken, adminSessionMs);
      devices.trust(req, res, clientDevice());
    },
    signOutAdmin() {
      services.adminSessions.end(adminToken);
      adminToken = undefined;
      clearCookie(req, res, COOKIES.admin);
    },
    signOutEverywhere() {
      services.adminSessions.endAll();
      identity.signOutAdmin();
    },
    retryAfter: (waitMs) => void res.setHeader("Retry-After", String(Math.ceil(waitMs / 1000))),
    csrfToken: () => csrf.tokenFor(req, res),
    verifyCsrf: (token) => csrf.verify(req, token),
  };

  return { services, identity };
}
