/**
 * A real Mosquitto for external-broker tests: its own config, password file and persistence in
 * a temp dir, the ACL from docs/deploy/mosquitto.acl, a free port kept across restarts.
 */
import { execFile, spawn, type ChildProcess } from "node:child_process";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { promisify } from "node:util";
import { ensureProgram } from "./debian";
import { ROOT, freePort } from "./processes";

const run = promisify(execFile);

export interface Mosquitto {
  port: number;
  /** mqtt://user:password@127.0.0.1:port, the password URL-encoded. */
  url(user: string): string;
  /** Stops it (SIGTERM saves its persistence file; SIGKILL does not). */
  stop(signal?: NodeJS.Signals): Promise<void>;
  /** Starts it again on the same port with the same persistence; resolves once it listens. */
  start(): Promise<void>;
  /** What it logged since it last started. */
  output(): string;
  close(): Promise<void>;
}

/** `users`: name → password. Started and listening when this resolves. */
export async function startMosquitto(users: Record<string, string>): Promise<Mosquitto> {
  const binary = await ensureProgram("mosquitto", ["mosquitto", "mosquitto-clients"]);
  const passwd = await ensureProgram("mosquitto_passwd", ["mosquitto", "mosquitto-clients"]);
  const dir = mkdtempSync(path.join(tmpdir(), "promptgate-mosquitto-"));
  const port = await freePort();
  const passwordFile = path.join(dir, "passwd");
  for (const [index, [user, password]] of Object.entries(users).entries()) {
    await run(passwd, ["-b", ...(index === 0 ? ["-c"] : []), passwordFile, user, password]);
  }
  const config = path.join(dir, "mosquitto.conf");
  writeFileSync(
    config,
    [
      `listener ${port} 127.0.0.1`,
      "allow_anonymous false",
      "use_username_as_clientid true",
      `password_file ${passwordFile}`,
      `acl_file ${path.join(ROOT, "docs/deploy/mosquitto.acl")}`,
      "persistence true",
      // As README's configuration: Nagle's algorithm off, or each job and result waits for a delayed ACK.
      "set_tcp_nodelay true",
      `persistence_location ${dir}/`,
      // Started as root (CI), Mosquitto would switch to the "mosquitto" user, which cannot read this dir.
      ...(process.getuid?.() === 0 ? ["user root"] : []),
      // stderr: Mosquitto block-buffers its log into a pipe on stdout.
      "log_dest stderr",
      "log_type error",
      "log_type warning",
      "log_type notice",
      "log_type information",
      "",
    ].join("\n"),
  );

  let child: ChildProcess | null = null;
  let output = "";
  let exited: Promise<void> = Promise.resolve();

  async function start() {
    output = "";
    const started = spawn(binary, ["-c", config], { stdio: ["ignore", "pipe", "pipe"] });
    child = started;
    started.stdout!.on("data", (chunk) => (output += chunk));
    started.stderr!.on("data", (chunk) => (output += chunk));
    // Never outlives the test process, even one that dies before its cleanups run.
    const orphaned = () => started.kill("SIGKILL");
    process.once("exit", orphaned);
    exited = new Promise((resolve) =>
      started.once("exit", () => {
        process.off("exit", orphaned);
        resolve();
      }),
    );
    await new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => fail(new Error(`mosquitto did not start within 10 s:\n${output}`)), 10_000);
      const fail = (error: Error) => {
        clearTimeout(timer);
        started.kill("SIGKILL");
        reject(error);
      };
      const check = () => {
        if (/mosquitto version [\d.]+ running/.test(output)) {
          clearTimeout(timer);
          return resolve();
        }
        if (started.exitCode !== null) return fail(new Error(`mosquitto exited with ${started.exitCode}:\n${output}`));
        started.stderr!.once("data", check);
      };
      started.once("exit", check);
      check();
    });
  }

  async function stop(signal: NodeJS.Signals = "SIGTERM") {
    if (child && child.exitCode === null && child.signalCode === null) child.kill(signal);
    await exited;
  }

  await start();
  return {
    port,
    url: (user) => `mqtt://${encodeURIComponent(user)}:${encodeURIComponent(users[user]!)}@127.0.0.1:${port}`,
    stop,
    start,
    output: () => output,
    async close() {
      await stop("SIGKILL");
      rmSync(dir, { recursive: true, force: true });
    },
  };
}
