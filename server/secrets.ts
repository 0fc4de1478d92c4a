/**
 * Server-side secrets: given by environment variables, or generated on first start and
 * kept in DATA_DIR/secrets.json (mode 0600). Losing the fingerprint key only means that
 * visitors without cookies are no longer recognised; losing the session key logs everyone out.
 */
import { randomBytes } from "node:crypto";
import { chmodSync, readFileSync, writeFileSync } from "node:fs";
import path from "node:path";
import { z } from "zod";

const SecretsFileSchema = z.object({ sessionSecret: z.string().min(32), fingerprintSecret: z.string().min(32) });
export type Secrets = z.infer<typeof SecretsFileSchema>;

export function loadSecrets(dataDir: string, given: Partial<Secrets>): Secrets {
  const file = path.join(dataDir, "secrets.json");
  let stored: Secrets;
  try {
    stored = SecretsFileSchema.parse(JSON.parse(readFileSync(file, "utf8")));
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== "ENOENT") throw new Error(`${file} is unreadable or damaged: fix or delete it (${(error as Error).message})`);
    stored = { sessionSecret: randomBytes(32).toString("base64url"), fingerprintSecret: randomBytes(32).toString("base64url") };
    writeFileSync(file, `${JSON.stringify(stored, null, 2)}\n`, { mode: 0o600, flag: "wx" });
  }
  // Tighten a file that was copied around with looser permissions.
  chmodSync(file, 0o600);
  return {
    sessionSecret: given.sessionSecret ?? stored.sessionSecret,
    fingerprintSecret: given.fingerprintSecret ?? stored.fingerprintSecret,
  };
}
