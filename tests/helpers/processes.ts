/** Runs promptgate's entry points (server/main.ts, generator/main.ts) as real child processes. */
import { spawn, type ChildProcess } from "node:child_process";
import { readFileSync } from "node:fs";
import { createServer } from "node:net";
import path from "node:path";
import { fileURLToPath } from "node:url";

export const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "../..");

export interface Child {
  process: ChildProcess;
  output: () => string;
  exited: Promise<number | null>;
  kill(signal?: NodeJS.Signals): Promise<number | null>;
}

/** Entry points that `npm run build` compiles, and the npm scripts that run them. */
const COMPILED_ENTRIES = new Map([
  ["server/main.ts", "start"],
  ["generator/main.ts", "generator"],
]);

/** A compiled entry's command line as its npm script has it (`node --enable-source-maps … dist/….js`), without `node`. */
function scriptCommand(script: string): string[] {
  const scripts = (JSON.parse(readFileSync(path.join(ROOT, "package.json"), "utf8")) as { scripts: Record<string, string> }).scripts;
  const [node, ...words] = scripts[script]!.split(" ");
  if (node !== "node") throw new Error(`npm script ${script} does not start with node: ${scripts[script]}`);
  return words;
}

/**
 * Starts `entry` (relative to the repo, or `[entry, ...arguments]`): compiled from dist/ if it is
 * one of COMPILED_ENTRIES (tests/helpers/compile.ts builds them first), with its npm script's
 * node options (`npm start`'s heap settings included), JavaScript (.mjs) as it
 * is, TypeScript with tsx; resolves
 * once `readyLine` is printed. The child gets `env` and nothing of the test's environment but
 * PATH and HOME: no NODE_ENV, as under `npm start`.
 */
export async function runEntry(command: string | string[], env: Record<string, string>, readyLine?: RegExp, timeoutMs = 30_000): Promise<Child> {
  const [entry, ...args] = typeof command === "string" ? [command] : command;
  const script = COMPILED_ENTRIES.get(entry!);
  const run = script
    ? scriptCommand(script)
    : entry!.endsWith(".mjs")
      ? [entry!]
      : ["--import", "tsx", entry!];
  const child: ChildProcess = spawn(process.execPath, [...run, ...args], {
    cwd: ROOT,
    // The cast: @remix-run/node declares NODE_ENV as always set, and here it must not be.
    env: { PATH: process.env.PATH ?? "", HOME: process.env.HOME ?? "/tmp", ...env } as Record<string, string> as NodeJS.ProcessEnv,
    stdio: ["ignore", "pipe", "pipe"],
  });
  let output = "";
  child.stdout!.on("data", (chunk) => (output += chunk));
  child.stderr!.on("data", (chunk) => (output += chunk));
  const exited = new Promise<number | null>((resolve) => child.once("exit", (code) => resolve(code)));
  const handle: Child = {
    process: child,
    output: () => output,
    exited,
    async kill(signal = "SIGKILL") {
      if (child.exitCode === null && child.signalCode === null) child.kill(signal);
      return exited;
    },
  };
  if (readyLine) {
    const deadline = Date.now() + timeoutMs;
    while (!readyLine.test(output)) {
      if (child.exitCode !== null) throw new Error(`${entry} exited with ${child.exitCode} before it was ready:\n${output}`);
      if (Date.now() > deadline) {
        await handle.kill();
        throw new Error(`${entry} was not ready within ${timeoutMs} ms:\n${output}`);
      }
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
  }
  return handle;
}

/** A TCP port that is free right now (for processes that must restart on the same port). */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const probe = createServer();
    probe.once("error", reject);
    probe.listen(0, "127.0.0.1", () => {
      const address = probe.address();
      const port = typeof address === "object" && address ? address.port : 0;
      probe.close(() => resolve(port));
    });
  });
}
