/**
 * The job outbox and what comes back from generators. The database, not the broker, is the
 * source of truth: a job stays "unfinished" until its result is stored, and unfinished jobs
 * are published again whenever a generator announces itself or the server starts.
 */
import { closeSync, fsyncSync, mkdirSync, openSync, renameSync, writeSync } from "node:fs";
import path from "node:path";
import { and, eq, inArray, notInArray, sql } from "drizzle-orm";
import { SCHEMA_VERSION, type JobMessage, type ResultMessage, type StatusMessage } from "../../broker/contract";
import { readPngSize } from "../../generator/png";
import type { Db, Queryable } from "../db/client";
import { images, jobs, prompts, visitors, type JobState } from "../db/schema";

const UNFINISHED: JobState[] = ["queued", "accepted", "started"];

export type ResultOutcome = "stored" | "duplicate" | "unknown-job" | "rejected";

export function createJobService(db: Db, imageDir: string) {
  mkdirSync(imageDir, { recursive: true });

  function jobMessages(jobIds: string[] | "unfinished", except: string[] = []): JobMessage[] {
    const rows = db
      .select({ job: jobs, prompt: prompts, hex: visitors.hex })
      .from(jobs)
      .innerJoin(prompts, eq(prompts.id, jobs.promptId))
      .innerJoin(visitors, eq(visitors.id, prompts.visitorId))
      .where(
        and(
          jobIds === "unfinished" ? inArray(jobs.state, UNFINISHED) : inArray(jobs.id, jobIds),
          // Only a prompt's current job: an older job of a retried prompt is never sent again.
          eq(prompts.jobId, jobs.id),
          except.length ? notInArray(jobs.id, except) : undefined,
        ),
      )
      .orderBy(jobs.createdAt)
      .all();
    return rows.map(({ job, prompt, hex }) => ({
      schemaVersion: SCHEMA_VERSION,
      jobId: job.id,
      prompt: prompt.prompt,
      negativePrompt: prompt.negativePrompt,
      width: prompt.width,
      height: prompt.height,
      authorColour: hex,
      approvedAt: (prompt.decidedAt ?? job.createdAt).toISOString(),
    }));
  }

  /** Marks a failed or finished job: the prompt follows only if this is its current job. */
  function finish(tx: Queryable, jobId: string, state: "done" | "failed", promptUpdate: Partial<typeof prompts.$inferInsert>) {
    const job = tx.update(jobs).set({ state, finishedAt: new Date() }).where(eq(jobs.id, jobId)).returning().get();
    if (job) tx.update(prompts).set(promptUpdate).where(and(eq(prompts.id, job.promptId), eq(prompts.jobId, jobId))).run();
  }

  return {
    /** The job messages for these ids (e.g. just approved). */
    messagesFor: (jobIds: string[]) => jobMessages(jobIds),

    /** Every job without a result, oldest first, except those a generator says it already holds. */
    unfinished: (except: string[] = []) => jobMessages("unfinished", except),

    markPublished(jobIds: string[]): void {
      if (!jobIds.length) return;
      db.update(jobs)
        .set({ publishCount: sql`${jobs.publishCount} + 1`, lastPublishedAt: new Date() })
        .where(inArray(jobs.id, jobIds))
        .run();
    },

    /** Applies a generator's status message. Messages for finished or unknown jobs are ignored. */
    applyStatus(status: StatusMessage): boolean {
      return db.transaction(
        (tx) => {
          const job = tx.select().from(jobs).where(eq(jobs.id, status.jobId)).get();
          if (!job || !UNFINISHED.includes(job.state)) return false;
          if (status.state === "failed") {
            finish(tx, job.id, "failed", { status: "failed", failureReason: status.reason });
            return true;
          }
          // "accepted" may arrive after "started" (both QoS 1, separate publishes): never go backwards.
          if (status.state === "accepted" && job.state === "started") return false;
          tx.update(jobs)
            .set({ state: status.state, generatorId: status.generatorId, ...(status.state === "started" ? { startedAt: new Date() } : {}) })
            .where(eq(jobs.id, job.id))
            .run();
          if (status.state === "started") {
            tx.update(prompts).set({ status: "generating" }).where(and(eq(prompts.id, job.promptId), eq(prompts.jobId, job.id))).run();
          }
          return true;
        },
        { behavior: "immediate" },
      );
    },

    /**
     * Stores a result: the PNG is written (fsync + rename) before the row that points to it, so a
     * crash leaves at worst an orphan file, never a row without its image. A second result for a
     * job is ignored. Synchronous from check to commit, so two deliveries cannot interleave.
     */
    storeResult(result: ResultMessage): { outcome: ResultOutcome; reason?: string } {
      const job = db.select().from(jobs).where(eq(jobs.id, result.jobId)).get();
      if (!job) return { outcome: "unknown-job" };
      if (job.state === "done") return { outcome: "duplicate" };
      const prompt = db.select().from(prompts).where(eq(prompts.id, job.promptId)).get()!;
      const png = Buffer.from(result.imagePng, "base64");
      const size = readPngSize(png);
      const problem = !size
        ? "the generator sent something that is not a PNG"
        : size.width !== prompt.width || size.height !== prompt.height
          ? `the generator sent a ${size.width}×${size.height} image for a ${prompt.width}×${prompt.height} prompt`
          : null;
      if (problem) {
        db.transaction((tx) => finish(tx, job.id, "failed", { status: "failed", failureReason: problem }), { behavior: "immediate" });
        return { outcome: "rejected", reason: problem };
      }

      const fileName = `${prompt.id}-${job.id}.png`;
      const finalPath = path.join(imageDir, fileName);
      const temporaryPath = `${finalPath}.tmp`;
      const fd = openSync(temporaryPath, "w", 0o600);
      try {
        writeSync(fd, png);
        fsyncSync(fd);
      } finally {
        closeSync(fd);
      }
      renameSync(temporaryPath, finalPath);

      db.transaction(
        (tx) => {
          tx.insert(images)
            .values({
              promptId: prompt.id,
              jobId: job.id,
              fileName,
              bytes: png.length,
              width: size!.width,
              height: size!.height,
              seed: result.seed,
              backend: result.backend,
              generatorId: result.generatorId,
              parameters: result.parameters,
              queuedMs: Math.round(result.timing.queuedMs),
              generationMs: Math.round(result.timing.generationMs),
            })
            // A retried prompt replaces the image of its earlier job.
            .onConflictDoUpdate({
              target: images.promptId,
              set: { jobId: job.id, fileName, bytes: png.length, seed: result.seed, backend: result.backend, generatorId: result.generatorId, parameters: result.parameters, createdAt: new Date() },
            })
            .run();
          finish(tx, job.id, "done", { status: "done", failureReason: null });
        },
        { behavior: "immediate" },
      );
      return { outcome: "stored" };
    },

    imagePath: (fileName: string) => path.join(imageDir, fileName),
  };
}

export type JobService = ReturnType<typeof createJobService>;
