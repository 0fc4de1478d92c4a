/**
 * The per-request context shared by /api/trpc and Remix loaders: the services, and the
 * request's identity, resolved lazily from cookies so that a request that never asks
 * "who is this visitor?" (an admin page, an image) never creates one.
 */
import type { Request, Response } from "express";
import type { Db } from "../db/client";
import type { RefusalAudit } from "../domain/audit";
import type { AdminSessions, SessionAccount, SessionView } from "../domain/admin-sessions";
import { isApiTokenLive, type ApiToken } from "../domain/api-tokens";
import { DomainError } from "../domain/errors";
import type { Gallery } from "../domain/gallery";
import type { JobService } from "../domain/jobs";
import type { Line } from "../domain/line";
import type { LiveEvents } from "../domain/live-events";
import type { LoginAttempt, LoginThrottle } from "../domain/login-throttle";
import type { ProgressBoard } from "../domain/progress";
import type { PromptService } from "../domain/prompts";
import type { Retention } from "../domain/retention";
import type { Show } from "../domain/show";
import type { NewSession, Visitor, VisitorService, VisitorState } from "../domain/visitors";
import type { GeneratorAccess } from "../generator-access";
import type { Link } from "../link";
import { apiTokenOf } from "./bearer";
import { COOKIES, clearCookie, readCookie, writeCookie } from "./cookies";
import type { Csrf } from "./csrf";
import type { Device, DeviceCookies } from "./device-cookie";
import type { ProxyIdentity, ProxyTrust } from "./trusted-proxy";
import { proxyAccount } from "../domain/accounts";
import { recordAudit } from "../domain/audit";

export interface Services {
  db: Db;
  loginThrottle: LoginThrottle;
  /** Refusals by the login throttle, counted into the audit log. */
  loginRefusals: RefusalAudit;
  adminSessions: AdminSessions;
  /**
   * Where generators connect (shown to the admin): the embedded broker's port (known once it
   * listens), or the external broker's URL (without credentials).
   */
  brokerAccess: { port: number; externalUrl: string | null };
  /** Whether a trusted proxy may say who is signed in (TRUSTED_PROXIES): only then can an admin add a person by that identity. */
  proxySignIn: boolean;
  /** Generators' credentials: add, list, revoke. */
  generators: GeneratorAccess;
  visitors: VisitorService;
  prompts: PromptService;
  jobs: JobService;
  /** The fair order of approved jobs; places in line and estimates. */
  line: Line;
  /** Live updates: the event log that subscriptions read (ADR 012). */
  live: LiveEvents;
  /** How far each job being made is (in memory only). */
  progress: ProgressBoard;
  link: Link;
  /** After the show: the gallery's switch and pages. */
  gallery: Gallery;
  /** The reveal as server state: the presenter's moves and the audience's link (issue 8 §5). */
  show: Show;
  /** Deletes visitor data: old (RETENTION_DAYS), or all of it when the event ends. */
  retention: Retention;
}

export interface RequestIdentity {
  /** The visitor of this request, by cookie, else a new one (sets the cookie), with any open offer. */
  visitor(): Promise<VisitorState>;
  /**
   * The visitor of the session cookie (or of a `submit` token, while it is not revoked) only:
   * never hashes, never creates. Asked afresh each time, so a live stream can re-check.
   */
  cookieVisitor(): Visitor | null;
  /** "I'm new": withdraws the open offer. */
  declineOffer(): void;
  /** Proves an identity with its recovery code; this browser becomes that visitor. */
  recoverWithCode(attempt: { code: string; colourName?: string }): Visitor;
  /** Opens a recovery link; this browser becomes its visitor. */
  recoverWithLink(linkSecret: string): Visitor;
  /** A new recovery code and link for this visitor; every other browser using it is signed out. */
  replaceRecovery(visitorId: number): void;
  /** The admin or moderator of this request's session cookie, else null. */
  account(): SessionAccount | null;
  /** The API token of a bearer request (server/http/bearer.ts), else null; such a request has no cookies. */
  apiToken: ApiToken | null;
  /** Who a trusted proxy says this is (TRUSTED_PROXIES), else null. */
  proxyIdentity: ProxyIdentity | null;
  /**
   * Whether this caller's colour has a recovery code and link: a browser's has, an API token's
   * (a script's) and a trusted proxy's person's (their sign-in follows them) have none.
   */
  recoverable: boolean;
  /** Who is trying a password: this browser's device cookie (issued if missing) and address. */
  loginAttempt(): LoginAttempt;
  /** After `accountId`'s password was verified: a new session token (the old one ends), and this browser becomes trusted. */
  signIn(accountId: number): void;
  signOut(): void;
  /** Ends every session of this account, this one included. */
  signOutEverywhere(): void;
  /**
   * `accountId`'s live sessions, this browser's marked; `viaProxy` when the trusted proxy signs
   * this request in as that account: the proxy's sign-in has no session here to list or end.
   */
  ownSessions(accountId: number): { viaProxy: boolean; sessions: SessionView[] };
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
  /** TRUSTED_PROXIES, or null. */
  proxyTrust: ProxyTrust | null;
}

const VISITOR_COOKIE_MS = 400 * 24 * 3_600_000;

/**
 * The account a trusted proxy signs in (an admin or moderator group, or an identity an admin
 * added), audited when a group's account is first seen or its role changes; else null.
 */
export function proxyStaff(services: Pick<Services, "db">, identity: ProxyIdentity | null): SessionAccount | null {
  const found = identity && proxyAccount(services.db, identity);
  if (!found) return null;
  const { account, change } = found;
  if (change) recordAudit(services.db, { actor: account.name, action: "login.proxy", target: identity.displayName, details: { role: account.role, change, groups: identity.groups } });
  return { id: account.id, name: account.name, role: account.role };
}

export function createRequestContext(services: Services, { csrf, devices, adminSessionMs, publicUrl, proxyTrust }: RequestTools, req: Request, res: Response): RequestContext {
  // Behind TRUST_PROXY, the forwarded address; only ever a key of in-memory limits, never stored.
  const clientIp = req.ip ?? req.socket.remoteAddress ?? "unknown";
  let resolved: Promise<VisitorState> | undefined;
  const apiToken = apiTokenOf(res);
  // A bearer request is refused if it carries cookies; these reads are then empty anyway.
  let visitorToken = apiToken ? undefined : readCookie(req, COOKIES.visitor);
  let adminToken = apiToken ? undefined : readCookie(req, COOKIES.admin);
  // A token speaks for itself; otherwise a trusted proxy's word outranks cookies.
  const proxyIdentity = apiToken ? null : (proxyTrust?.identityOf(req) ?? null);
  let device: Device | undefined;
  const clientDevice = () => (device ??= devices.read(req, res));

  /** The browser now holds `session`: later calls in this request see it too. */
  const adopt = (session: NewSession) => {
    visitorToken = session.token;
    writeCookie(req, res, COOKIES.visitor, session.token, VISITOR_COOKIE_MS);
    resolved = Promise.resolve(session);
    return session.visitor;
  };

  /** A `submit` token's own colour; any other token is not a visitor at all. */
  const tokenVisitor = (token: ApiToken) => {
    const visitor = token.scopes.includes("submit") ? services.visitors.byId(token.visitorId) : null;
    if (!visitor) throw new DomainError("NOT_ALLOWED", `API token "${token.name}" has no submit scope.`);
    return visitor;
  };
  const refuseForToken = () => {
    if (apiToken) throw new DomainError("NOT_ALLOWED", "An API token cannot log in, log out or recover a colour: it is not a browser session.");
  };
  /** Recovery is a browser's: a token's colour is its own, and a proxy's person's follows their sign-in. */
  const refuseUnlessRecoverable = () => {
    refuseForToken();
    if (proxyIdentity) throw new DomainError("NOT_ALLOWED", "You are signed in through your organisation: your colour follows you to every device, nothing to recover.");
  };

  const identity: RequestIdentity = {
    visitor() {
      if (apiToken) return (resolved ??= Promise.resolve().then(() => ({ visitor: tokenVisitor(apiToken), offer: null })));
      if (proxyIdentity) return (resolved ??= Promise.resolve().then(() => ({ visitor: services.visitors.forProxyIdentity(proxyIdentity.subject), offer: null })));
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
    cookieVisitor: () =>
      apiToken?.scopes.includes("submit")
        ? isApiTokenLive(services.db, apiToken.id)
          ? services.visitors.byId(apiToken.visitorId)
          : null
        : proxyIdentity
          ? services.visitors.forProxyIdentity(proxyIdentity.subject)
          : (services.visitors.bySession(visitorToken)?.visitor ?? null),
    declineOffer() {
      services.visitors.declineOffer(visitorToken);
      resolved = undefined;
    },
    // Recovering means becoming a browser's visitor, with a cookie: a token's colour is its own.
    recoverWithCode(attempt) {
      refuseUnlessRecoverable();
      return adopt(services.visitors.recoverWithCode(visitorToken, attempt, { ip: clientIp }));
    },
    recoverWithLink(linkSecret) {
      refuseUnlessRecoverable();
      return adopt(services.visitors.recoverWithLink(visitorToken, linkSecret));
    },
    replaceRecovery(visitorId) {
      refuseUnlessRecoverable();
      services.visitors.replaceRecovery(visitorId, visitorToken);
    },
    // Asked afresh each time: a live stream re-checks through here, and an admin may have removed the identity meanwhile.
    account: () => proxyStaff(services, proxyIdentity) ?? services.adminSessions.live(adminToken),
    apiToken,
    proxyIdentity,
    recoverable: !apiToken && !proxyIdentity,
    loginAttempt() {
      const { id, trusted } = clientDevice();
      return { device: id, trusted, ip: clientIp };
    },
    signIn(accountId) {
      refuseForToken();
      adminToken = services.adminSessions.start(accountId, adminToken);
      writeCookie(req, res, COOKIES.admin, adminToken, adminSessionMs);
      devices.trust(req, res, clientDevice());
    },
    signOut() {
      refuseForToken();
      services.adminSessions.end(adminToken);
      adminToken = undefined;
      clearCookie(req, res, COOKIES.admin);
    },
    signOutEverywhere() {
      const account = identity.account();
      if (account) services.adminSessions.endAll(account.id);
      identity.signOut();
    },
    ownSessions(accountId) {
      const viaProxy = proxyStaff(services, proxyIdentity)?.id === accountId;
      // Signed in by the proxy, a leftover login cookie is not what this browser uses.
      return { viaProxy, sessions: services.adminSessions.list(accountId, viaProxy ? undefined : adminToken) };
    },
    csrfToken: () => csrf.tokenFor(req, res),
    verifyCsrf: (token) => csrf.verify(req, token),
  };

  return { services, identity, publicOrigin: publicUrl ?? `${req.protocol}://${req.get("host") ?? "localhost"}` };
}
