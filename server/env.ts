/**
 * Server configuration: every environment variable the server reads, parsed once at
 * start-up (server/main.ts). Everything else receives the resulting `Config`.
 */
import path from "node:path";
import { z } from "zod";
import type { FairRules } from "./domain/fair-turns";
import { createProxyList, type ProxyTrustConfig } from "./http/trusted-proxy";
import { EnvError, GeneratorEnvSchema, envBoolean, envInteger, generatorConfigFrom, parseEnvironment, type GeneratorConfig } from "../generator/env";

const secret = (name: string) =>
  z.string().min(32, { message: `${name} must be at least 32 characters (or unset: one is generated in DATA_DIR)` });

/** "a, b,c" → ["a", "b", "c"]; unset → []. */
const commaList = z
  .string()
  .default("")
  .transform((value) =>
    value
      .split(",")
      .map((entry) => entry.trim())
      .filter(Boolean),
  );

const ServerEnvSchema = GeneratorEnvSchema.omit({ MQTT_URL: true, MQTT_USERNAME: true, MQTT_PASSWORD: true }).extend({
  PORT: envInteger(0, 65535).default(3000),
  HOST: z.string().min(1).default("0.0.0.0"),
  MQTT_PORT: envInteger(0, 65535).default(1883),
  MQTT_HOST: z.string().min(1).optional(),
  DATA_DIR: z.string().min(1).default("./data"),
  // A common one is refused where it would be applied (ensureAdminPassword), not here: one that
  // an older version applied, and that has been changed since, must not stop an upgrade.
  ADMIN_PASSWORD: z.string().min(8, { message: "must be at least 8 characters" }).optional(),
  SESSION_SECRET: secret("SESSION_SECRET").optional(),
  FINGERPRINT_SECRET: secret("FINGERPRINT_SECRET").optional(),
  /** The shared token of earlier versions: set, it would let an operator believe generators still use it. */
  MQTT_TOKEN: z
    .undefined({ message: "is no longer used: every generator has its own token (`npm run admin -- generator add NAME`, README); unset MQTT_TOKEN" })
    .optional(),
  /** Sized for the largest result: a 2048×2048 RGBA PNG of pure noise is 16.8 MB, 22.4 MB in base64 (README). */
  MQTT_MAX_PACKET_BYTES: envInteger(64 * 1024, 256 * 1024 * 1024).default(24 * 1024 * 1024),
  /** An existing broker to use instead of the embedded one (ADR 009), credentials in the URL. */
  MQTT_URL: z
    .url({ protocol: /^(mqtts?|wss?)$/, message: "expected the broker's URL, e.g. mqtt://user:password@broker.example.org:1883 (mqtt, mqtts, ws or wss)" })
    .optional(),
  MQTT_CONNECT_TIMEOUT_SECONDS: envInteger(1, 3600).default(30),
  RECOVERY_SECRET: secret("RECOVERY_SECRET").optional(),
  LOCAL_GENERATOR: z
    .string()
    .trim()
    .toLowerCase()
    .refine((value) => ["auto", "true", "false", "1", "0", "yes", "no", "on", "off"].includes(value), { message: "expected auto, true or false" })
    .transform((value): "auto" | "always" | "off" => (value === "auto" ? "auto" : ["true", "1", "yes", "on"].includes(value) ? "always" : "off"))
    .default("auto"),
  JOB_LEASE_SECONDS: envInteger(2, 3600).default(30),
  FAIR_COLOUR_CAP: envInteger(0, 10_000).default(2),
  FAIR_AGING_TURNS: envInteger(0, 1_000_000).default(50),
  /** Events kept in memory for live pages that reconnect (ADR 012). */
  LIVE_EVENTS_KEPT: envInteger(10, 1_000_000).default(10_000),
  TRUST_PROXY: z
    .string()
    .default("false")
    .transform((value): boolean | number | string => (value === "true" ? true : value === "false" ? false : /^\d+$/.test(value) ? Number(value) : value)),
  /** Proxies believed about the client's address and, only from them, about who is signed in (server/http/trusted-proxy.ts). */
  TRUSTED_PROXIES: commaList.superRefine((entries, ctx) => {
    try {
      createProxyList(entries);
    } catch (error) {
      ctx.addIssue({ code: "custom", message: (error as Error).message });
    }
  }),
  ADMIN_GROUPS: commaList,
  MODERATOR_GROUPS: commaList,
  ADMIN_SESSION_HOURS: envInteger(1, 24 * 90).default(12),
  /** Rotates the session keys when the newest is this old (server/secrets.ts); unset: only `npm run admin -- rotate-keys`. */
  KEY_ROTATION_DAYS: envInteger(1, 3650).optional(),
  /** Asks every page, API call and image for this password first (server/http/site-password.ts). */
  SITE_PASSWORD: z.string().min(8, { message: "must be at least 8 characters" }).max(1024, { message: "must be at most 1024 characters" }).optional(),
  /** "submit": without SITE_PASSWORD, guests may still submit prompts and see their own. */
  GUEST_MODE: z.enum(["off", "submit"], { message: "expected off or submit" }).default("off"),
  /** How long a browser that gave the site password keeps its pass. */
  SITE_SESSION_DAYS: envInteger(1, 400).default(30),
  ADMIN_IDLE_MINUTES: envInteger(1, 60 * 24 * 90).default(30),
  /** argon2id memory cost (KiB) for visitor fingerprints: one hash per cookieless visit. */
  FINGERPRINT_MEMORY_KIB: envInteger(1024, 1024 * 1024).default(19456),
  RETENTION_DAYS: envInteger(1, 100_000).optional(),
  LOG_LEVEL: z.enum(["debug", "info", "warn", "error", "silent"]).default("info"),
  /** The address people use to reach the site (links and QR codes); unset: the request's own. */
  PUBLIC_URL: z
    .url({ protocol: /^https?$/, message: "expected an http(s) URL such as https://party.example.org" })
    .transform((url) => url.replace(/\/+$/, ""))
    .optional(),
  LIMIT_NEW_VISITORS_PER_HOUR: envInteger(0, 1_000_000).default(600),
  LIMIT_SUBMITS_PER_MINUTE: envInteger(0, 10_000).default(6),
  LIMIT_PENDING_PROMPTS: envInteger(0, 10_000).default(5),
  BLOCKLIST_FILE: z.string().min(1).optional(),
});

export interface Config {
  port: number;
  host: string;
  mqttPort: number;
  mqttHost: string;
  /** MQTT packets above this size are refused before they are buffered. */
  mqttMaxPacketBytes: number;
  dataDir: string;
  adminPassword?: string;
  sessionSecret?: string;
  fingerprintSecret?: string;
  recoverySecret?: string;
  /** Express's `trust proxy`: TRUST_PROXY, or TRUSTED_PROXIES' own test. */
  trustProxy: boolean | number | string | ((address: string) => boolean);
  /** TRUSTED_PROXIES with the groups that make roles, or null: no proxy's identity headers are read. */
  proxyTrust: ProxyTrustConfig | null;
  /** Rotate the session keys when the newest is this old; null: only by command. */
  keyRotationMs: number | null;
  /** A key that stopped signing still verifies this long: the longest lifetime of what it signed. */
  keyRetireMs: number;
  /** SITE_PASSWORD, or null: the site is open. */
  sitePassword: string | null;
  siteSessionMs: number;
  /** GUEST_MODE=submit: without the site password, one's own prompts only. */
  guestMode: boolean;
  /** An admin session ends this long after login… */
  adminSessionMs: number;
  /** …or after this long without a request. */
  adminIdleMs: number;
  fingerprintMemoryKib: number;
  /** Prompts, images and idle visitors older than this many days are deleted hourly; null keeps everything. */
  retentionDays: number | null;
  logLevel: "debug" | "info" | "warn" | "error" | "silent";
  publicUrl: string | null;
  /** Limits for anonymous visitors; 0 turns one off. */
  limits: {
    /** New identities per anonymised network (IPv4 /24, IPv6 /48) per hour. */
    newVisitorsPerHour: number;
    /** Prompts one visitor may send per minute. */
    submitsPerMinute: number;
    /** Prompts of one visitor waiting for moderation at once. */
    pendingPrompts: number;
  };
  /** A file of words and /regular expressions/ that flag prompts for the admin. */
  blocklistFile: string | null;
  /** The local generator's settings (its MQTT_URL is filled in once the broker listens), or null. */
  localGenerator: Omit<GeneratorConfig, "mqttUrl" | "mqttUsername" | "mqttPassword"> | null;
  /** "auto": the local generator serves only while no other generator is online; "always": alongside them. */
  localGeneratorMode: "auto" | "always";
  /** How long a job's lease lasts without a heartbeat from its generator. */
  leaseMs: number;
  /** Fair turns (server/domain/fair-turns.ts); 0 turns a rule off. */
  fair: FairRules;
  /** How many live-update events are kept for resuming streams. */
  liveEventsKept: number;
  /** MQTT_URL: an existing broker replaces the embedded one (no MQTT port, no /mqtt), or null. */
  externalBroker: ExternalBrokerConfig | null;
}

export interface ExternalBrokerConfig {
  /** Without credentials: safe to log. */
  url: string;
  username?: string;
  password?: string;
  /** How long start-up waits for the broker to answer before it gives up. */
  connectTimeoutMs: number;
}

/** The URL's user and password, decoded, apart from the URL itself (which then goes into logs). */
function externalBrokerFrom(url: string, connectTimeoutMs: number): ExternalBrokerConfig {
  const parsed = new URL(url);
  const username = decodeURIComponent(parsed.username) || undefined;
  const password = decodeURIComponent(parsed.password) || undefined;
  parsed.username = "";
  parsed.password = "";
  return { url: parsed.toString(), username, password, connectTimeoutMs };
}

/** The built-in generator's MQTT client id. */
export const LOCAL_GENERATOR_ID = "promptgate-local";

/** Throws an EnvError naming each bad variable. */
export function parseEnv(env: Record<string, string | undefined>): Config {
  const parsed = parseEnvironment(ServerEnvSchema, env);
  // The built-in generator would need a broker user of its own (ADR 009); GPU boxes run `npm run generator`.
  if (parsed.MQTT_URL && parsed.LOCAL_GENERATOR === "always") {
    throw new EnvError("invalid configuration:\n  LOCAL_GENERATOR: the local generator needs the embedded broker; with MQTT_URL set, run generators with `npm run generator`");
  }
  // A guest is whoever lacks the site password: without one, everyone already has everything.
  if (parsed.GUEST_MODE === "submit" && !parsed.SITE_PASSWORD) {
    throw new EnvError("invalid configuration:\n  GUEST_MODE: guests are the people without SITE_PASSWORD; set SITE_PASSWORD too");
  }
  // One list of proxies, not two that could disagree about who the client is.
  if (parsed.TRUSTED_PROXIES.length && parsed.TRUST_PROXY !== false) {
    throw new EnvError("invalid configuration:\n  TRUST_PROXY: TRUSTED_PROXIES already says which proxies to believe about the client's address; unset TRUST_PROXY");
  }
  if (!parsed.TRUSTED_PROXIES.length && (parsed.ADMIN_GROUPS.length || parsed.MODERATOR_GROUPS.length)) {
    throw new EnvError("invalid configuration:\n  ADMIN_GROUPS: groups come from a trusted proxy's X-Forwarded-Groups; set TRUSTED_PROXIES too");
  }
  const { mqttUrl: _url, mqttUsername: _username, mqttPassword: _password, ...generator } = generatorConfigFrom({ ...parsed, MQTT_URL: "mqtt://127.0.0.1" });
  return Object.freeze({
    port: parsed.PORT,
    host: parsed.HOST,
    mqttPort: parsed.MQTT_PORT,
    mqttHost: parsed.MQTT_HOST ?? parsed.HOST,
    mqttMaxPacketBytes: parsed.MQTT_MAX_PACKET_BYTES,
    dataDir: path.resolve(parsed.DATA_DIR),
    adminPassword: parsed.ADMIN_PASSWORD,
    sessionSecret: parsed.SESSION_SECRET,
    fingerprintSecret: parsed.FINGERPRINT_SECRET,
    recoverySecret: parsed.RECOVERY_SECRET,
    trustProxy: parsed.TRUSTED_PROXIES.length ? createProxyList(parsed.TRUSTED_PROXIES) : parsed.TRUST_PROXY,
    proxyTrust: parsed.TRUSTED_PROXIES.length ? { proxies: parsed.TRUSTED_PROXIES, adminGroups: parsed.ADMIN_GROUPS, moderatorGroups: parsed.MODERATOR_GROUPS } : null,
    adminSessionMs: parsed.ADMIN_SESSION_HOURS * 3_600_000,
    keyRotationMs: parsed.KEY_ROTATION_DAYS ? parsed.KEY_ROTATION_DAYS * 86_400_000 : null,
    keyRetireMs: Math.max(parsed.ADMIN_SESSION_HOURS * 3_600_000, parsed.SITE_SESSION_DAYS * 86_400_000),
    sitePassword: parsed.SITE_PASSWORD ?? null,
    siteSessionMs: parsed.SITE_SESSION_DAYS * 86_400_000,
    guestMode: parsed.GUEST_MODE === "submit",
    adminIdleMs: parsed.ADMIN_IDLE_MINUTES * 60_000,
    fingerprintMemoryKib: parsed.FINGERPRINT_MEMORY_KIB,
    retentionDays: parsed.RETENTION_DAYS ?? null,
    logLevel: parsed.LOG_LEVEL,
    publicUrl: parsed.PUBLIC_URL ?? null,
    limits: {
      newVisitorsPerHour: parsed.LIMIT_NEW_VISITORS_PER_HOUR,
      submitsPerMinute: parsed.LIMIT_SUBMITS_PER_MINUTE,
      pendingPrompts: parsed.LIMIT_PENDING_PROMPTS,
    },
    blocklistFile: parsed.BLOCKLIST_FILE ? path.resolve(parsed.BLOCKLIST_FILE) : null,
    // Its own id: a GPU box on the same host keeps the default one.
    localGenerator: parsed.LOCAL_GENERATOR === "off" || parsed.MQTT_URL ? null : { ...generator, generatorId: LOCAL_GENERATOR_ID },
    localGeneratorMode: parsed.LOCAL_GENERATOR === "always" ? "always" : "auto",
    leaseMs: parsed.JOB_LEASE_SECONDS * 1000,
    fair: { colourCap: parsed.FAIR_COLOUR_CAP, agingTurns: parsed.FAIR_AGING_TURNS },
    liveEventsKept: parsed.LIVE_EVENTS_KEPT,
    externalBroker: parsed.MQTT_URL ? externalBrokerFrom(parsed.MQTT_URL, parsed.MQTT_CONNECT_TIMEOUT_SECONDS * 1000) : null,
  });
}
