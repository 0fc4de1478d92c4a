/**
 * The per-request context shared by /api/trpc and Remix loaders: the services, and the
 * request's identity, resolved lazily from cookies so that a request that never asks
 * "who is this visitor?" (an admin page, an image) never creates one.
 */
import type { Request, Response } from "express";
import type { Db } from "../db/client";
import type { AdminSessions } from "../domain/admin-sessions";
import type { Gallery } from "../domain/gallery";
import type { JobService } from "../domain/jobs";
import type { LoginAttempt, LoginThrottle } from "../domain/login-throttle";
import type { PromptService } from "../domain/prompts";
import type { Retention } from "../domain/retention";
import type { NewSession, Visitor, VisitorService, VisitorState } from "../domain/visitors";
import type { GeneratorAccess } from "../generator-access";
import type { Link } from "../link";
import { COOKIES, clearCookie, readCookie, writeCookie } from "./cookies";
import type { Csrf } from "./csrf";
import type { Device, DeviceCookies } from "./device-cookie";

export interface Services {
  db: Db;
  loginThrottle: LoginThrottle;
  adminSessions: AdminSessions;
  /**
   * Where generators connect (shown to the admin): the embedded broker's port (known once it
   * listens), or the external broker's URL (without credentials).
   */
  brokerAccess: { port: number; externalUrl: string | null };
  /** Generators' credentials: add, list, revoke. */
  generators: GeneratorAccess;
  visitors: VisitorService;
  prompts: PromptService;
  jobs: JobService;
  link: Link;
  /** After the show: the gallery's switch and pages. */
  gallery: Gallery;
  /** Deletes visitor data: old (RETENTION_DAYS), or all of it when the event ends. */
  retention: Retention;
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
  /** A new recovery code and link for this visitor; every other browser using it is signed out. */
  replaceRecovery(visitorId: number): void;
  isAdmin(): boolean;
  /** Who is trying the admin password: this browser's device cookie (issued if missing) and address. */
  loginAttempt(): LoginAttempt;
  /** After the password was verified: a new session token (the old one ends), and this browser becomes trusted. */
  signInAdmin(): void;
  signOutAdmin(): void;
  /** Ends every admin session, this one included. */
  signOutEverywhere(): void;
  csrfToken(): string;
  verifyCsrf(token: unknown): boolean;
}

export interface RequestContext {
  services: Services;
  identity: RequestIdentity;
  /** Where this site is reached (PUBLIC_URL, else the request's own origin), for links and QR codes. */
  publicOrigin: string;
}

/** What every request context shares: the signing helpers, the admin cookie's lifetime and the public URL. */
export interface RequestTools {
  csrf: Csrf;
  devices: DeviceCookies;
  adminSessionMs: number;
  publicUrl: string | null;
}

const VISITOR_COOKIE_MS = 400 * 24 * 3_600_000;

export function createRequestContext(services: Services, { csrf, devices, adminSessionMs, publicUrl }: RequestTools, req: Request, res: Response): RequestContext {
  // Behind TRUST_PROXY, the forwarded address; only ever a key of in-memory limits, never stored.
  const clientIp = req.ip ?? req.socket.remoteAddress ?? "unknown";
  let resolved: Promise<VisitorState> | undefined;
  let visitorToken = readCookie(req, COOKIES.visitor);
  let adminToken = readCookie(req, COOKIES.admin);
  let device: Device | undefined;
  const clientDevice = () => (device ??= devices.read(req, res));

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
    replaceRecovery: (visitorId) => services.visitors.replaceRecovery(visitorId, visitorToken),
    isAdmin: () => services.adminSessions.isLive(adminToken),
    loginAttempt() {
      const { id, trusted } = clientDevice();
      return { device: id, trusted, ip: clientIp };
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
    csrfToken: () => csrf.tokenFor(req, res),
    verifyCsrf: (token) => csrf.verify(req, token),
  };

  return { services, identity, publicOrigin: publicUrl ?? `${req.protocol}://${req.get("host") ?? "localhost"}` };
}
