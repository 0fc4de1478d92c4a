/**
 * The raw IP, User-Agent and Accept-Language are never stored or logged: after a whole visit
 * (first visit, submission, moderation, generation, reveal, a cookie-less return), none of
 * them appears in any file under DATA_DIR or in any log line, debug included.
 */
import { readdirSync, readFileSync } from "node:fs";
import path from "node:path";
import { TestClient } from "../helpers/client";
import { ADMIN_PASSWORD, removeDataDir, startTestServer, waitFor, type TestServer } from "../helpers/server";

const USER_AGENT = "PrivacyCanary/7.3 zq8";
const ADDRESS = "203.0.113.147";
const LANGUAGE = "x-canary-qq";
const PROMPT = "a lighthouse for the privacy check";

/** Every distinctive piece of the three headers, including the anonymised /24 network. */
const CANARIES = [USER_AGENT, "PrivacyCanary", "7.3 zq8", ADDRESS, "203.0.113.", "203.0.113.0", LANGUAGE, "canary-qq"];

let server: TestServer;
beforeAll(async () => {
  server = await startTestServer({ TRUST_PROXY: "loopback", LOG_LEVEL: "debug" });
});
afterAll(async () => {
  await server?.close();
  removeDataDir(server.dataDir);
});

function filesUnder(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((entry) => {
    const full = path.join(dir, entry.name);
    return entry.isDirectory() ? filesUnder(full) : [full];
  });
}

test("a visitor's address, User-Agent and language appear in no stored file and no log line", async () => {
  const canaryHeaders = { userAgent: USER_AGENT, forwardedFor: ADDRESS, acceptLanguage: LANGUAGE };
  const visitor = new TestClient(server.url, canaryHeaders);
  expect((await visitor.page("/")).status).toBe(200);
  const sent = await visitor.postForm("/?index", { intent: "submit", prompt: PROMPT, negativePrompt: "", width: "64", height: "64" });
  expect(sent.status).toBe(200);
  const [mine] = (await visitor.query("prompt.mine")).body.result.data;

  // The admin comes from the same browser and network, and mistypes the password once.
  const admin = new TestClient(server.url, canaryHeaders);
  await admin.page("/admin/login");
  expect((await admin.postForm("/admin/login", { password: "not the password" })).status).toBe(401);
  await admin.loginAsAdmin(ADMIN_PASSWORD);
  await admin.mutate("admin.approve", { id: mine.id });
  await waitFor("the image to be generated", async () => (await visitor.query("prompt.mine")).body.result.data[0].status === "done");
  await admin.mutate("admin.markRevealed", { id: mine.id });
  expect((await visitor.fetch(`/images/${mine.id}.png`)).status).toBe(200);

  // Cookies gone, an hour later: the fingerprint those three headers make offers the colour back,
  // and the recovery code proves it.
  const { code } = (await visitor.query("visitor.me")).body.result.data.recovery;
  server.services.db.$client.prepare("UPDATE visitors SET last_seen_at = last_seen_at - 3600000").run();
  const returning = new TestClient(server.url, canaryHeaders);
  expect((await returning.query("visitor.me")).body.result.data.offer).not.toBeNull();
  expect((await returning.mutate("visitor.recover", { code })).status).toBe(200);

  server.services.db.$client.pragma("wal_checkpoint(TRUNCATE)");
  const files = filesUnder(server.dataDir);
  expect(files.some((file) => file.endsWith(".png"))).toBe(true);
  const contents = files.map((file) => ({ file, text: readFileSync(file).toString("latin1") }));
  // The scan does see stored text: the prompt itself is in the database file.
  expect(contents.some(({ file, text }) => file.endsWith("promptgate.db") && text.includes(PROMPT))).toBe(true);
  expect(server.log.lines.length).toBeGreaterThan(0);

  const leaks = CANARIES.flatMap((canary) => [
    ...contents.filter(({ text }) => text.includes(canary)).map(({ file }) => `${canary} in ${path.relative(server.dataDir, file)}`),
    ...server.log.lines.filter((line) => line.includes(canary)).map((line) => `${canary} in log: ${line}`),
  ]);
  expect(leaks).toEqual([]);
});
