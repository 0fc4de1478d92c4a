/**
 * `npm run admin -- <command>`: the admin's way in and out from the host's own machine, where
 * no guest can reach. Works on DATA_DIR's database with the server's defaults, also while the
 * server runs: SQLite in WAL mode lets both write, and the server reads admin sessions and the
 * password hash on every request, so each command takes effect at once.
 */
import { existsSync } from "node:fs";
import path from "node:path";
import QRCode from "qrcode";
import { EnvError } from "../generator/env";
import { openDb, type Db } from "./db/client";
import { createLoginLink, LINK_LIFETIME_MS } from "./domain/admin-login-link";
import { resetAdminPassword } from "./domain/admin-password";
import { endAdminSessions } from "./domain/admin-sessions";
import { parseEnv, type Config } from "./env";

const USAGE = `Usage: npm run admin -- <command>

Commands:
  reset-password         Set a new random admin password and print it (only this once).
                         Every admin session ends.
  logout-everywhere      End every admin session.
  login-link [base-url]  Print a one-time login link, valid ${LINK_LIFETIME_MS / 60_000} minutes, that skips the
                         login throttle. base-url defaults to http://localhost:<PORT>; give the
                         address phones use (e.g. http://192.168.1.20:3000) to get a QR code too.
  help                   Show this.

Uses DATA_DIR (default ./data), like the server.`;

type Command = (db: Db, args: string[], config: Config) => Promise<void> | void;

const COMMANDS: Record<string, Command> = {
  async "reset-password"(db) {
    const password = await resetAdminPassword(db);
    console.log(`New admin password (shown only this once): ${password}`);
    console.log("Every admin session has ended. If ADMIN_PASSWORD is set, this password stays until you change that variable.");
  },

  "logout-everywhere"(db) {
    const ended = endAdminSessions(db);
    console.log(`Ended ${ended} admin session${ended === 1 ? "" : "s"}.`);
  },

  async "login-link"(db, [baseUrl], config) {
    const base = baseUrl ?? `http://localhost:${config.port}`;
    let url: URL;
    try {
      url = new URL("/admin/link", base);
    } catch {
      throw new CliError(`"${base}" is not a URL: give one like http://192.168.1.20:3000`, 2);
    }
    url.searchParams.set("token", createLoginLink(db));
    console.log(`One-time admin login link (valid ${LINK_LIFETIME_MS / 60_000} minutes, replaces any earlier one):\n${url.href}`);
    if (baseUrl) console.log(await QRCode.toString(url.href, { type: "terminal", small: true }));
  },

};

/** A failure to report in one line, with the exit code: 2 for a wrong invocation, 1 otherwise. */
class CliError extends Error {
  constructor(
    message: string,
    readonly exitCode: 1 | 2,
  ) {
    super(message);
  }
}

const [name = "help", ...args] = process.argv.slice(2);
if (name === "help" || name === "--help" || name === "-h") {
  console.log(USAGE);
  process.exit(0);
}
const command = COMMANDS[name];
if (!command) {
  console.error(`promptgate admin: unknown command "${name}"\n\n${USAGE}`);
  process.exit(2);
}

try {
  const config = parseEnv(process.env);
  const file = path.join(config.dataDir, "promptgate.db");
  // Creating an empty database here would hide a wrong DATA_DIR behind a "success".
  if (!existsSync(file)) throw new CliError(`no database at ${file}: start the server once, or set DATA_DIR to its data directory`, 1);
  const db = openDb(file);
  try {
    await command(db, args, config);
  } finally {
    db.$client.close();
  }
} catch (error) {
  if (error instanceof EnvError || error instanceof CliError) {
    console.error(`promptgate admin: ${error.message}`);
    process.exit(error instanceof CliError ? error.exitCode : 1);
  }
  throw error;
}
