import { readFileSync, statSync, writeFileSync } from "node:fs";
import path from "node:path";
import { KEY_FILE_CHECK_MS, loadSecrets, rotateFingerprintSecret, rotateSessionKeys } from "../../server/secrets";
import { StartupError } from "../../server/startup-error";
import { makeDataDir, removeDataDir } from "../helpers/server";

const HOUR = 3_600_000;
const dirs: string[] = [];
afterAll(() => dirs.forEach(removeDataDir));
const dataDir = () => {
  const dir = makeDataDir();
  dirs.push(dir);
  return dir;
};

test("secrets are generated once, kept in a 0600 file, and reused", () => {
  const dir = dataDir();
  const first = loadSecrets(dir, { sessionLifetimeMs: HOUR });
  expect([first.fingerprintSecret, first.recoverySecret, first.sessionKeys.current()].every((value) => value.length >= 32)).toBe(true);
  expect(statSync(path.join(dir, "secrets.json")).mode & 0o777).toBe(0o600);
  const again = loadSecrets(dir, { sessionLifetimeMs: HOUR });
  expect([again.fingerprintSecret, again.recoverySecret, again.sessionKeys.current()]).toEqual([first.fingerprintSecret, first.recoverySecret, first.sessionKeys.current()]);
});

test("a secret missing from an older file is added; the others are kept, the old session secret becomes the key ring's first key, and the old shared MQTT token is dropped", () => {
  const dir = dataDir();
  const old = { sessionSecret: "s".repeat(43), fingerprintSecret: "f".repeat(43) };
  writeFileSync(path.join(dir, "secrets.json"), JSON.stringify({ ...old, mqttToken: "m".repeat(43) }), { mode: 0o644 });
  const secrets = loadSecrets(dir, { sessionLifetimeMs: HOUR });
  expect(secrets.fingerprintSecret).toBe(old.fingerprintSecret);
  expect(secrets.recoverySecret).toMatch(/^[A-Za-z0-9_-]{43}$/);
  expect(secrets.sessionKeys.verifying()).toEqual([old.sessionSecret]);
  expect(JSON.parse(readFileSync(path.join(dir, "secrets.json"), "utf8"))).toEqual({
    fingerprintSecret: old.fingerprintSecret,
    recoverySecret: secrets.recoverySecret,
    sessionKeys: [{ key: old.sessionSecret, addedAt: expect.any(String) }],
    sessionLifetimeMs: HOUR,
  });
  expect(statSync(path.join(dir, "secrets.json")).mode & 0o777).toBe(0o600);
});

test("secrets given by the environment win and are not written", () => {
  const dir = dataDir();
  const secrets = loadSecrets(dir, { recoverySecret: "t".repeat(40), sessionSecret: "u".repeat(40), sessionLifetimeMs: HOUR });
  expect(secrets.sessionKeys.verifying()).toEqual(["u".repeat(40)]);
  expect(readFileSync(path.join(dir, "secrets.json"), "utf8")).not.toContain("u".repeat(40));
  expect(secrets.recoverySecret).toBe("t".repeat(40));
  expect(readFileSync(path.join(dir, "secrets.json"), "utf8")).not.toContain("t".repeat(40));
});

test("a rotation signs with the new key within a second, verifies with both until the old one retires, then drops it", () => {
  const dir = dataDir();
  let now = Date.parse("2026-01-01T00:00:00Z");
  const ring = loadSecrets(dir, { sessionLifetimeMs: HOUR }, () => now).sessionKeys;
  const first = ring.current();
  expect(rotateSessionKeys(dir, HOUR, now)).toEqual({ retiring: 1, removed: 0, retiresAt: new Date(now + HOUR) });
  expect(ring.current()).toBe(first);
  now += KEY_FILE_CHECK_MS;
  const second = ring.current();
  expect(second).not.toBe(first);
  expect(ring.verifying()).toEqual([second, first]);
  now += HOUR;
  expect(ring.verifying()).toEqual([second]);
  expect(rotateSessionKeys(dir, HOUR, now)).toMatchObject({ retiring: 1, removed: 1 });
});

test("an older key retires by the verifying server's lifetime and prunes by the one it recorded, whatever the rotating process's own", () => {
  const dir = dataDir();
  let now = Date.parse("2026-01-01T00:00:00Z");
  const ring = loadSecrets(dir, { sessionLifetimeMs: 30 * 24 * HOUR }, () => now).sessionKeys;
  const first = ring.current();
  // A command line whose environment says one hour.
  expect(rotateSessionKeys(dir, HOUR, now).retiresAt).toEqual(new Date(now + 30 * 24 * HOUR));
  now += 2 * HOUR;
  expect(ring.verifying()).toContain(first);
  expect(rotateSessionKeys(dir, HOUR, now)).toMatchObject({ retiring: 2, removed: 0 });
  now += 30 * 24 * HOUR;
  expect(ring.verifying()).toHaveLength(1);
  expect(rotateSessionKeys(dir, HOUR, now)).toMatchObject({ retiring: 1, removed: 2 });
});

test("keys of a file written with retirement dates verify by the successor's age, and the dates are dropped", () => {
  const dir = dataDir();
  const now = Date.parse("2026-01-01T00:00:00Z");
  const older = { key: "o".repeat(43), addedAt: new Date(now - 10 * HOUR).toISOString(), retiresAt: new Date(now - HOUR).toISOString() };
  const newer = { key: "n".repeat(43), addedAt: new Date(now - 2 * HOUR).toISOString(), retiresAt: null };
  writeFileSync(path.join(dir, "secrets.json"), JSON.stringify({ sessionKeys: [older, newer] }));
  expect(loadSecrets(dir, { sessionLifetimeMs: 24 * HOUR }, () => now).sessionKeys.verifying()).toEqual([newer.key, older.key]);
  expect(readFileSync(path.join(dir, "secrets.json"), "utf8")).not.toContain("retiresAt");
});

test("the fingerprint key can be replaced without touching the others", () => {
  const dir = dataDir();
  const before = loadSecrets(dir, { sessionLifetimeMs: HOUR });
  rotateFingerprintSecret(dir);
  const after = loadSecrets(dir, { sessionLifetimeMs: HOUR });
  expect(after.fingerprintSecret).not.toBe(before.fingerprintSecret);
  expect([after.recoverySecret, after.sessionKeys.current()]).toEqual([before.recoverySecret, before.sessionKeys.current()]);
});

test("a damaged file stops start-up with one clear line", () => {
  const dir = dataDir();
  writeFileSync(path.join(dir, "secrets.json"), "{ not json");
  expect(() => loadSecrets(dir, { sessionLifetimeMs: HOUR })).toThrow(StartupError);
  expect(() => loadSecrets(dir, { sessionLifetimeMs: HOUR })).toThrow(/secrets\.json is unreadable or damaged: fix or delete it/);
});
