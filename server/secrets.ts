/**
 * Server-side secrets: given by environment variables, or generated on first start and kept in
 * DATA_DIR/secrets.json (mode 0600). A secret missing from an older file is added to it.
 * Losing the fingerprint secret only means visitors without cookies are no longer recognised;
 * losing the session secret invalidates open forms; losing the recovery secret gives every
 * visitor a new recovery code and link. (Generators have their own credentials in the database;
 * the `mqttToken` of older files is ignored.)
 */
import { randomBytes } from "node:crypto";
import { chmodSync, readFileSync, renameSync, writeFileSync } from "node:fs";
import path from "node:path";
import { z } from "zod";
import { StartupError } from "./startup-error";

const SECRET_NAMES = ["sessionSecret", "fingerprintSecret", "recoverySecret"] as const;
export type Secrets = Record<(typeof SECRET_NAMES)[number], string>;

const StoredSecretsSchema = z.object(Object.fromEntries(SECRET_NAMES.map((name) => [name, z.string().min(32).optional()])) as Record<keyof Secrets, z.ZodOptional<z.ZodString>>);

export function loadSecrets(dataDir: string, given: Partial<Secrets>): Secrets {
  const file = path.join(dataDir, "secrets.json");
  let stored: Partial<Secrets> = {};
  try {
    stored = StoredSecretsSchema.parse(JSON.parse(readFileSync(file, "utf8")));
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== "ENOENT") {
      throw new StartupError(`${file} is unreadable or damaged: fix or delete it (${(error as Error).message.split("\n")[0]})`);
    }
  }
  const missing = SECRET_NAMES.filter((name) => !stored[name]);
  if (missing.length) {
    for (const name of missing) stored[name] = randomBytes(32).toString("base64url");
    const temporary = `${file}.tmp`;
    writeFileSync(temporary, `${JSON.stringify(stored, null, 2)}\n`, { mode: 0o600 });
    renameSync(temporary, file);
  }
  // Tighten a file that was copied around with looser permissions.
  chmodSync(file, 0o600);
  return Object.fromEntries(SECRET_NAMES.map((name) => [name, given[name] ?? stored[name]!])) as Secrets;
}
