/**
 * The job outbox and what comes back from generators. The database, not the broker, is the
 * source of truth: a job stays "unfinished" until its result is stored, and unfinished jobs
 * are published again whenever a generator announces itself or the server starts.
 */
import { mkdirSync } from "node:fs";
import { open, rename } from "node:fs/promises";
import path from "node:path";
import { and, eq, inArray, notInArray, sql } from "drizzle-orm";
import { SCHEMA_VERSION, type JobMessage, type ResultMessage, type StatusMessage } from "../../broker/contract";
import { readPngSize } from "../../generator/png";
import type { Db } from "../db/client";
import { images, jobs, nowMs, prompts, visitors, type JobState } from "../db/schema";

const UNFINISHED: JobState[] = ["queued", "accepted", "started"];

/** "stale": the result of a job its prompt has replaced (retried), never allowed to overwrite the newer one. */
export type ResultOutcome = "stored" | "duplicate" | "stale" | "unknown-job" | "rejected";

export function createJobService(db: Db, imageDir: string) {
  // Owner-only: images are secret until the reveal.
  mkdirSync(imageDir, { recursive: true, mode: 0o700 });
  /** Job ids whose image is being written right now. */
  const storing = new Set<string>();
  const isCurrentJobOf = and(eq(prompts.id, sql.placeholder("promptId")), eq(prompts.jobId, sql.placeholder("jobId")));
  // Prepared once: these run for every status and result message, several per job.
  const statements = {
    jobById: db.select().from(jobs).where(eq(jobs.id, sql.placeholder("id"))).prepare(),
    promptById: db.select().from(prompts).where(eq(prompts.id, sql.placeholder("id"))).prepare(),
    markAccepted: db.update(jobs).set({ state: "accepted", generatorId: sql`${sql.placeholder("generatorId")}` }).where(eq(jobs.id, sql.placeholder("id"))).prepare(),
    markStarted: db.update(jobs).set({ state: "started", generatorId: sql`${sql.placeholder("generatorId")}`, startedAt: nowMs }).where(eq(jobs.id, sql.placeholder("id"))).prepare(),
    markGenerating: db.update(prompts).set({ status: "generating" }).where(isCurrentJobOf).prepare(),
    finishJob: db
      .update(jobs)
      .set({ state: sql`${sql.placeholder("state")}`, finishedAt: nowMs })
      .where(eq(jobs.id, sql.placeholder("id")))
      .returning({ promptId: jobs.promptId })
      .prepare(),
    markPromptDone: db.update(prompts).set({ status: "done", failureReason: null }).where(isCurrentJobOf).prepare(),
    markPromptFailed: db.update(prompts).set({ status: "failed", failureReason: sql`${sql.placeholder("reason")}` }).where(isCurrentJobOf).prepare(),
    // One image per prompt: only a prompt's current job may store one (stale results are refused
    // first), and a prompt with an image is done, which neither approval nor retry can reopen.
    insertImage: db
      .insert(images)
      .values({
        promptId: sql.placeholder("promptId"),
        jobId: sql.placeholder("jobId"),
        fileName: sql.placeholder("fileName"),
        bytes: sql.placeholder("bytes"),
        width: sql.placeholder("width"),
        height: sql.placeholder("height"),
        seed: sql.placeholder("seed"),
        backend: sql.placeholder("backend"),
        generatorId: sql.placeholder("generatorId"),
        parameters: sql.placeholder("parameters"),
        queuedMs: sql.placeholder("queuedMs"),
        generationMs: sql.placeholder("generationMs"),
      })
      .prepare(),
  };

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

  /** Marks a job done or failed; its prompt follows only if this is the prompt's current job. Call inside a transaction. */
  function finish(jobId: string, outcome: { state: "done" } | { state: "failed"; reason: string }) {
    const job = statements.finishJob.get({ id: jobId, state: outcome.state });
    if (!job) return;
    if (outcome.state === "done") statements.markPromptDone.run({ promptId: job.promptId, jobId });
    else statements.markPromptFailed.run({ promptId: job.promptId, jobId, reason: outcome.reason });
  }

  return {
    /** The job messages for these ids (e.g. just approved). */
    messagesFor: (jobIds: string[]) => jobMessages(jobIds),

    /**
     * Every job without a result, oldest first, except those a generator says it already holds
     * and those whose result is being written right now (it arrived just before the generator's
     * "online" announcement that asks for this list).
     */
    unfinished: (except: string[] = []) => jobMessages("unfinished", [...except, ...storing]),

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
        () => {
          const job = statements.jobById.get({ id: status.jobId });
          if (!job || !UNFINISHED.includes(job.state)) return false;
          if (status.state === "failed") {
            finish(job.id, { state: "failed", reason: status.reason });
            return true;
          }
          // "accepted" may arrive after "started" (both QoS 1, separate publishes): never go backwards.
          if (status.state === "accepted" && job.state === "started") return false;
          if (status.state === "accepted") {
            statements.markAccepted.run({ id: job.id, generatorId: status.generatorId });
          } else {
            statements.markStarted.run({ id: job.id, generatorId: status.generatorId });
            statements.markGenerating.run({ promptId: job.promptId, jobId: job.id });
          }
          return true;
        },
        { behavior: "immediate" },
      );
    },

    /**
     * Stores a result: the PNG is written and fsynced off the main thread, then renamed into
     * place, before the row that points to it is committed, so a crash leaves at worst an orphan
     * file, never a row without its image. A second result for a job is ignored, also while
     * the first is still being written (`storing`).
     */
    async storeResult(result: ResultMessage): Promise<{ outcome: ResultOutcome; reason?: string }> {
      const job = statements.jobById.get({ id: result.jobId });
      if (!job) return { outcome: "unknown-job" };
      if (job.state === "done" || storing.has(job.id)) return { outcome: "duplicate" };
      const prompt = statements.promptById.get({ id: job.promptId })!;
      if (prompt.jobId !== job.id) return { outcome: "stale" };
      const png = Buffer.from(result.imagePng, "base64");
      const size = readPngSize(png);
      const problem = !size
        ? "the generator sent something that is not a PNG"
        : size.width !== prompt.width || size.height !== prompt.height
          ? `the generator sent a ${size.width}×${size.height} image for a ${prompt.width}×${prompt.height} prompt`
          : null;
      if (problem) {
        db.transaction(() => finish(job.id, { state: "failed", reason: problem }), { behavior: "immediate" });
        return { outcome: "rejected", reason: problem };
      }

      storing.add(job.id);
      try {
        const fileName = `${prompt.id}-${job.id}.png`;
        const finalPath = path.join(imageDir, fileName);
        const temporaryPath = `${finalPath}.tmp`;
        const file = await open(temporaryPath, "w", 0o600);
        try {
          await file.writeFile(png);
          await file.sync();
        } finally {
          await file.close();
        }
        await rename(temporaryPath, finalPath);
        // The rename itself must survive a power loss before a row may point at the file.
        const directory = await open(imageDir, "r");
        try {
          await directory.sync();
        } finally {
          await directory.close();
        }

        return db.transaction(
          () => {
            if (statements.jobById.get({ id: job.id })?.state === "done") return { outcome: "duplicate" as const };
            if (statements.promptById.get({ id: prompt.id })?.jobId !== job.id) return { outcome: "stale" as const };
            statements.insertImage.run({
              promptId: prompt.id,
              jobId: job.id,
              fileName,
              bytes: png.length,
              width: size!.width,
              height: size!.height,
              seed: result.seed,
              backend: result.backend,
              generatorId: result.generatorId,
              parameters: JSON.stringify(result.parameters),
              queuedMs: Math.round(result.timing.queuedMs),
              generationMs: Math.round(result.timing.generationMs),
            });
            finish(job.id, { state: "done" });
            return { outcome: "stored" as const };
          },
          { behavior: "immediate" },
        );
      } finally {
        storing.delete(job.id);
      }
    },

    imagePath: (fileName: string) => path.join(imageDir, fileName),
  };
}

export type JobService = ReturnType<typeof createJobService>;
