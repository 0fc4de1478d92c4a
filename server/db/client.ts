/** Opens the SQLite database, applies committed migrations, and returns the Drizzle handle. */
import { chmodSync, closeSync, openSync } from "node:fs";
import path from "node:path";
import Database from "better-sqlite3";
import { drizzle, type BetterSQLite3Database } from "drizzle-orm/better-sqlite3";
import { migrate } from "drizzle-orm/better-sqlite3/migrator";
import { PROJECT_ROOT } from "../project-root";
import * as schema from "./schema";

export type Db = BetterSQLite3Database<typeof schema> & { $client: Database.Database };
/** The database or a transaction on it: what helpers that run inside a transaction accept. */
export type Queryable = Db | Parameters<Parameters<Db["transaction"]>[0]>[0];

const MIGRATIONS = path.join(PROJECT_ROOT, "server", "db", "migrations");

export function openDb(file: string): Db {
  // Owner-only: the database holds password and session hashes. SQLite gives its -wal and -shm
  // files the database file's permissions.
  closeSync(openSync(file, "a", 0o600));
  chmodSync(file, 0o600);
  const sqlite = new Database(file);
  // WAL: readers never block the writer; busy_timeout covers a second process (e.g. a backup) holding a lock.
  sqlite.pragma("journal_mode = WAL");
  // NORMAL: a commit reaches the WAL but is not fsynced. What must survive a power loss before it is
  // acknowledged (a stored result, server/domain/jobs.ts) fsyncs the WAL itself, off the event loop.
  sqlite.pragma("synchronous = NORMAL");
  sqlite.pragma("foreign_keys = ON");
  sqlite.pragma("busy_timeout = 5000");
  const db = drizzle(sqlite, { schema });
  migrate(db, { migrationsFolder: MIGRATIONS });
  return db;
}
