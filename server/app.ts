/**
 * The composition root: one process with the web UI (Remix), the tRPC API, the embedded MQTT
 * broker (TCP + WebSocket at /mqtt) or a client of an external one (MQTT_URL, ADR 009) and,
 * unless disabled, a local generator.
 * `startPromptgate` is what `npm start` runs and what the tests start, on port 0, many times.
 */
import { accessSync, constants, existsSync, mkdirSync } from "node:fs";
import { createServer, STATUS_CODES, type Server } from "node:http";
import path from "node:path";
import { pathToFileURL } from "node:url";
import { createRequestHandler } from "@remix-run/express";
import type { ServerBuild } from "@remix-run/node";
import { createExpressMiddleware } from "@trpc/server/adapters/express";
import express, { type NextFunction, type Request, type Response } from "express";
import { createBroker } from "../broker/index";
import { startGeneratorThread } from "../generator/thread";
import { openDb } from "./db/client";
import { ensureAdminPassword } from "./domain/admin-password";
import { createAdminSessions } from "./domain/admin-sessions";
import { createRefusalAudit, recordAudit } from "./domain/audit";
import { emptyBlocklist, loadBlocklist } from "./domain/blocklist";
import { DomainError } from "./domain/errors";
import { createFingerprintHasher } from "./domain/fingerprint";
import { createGallery } from "./domain/gallery";
import { createJobService } from "./domain/jobs";
import { createLine } from "./domain/line";
import { createLiveEvents } from "./domain/live-events";
import { createLoginThrottle } from "./domain/login-throttle";
import { createProgressBoard } from "./domain/progress";
import { createPromptService } from "./domain/prompts";
import { createRecoveryKeys } from "./domain/recovery";
import { createRetention } from "./domain/retention";
import { createShow } from "./domain/show";
import { createVisitorService, type VisitorLimits } from "./domain/visitors";
import { LOCAL_GENERATOR_ID, type Config } from "./env";
import { createErrorReporter } from "./error-ref";
import { createGeneratorAccess } from "./generator-access";
import { authVerify, loginRedirect } from "./http/auth-verify";
import { bearerAuth } from "./http/bearer";
import { createCsrf, refuseCrossSiteApi, refuseCrossSiteWrites, requireCsrfHeader } from "./http/csrf";
import { createDeviceCookies } from "./http/device-cookie";
import { serveExport } from "./http/export";
import { serveImage, serveShowImage } from "./http/images";
import { serveJoinQr } from "./http/qr-svg";
import { serveRecoveryQr } from "./http/recovery-qr";
import { createSitePassword } from "./http/site-password";
import { createProxyTrust } from "./http/trusted-proxy";
import { createLoadContext } from "./http/load-context";
import { buildFor } from "./http/page-build";
import { createRequestContext, type Services } from "./http/request-context";
import { cspNonceOf, noStore, securityHeaders } from "./http/security-headers";
import { aedesTransport, connectLink } from "./link";
import { mqttClientTransport } from "./link-transport";
import type { Logger } from "./logger";
import { loadSecrets, newestSessionKeyAddedAt, rotateSessionKeys } from "./secrets";
import { PROJECT_ROOT } from "./project-root";
import { StartupError } from "./startup-error";
import { appRouter } from "./trpc/root";

const REMIX_BUILD = path.join(PROJECT_ROOT, "build", "index.js");
const PUBLIC_DIR = path.join(PROJECT_ROOT, "public");
/** Forms and tRPC calls are small; anything bigger is refused before it is read. */
const MAX_BODY_BYTES = 64 * 1024;

export interface RunningPromptgate {
  httpPort: number;
  /** The embedded broker's MQTT port; null with an external broker. */
  mqttPort: number | null;
  /** http://127.0.0.1:<port> */
  url: string;
  services: Services;
  close(): Promise<void>;
}

function ensureWritableDir(dir: string): void {
  try {
    mkdirSync(dir, { recursive: true });
    accessSync(dir, constants.W_OK);
  } catch (error) {
    throw new StartupError(`DATA_DIR ${dir} is not a writable directory (${(error as NodeJS.ErrnoException).code ?? (error as Error).message})`);
  }
}

function listen(server: Server, port: number, host: string, variable: string): Promise<number> {
  return new Promise((resolve, reject) => {
    server.once("error", (error: NodeJS.ErrnoException) =>
      reject(
        new StartupError(
          error.code === "EADDRINUSE"
            ? `port ${port} is already in use: stop the other process or set ${variable}`
            : `cannot listen on ${host}:${port} (${variable}): ${error.code ?? error.message}`,
        ),
      ),
    );
    server.listen(port, host, () => {
      const address = server.address();
      resolve(typeof address === "object" && address ? address.port : port);
    });
  });
}

const HOUR_MS = 3_600_000;

/** The visitor limits: the configurable ones, and fixed ones for recovery guesses (see server/domain/recovery.ts). */
function visitorLimits(config: Config): VisitorLimits {
  return {
    newVisitorsPerNetwork: { limit: config.limits.newVisitorsPerHour, windowMs: HOUR_MS },
    // A browser may mistype a few times; a whole party network somewhat more; one identity
    // cannot be guessed at faster than 10 tries an hour from anywhere.
    wrongRecoveryPerBrowser: { limit: 5, windowMs: 15 * 60_000 },
    wrongRecoveryPerNetwork: { limit: 30, windowMs: HOUR_MS },
    wrongRecoveryPerIdentity: { limit: 10, windowMs: HOUR_MS },
  };
}

/** A reachable address for a server bound to `host` (0.0.0.0 and :: mean loopback works). */
const loopbackFor = (host: string) => (host === "0.0.0.0" || host === "::" ? "127.0.0.1" : host);

export async function startPromptgate(config: Config, log: Logger): Promise<RunningPromptgate> {
  if (!existsSync(REMIX_BUILD)) throw new StartupError("the web UI is not built: run `npm run build` (npm start does it for you)");
  ensureWritableDir(config.dataDir);
  const secrets = loadSecrets(config.dataDir, { sessionSecret: config.sessionSecret, fingerprintSecret: config.fingerprintSecret, recoverySecret: config.recoverySecret, sessionLifetimeMs: config.keyRetireMs });
  const db = openDb(path.join(config.dataDir, "promptgate.db"));
  const cleanups: Array<() => Promise<void> | void> = [() => void db.$client.close()];
  // Once, however often it is called: a second close waits for the first.
  let closing: Promise<void> | undefined;
  const closeAll = () =>
    (closing ??= (async () => {
      for (const cleanup of cleanups.reverse()) await cleanup();
    })());

  try {
    const generatedAdminPassword = await ensureAdminPassword(db, config.adminPassword);
    if (generatedAdminPassword) {
      log.warn(`admin password generated (shown only this once; set ADMIN_PASSWORD to choose your own): ${generatedAdminPassword}`);
    }

    const blocklist = config.blocklistFile ? loadBlocklist(config.blocklistFile) : emptyBlocklist;
    if (config.blocklistFile) log.info(`blocklist: ${blocklist.size} entries from ${config.blocklistFile}; matching prompts are flagged for the admin`);
    const generatorAccess = createGeneratorAccess(db, log, { localGeneratorId: LOCAL_GENERATOR_ID, sweepMs: 1000 });
    cleanups.push(() => generatorAccess.close());
    // With an external broker (ADR 009) its own users and ACL stand for the generators' credentials.
    const external = config.externalBroker ? mqttClientTransport(config.externalBroker, log) : null;
    const broker = external
      ? null
      : await createBroker({ verify: generatorAccess.verify, maxPacketBytes: config.mqttMaxPacketBytes, log, onConnection: generatorAccess.onConnection });
    if (broker) {
      generatorAccess.attach(broker);
      cleanups.push(() => broker.close());
    }
    const brokerAccess = { port: 0, externalUrl: config.externalBroker?.url ?? null };
    const imageDir = path.join(config.dataDir, "images");
    const line = createLine(db, config.fair);
    // The link is made below: the view is read only once something has changed, after start.
    const live = createLiveEvents(db, { capacity: config.liveEventsKept, generatorsView: () => services.link.generators() });
    const progress = createProgressBoard({ onChange: (promptId) => live.progressChanged(promptId) });
    cleanups.push(() => progress.close());
    const jobs = createJobService(db, imageDir, { leaseMs: config.leaseMs, line, changes: live, onLeaseEnded: (jobId) => progress.clear(jobId) });
    cleanups.push(() => jobs.close());
    // Every lease held before this start gets one period for its generator to come back and say so.
    jobs.renewAllLeases();
    const reportError = createErrorReporter(log);
    const services: Services = {
      db,
      loginThrottle: createLoginThrottle(),
      loginRefusals: createRefusalAudit(db, (error) => reportError(error, "counting refused admin logins")),
      adminSessions: createAdminSessions(db, { idleMs: config.adminIdleMs, absoluteMs: config.adminSessionMs }),
      brokerAccess,
      proxySignIn: config.proxyTrust !== null,
      generators: generatorAccess,
      visitors: createVisitorService(db, {
        hashFingerprint: createFingerprintHasher(secrets.fingerprintSecret, config.fingerprintMemoryKib),
        recoveryKeys: createRecoveryKeys(secrets.recoverySecret),
        limits: visitorLimits(config),
      }),
      prompts: createPromptService(db, { limits: config.limits, blocklist, changes: live }),
      jobs,
      line,
      live,
      progress,
      gallery: createGallery(db),
      show: createShow(db, { changes: live }),
      retention: createRetention(db, imageDir, log, live),
      link: await connectLink(external ?? aedesTransport(broker!.aedes), jobs, log, {
        localGeneratorId: config.localGenerator && config.localGeneratorMode === "auto" ? config.localGenerator.generatorId : null,
        sweepMs: Math.min(1000, config.leaseMs / 4),
        onChange: () => live.generatorsChanged(),
        progress,
      }),
    };
    cleanups.push(() => services.link.close(), () => services.show.close(), services.loginRefusals.close);
    if (external) {
      // After the link's handlers exist: a resumed session delivers what waited for the server at once.
      await external.connect();
      cleanups.push(() => external.close());
    }
    const csrf = createCsrf(secrets.sessionKeys);
    const proxyTrust = config.proxyTrust ? createProxyTrust(config.proxyTrust) : null;
    const tools = { csrf, devices: createDeviceCookies(secrets.sessionKeys), adminSessionMs: config.adminSessionMs, publicUrl: config.publicUrl, proxyTrust };
    const contextFor = (req: Request, res: Response) => createRequestContext(services, tools, req, res);
    const build = (await import(pathToFileURL(REMIX_BUILD).href)) as ServerBuild;

    const app = express();
    app.disable("x-powered-by");
    app.set("trust proxy", config.trustProxy);
    app.use(securityHeaders);
    app.use("/build", express.static(path.join(PUBLIC_DIR, "build"), { immutable: true, maxAge: "1y" }));
    app.use(noStore);
    app.get("/healthz", (_req, res) => {
      res.json({ ok: true, generators: services.link.generators().filter((g) => g.state === "online").length });
    });
    app.use(refuseCrossSiteWrites);
    app.use((req, res, next) => {
      // A body without a length (chunked) could not be limited before it is read: browsers never send one.
      if (req.headers["transfer-encoding"] !== undefined && req.headers["content-length"] === undefined) {
        res.status(411).type("text/plain").send("A request body needs a Content-Length.");
        return;
      }
      if (Number(req.headers["content-length"] ?? 0) > MAX_BODY_BYTES) {
        res.status(413).type("text/plain").send(`Request too large (limit ${MAX_BODY_BYTES / 1024} KiB).`);
        return;
      }
      next();
    });
    if (config.sitePassword) {
      const site = createSitePassword({
        password: config.sitePassword,
        sessionMs: config.siteSessionMs,
        keys: secrets.sessionKeys,
        db,
        csrf,
        devices: tools.devices,
        throttle: createLoginThrottle(),
        guestMode: config.guestMode,
        vouched: (req) => proxyTrust?.identityOf(req) != null,
        reportError,
      });
      app.use(site.router, site.guard);
      cleanups.push(site.close);
    }
    const bearer = bearerAuth(db);
    app.get("/auth/verify", authVerify(db, services.adminSessions, proxyTrust));
    app.get("/auth/login", loginRedirect);
    app.use(
      "/api/trpc",
      refuseCrossSiteApi,
      bearer,
      requireCsrfHeader(csrf),
      createExpressMiddleware({
        router: appRouter,
        createContext: ({ req, res }) => contextFor(req, res),
        maxBodySize: MAX_BODY_BYTES,
        // The browser batches a handful of calls at most; a bigger batch is an attempt to multiply work.
        maxBatchSize: 10,
        responseMeta: ({ errors, type }) => {
          // tRPC's own "no-cache" would let a cache store the admin's stream: never.
          if (type === "subscription") return { headers: { "Cache-Control": "no-store, no-transform" } };
          const retryAfterMs = Math.max(0, ...errors.map((error) => (error.cause instanceof DomainError ? (error.cause.retryAfterMs ?? 0) : 0)));
          return retryAfterMs > 0 ? { headers: { "Retry-After": String(Math.ceil(retryAfterMs / 1000)) } } : {};
        },
        // Before tRPC formats the answer, which then shows this ref (server/trpc/init.ts).
        onError: ({ error, path: procedure }) => {
          if (error.code === "INTERNAL_SERVER_ERROR") reportError(error, `tRPC ${procedure}`);
        },
      }),
    );
    app.get("/images/:file", bearer, (req, res) => {
      const match = /^(\d+)\.png$/.exec(req.params.file ?? "");
      if (!match) return void res.status(404).type("text/plain").send("No such image.");
      serveImage(contextFor(req, res), Number(match[1]), req, res);
    });
    app.get("/show/:code/images/:file", (req, res) => {
      const match = /^(\d+)\.png$/.exec(req.params.file ?? "");
      if (!match) return void res.status(404).type("text/plain").send("No such image.");
      serveShowImage(contextFor(req, res), (req.params.code ?? "").toUpperCase(), Number(match[1]), req, res);
    });
    app.get("/admin/export.zip", (req, res, next) => void serveExport(contextFor(req, res), req, res, reportError).catch(next));
    app.get("/me/recovery-qr.svg", (req, res) => serveRecoveryQr(contextFor(req, res), res));
    app.get("/join-qr.svg", (req, res) => serveJoinQr(contextFor(req, res), res));
    // Remix's pre-single-fetch data requests (?_data=): our pages never make them, and Remix would
    // answer 403 while reporting a warning as a server error.
    app.use((req, res, next) => {
      if (req.query._data === undefined) return next();
      res.status(400).type("text/plain").send("?_data requests are not supported.");
    });
    const remix = (routes: ServerBuild) =>
      createRequestHandler({
        build: routes,
        mode: "production",
        getLoadContext: (req, res) => createLoadContext(contextFor(req, res), cspNonceOf(res), reportError),
      });
    // The visitor page and its single-fetch data address (each submit and cancel with JavaScript
    // posts there and reloads from there), from a build that holds only the routes `/` matches
    // (server/http/page-build.ts). Exactly these two spellings: Express would also match
    // `/_ROOT.DATA` or `/_root.data/`, which the whole build answers as unknown addresses.
    const visitorPage = express.Router({ caseSensitive: true, strict: true });
    visitorPage.all(["/", "/_root.data"], remix(buildFor(build, "/")));
    app.use(visitorPage);
    app.all("*", remix(build));
    app.use((error: Error & { status?: unknown }, req: Request, res: Response, _next: NextFunction) => {
      if (res.headersSent) return void reportError(error, `${req.method} ${req.path}`);
      // Express's own refusals (400 for a malformed %-escape in the address) are the client's mistake, not ours.
      if (typeof error.status === "number" && error.status >= 400 && error.status < 500) {
        res.status(error.status).type("text/plain").send(`${STATUS_CODES[error.status]}.`);
        return;
      }
      res.status(500).type("text/plain").send(reportError(error, `${req.method} ${req.path}`));
    });

    const http = createServer(app);
    http.on("upgrade", (request, socket, head) => {
      if (new URL(request.url ?? "/", "http://x").pathname !== "/mqtt") return void socket.destroy();
      if (broker) return broker.handleUpgrade(request, socket, head);
      const message = "This server uses an external MQTT broker (MQTT_URL): connect generators to that broker.\n";
      socket.end(`HTTP/1.1 404 Not Found\r\nContent-Type: text/plain\r\nContent-Length: ${Buffer.byteLength(message)}\r\nConnection: close\r\n\r\n${message}`);
    });
    const httpPort = await listen(http, config.port, config.host, "PORT");
    cleanups.push(
      () =>
        new Promise<void>((resolve) => {
          http.close(() => resolve());
          http.closeAllConnections();
        }),
    );
    const mqttPort = broker
      ? await broker.listen(config.mqttPort, config.mqttHost).catch((error: NodeJS.ErrnoException) => {
          throw new StartupError(
            error.code === "EADDRINUSE"
              ? `MQTT port ${config.mqttPort} is already in use: stop the other broker or set MQTT_PORT`
              : `cannot listen for MQTT on ${config.mqttHost}:${config.mqttPort}: ${error.code ?? error.message}`,
          );
        })
      : null;

    brokerAccess.port = mqttPort ?? 0;
    // parseEnv leaves no local generator with an external broker.
    if (config.localGenerator && mqttPort !== null) {
      const mqttUrl = `mqtt://${loopbackFor(config.mqttHost)}:${mqttPort}`;
      const generator = await startGeneratorThread({ ...config.localGenerator, mqttUrl, mqttUsername: generatorAccess.local.username, mqttPassword: generatorAccess.local.password }, log).catch(
        (error: Error) => {
          throw new StartupError(`the local generator could not start (${error.message}); set LOCAL_GENERATOR=false to run without it`);
        },
      );
      cleanups.push(() => generator.close());
    }

    const { keyRotationMs } = config;
    if (keyRotationMs && !config.sessionSecret) {
      const rotateIfDue = () => {
        if (Date.now() - newestSessionKeyAddedAt(config.dataDir) < keyRotationMs) return;
        const { retiring, removed } = rotateSessionKeys(config.dataDir, config.keyRetireMs);
        recordAudit(db, { actor: "server", action: "keys.rotate", target: "session", details: { retiring, removed, reason: "KEY_ROTATION_DAYS" } });
        log.info(`session keys rotated (KEY_ROTATION_DAYS); ${retiring} older key(s) verify until they retire`);
      };
      rotateIfDue();
      const timer = setInterval(rotateIfDue, 3_600_000);
      timer.unref();
      cleanups.push(() => clearInterval(timer));
    }

    const prune = setInterval(() => {
      services.visitors.pruneExpiredSessions();
      services.adminSessions.pruneExpired();
    }, 3_600_000);
    prune.unref();
    cleanups.push(() => clearInterval(prune));

    if (config.retentionDays) {
      const days = config.retentionDays;
      const { retention } = services;
      let purging: Promise<void> = Promise.resolve();
      const purge = () => {
        // Chained: a purge never overlaps the previous one.
        purging = purging.then(() => retention.purgeOlderThan(new Date(Date.now() - days * 86_400_000))).then(
          (removed) =>
            log.info(
              `retention: removed ${removed.prompts} prompts, ${removed.images} images, ${removed.visitors} visitors, ${removed.auditEntries} audit log entries older than ${days} days` +
                (removed.orphanFiles ? `, and ${removed.orphanFiles} image files no row pointed to` : ""),
            ),
          (error: Error) => log.error(`retention: ${error.stack ?? error}`),
        );
        return purging;
      };
      await purge();
      const timer = setInterval(purge, 3_600_000);
      timer.unref();
      // A purge in progress finishes before the database closes.
      cleanups.push(() => {
        clearInterval(timer);
        return purging;
      });
    }

    const url = `http://${loopbackFor(config.host)}:${httpPort}`;
    const mqttWhere = mqttPort === null ? `MQTT through the broker at ${config.externalBroker!.url}` : `MQTT on port ${mqttPort} and at /mqtt over WebSocket`;
    log.info(`open ${url} (listening on ${config.host}:${httpPort}; ${mqttWhere}; data in ${config.dataDir})`);
    return {
      httpPort,
      mqttPort,
      url,
      services,
      close: closeAll,
    };
  } catch (error) {
    await closeAll();
    throw error;
  }
}
