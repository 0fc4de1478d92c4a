/** `npm start`'s entry point: one clear line and exit code 1 for every start-up problem. */
import Database from "better-sqlite3";
import { readFileSync, statSync, writeFileSync } from "node:fs";
import { createServer } from "node:net";
import path from "node:path";
import { makeDataDir, removeDataDir } from "../helpers/server";
import { freePort, runEntry } from "../helpers/processes";

const dirs: string[] = [];
afterAll(() => dirs.forEach(removeDataDir));

function dataDir() {
  const dir = makeDataDir();
  dirs.push(dir);
  return dir;
}

async function failingStart(env: Record<string, string>) {
  const child = await runEntry("server/main.ts", { HOST: "127.0.0.1", PORT: "0", MQTT_PORT: "0", ...env });
  const code = await child.exited;
  const lines = child.output().trim().split("\n");
  return { code, lines };
}

test.each([
  ["PORT", "port %d is already in use: stop the other process or set PORT"],
  ["MQTT_PORT", "MQTT port %d is already in use: stop the other broker or set MQTT_PORT"],
])("%s already in use stops start-up with one line naming the variable", async (variable, message) => {
  const blocker = createServer();
  const port = await freePort();
  await new Promise<void>((resolve) => blocker.listen(port, "127.0.0.1", resolve));
  try {
    const { code, lines } = await failingStart({ [variable]: String(port), DATA_DIR: dataDir(), ADMIN_PASSWORD: "long enough" });
    expect(code).toBe(1);
    expect(lines).toEqual([`promptgate: ${message.replace("%d", String(port))}`]);
  } finally {
    blocker.close();
  }
});

test("an unusable DATA_DIR stops start-up with one line", async () => {
  const file = path.join(dataDir(), "not-a-directory");
  writeFileSync(file, "");
  const { code, lines } = await failingStart({ DATA_DIR: path.join(file, "data") });
  expect(code).toBe(1);
  expect(lines).toHaveLength(1);
  expect(lines[0]).toMatch(/^promptgate: DATA_DIR .*not-a-directory\/data is not a writable directory \(ENOTDIR\)$/);
});

test("bad environment values are all named, with what is allowed", async () => {
  const { code, lines } = await failingStart({ PORT: "abc", GENERATOR_CONCURRENCY: "0", SD_API_URL: "not a url", LOCAL_GENERATOR: "maybe" });
  expect(code).toBe(1);
  const text = lines.join("\n");
  expect(text).toMatch(/^promptgate: invalid configuration:/);
  expect(text).toMatch(/PORT="abc": expected a whole number/);
  expect(text).toMatch(/GENERATOR_CONCURRENCY="0": expected at least 1/);
  expect(text).toMatch(/SD_API_URL="not a url": expected the base URL/);
  expect(text).toMatch(/LOCAL_GENERATOR="maybe": expected auto, true or false/);
});

test("a common ADMIN_PASSWORD stops the first start with one line that does not repeat it", async () => {
  const { code, lines } = await failingStart({ DATA_DIR: dataDir(), ADMIN_PASSWORD: "Qwertyuiop", LOCAL_GENERATOR: "false" });
  expect(code).toBe(1);
  expect(lines.join("\n")).toContain("ADMIN_PASSWORD is among the 10,000 most common passwords");
  expect(lines.join("\n")).not.toMatch(/qwertyuiop/i);
});

test("the first start generates the admin password once; secrets, database and images are owner-only", async () => {
  const dir = dataDir();
  const first = await runEntry("server/main.ts", { HOST: "127.0.0.1", PORT: "0", MQTT_PORT: "0", DATA_DIR: dir, LOCAL_GENERATOR: "false" }, /listening on/);
  await first.kill("SIGTERM");
  const password = /admin password generated[^:]*: (\S+)/.exec(first.output())?.[1];
  expect(password).toMatch(/^[A-Za-z0-9_-]{16}$/);
  expect(statSync(path.join(dir, "secrets.json")).mode & 0o777).toBe(0o600);
  expect(statSync(path.join(dir, "promptgate.db")).mode & 0o777).toBe(0o600);
  expect(statSync(path.join(dir, "images")).mode & 0o777).toBe(0o700);
  const db = new Database(path.join(dir, "promptgate.db"), { readonly: true });
  const { value } = db.prepare("SELECT password_hash AS value FROM accounts WHERE name = 'admin' AND role = 'admin'").get() as { value: string };
  db.close();
  expect(value).toMatch(/^\$argon2id\$/);
  expect(readFileSync(path.join(dir, "promptgate.db")).toString("latin1")).not.toContain(password!);

  const second = await runEntry("server/main.ts", { HOST: "127.0.0.1", PORT: "0", MQTT_PORT: "0", DATA_DIR: dir, LOCAL_GENERATOR: "false" }, /listening on/);
  await second.kill("SIGTERM");
  expect(second.output()).not.toContain("admin password generated");
  expect(second.output()).not.toContain(password!);
});
