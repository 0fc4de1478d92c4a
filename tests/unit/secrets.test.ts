import { readFileSync, statSync, writeFileSync } from "node:fs";
import path from "node:path";
import { loadSecrets } from "../../server/secrets";
import { StartupError } from "../../server/startup-error";
import { makeDataDir, removeDataDir } from "../helpers/server";

const dirs: string[] = [];
afterAll(() => dirs.forEach(removeDataDir));
const dataDir = () => {
  const dir = makeDataDir();
  dirs.push(dir);
  return dir;
};

test("secrets are generated once, kept in a 0600 file, and reused", () => {
  const dir = dataDir();
  const first = loadSecrets(dir, {});
  expect(Object.values(first).every((value) => value.length >= 32)).toBe(true);
  expect(statSync(path.join(dir, "secrets.json")).mode & 0o777).toBe(0o600);
  expect(loadSecrets(dir, {})).toEqual(first);
});

test("a secret missing from an older file is added; the others are kept, and the old shared MQTT token is dropped", () => {
  const dir = dataDir();
  const old = { sessionSecret: "s".repeat(43), fingerprintSecret: "f".repeat(43) };
  writeFileSync(path.join(dir, "secrets.json"), JSON.stringify({ ...old, mqttToken: "m".repeat(43) }), { mode: 0o644 });
  const secrets = loadSecrets(dir, {});
  expect(secrets).toEqual({ ...old, recoverySecret: expect.stringMatching(/^[A-Za-z0-9_-]{43}$/) });
  expect(JSON.parse(readFileSync(path.join(dir, "secrets.json"), "utf8"))).toEqual({ ...old, recoverySecret: secrets.recoverySecret });
  expect(statSync(path.join(dir, "secrets.json")).mode & 0o777).toBe(0o600);
});

test("secrets given by the environment win and are not written", () => {
  const dir = dataDir();
  const secrets = loadSecrets(dir, { recoverySecret: "t".repeat(40) });
  expect(secrets.recoverySecret).toBe("t".repeat(40));
  expect(readFileSync(path.join(dir, "secrets.json"), "utf8")).not.toContain("t".repeat(40));
});

test("a damaged file stops start-up with one clear line", () => {
  const dir = dataDir();
  writeFileSync(path.join(dir, "secrets.json"), "{ not json");
  expect(() => loadSecrets(dir, {})).toThrow(StartupError);
  expect(() => loadSecrets(dir, {})).toThrow(/secrets\.json is unreadable or damaged: fix or delete it/);
});
