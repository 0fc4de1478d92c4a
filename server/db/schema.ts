/**
 * Every table of promptgate. Migrations are generated from this file by drizzle-kit
 * (`npm run db:generate`) into server/db/migrations/, committed, and applied at start.
 */
import { sql } from "drizzle-orm";
import { index, integer, real, sqliteTable, text } from "drizzle-orm/sqlite-core";
import { PROMPT_STATUSES } from "../domain/moderation";

/** SQLite's current time in milliseconds, the unit of every `timestamp_ms` column. */
export const nowMs = sql`(unixepoch('subsec') * 1000)`;

const createdAt = () => integer("created_at", { mode: "timestamp_ms" }).notNull().default(nowMs);

/**
 * An anonymous visitor. The colour's name is derived from `id` (server/domain/colours.ts), unique by
 * construction; the swatch is stored, unique by constraint.
 */
export const visitors = sqliteTable("visitors", {
  id: integer("id").primaryKey({ autoIncrement: true }),
  hex: text("hex").notNull().unique(),
  createdAt: createdAt(),
  /**
   * When a browser last used this identity (written at most once a minute): an identity seen
   * moments ago is in use elsewhere, so a look-alike newcomer is never offered it.
   */
  lastSeenAt: integer("last_seen_at", { mode: "timestamp_ms" }),
  /**
   * Random per-visitor input from which the recovery code and link are derived under the
   * server's key (server/domain/recovery.ts); replacing it is "make a new code and link".
   */
  recoverySalt: text("recovery_salt"),
  /** Keyed hash of the recovery code (never the code itself). */
  recoveryCodeHash: text("recovery_code_hash"),
  /** SHA-256 of the recovery link's secret, looked up by equality when a link is opened. */
  recoveryLinkHash: text("recovery_link_hash").unique(),
  /** Muted by the admin: this visitor's new prompts are held apart from the moderation queue. */
  muted: integer("muted", { mode: "boolean" }).notNull().default(false),
});

/**
 * Keyed argon2id hashes of visitor fingerprints (anonymised IP + User-Agent + Accept-Language).
 * Looked up by equality on the primary key, so recognition costs one hash whatever the table's size.
 * A `shared` fingerprint (someone said "that's not me") is never used to recognise anyone again.
 */
export const fingerprints = sqliteTable(
  "fingerprints",
  {
    hash: text("hash").primaryKey(),
    visitorId: integer("visitor_id").references(() => visitors.id),
    shared: integer("shared", { mode: "boolean" }).notNull().default(false),
    createdAt: createdAt(),
  },
  // Child-key indexes (here and on sessions and jobs): deleting a parent row makes SQLite look up
  // its children, a full scan per deleted row without one (retention deletes in bulk).
  (table) => [index("fingerprints_visitor").on(table.visitorId)],
);

/** Visitors' cookie sessions; only a SHA-256 of the cookie's token is stored. */
export const sessions = sqliteTable(
  "sessions",
  {
    tokenHash: text("token_hash").primaryKey(),
    kind: text("kind", { enum: ["visitor"] }).notNull(),
    visitorId: integer("visitor_id").references(() => visitors.id),
    /** How a visitor session began: a new identity, or an identity recovered by code or link. */
    origin: text("origin", { enum: ["new", "recovered"] }).notNull(),
    /**
     * The fingerprint of the browser that opened the session: the key that limits its recovery
     * attempts, and the one "I'm new" marks shared.
     */
    fingerprintHash: text("fingerprint_hash"),
    /**
     * An identity this browser may be ("you lost your cookies, are you Teal?"): offered, never
     * given, until the visitor proves it with the code or answers "I'm new". Kept until answered.
     */
    offerVisitorId: integer("offer_visitor_id").references(() => visitors.id),
    createdAt: createdAt(),
    expiresAt: integer("expires_at", { mode: "timestamp_ms" }).notNull(),
  },
  (table) => [index("sessions_expires_at").on(table.expiresAt), index("sessions_visitor").on(table.visitorId), index("sessions_offer").on(table.offerVisitorId)],
);

/**
 * Admin logins (server/domain/admin-sessions.ts); only a SHA-256 of the cookie's token is stored.
 * A session ends when idle for ADMIN_IDLE_MINUTES or at `expires_at` (ADMIN_SESSION_HOURS after login).
 */
export const adminSessions = sqliteTable(
  "admin_sessions",
  {
    tokenHash: text("token_hash").primaryKey(),
    /** Whose login this is. Null only for sessions from before accounts existed: those count as ended. */
    accountId: integer("account_id").references(() => accounts.id),
    createdAt: integer("created_at", { mode: "timestamp_ms" }).notNull(),
    lastSeenAt: integer("last_seen_at", { mode: "timestamp_ms" }).notNull(),
    expiresAt: integer("expires_at", { mode: "timestamp_ms" }).notNull(),
  },
  (table) => [index("admin_sessions_expires_at").on(table.expiresAt), index("admin_sessions_account").on(table.accountId)],
);

export const ACCOUNT_ROLES = ["admin", "moderator"] as const;
export type AccountRole = (typeof ACCOUNT_ROLES)[number];

/**
 * The colour of a person signed in through a trusted proxy (TRUSTED_PROXIES, server/http/
 * trusted-proxy.ts): one per identity, on every device. The identity is kept as its SHA-256 only.
 * No foreign key: retention and "end the event" delete visitors, and a row whose visitor is gone
 * simply gets a new colour.
 */
export const proxyIdentities = sqliteTable("proxy_identities", {
  subjectHash: text("subject_hash").primaryKey(),
  visitorId: integer("visitor_id").notNull(),
  createdAt: createdAt(),
});

/**
 * People who log in (server/domain/accounts.ts): the first admin, named "admin", whose password
 * comes from ADMIN_PASSWORD or the first start, the moderators admins add, and `proxy:` accounts
 * of people a trusted proxy signs in. Only argon2id hashes of passwords are kept.
 */
export const accounts = sqliteTable("accounts", {
  id: integer("id").primaryKey({ autoIncrement: true }),
  name: text("name").notNull().unique(),
  role: text("role", { enum: ACCOUNT_ROLES }).notNull(),
  passwordHash: text("password_hash").notNull(),
  /**
   * A `proxy:` account an admin added by its identity (user or email), not made from a group:
   * its role is the admin's choice, whatever the groups say, until the admin removes it.
   */
  proxyGrant: integer("proxy_grant", { mode: "boolean" }).notNull().default(false),
  /**
   * When a `proxy:` account first signed in through the trusted proxy, which the audit log says
   * once; null until then (an identity an admin added, before its person's first visit).
   */
  proxySignedInAt: integer("proxy_signed_in_at", { mode: "timestamp_ms" }),
  createdAt: createdAt(),
});

/**
 * Who did what, when (server/domain/audit.ts): every moderation and admin action and every login
 * attempt. The actor is kept as text ("admin", "token:ci", "cli") so a row outlives its account.
 */
export const auditLog = sqliteTable(
  "audit_log",
  {
    id: integer("id").primaryKey({ autoIncrement: true }),
    at: integer("at", { mode: "timestamp_ms" }).notNull().default(nowMs),
    actor: text("actor").notNull(),
    action: text("action").notNull(),
    target: text("target"),
    /** JSON object with whatever else matters (the address of a failed login, a token's scopes). */
    details: text("details", { mode: "json" }).$type<Record<string, unknown>>(),
  },
);

export const API_TOKEN_SCOPES = ["submit", "moderate", "read"] as const;
export type ApiTokenScope = (typeof API_TOKEN_SCOPES)[number];

/**
 * Tokens for scripts (server/domain/api-tokens.ts), sent as `Authorization: Bearer`. Only the
 * SHA-256 of the 256-bit secret is kept; revoking deletes the row.
 */
export const apiTokens = sqliteTable("api_tokens", {
  id: integer("id").primaryKey({ autoIncrement: true }),
  name: text("name").notNull().unique(),
  tokenHash: text("token_hash").notNull().unique(),
  scopes: text("scopes", { mode: "json" }).$type<ApiTokenScope[]>().notNull(),
  /** With the `submit` scope: the visitor (its own colour) the token submits as. */
  visitorId: integer("visitor_id").references(() => visitors.id),
  createdBy: text("created_by").notNull(),
  createdAt: createdAt(),
  /** Written at most once a minute. */
  lastUsedAt: integer("last_used_at", { mode: "timestamp_ms" }),
});

// Defined with the browser-safe moderation vocabulary: the admin page filters by them.
export { PROMPT_STATUSES, type PromptStatus } from "../domain/moderation";

export const prompts = sqliteTable(
  "prompts",
  {
    id: integer("id").primaryKey({ autoIncrement: true }),
    visitorId: integer("visitor_id")
      .notNull()
      .references(() => visitors.id),
    prompt: text("prompt").notNull(),
    negativePrompt: text("negative_prompt").notNull().default(""),
    width: integer("width").notNull(),
    height: integer("height").notNull(),
    status: text("status", { enum: PROMPT_STATUSES }).notNull().default("pending"),
    /** The prompt's current job (a retry creates a new one); status messages of older jobs are ignored. */
    jobId: text("job_id"),
    failureReason: text("failure_reason"),
    /** Sent while its author was muted: held apart from the moderation queue. */
    held: integer("held", { mode: "boolean" }).notNull().default(false),
    /** The blocklist entry the prompt matched, shown to the admin; flagged prompts are kept. */
    flaggedBy: text("flagged_by"),
    /** What the guest first sent, kept on record once a moderator edits the prompt (null: never edited). */
    originalPrompt: text("original_prompt"),
    originalNegativePrompt: text("original_negative_prompt"),
    /** Why it was denied, shown to its author (null: no reason given). */
    denyReason: text("deny_reason"),
    /** Kept out of the reveal, the show and the gallery; its author sees "done" and never the image while it is hidden. */
    hidden: integer("hidden", { mode: "boolean" }).notNull().default(false),
    createdAt: createdAt(),
    decidedAt: integer("decided_at", { mode: "timestamp_ms" }),
    /** Set when the admin shows the image in the reveal: from then on its author can see it. */
    revealedAt: integer("revealed_at", { mode: "timestamp_ms" }),
  },
  (table) => [index("prompts_visitor").on(table.visitorId, table.id), index("prompts_status").on(table.status, table.id)],
);

export const JOB_STATES = ["queued", "accepted", "started", "done", "failed", "cancelled"] as const;
export type JobState = (typeof JOB_STATES)[number];

/**
 * The outbox: one row per job, written in the same transaction that approves its prompt. A job
 * not yet `done` or `failed` waits in line until the dispatcher leases it to one generator
 * (ADR 008); the lease lasts while its holder's heartbeats keep coming.
 */
export const jobs = sqliteTable(
  "jobs",
  {
    id: text("id").primaryKey(),
    promptId: integer("prompt_id")
      .notNull()
      .references(() => prompts.id),
    state: text("state", { enum: JOB_STATES }).notNull().default("queued"),
    /** The generator that made (or last worked on) the job. */
    generatorId: text("generator_id"),
    publishCount: integer("publish_count").notNull().default(0),
    createdAt: createdAt(),
    lastPublishedAt: integer("last_published_at", { mode: "timestamp_ms" }),
    startedAt: integer("started_at", { mode: "timestamp_ms" }),
    finishedAt: integer("finished_at", { mode: "timestamp_ms" }),
    /** The generator holding the job's lease; null while it waits in line. */
    leaseGeneratorId: text("lease_generator_id"),
    leaseExpiresAt: integer("lease_expires_at", { mode: "timestamp_ms" }),
    /** Why no online generator can take the job (too large for all of them), shown until one can. */
    blockedReason: text("blocked_reason"),
    /** JSON array of the generators that reported this job failed: it is not given to them again. */
    failedOn: text("failed_on", { mode: "json" }).$type<string[]>().notNull().default(sql`'[]'`),
    /** Fair turns (server/domain/fair-turns.ts): virtual start and finish tags, given at approval. */
    fairStart: real("fair_start").notNull().default(0),
    fairFinish: real("fair_finish").notNull().default(0),
    /** Leases granted (to anyone) before the job was approved: how long it has waited, in turns. */
    approvedTurn: integer("approved_turn").notNull().default(0),
    /** The admin pinned or moved it: its place among pinned jobs, smallest first. */
    pinRank: integer("pin_rank"),
  },
  (table) => [
    index("jobs_state").on(table.state),
    index("jobs_prompt").on(table.promptId),
    index("jobs_lease").on(table.leaseGeneratorId),
    // Every approval reads the line's virtual time and largest tag (server/domain/line.ts newJobPlace).
    index("jobs_fair_start").on(table.state, table.fairStart),
    index("jobs_fair_finish").on(table.fairFinish),
  ],
);

/** A generated image: the PNG lives in DATA_DIR/images/, its metadata here (the original's sidecar). */
export const images = sqliteTable("images", {
  promptId: integer("prompt_id")
    .primaryKey()
    .references(() => prompts.id),
  jobId: text("job_id")
    .notNull()
    .unique()
    .references(() => jobs.id),
  fileName: text("file_name").notNull(),
  bytes: integer("bytes").notNull(),
  width: integer("width").notNull(),
  height: integer("height").notNull(),
  seed: integer("seed").notNull(),
  backend: text("backend").notNull(),
  generatorId: text("generator_id").notNull(),
  /** JSON: the sampling parameters that produced the image. */
  parameters: text("parameters", { mode: "json" }).notNull(),
  queuedMs: integer("queued_ms").notNull(),
  generationMs: integer("generation_ms").notNull(),
  createdAt: createdAt(),
});

/** Small key/value settings, e.g. the admin password's argon2id hash. */
export const settings = sqliteTable("settings", {
  key: text("key").primaryKey(),
  value: text("value").notNull(),
});

/**
 * The generators allowed to connect to the embedded broker, one credential each
 * (server/domain/generator-credentials.ts). The name is the generator's id, its MQTT username and
 * client id; only a SHA-256 of its token is kept. Revoking deletes the row.
 */
export const generatorCredentials = sqliteTable("generator_credentials", {
  name: text("name").primaryKey(),
  tokenHash: text("token_hash").notNull(),
  createdAt: createdAt(),
  /** When it last connected or disconnected; null before its first connection. */
  lastSeenAt: integer("last_seen_at", { mode: "timestamp_ms" }),
});
