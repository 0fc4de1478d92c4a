/**
 * Real programs from Debian's packages that some tests talk to (Mosquitto, nginx). A missing one
 * is installed with a non-interactive apt-get when the tests run as root, as on CI; otherwise
 * the test fails naming the command to run. Never skipped.
 */
import { execFile } from "node:child_process";
import { accessSync, constants } from "node:fs";
import path from "node:path";
import { promisify } from "node:util";

const run = promisify(execFile);
const SEARCH_PATH = [...(process.env.PATH ?? "").split(path.delimiter), "/usr/sbin", "/sbin", "/usr/bin"];

function find(binary: string): string | null {
  for (const dir of SEARCH_PATH) {
    const candidate = path.join(dir, binary);
    try {
      accessSync(candidate, constants.X_OK);
      return candidate;
    } catch {
      // not here
    }
  }
  return null;
}

/** The path of `binary`, installing `packages` first if it is missing. */
export async function ensureProgram(binary: string, packages: string[]): Promise<string> {
  const found = find(binary);
  if (found) return found;
  const command = `apt-get install -y --no-install-recommends ${packages.join(" ")}`;
  if (process.getuid?.() !== 0) throw new Error(`${binary} is missing: run \`sudo ${command}\``);
  // One apt at a time across the parallel test workers; the package lists may need a refresh.
  const env = { ...process.env, DEBIAN_FRONTEND: "noninteractive" };
  const script = `${command} || (apt-get update && ${command})`;
  try {
    await run("flock", ["/tmp/promptgate-apt.lock", "sh", "-c", script], { env, timeout: 600_000 });
  } catch (error) {
    throw new Error(`${binary} is missing and \`${command}\` failed: ${(error as Error).message.split("\n").slice(-3).join(" ")}`);
  }
  const installed = find(binary);
  if (!installed) throw new Error(`${binary} is still missing after \`${command}\``);
  return installed;
}
