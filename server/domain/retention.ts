/**
 * Data retention (RETENTION_DAYS): deletes prompts, their jobs and images, and visitors that
 * have been idle since before a cutoff.
 *
 * - A prompt goes when it was created before the cutoff, whatever its state: an approved job
 *   that old is abandoned, and a late result for it is dropped as an unknown job.
 * - A visitor goes when nothing of theirs is newer than the cutoff: no prompt left (the old ones
 *   went first) and last seen (or, never seen, created) before it, so a visitor who never
 *   submits anything is forgotten RETENTION_DAYS after their last visit. Sessions that merely
 *   offered a forgotten visitor ("are you Teal?") lose the offer, not the session.
 * - Deletion runs in batches of BATCH rows, each its own synchronous transaction in foreign-key
 *   order, yielding to the event loop in between, so a large backlog never blocks requests for
 *   long and no IN list comes near SQLite's limit on bound variables.
 * - Image files are unlinked after their rows are committed: a crash in between leaves an
 *   orphan file, never a row without its file. A failed unlink is logged, not fatal.
 * - Orphans (that crash, or a result stored for a job whose prompt was just deleted) are swept
 *   once older than the cutoff: no row points to them, and a file that old cannot be a result
 *   still on its way to its row.
 */
import { readdir, stat, unlink } from "node:fs/promises";
import path from "node:path";
import { and, count, inArray, isNotNull, isNull, lt, notInArray, sql, type Column, type SQL } from "drizzle-orm";
import type { SQLiteTable } from "drizzle-orm/sqlite-core";
import type { Db } from "../db/client";
import { apiTokens, auditLog, fingerprints, images, jobs, prompts, sessions, visitors } from "../db/schema";
import type { ChangeNotes } from "./live-events";
import type { Logger } from "../logger";

const BATCH = 500;

/** A table whose rows go with their parent, the column naming the parent, and where they are counted. */
type Dependent = [SQLiteTable, Column, "jobs" | "sessions" | "fingerprints" | null];

/** Rows deleted with their prompt, before it (foreign keys): one line per table. */
const PROMPT_DEPENDENTS: Dependent[] = [
  [images, images.promptId, null],
  [jobs, jobs.promptId, "jobs"],
];

/** Rows deleted with their visitor, before it (foreign keys): one line per table. */
const VISITOR_DEPENDENTS: Dependent[] = [
  [fingerprints, fingerprints.visitorId, "fingerprints"],
  [sessions, sessions.visitorId, "sessions"],
];

export interface PurgeCounts {
  prompts: number;
  jobs: number;
  images: number;
  visitors: number;
  sessions: number;
  fingerprints: number;
  /** Files in the image directory that no row pointed to. */
  orphanFiles: number;
  /** Audit log entries (they hold names, and the names typed at failed logins). */
  auditEntries: number;
}

/** Later than any row's timestamp: a cutoff that condemns everything (JavaScript's largest Date). */
const END_OF_TIME = new Date(8.64e15);

const noCounts = (): PurgeCounts => ({ prompts: 0, jobs: 0, images: 0, visitors: 0, sessions: 0, fingerprints: 0, orphanFiles: 0, auditEntries: 0 });

type Tx = Parameters<Parameters<Db["transaction"]>[0]>[0];

function deleteDependents(tx: Tx, dependents: Dependent[], parentIds: number[], counts: PurgeCounts): void {
  for (const [table, column, counted] of dependents) {
    const { changes } = tx.delete(table).where(inArray(column, parentIds)).run();
    if (counted) counts[counted] += changes;
  }
}

/** Lets waiting requests run between batches. */
const yieldToRequests = () => new Promise((resolve) => setImmediate(resolve));

export function createRetention(db: Db, imageDir: string, log: Logger, changes: ChangeNotes) {
  async function purgePrompts(cutoff: Date, counts: PurgeCounts) {
    for (;;) {
      const fileNames = db.transaction(
        (tx) => {
          const ids = tx.select({ id: prompts.id }).from(prompts).where(lt(prompts.createdAt, cutoff)).limit(BATCH).all().map((row) => row.id);
          if (!ids.length) return null;
          changes.promptChanged(ids);
          const files = tx.select({ fileName: images.fileName }).from(images).where(inArray(images.promptId, ids)).all();
          deleteDependents(tx, PROMPT_DEPENDENTS, ids, counts);
          counts.prompts += tx.delete(prompts).where(inArray(prompts.id, ids)).run().changes;
          return files.map((file) => file.fileName);
        },
        { behavior: "immediate" },
      );
      if (!fileNames) return;
      counts.images += fileNames.length;
      for (const fileName of fileNames) await removeImageFile(fileName);
      await yieldToRequests();
    }
  }

  /** Unlinks a file of the image directory; false (and a warning) if it could not be. */
  async function removeImageFile(fileName: string): Promise<boolean> {
    try {
      await unlink(path.join(imageDir, fileName));
      return true;
    } catch (error) {
      const code = (error as NodeJS.ErrnoException).code;
      if (code !== "ENOENT") log.warn(`retention: could not delete image ${fileName}: ${code ?? (error as Error).message}`);
      return false;
    }
  }

  async function purgeOrphanFiles(cutoff: Date, counts: PurgeCounts) {
    const names = await readdir(imageDir).catch((error: NodeJS.ErrnoException) => {
      if (error.code === "ENOENT") return [];
      throw error;
    });
    // Listed first, rows read second: a file stored in between has its row seen.
    const referenced = new Set(db.select({ fileName: images.fileName }).from(images).all().map((row) => row.fileName));
    for (const name of names) {
      if (referenced.has(name)) continue;
      const stats = await stat(path.join(imageDir, name)).catch(() => null);
      if (stats?.isFile() && stats.mtime < cutoff && (await removeImageFile(name))) counts.orphanFiles++;
    }
  }

  async function purgeVisitors(cutoff: Date, counts: PurgeCounts) {
    for (;;) {
      const purged = db.transaction(
        (tx) => {
          const ids = tx
            .select({ id: visitors.id })
            .from(visitors)
            .where(
              and(
                lt(sql`coalesce(${visitors.lastSeenAt}, ${visitors.createdAt})`, cutoff.getTime()),
                notInArray(visitors.id, tx.select({ id: prompts.visitorId }).from(prompts)),
                // An API token's colour lives as long as the token.
                notInArray(visitors.id, tx.select({ id: sql<number>`${apiTokens.visitorId}` }).from(apiTokens).where(isNotNull(apiTokens.visitorId))),
              ),
            )
            .limit(BATCH)
            .all()
            .map((row) => row.id);
          if (!ids.length) return 0;
          tx.update(sessions).set({ offerVisitorId: null }).where(inArray(sessions.offerVisitorId, ids)).run();
          deleteDependents(tx, VISITOR_DEPENDENTS, ids, counts);
          return tx.delete(visitors).where(inArray(visitors.id, ids)).run().changes;
        },
        { behavior: "immediate" },
      );
      if (!purged) return;
      counts.visitors += purged;
      await yieldToRequests();
    }
  }

  return {
    /** Deletes what is older than `cutoff` (see above); returns how much went. */
    async purgeOlderThan(cutoff: Date): Promise<PurgeCounts> {
      const counts = noCounts();
      await purgePrompts(cutoff, counts);
      await purgeOrphanFiles(cutoff, counts);
      await purgeVisitors(cutoff, counts);
      // Kept as long as the rest, no longer. "End the event" keeps it: it is the host's record.
      counts.auditEntries = db.delete(auditLog).where(lt(auditLog.at, cutoff)).run().changes;
      return counts;
    },

    /** How much visitor data there is: what "end the event" would delete. */
    visitorData() {
      const n = (table: SQLiteTable, where?: SQL) => db.select({ n: count() }).from(table).where(where).get()?.n ?? 0;
      return { visitors: n(visitors), prompts: n(prompts), images: n(images), revealed: n(prompts, isNotNull(prompts.revealedAt)) };
    },

    /**
     * "End the event": every visitor and everything of theirs, in the same batches as above with
     * a cutoff after everything, then any session or fingerprint that belongs to no visitor. The admin
     * account, admin sessions, generator credentials and settings are not visitor data: kept.
     */
    async purgeEverything(): Promise<PurgeCounts> {
      const counts = noCounts();
      await purgePrompts(END_OF_TIME, counts);
      await purgeOrphanFiles(END_OF_TIME, counts);
      await purgeVisitors(END_OF_TIME, counts);
      db.transaction(
        (tx) => {
          // Only visitor-less rows: a guest arriving meanwhile keeps a working identity.
          counts.sessions += tx.delete(sessions).where(isNull(sessions.visitorId)).run().changes;
          counts.fingerprints += tx.delete(fingerprints).where(isNull(fingerprints.visitorId)).run().changes;
        },
        { behavior: "immediate" },
      );
      log.info(
        `end of the event: deleted ${counts.visitors} visitors, ${counts.sessions} sessions, ${counts.fingerprints} fingerprints, ${counts.prompts} prompts, ${counts.jobs} jobs, ${counts.images} images` +
          (counts.orphanFiles ? ` and ${counts.orphanFiles} image files no row pointed to` : ""),
      );
      return counts;
    },
  };
}

export type Retention = ReturnType<typeof createRetention>;
