/**
 * Migrations that rewrite stored data, run against a real SQLite file as an upgrade would: the
 * database is built by the migrations before the one under test, rows are written the way the
 * older code wrote them, and start-up (openDb) runs the rest.
 */
import Database from "better-sqlite3";
import { drizzle } from "drizzle-orm/better-sqlite3";
import { migrate } from "drizzle-orm/better-sqlite3/migrator";
import { cpSync, readFileSync, writeFileSync } from "node:fs";
import path from "node:path";
import { afterEach, expect, test } from "vitest";
import { openDb } from "../../server/db/client";
import { makeDataDir, removeDataDir } from "../helpers/server";

const MIGRATIONS = path.resolve(import.meta.dirname, "../../server/db/migrations");
const dataDirs: string[] = [];
afterEach(() => dataDirs.splice(0).forEach(removeDataDir));

/** A database migrated up to, not including, `tag`, as `before` leaves it, then opened as start-up opens it. */
function upgradeThrough(tag: string, before: (old: Database.Database) => void) {
  const dataDir = makeDataDir();
  dataDirs.push(dataDir);
  const olderMigrations = path.join(dataDir, "older-migrations");
  cpSync(MIGRATIONS, olderMigrations, { recursive: true });
  const journalFile = path.join(olderMigrations, "meta/_journal.json");
  const journal = JSON.parse(readFileSync(journalFile, "utf8")) as { entries: Array<{ tag: string }> };
  const index = journal.entries.findIndex((entry) => entry.tag === tag);
  expect(index, `migration ${tag}`).toBeGreaterThan(0);
  writeFileSync(journalFile, JSON.stringify({ ...journal, entries: journal.entries.slice(0, index) }));
  const file = path.join(dataDir, "promptgate.db");
  const old = new Database(file);
  migrate(drizzle(old), { migrationsFolder: olderMigrations });
  before(old);
  old.close();
  return openDb(file).$client;
}

test("images stored with doubly encoded sampling parameters hold the object itself after the upgrade", () => {
  const parameters = { steps: 20, cfgScale: 7, samplerName: "Euler a", restoreFaces: false, seed: 42 };
  const sqlite = upgradeThrough("0004_images_parameters_as_json", (old) => {
    old.exec("INSERT INTO visitors (id, hex) VALUES (1, '#010203')");
    old.exec("INSERT INTO prompts (id, visitor_id, prompt, negative_prompt, width, height, status) VALUES (1, 1, 'p', '', 64, 64, 'done'), (2, 1, 'q', '', 64, 64, 'done')");
    old.exec("INSERT INTO jobs (id, prompt_id, state) VALUES ('job-1', 1, 'done'), ('job-2', 2, 'done')");
    const insert = old.prepare(
      "INSERT INTO images (prompt_id, job_id, file_name, bytes, width, height, seed, backend, generator_id, parameters, queued_ms, generation_ms) VALUES (?, ?, ?, 1, 64, 64, 42, 'placeholder', 'g', ?, 0, 0)",
    );
    insert.run(1, "job-1", "a.png", JSON.stringify(JSON.stringify(parameters)));
    insert.run(2, "job-2", "b.png", JSON.stringify(parameters));
  });
  const rows = sqlite.prepare("SELECT json_type(parameters) AS type, parameters FROM images ORDER BY prompt_id").all() as Array<{ type: string; parameters: string }>;
  expect(rows.map((row) => row.type)).toEqual(["object", "object"]);
  expect(rows.map((row) => JSON.parse(row.parameters))).toEqual([parameters, parameters]);
  sqlite.close();
});
