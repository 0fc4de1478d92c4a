/**
 * What must hold in a running promptgate whatever clients sent: it answers, it logged no
 * unhandled failure, no prototype was polluted, and its database passes SQLite's own checks
 * and the relations between prompts, jobs, images, accounts and tokens that the schema cannot express.
 */
import { existsSync, readdirSync, statSync } from "node:fs";
import path from "node:path";
import type { TestServer } from "./server";

export function expectConsistentStore(server: TestServer, expected: { prompts: number }): void {
  const sqlite = server.services.db.$client;
  const all = (sql: string) => sqlite.prepare(sql).all() as Array<Record<string, unknown>>;
  const count = (sql: string) => (sqlite.prepare(sql).get() as { n: number }).n;

  expect(sqlite.pragma("integrity_check", { simple: true })).toBe("ok");
  expect(all("PRAGMA foreign_key_check")).toEqual([]);

  expect(count("SELECT count(*) AS n FROM prompts")).toBe(expected.prompts);
  // Every job belongs to an existing prompt that was approved at some point.
  expect(all("SELECT j.id FROM jobs j LEFT JOIN prompts p ON p.id = j.prompt_id WHERE p.id IS NULL OR p.status IN ('pending', 'denied')")).toEqual([]);
  // A prompt has a current job exactly when it left moderation, and that job is its own.
  expect(all("SELECT id, status, job_id FROM prompts WHERE (job_id IS NULL) <> (status IN ('pending', 'denied'))")).toEqual([]);
  expect(all("SELECT p.id FROM prompts p LEFT JOIN jobs j ON j.id = p.job_id WHERE p.job_id IS NOT NULL AND (j.id IS NULL OR j.prompt_id <> p.id)")).toEqual([]);
  // Images exist exactly for done prompts, from their current, finished job.
  expect(all("SELECT p.id FROM prompts p LEFT JOIN images i ON i.prompt_id = p.id WHERE (p.status = 'done') <> (i.prompt_id IS NOT NULL)")).toEqual([]);
  expect(all("SELECT i.prompt_id FROM images i JOIN prompts p ON p.id = i.prompt_id JOIN jobs j ON j.id = i.job_id WHERE i.job_id <> p.job_id OR j.state <> 'done'")).toEqual([]);
  expect(all("SELECT id FROM prompts WHERE revealed_at IS NOT NULL AND status <> 'done'")).toEqual([]);
  // Access: the first admin is the only admin, whatever was sent; a token has its own colour exactly when it may submit.
  expect(all("SELECT name FROM accounts WHERE role = 'admin'")).toEqual([{ name: "admin" }]);
  expect(all("SELECT name FROM api_tokens WHERE (visitor_id IS NOT NULL) <> EXISTS (SELECT 1 FROM json_each(scopes) WHERE value = 'submit')")).toEqual([]);

  // No image row without its PNG on disk, and no half-written file left behind.
  const imageDir = path.join(server.dataDir, "images");
  for (const image of all("SELECT file_name AS fileName, bytes FROM images") as Array<{ fileName: string; bytes: number }>) {
    const file = path.join(imageDir, image.fileName);
    expect(existsSync(file), `${image.fileName} is on disk`).toBe(true);
    expect(statSync(file).size).toBe(image.bytes);
  }
  expect(existsSync(imageDir) ? readdirSync(imageDir).filter((name) => name.endsWith(".tmp")) : []).toEqual([]);
}

/** Lines the server logged at error level: each one is an unhandled failure. */
export const errorLines = (server: TestServer) => server.log.lines.filter((line) => line.startsWith("error "));

/**
 * The server still answers, and logged no unhandled failure after its first `errorsBefore`
 * error lines (as far as it has handled its input yet; check the whole log once it is done).
 */
export async function expectHealthy(server: TestServer, errorsBefore: number): Promise<void> {
  const response = await fetch(new URL("/healthz", server.url));
  expect(response.status).toBe(200);
  expect((await response.json()).ok).toBe(true);
  expect(errorLines(server).slice(errorsBefore)).toEqual([]);
}

const ownValues = (prototype: object) => new Map(Object.getOwnPropertyNames(prototype).map((key) => [key, Object.getOwnPropertyDescriptor(prototype, key)?.value]));
/** Taken when the test file loads, before any server starts. */
const PRISTINE = { object: ownValues(Object.prototype), array: ownValues(Array.prototype) };

/** The server runs in the test's process: a polluted or overwritten prototype member would show here. */
export function expectUnpollutedPrototypes(): void {
  expect(ownValues(Object.prototype)).toEqual(PRISTINE.object);
  expect(ownValues(Array.prototype)).toEqual(PRISTINE.array);
}
