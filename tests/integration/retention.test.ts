/**
 * RETENTION_DAYS: old prompts, their jobs and image files, and idle visitors are deleted;
 * everything newer stays. Rows are made old by backdating their created_at (ms timestamps).
 */
import { createHash } from "node:crypto";
import { existsSync, mkdirSync, readdirSync, utimesSync, writeFileSync } from "node:fs";
import path from "node:path";
import { openDb } from "../../server/db/client";
import { createRetention } from "../../server/domain/retention";
import { TestClient } from "../helpers/client";
import { ADMIN_PASSWORD, collectingLogger, makeDataDir, removeDataDir, startTestServer, waitFor, type TestServer } from "../helpers/server";
import { useCleanups } from "../helpers/cleanups";

const DAY = 86_400_000;
const cleanup = useCleanups();

const count = (server: TestServer, sql: string, ...params: unknown[]) => (server.services.db.$client.prepare(sql).get(...params) as { n: number }).n;

async function submitAndGenerate(server: TestServer, admin: TestClient, visitor: TestClient, prompt: string): Promise<number> {
  const { id } = (await visitor.mutate("prompt.submit", { prompt, width: 64, height: 64 })).body.result.data;
  await admin.mutate("admin.approve", { id });
  await waitFor(`"${prompt}" to be generated`, () => count(server, "SELECT count(*) AS n FROM images WHERE prompt_id = ?", id) === 1);
  return id;
}

test("at start, prompts and idle visitors older than RETENTION_DAYS go with their jobs and image files; newer ones stay", async () => {
  const dataDir = makeDataDir();
  cleanup(() => removeDataDir(dataDir));
  const first = await startTestServer({ DATA_DIR: dataDir });
  const admin = new TestClient(first.url, { userAgent: "retention admin" });
  await admin.loginAsAdmin(ADMIN_PASSWORD);

  const oldAuthor = new TestClient(first.url, { userAgent: "old author" });
  await oldAuthor.page("/");
  const oldImage = await submitAndGenerate(first, admin, oldAuthor, "an old generated prompt");
  await oldAuthor.mutate("prompt.submit", { prompt: "an old pending prompt" });
  const recentAuthor = new TestClient(first.url, { userAgent: "recent author" });
  await recentAuthor.page("/");
  const recentImage = await submitAndGenerate(first, admin, recentAuthor, "a recent generated prompt");
  const idle = new TestClient(first.url, { userAgent: "idle visitor" });
  await idle.page("/");
  const returning = new TestClient(first.url, { userAgent: "returning visitor" });
  await returning.page("/");

  // The server stores only the SHA-256 of the session cookie.
  const visitorOf = (client: TestClient): number =>
    (first.services.db.$client.prepare("SELECT visitor_id AS id FROM sessions WHERE token_hash = ?").get(createHash("sha256").update(client.cookies.get("pg_visitor")!).digest("base64url")) as { id: number }).id;
  const [oldAuthorId, recentAuthorId, idleId, returningId] = [visitorOf(oldAuthor), visitorOf(recentAuthor), visitorOf(idle), visitorOf(returning)];
  const oldFile = (first.services.db.$client.prepare("SELECT file_name AS f FROM images WHERE prompt_id = ?").get(oldImage) as { f: string }).f;
  const recentFile = (first.services.db.$client.prepare("SELECT file_name AS f FROM images WHERE prompt_id = ?").get(recentImage) as { f: string }).f;

  const longAgo = Date.now() - 40 * DAY;
  const backdate = (sql: string, ...params: unknown[]) => first.services.db.$client.prepare(sql).run(longAgo, ...params);
  backdate("UPDATE prompts SET created_at = ? WHERE visitor_id = ?", oldAuthorId);
  backdate(`UPDATE visitors SET created_at = ?, last_seen_at = ? WHERE id IN (${[oldAuthorId, recentAuthorId, idleId, returningId].join(",")})`, longAgo);
  backdate(`UPDATE sessions SET created_at = ? WHERE visitor_id IN (${[oldAuthorId, recentAuthorId, idleId, returningId].join(",")})`);
  // The returning visitor comes back today with their cookie: seen today, so not idle.
  await returning.page("/");
  expect((first.services.db.$client.prepare("SELECT last_seen_at AS t FROM visitors WHERE id = ?").get(returningId) as { t: number }).t).toBeGreaterThan(longAgo);
  await first.close();

  const server = await startTestServer({ DATA_DIR: dataDir, RETENTION_DAYS: "30" });
  cleanup(() => server.close());
  expect(server.log.lines).toContain("info retention: removed 2 prompts, 1 images, 2 visitors, 0 audit log entries older than 30 days");

  const remaining = (table: string, column: string, id: number) => count(server, `SELECT count(*) AS n FROM ${table} WHERE ${column} = ?`, id);
  expect(remaining("prompts", "visitor_id", oldAuthorId)).toBe(0);
  expect(remaining("jobs", "prompt_id", oldImage)).toBe(0);
  expect(remaining("images", "prompt_id", oldImage)).toBe(0);
  for (const gone of [oldAuthorId, idleId]) {
    expect(remaining("visitors", "id", gone)).toBe(0);
    expect(remaining("sessions", "visitor_id", gone)).toBe(0);
    expect(remaining("fingerprints", "visitor_id", gone)).toBe(0);
  }
  expect(existsSync(path.join(dataDir, "images", oldFile))).toBe(false);

  expect(remaining("prompts", "id", recentImage)).toBe(1);
  expect(remaining("images", "prompt_id", recentImage)).toBe(1);
  expect(existsSync(path.join(dataDir, "images", recentFile))).toBe(true);
  for (const kept of [recentAuthorId, returningId]) expect(remaining("visitors", "id", kept)).toBe(1);

  const viewer = new TestClient(server.url, { userAgent: "retention admin after" });
  await viewer.loginAsAdmin(ADMIN_PASSWORD);
  expect((await viewer.fetch(`/images/${oldImage}.png`)).status).toBe(404);
  expect((await viewer.fetch(`/images/${recentImage}.png`)).status).toBe(200);
});

test("a purge larger than one batch removes everything old, sweeps old unreferenced image files, and logs an image file it cannot delete without failing", async () => {
  const dataDir = makeDataDir();
  cleanup(() => removeDataDir(dataDir));
  const db = openDb(path.join(dataDir, "promptgate.db"));
  cleanup(() => db.$client.close());
  const imageDir = path.join(dataDir, "images");
  const sqlite = db.$client;
  const old = Date.now() - 10 * DAY;

  sqlite.transaction(() => {
    const visitor = sqlite.prepare("INSERT INTO visitors (id, hex, created_at) VALUES (?, ?, ?)");
    for (let id = 1; id <= 1_300; id++) visitor.run(id, `#${id.toString(16).padStart(6, "0")}`, old);
    sqlite.prepare("INSERT INTO fingerprints (hash, visitor_id, created_at) SELECT 'fp' || id, id, created_at FROM visitors").run();
    const prompt = sqlite.prepare("INSERT INTO prompts (visitor_id, prompt, width, height, created_at) VALUES (?, 'old', 64, 64, ?)");
    for (let i = 0; i < 1_201; i++) prompt.run(1, old);
    prompt.run(2, Date.now());
    // One old prompt with an image whose "file" is a directory: unlink fails with EISDIR or EPERM.
    sqlite.prepare("INSERT INTO jobs (id, prompt_id, state, created_at) VALUES ('job-1', 1, 'done', ?)").run(old);
    sqlite
      .prepare("INSERT INTO images (prompt_id, job_id, file_name, bytes, width, height, seed, backend, generator_id, parameters, queued_ms, generation_ms) VALUES (1, 'job-1', 'stuck.png', 1, 64, 64, 1, 'placeholder', 'g', '{}', 0, 0)")
      .run();
    // The recent prompt's image, written long ago (a file's age alone never condemns it).
    sqlite.prepare("INSERT INTO jobs (id, prompt_id, state) VALUES ('job-2', 1202, 'done')").run();
    sqlite
      .prepare("INSERT INTO images (prompt_id, job_id, file_name, bytes, width, height, seed, backend, generator_id, parameters, queued_ms, generation_ms) VALUES (1202, 'job-2', 'kept.png', 1, 64, 64, 1, 'placeholder', 'g', '{}', 0, 0)")
      .run();
  })();
  mkdirSync(path.join(imageDir, "stuck.png"), { recursive: true });
  for (const name of ["kept.png", "old-orphan.png", "old-orphan.png.tmp", "new-orphan.png"]) writeFileSync(path.join(imageDir, name), "png");
  for (const name of ["kept.png", "old-orphan.png", "old-orphan.png.tmp"]) utimesSync(path.join(imageDir, name), new Date(old), new Date(old));
  // The audit log is kept as long as the rest: an old failed login's typed name goes, a new entry stays.
  sqlite.prepare("INSERT INTO audit_log (at, actor, action) VALUES (?, 'typed-by-a-stranger', 'login.failed'), (?, 'admin', 'login')").run(old, Date.now());

  const log = collectingLogger();
  // Each deleted prompt is announced, so open pages drop it.
  const noted = new Set<number>();
  const changes = { promptChanged: (ids: number | number[]) => [ids].flat().forEach((id) => noted.add(id)) };
  const removed = await createRetention(db, imageDir, log, changes).purgeOlderThan(new Date(Date.now() - DAY));
  expect(removed).toEqual({ prompts: 1_201, jobs: 1, images: 1, visitors: 1_299, sessions: 0, fingerprints: 1_299, orphanFiles: 2, auditEntries: 1 });
  expect(sqlite.prepare("SELECT actor FROM audit_log").all()).toEqual([{ actor: "admin" }]);
  expect(noted).toEqual(new Set(Array.from({ length: 1_201 }, (_, i) => i + 1)));
  expect(readdirSync(imageDir).sort()).toEqual(["kept.png", "new-orphan.png", "stuck.png"]);
  expect(log.lines).toEqual([expect.stringMatching(/^warn retention: could not delete image stuck\.png: E(ISDIR|PERM)$/)]);
  expect(sqlite.prepare("SELECT visitor_id AS v FROM prompts").all()).toEqual([{ v: 2 }]);
  expect(sqlite.prepare("SELECT id FROM visitors").all()).toEqual([{ id: 2 }]);
  expect(sqlite.prepare("SELECT count(*) AS n FROM fingerprints").get()).toEqual({ n: 1 });
  expect(sqlite.prepare("SELECT id FROM jobs").all()).toEqual([{ id: "job-2" }]);
});
