/**
 * Server-side secrets: given by environment variables, or generated on first start and kept in
 * DATA_DIR/secrets.json (mode 0600). A secret missing from an older file is added to it.
 * Losing the fingerprint secret only means visitors without cookies are no longer recognised;
 * losing the recovery secret gives every visitor a new recovery code and link. (Generators have
 * their own credentials in the database; the `mqttToken` of older files is ignored.)
 *
 * The session keys, which sign CSRF tokens, device cookies and the site-password cookie, are a
 * key ring (issue 9 §6): the newest key signs, every key not yet retired verifies, and a
 * rotation (`npm run admin -- rotate-keys`, KEY_ROTATION_DAYS) adds a key. A key retires one
 * signed-cookie lifetime after the key that followed it was added, by the lifetime of the server
 * that verifies (its own SITE_SESSION_DAYS / ADMIN_SESSION_HOURS), never that of whichever
 * process rotated: the file stores when each key was added, not when it retires. A cookie
 * verified by an older key is signed again with the newest, so nobody who comes back within
 * that time is logged out. The running server re-reads the file when it changes: a rotation by
 * the command line takes effect within a second.
 */
import { randomBytes } from "node:crypto";
import { chmodSync, readFileSync, renameSync, statSync, writeFileSync } from "node:fs";
import path from "node:path";
import { z } from "zod";
import { StartupError } from "./startup-error";

// Files written before retirement was computed also hold a `retiresAt` per key: dropped on read.
const SessionKeySchema = z.object({ key: z.string().min(32), addedAt: z.iso.datetime() });
type SessionKey = z.infer<typeof SessionKeySchema>;

const StoredSecretsSchema = z.object({
  /** The single session secret of older files: it becomes the ring's first key. */
  sessionSecret: z.string().min(32).optional(),
  sessionKeys: z.array(SessionKeySchema).min(1).optional(),
  /**
   * The server's signed-cookie lifetime, written at each start: a rotation from another process
   * (the command line, with its own environment) prunes only keys retired by the server's measure.
   */
  sessionLifetimeMs: z.number().int().positive().optional(),
  fingerprintSecret: z.string().min(32).optional(),
  recoverySecret: z.string().min(32).optional(),
});
type StoredSecrets = z.infer<typeof StoredSecretsSchema>;

/** Signing keys: `current` signs; `verifying` lists every live key, `current` first. */
export interface KeyRing {
  current(): string;
  verifying(): string[];
}

export interface Secrets {
  sessionKeys: KeyRing;
  fingerprintSecret: string;
  recoverySecret: string;
}

export const secretsFile = (dataDir: string) => path.join(dataDir, "secrets.json");
const newSecret = () => randomBytes(32).toString("base64url");

function readStored(file: string): StoredSecrets | null {
  try {
    return StoredSecretsSchema.parse(JSON.parse(readFileSync(file, "utf8")));
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === "ENOENT") return null;
    throw new StartupError(`${file} is unreadable or damaged: fix or delete it (${(error as Error).message.split("\n")[0]})`);
  }
}

function writeStored(file: string, stored: StoredSecrets): void {
  const temporary = `${file}.tmp`;
  writeFileSync(temporary, `${JSON.stringify(stored, null, 2)}\n`, { mode: 0o600 });
  renameSync(temporary, file);
}

/** The file's contents with every secret present (older files converted). */
function completed(stored: StoredSecrets | null, now: Date): { secrets: StoredSecrets } {
  const { sessionSecret, ...rest } = stored ?? {};
  const secrets: StoredSecrets = {
    ...rest,
    sessionKeys: rest.sessionKeys ?? [{ key: sessionSecret ?? newSecret(), addedAt: now.toISOString() }],
    fingerprintSecret: rest.fingerprintSecret ?? newSecret(),
    recoverySecret: rest.recoverySecret ?? newSecret(),
  };
  return { secrets };
}

/** The keys still verifying at `at`: the newest, and each older one until `lifetimeMs` after its successor was added. */
const liveKeys = (keys: SessionKey[], at: number, lifetimeMs: number) =>
  keys.filter((_, index) => {
    const successor = keys[index + 1];
    return !successor || Date.parse(successor.addedAt) + lifetimeMs > at;
  });

/** How long the ring trusts what it last read of the file: a rotation takes effect within this. */
export const KEY_FILE_CHECK_MS = 1000;

/**
 * A ring over the file's session keys, re-read within a second of the file changing (a rotation
 * from the command line).
 */
function fileKeyRing(file: string, initial: SessionKey[], lifetimeMs: number, now: () => number): KeyRing {
  let keys = initial;
  // Every write is a rename, so a new inode tells a new file even within one mtime tick.
  const version = () => {
    const stat = statSync(file, { throwIfNoEntry: false });
    return stat ? `${stat.ino}:${stat.mtimeMs}` : null;
  };
  let seen = version();
  let checkedAt = now();
  let live: SessionKey[] | null = null;
  const fresh = () => {
    // Every page signs a CSRF token: a stat (and a pass over the keys) per signature was a
    // measurable share of a page, and a rotation needs no restart and no signal either way.
    const at = now();
    if (live && at - checkedAt < KEY_FILE_CHECK_MS) return live;
    checkedAt = at;
    const current = version();
    if (current !== null && current !== seen) {
      seen = current;
      const stored = readStored(file);
      if (stored?.sessionKeys) keys = stored.sessionKeys;
    }
    live = liveKeys(keys, at, lifetimeMs).reverse();
    return live;
  };
  return {
    // The newest key never retires, so there is always one to sign with.
    current: () => fresh()[0]!.key,
    verifying: () => fresh().map((key) => key.key),
  };
}

/** A ring of one fixed key (SESSION_SECRET): nothing to rotate. */
const fixedKeyRing = (key: string): KeyRing => ({ current: () => key, verifying: () => [key] });

/**
 * The server's secrets. `sessionLifetimeMs` is the server's longest signed-cookie lifetime: how
 * long an older session key keeps verifying after its successor arrived; it is recorded in the
 * file for rotations made by other processes.
 */
export function loadSecrets(
  dataDir: string,
  given: { sessionSecret?: string; fingerprintSecret?: string; recoverySecret?: string; sessionLifetimeMs: number },
  now: () => number = () => Date.now(),
): Secrets {
  const file = secretsFile(dataDir);
  const stored = readStored(file);
  const { secrets: completedSecrets } = completed(stored, new Date(now()));
  const secrets = given.sessionSecret ? completedSecrets : { ...completedSecrets, sessionLifetimeMs: given.sessionLifetimeMs };
  if (!stored || JSON.stringify(secrets) !== JSON.stringify(stored)) writeStored(file, secrets);
  // Tighten a file that was copied around with looser permissions.
  chmodSync(file, 0o600);
  return {
    sessionKeys: given.sessionSecret ? fixedKeyRing(given.sessionSecret) : fileKeyRing(file, secrets.sessionKeys!, given.sessionLifetimeMs, now),
    fingerprintSecret: given.fingerprintSecret ?? secrets.fingerprintSecret!,
    recoverySecret: given.recoverySecret ?? secrets.recoverySecret!,
  };
}

export interface Rotation {
  /** Keys that now only verify, until their retirement. */
  retiring: number;
  /** Keys removed because they had retired. */
  removed: number;
  /** When the last of the retiring keys stops verifying, by the server's recorded lifetime. */
  retiresAt: Date;
}

/**
 * Adds a new session key that signs from now on, and removes retired keys from the file. What is
 * retired is the server's call (the lifetime it recorded at its start); `fallbackLifetimeMs`
 * counts only for a file no server has started on yet.
 */
export function rotateSessionKeys(dataDir: string, fallbackLifetimeMs: number, at: number = Date.now()): Rotation {
  const file = secretsFile(dataDir);
  const { secrets } = completed(readStored(file), new Date(at));
  const lifetimeMs = secrets.sessionLifetimeMs ?? fallbackLifetimeMs;
  const kept = liveKeys(secrets.sessionKeys!, at, lifetimeMs);
  writeStored(file, { ...secrets, sessionKeys: [...kept, { key: newSecret(), addedAt: new Date(at).toISOString() }] });
  return { retiring: kept.length, removed: secrets.sessionKeys!.length - kept.length, retiresAt: new Date(at + lifetimeMs) };
}

/** When the newest session key was added (KEY_ROTATION_DAYS counts from it). */
export function newestSessionKeyAddedAt(dataDir: string): number {
  const { secrets } = completed(readStored(secretsFile(dataDir)), new Date());
  return Date.parse(secrets.sessionKeys!.at(-1)!.addedAt);
}

/**
 * Replaces the fingerprint secret. Stored fingerprints no longer match anything: a returning
 * visitor without a cookie is not offered their colour, and can still take it back with their
 * recovery code or link. Cookies are untouched. A running server uses the new key after a restart.
 */
export function rotateFingerprintSecret(dataDir: string): void {
  const file = secretsFile(dataDir);
  const { secrets } = completed(readStored(file), new Date());
  writeStored(file, { ...secrets, fingerprintSecret: newSecret() });
}
