/** Starts a real promptgate (HTTP, embedded broker, optional local generator) on ephemeral ports with a temp DATA_DIR. */
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { GeneratorEnvSchema, generatorConfigFrom, parseEnvironment, type GeneratorConfig } from "../../generator/env";
import { startPromptgate, type RunningPromptgate } from "../../server/app";
import { openDb } from "../../server/db/client";
import { findAccount, FIRST_ADMIN } from "../../server/domain/accounts";
import { addGeneratorCredential } from "../../server/domain/generator-credentials";
import { parseEnv } from "../../server/env";
import type { Logger } from "../../server/logger";
import type { RegisterCleanup } from "./cleanups";
import { TestClient } from "./client";

export const ADMIN_PASSWORD = "correct horse battery staple";

/** A logger that keeps lines, so tests can assert on what was logged. */
export function collectingLogger(): Logger & { lines: string[] } {
  const lines: string[] = [];
  const push = (level: string) => (message: string) => void lines.push(`${level} ${message}`);
  return { lines, debug: push("debug"), info: push("info"), warn: push("warn"), error: push("error") };
}

export interface TestServer extends RunningPromptgate {
  dataDir: string;
  log: ReturnType<typeof collectingLogger>;
  env: Record<string, string>;
}

export function makeDataDir(): string {
  return mkdtempSync(path.join(tmpdir(), "promptgate-test-"));
}

/**
 * `env` overrides the test defaults (ports 0, loopback, a known admin password, a cheap
 * fingerprint hash). Pass DATA_DIR to reuse a directory across restarts.
 */
export async function startTestServer(env: Record<string, string> = {}): Promise<TestServer> {
  const dataDir = env.DATA_DIR ?? makeDataDir();
  const fullEnv = {
    PORT: "0",
    MQTT_PORT: "0",
    HOST: "127.0.0.1",
    ADMIN_PASSWORD,
    FINGERPRINT_MEMORY_KIB: "4096",
    GENERATOR_ID: `test-generator-${process.pid}-${Math.random().toString(36).slice(2, 8)}`,
    ...env,
    DATA_DIR: dataDir,
  };
  const log = collectingLogger();
  const running = await startPromptgate(parseEnv(fullEnv), log);
  return { ...running, dataDir, log, env: fullEnv };
}

export function removeDataDir(dir: string): void {
  rmSync(dir, { recursive: true, force: true });
}

/** Polls `check` until it returns a truthy value, or fails after `timeoutMs` naming `what`. */
export async function waitFor<T>(what: string, check: () => T | Promise<T>, timeoutMs = 15_000): Promise<NonNullable<T>> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await check();
    if (value) return value as NonNullable<T>;
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 25));
  }
}

const credentials = new WeakMap<RunningPromptgate, Map<string, { username: string; password: string }>>();

/**
 * A generator's config for `server`'s embedded broker (TCP), connecting as `generatorId` with
 * its credential; `env` adds or overrides variables (SD_API_URL, GENERATOR_DRAIN_SECONDS …).
 */
export function generatorConfigOn(server: TestServer, generatorId: string, env: Record<string, string> = {}): GeneratorConfig {
  if (server.mqttPort === null) throw new Error("this server runs no embedded broker (MQTT_URL is set)");
  return generatorConfigFrom(
    parseEnvironment(GeneratorEnvSchema, { MQTT_URL: `mqtt://127.0.0.1:${server.mqttPort}`, MQTT_PASSWORD: generatorCredential(server, generatorId).password, GENERATOR_ID: generatorId, ...env }),
  );
}

/**
 * Generator `name`'s MQTT credential on a running server, added as the admin would on first use
 * (the client id must be the username too). A generator's env: GENERATOR_ID and MQTT_PASSWORD.
 */
export function generatorCredential(server: RunningPromptgate, name: string): { username: string; password: string } {
  const known = credentials.get(server) ?? new Map<string, { username: string; password: string }>();
  credentials.set(server, known);
  let credential = known.get(name);
  if (!credential) known.set(name, (credential = { username: name, password: server.services.generators.add(name).token }));
  return credential;
}

/**
 * Adds a generator credential to the database in `dataDir` as `npm run admin -- generator add`
 * does, beside a server running in another process (it reads credentials per connection).
 * Returns the token; the same name gets the same token for the life of the test process.
 */
export function credentialInDataDir(dataDir: string, name: string): string {
  const key = `${dataDir}\0${name}`;
  let token = tokensInDataDirs.get(key);
  if (!token) {
    const db = openDb(path.join(dataDir, "promptgate.db"));
    try {
      token = addGeneratorCredential(db, name).token;
    } finally {
      db.$client.close();
    }
    tokensInDataDirs.set(key, token);
  }
  return token;
}
const tokensInDataDirs = new Map<string, string>();

/** The first admin's account id, for a session made directly (without the login form's argon2 verification). */
export const firstAdminId = (server: RunningPromptgate): number => findAccount(server.services.db, FIRST_ADMIN)!.id;

/**
 * Moderator `name`, added by `admin` and signed in from a browser of their own through the login
 * form, as a person would be.
 */
export async function signedInModerator(
  server: { url: string },
  admin: TestClient,
  name: string,
  { password = "moderator's secret", userAgent = `${name}'s browser` } = {},
): Promise<TestClient> {
  const added = await admin.mutate("access.addModerator", { name, password });
  if (added.status !== 200) throw new Error(`adding moderator ${name} answered ${added.status}`);
  const moderator = new TestClient(server.url, { userAgent });
  await moderator.page("/admin/login");
  const login = await moderator.postForm("/admin/login", { name, password });
  if (login.status !== 302) throw new Error(`moderator ${name}'s login answered ${login.status}`);
  return moderator;
}

/** A server of its own with its admin signed in, closed and removed as `cleanup` runs. */
export async function serverWithAdmin(cleanup: RegisterCleanup, env: Record<string, string> = {}): Promise<{ server: TestServer; admin: TestClient }> {
  const server = await startTestServer(env);
  cleanup(() => removeDataDir(server.dataDir), () => server.close());
  const admin = new TestClient(server.url, { userAgent: "test admin" });
  await admin.loginAsAdmin(ADMIN_PASSWORD);
  return { server, admin };
}
