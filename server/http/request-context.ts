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
import type { NewSession, Visitor, VisitorService, VisitorState } from "../domain/visitors";
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
  /** The visitor of this request, by cookie, else a new one (sets the cookie), with any open offer. */
  visitor(): Promise<VisitorState>;
  /** The visitor of the session cookie only: never hashes, never creates. */
  cookieVisitor(): Visitor | null;
  /** "I'm new": withdraws the open offer. */
  declineOffer(): void;
  /** Proves an identity with its recovery code; this browser becomes that visitor. */
  recoverWithCode(attempt: { code: string; colourName?: string }): Visitor;
  /** Opens a recovery link; this browser becomes its visitor. */
  recoverWithLink(linkSecret: string): Visitor;
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
  /** Where this site is reached (PUBLIC_URL, else the request's own origin), for links and QR codes. */
  publicOrigin: string;
}

const VISITOR_COOKIE_MS = 400 * 24 * 3_600_000;

export function createRequestContext(
  services: Services,
  csrf: Csrf,
  settings: { adminSessionMs: number; publicUrl: string | null },
  req: Request,
  res: Response,
): RequestContext {
  const { adminSessionMs } = settings;
  const clientIp = req.ip ?? req.socket.remoteAddress ?? "unknown";
  let resolved: Promise<VisitorState> | undefined;
  let visitorToken = readCookie(req, COOKIES.visitor);
  let adminToken = readCookie(req, COOKIES.admin);

  /** The browser now holds `session`: later calls in this request see it too. */
  const adopt = (session: NewSession) => {
    visitorToken = session.token;
    writeCookie(req, res, COOKIES.visitor, session.token, VISITOR_COOKIE_MS);
    resolved = Promise.resolve(session);
    return session.visitor;
  };

  const identity: RequestIdentity = {
    visitor() {
      resolved ??= (async () => {
        const known = services.visitors.bySession(visitorToken);
        if (known) return known;
        const session = await services.visitors.arrive({
          ip: clientIp,
          userAgent: req.headers["user-agent"],
          acceptLanguage: req.headers["accept-language"],
        });
        adopt(session);
        return session;
      })();
      return resolved;
    },
    cookieVisitor: () => services.visitors.bySession(visitorToken)?.visitor ?? null,
    declineOffer() {
      services.visitors.declineOffer(visitorToken);
      resolved = undefined;
    },
    recoverWithCode: (attempt) => adopt(services.visitors.recoverWithCode(visitorToken, attempt, { ip: clientIp })),
    recoverWithLink: (linkSecret) => adopt(services.visitors.recoverWithLink(visitorToken, linkSecret)),
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

  return { services, identity, clientIp, publicOrigin: settings.publicUrl ?? `${req.protocol}://${req.get("host") ?? "localhost"}` };
}
