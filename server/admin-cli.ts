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
import { randomBytes } from "node:crypto";
import { addModerator, FIRST_ADMIN, listAccounts, removeAccount } from "./domain/accounts";
import { resetAdminPassword } from "./domain/admin-password";
import { endAdminSessions } from "./domain/admin-sessions";
import { recordAudit } from "./domain/audit";
import { DomainError } from "./domain/errors";
import { addGeneratorCredential, listGeneratorCredentials, revokeGeneratorCredential } from "./domain/generator-credentials";
import { parseEnv, type Config } from "./env";
import { rotateFingerprintSecret, rotateSessionKeys } from "./secrets";

const USAGE = `Usage: npm run admin -- <command>

Commands:
  reset-password         Set a new random admin password and print it (only this once).
                         Every admin session ends.
  logout-everywhere      End every admin session.
  login-link [base-url]  Print a one-time login link, valid ${LINK_LIFETIME_MS / 60_000} minutes, that skips the
                         login throttle. base-url defaults to http://localhost:<PORT>; give the
                         address phones use (e.g. http://192.168.1.20:3000) to get a QR code too.
  generator add NAME     Add a GPU generator and print its token (only this once) and the
                         command that starts it; NAME is its GENERATOR_ID.
  generator list         List the generators, when each was added and last seen.
  generator revoke NAME  Revoke a generator: a running server disconnects it within a second.
  rotate-keys            Add a new session key (it signs CSRF tokens, device and site-password
                         cookies from now on); older keys keep verifying until they retire one
                         cookie lifetime later, so nobody is logged out. A running server
                         picks it up at once.
  rotate-keys --fingerprint
                         Replace the fingerprint key instead: returning visitors without cookies
                         are no longer recognised (they can still recover with their code).
                         Takes effect when the server restarts.
  user add NAME          Add a moderator and print a password for them (only this once).
  user list              List the accounts (the admin and the moderators).
  user remove NAME       Remove a moderator: their logins end at once.
  help                   Show this.

Uses DATA_DIR (default ./data), like the server.`;

type Command = (db: Db, args: string[], config: Config) => Promise<void> | void;

const COMMANDS: Record<string, Command> = {
  async "reset-password"(db) {
    const password = await resetAdminPassword(db);
    recordAudit(db, { actor: CLI, action: "password.reset", target: "admin" });
    console.log(`New admin password (shown only this once): ${password}`);
    console.log("Every admin session has ended. If ADMIN_PASSWORD is set, this password stays until you change that variable.");
  },

  "logout-everywhere"(db) {
    const ended = endAdminSessions(db);
    recordAudit(db, { actor: CLI, action: "logout.everywhere", details: { ended } });
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
    // It logs the first admin in past every throttle: who made one, and when, is on record.
    recordAudit(db, { actor: CLI, action: "login-link.create", target: FIRST_ADMIN });
    console.log(`One-time admin login link (valid ${LINK_LIFETIME_MS / 60_000} minutes, replaces any earlier one):\n${url.href}`);
    if (baseUrl) console.log(await QRCode.toString(url.href, { type: "terminal", small: true }));
  },

  generator(db, [action, name, ...extra], config) {
    const needsName = action === "add" || action === "revoke";
    if (!["add", "list", "revoke"].includes(action ?? "") || (needsName ? !name : name) || extra.length) {
      throw new CliError(`usage: generator add NAME | generator list | generator revoke NAME`, 2);
    }
    if (action === "add") {
      const { token } = addGeneratorCredential(db, name!);
      recordAudit(db, { actor: CLI, action: "generator.add", target: name! });
      console.log(`Generator ${name} added. Its token (shown only this once) is:\n${token}`);
      console.log(`\nOn the GPU box, in a checkout of promptgate:\nMQTT_URL=mqtt://<this host>:${config.mqttPort} GENERATOR_ID=${name} MQTT_PASSWORD=${token} \\\n  SD_API_URL=http://127.0.0.1:7860 npm run generator`);
    } else if (action === "revoke") {
      revokeGeneratorCredential(db, name!);
      recordAudit(db, { actor: CLI, action: "generator.revoke", target: name! });
      console.log(`Generator ${name} revoked; a running server disconnects it within a second.`);
    } else {
      const generators = listGeneratorCredentials(db);
      if (!generators.length) console.log("No generators added yet: `npm run admin -- generator add NAME`.");
      for (const { name: each, createdAt, lastSeenAt } of generators) {
        console.log(`${each}\tadded ${createdAt.toISOString()}\tlast seen ${lastSeenAt?.toISOString() ?? "never"}`);
      }
    }
  },


  "rotate-keys"(db, args, config) {
    if (args.length > 1 || (args[0] !== undefined && args[0] !== "--fingerprint")) throw new CliError("usage: rotate-keys [--fingerprint]", 2);
    if (args[0] === "--fingerprint") {
      if (config.fingerprintSecret) throw new CliError("FINGERPRINT_SECRET is set: change that variable instead", 1);
      rotateFingerprintSecret(config.dataDir);
      recordAudit(db, { actor: CLI, action: "keys.rotate", target: "fingerprint" });
      console.log("Fingerprint key replaced; restart the server to use it. Cookies and recovery codes are unaffected.");
      return;
    }
    if (config.sessionSecret) throw new CliError("SESSION_SECRET is set: it is one fixed key; unset it to use the rotating key ring in DATA_DIR/secrets.json", 1);
    // This process's cookie lifetimes may not be the server's: the server's recorded one decides.
    const { retiring, removed, retiresAt } = rotateSessionKeys(config.dataDir, config.keyRetireMs);
    recordAudit(db, { actor: CLI, action: "keys.rotate", target: "session", details: { retiring, removed } });
    console.log(
      `New session key added. ${retiring} older key${retiring === 1 ? "" : "s"} still verif${retiring === 1 ? "ies" : "y"} until ${retiresAt.toISOString()}` +
        (removed ? `; ${removed} retired key${removed === 1 ? "" : "s"} removed.` : "."),
    );
  },

  async user(db, [action, name, ...extra]) {
    const needsName = action === "add" || action === "remove";
    if (!["add", "list", "remove"].includes(action ?? "") || (needsName ? !name : name) || extra.length) {
      throw new CliError(`usage: user add NAME | user list | user remove NAME`, 2);
    }
    if (action === "add") {
      const password = randomBytes(12).toString("base64url");
      const account = await addModerator(db, name!, password);
      recordAudit(db, { actor: CLI, action: "account.add", target: account.name, details: { role: account.role } });
      console.log(`Moderator ${account.name} added. Their password (shown only this once) is:\n${password}\nThey log in at /admin/login and can change it on their account page.`);
    } else if (action === "remove") {
      const account = removeAccount(db, name!);
      recordAudit(db, { actor: CLI, action: "account.remove", target: account.name, details: { role: account.role } });
      console.log(`${account.name} removed; their logins have ended.`);
    } else {
      for (const { name: each, role, createdAt } of listAccounts(db)) console.log(`${each}\t${role}\tadded ${createdAt.toISOString()}`);
    }
  },
};

/** The audit log's actor for everything done here: whoever has a shell on the server. */
const CLI = "cli";

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
  if (error instanceof EnvError || error instanceof CliError || error instanceof DomainError) {
    console.error(`promptgate admin: ${error instanceof DomainError ? error.userMessage : error.message}`);
    process.exit(error instanceof CliError ? error.exitCode : 1);
  }
  throw error;
}
