/**
 * The per-request context shared by /api/trpc and Remix loaders: the services, and the
 * request's identity, resolved lazily from cookies so that a request that never asks
 * "who is this visitor?" (an admin page, an image) never creates one.
 */
import type { Request, Response } from "express";
import type { Db } from "../db/client";
import type { JobService } from "../domain/jobs";
import type { LoginThrottle } from "../domain/login-throttle";
import type { PromptService } from "../domain/prompts";
import type { Visitor, VisitorService, VisitorSession } from "../domain/visitors";
import type { Link } from "../link";
import { COOKIES, clearCookie, readCookie, writeCookie } from "./cookies";
import type { Csrf } from "./csrf";

export interface Services {
  db: Db;
  loginThrottle: LoginThrottle;
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
  signInAdmin(): void;
  signOutAdmin(): void;
  csrfToken(): string;
  verifyCsrf(token: unknown): boolean;
}

export interface RequestContext {
  services: Services;
  identity: RequestIdentity;
  /** The client's address (behind TRUST_PROXY, the forwarded one), for throttling; never stored. */
  clientIp: string;
}

const VISITOR_COOKIE_MS = 400 * 24 * 3_600_000;

export function createRequestContext(services: Services, csrf: Csrf, adminSessionMs: number, req: Request, res: Response): RequestContext {
  let resolved: Promise<Pick<VisitorSession, "visitor" | "origin">> | undefined;
  let adminToken = readCookie(req, COOKIES.admin);

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
    isAdmin: () => services.visitors.isAdmin(adminToken),
    signInAdmin() {
      services.visitors.endSession(adminToken);
      adminToken = services.visitors.createAdminSession();
      writeCookie(req, res, COOKIES.admin, adminToken, adminSessionMs);
    },
    signOutAdmin() {
      services.visitors.endSession(adminToken);
      adminToken = undefined;
      clearCookie(req, res, COOKIES.admin);
    },
    csrfToken: () => csrf.tokenFor(req, res),
    verifyCsrf: (token) => csrf.verify(req, token),
  };

  return { services, identity, clientIp: req.ip ?? req.socket.remoteAddress ?? "unknown" };
}
