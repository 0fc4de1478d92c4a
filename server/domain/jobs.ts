/**
 * The job outbox, its leases, and what comes back from generators. The database, not the
 * broker, is the source of truth (ADR 008): a job stays "unfinished" until its result is
 * stored; an unfinished job is either in line or leased to exactly one generator, and only the
 * lease holder's status and result count.
 */
import { mkdirSync } from "node:fs";
import { open, unlink } from "node:fs/promises";
import path from "node:path";
import { and, asc, eq, inArray, isNull, lt, sql } from "drizzle-orm";
import { SCHEMA_VERSION, type JobMessage, type ResultMessage, type StatusMessage } from "../../broker/contract";
import { checkPng } from "../../generator/png";
import type { Db } from "../db/client";
import { images, jobs, nowMs, prompts, type JobState } from "../db/schema";
import { countTurn, type Line } from "./line";
import { createGroupSync } from "./group-sync";
import type { ChangeNotes } from "./live-events";

/** A job in one of these states is in line or with a generator. */
export const UNFINISHED: JobState[] = ["queued", "accepted", "started"];

/**
 * "stale": the result of a job its prompt has replaced (retried), never allowed to overwrite the
 * newer one; "not-holder": from a generator that does not hold the job's lease; "already-stored":
 * a copy of the result already stored from the same generator (it did not hear that it was);
 * "storing": a copy that arrived while the first is being written, which answers for both;
 * "cancelled": the job was called off (server/domain/prompts.ts `cancel`) before its image came.
 */
export type ResultOutcome = "stored" | "already-stored" | "storing" | "duplicate" | "stale" | "cancelled" | "unknown-job" | "not-holder" | "rejected";

/** A job waiting in line for a generator; its size decides which generators can make it. */
export interface QueuedJob {
  jobId: string;
  width: number;
  height: number;
  /** Generators that reported it failed: it goes to others. */
  failedOn: string[];
}

export interface JobServiceOptions {
  /** How long a lease lasts without a heartbeat or status from its holder. */
  leaseMs: number;
  /** The order of the line. */
  line: Line;
  /** Told of every prompt whose status or notice a job changes. */
  changes: ChangeNotes;
  /** Told when a job's lease ends (back in line, done, failed): its progress is over. */
  onLeaseEnded?: (jobId: string) => void;
  now?: () => number;
}

export function createJobService(db: Db, imageDir: string, { leaseMs, line, changes, onLeaseEnded, now = Date.now }: JobServiceOptions) {
  // Owner-only: images are secret until the reveal.
  mkdirSync(imageDir, { recursive: true, mode: 0o700 });
  const syncImageDir = createGroupSync(imageDir);
  const syncWal = createGroupSync(`${db.$client.name}-wal`);
  /** Job ids whose image is being written right now. */
  const storing = new Set<string>();
  const isCurrentJobOf = and(eq(prompts.id, sql.placeholder("promptId")), eq(prompts.jobId, sql.placeholder("jobId")));
  // Prepared once: these run for every status and result message, several per job.
  const statements = {
    // A generator's leases sent before a time (a lease never published counts as sent long ago).
    leasesOf: db
      .select({ jobId: jobs.id, promptId: jobs.promptId })
      .from(jobs)
      .where(and(eq(jobs.leaseGeneratorId, sql.placeholder("generatorId")), inArray(jobs.state, UNFINISHED), sql`coalesce(${jobs.lastPublishedAt}, 0) < ${sql.placeholder("sentBeforeMs")}`))
      .prepare(),
    // Any number of ids as one bound JSON array: no IN list to build, no limit on bound variables.
    // Plain SQL with only what a job message carries: every dispatch pass reads these.
    jobMessages: db.$client.prepare<[string], Omit<JobMessage, "schemaVersion" | "approvedAt" | "leaseMs"> & { approvedAtMs: number }>(
      `SELECT j.id AS jobId, p.prompt, p.negative_prompt AS negativePrompt, p.width, p.height, v.hex AS authorColour,
        coalesce(p.decided_at, j.created_at) AS approvedAtMs
      FROM jobs j JOIN prompts p ON p.id = j.prompt_id JOIN visitors v ON v.id = p.visitor_id
      WHERE j.id IN (SELECT value FROM json_each(?))`,
    ),
    jobById: db.select().from(jobs).where(eq(jobs.id, sql.placeholder("id"))).prepare(),
    imageMakerOf: db.select({ generatorId: images.generatorId }).from(images).where(eq(images.jobId, sql.placeholder("jobId"))).prepare(),
    promptById: db.select().from(prompts).where(eq(prompts.id, sql.placeholder("id"))).prepare(),
    grantLease: db
      .update(jobs)
      .set({
        leaseGeneratorId: sql`${sql.placeholder("generatorId")}`,
        leaseExpiresAt: sql`${sql.placeholder("expiresAt")}`,
        blockedReason: null,
        publishCount: sql`${jobs.publishCount} + 1`,
        lastPublishedAt: sql`${sql.placeholder("publishedAt")}`,
      })
      .where(and(eq(jobs.id, sql.placeholder("id")), inArray(jobs.state, UNFINISHED), isNull(jobs.leaseGeneratorId)))
      .prepare(),
    extendLease: db.update(jobs).set({ leaseExpiresAt: sql`${sql.placeholder("expiresAt")}` }).where(eq(jobs.id, sql.placeholder("id"))).prepare(),
    markAccepted: db.update(jobs).set({ state: "accepted", generatorId: sql`${sql.placeholder("generatorId")}` }).where(eq(jobs.id, sql.placeholder("id"))).prepare(),
    markStarted: db.update(jobs).set({ state: "started", generatorId: sql`${sql.placeholder("generatorId")}`, startedAt: nowMs }).where(eq(jobs.id, sql.placeholder("id"))).prepare(),
    markGenerating: db.update(prompts).set({ status: "generating" }).where(isCurrentJobOf).prepare(),
    finishJob: db
      .update(jobs)
      .set({ state: sql`${sql.placeholder("state")}`, finishedAt: nowMs, leaseGeneratorId: null, leaseExpiresAt: null, blockedReason: null })
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

  function jobMessages(jobIds: string[]): JobMessage[] {
    if (!jobIds.length) return [];
    return statements.jobMessages
      .all(JSON.stringify(jobIds))
      .map(({ approvedAtMs, ...job }) => ({ schemaVersion: SCHEMA_VERSION, ...job, approvedAt: new Date(approvedAtMs).toISOString(), leaseMs }));
  }

  const leaseEnd = () => new Date(now() + leaseMs);
  const isUnfinished = (state: JobState) => UNFINISHED.includes(state);

  /**
   * Whether a result from `generatorId` may complete `job`: it holds the lease, or the job waits in
   * line unleased and this generator was the last to work on it (its lease ended while it finished,
   * e.g. its "offline" will crossed a broker restart): taking the image beats rendering it again.
   */
  function mayDeliver(job: typeof jobs.$inferSelect, generatorId: string): boolean {
    return job.leaseGeneratorId === generatorId || (job.leaseGeneratorId === null && isUnfinished(job.state) && job.generatorId === generatorId);
  }

  /** Ends a lease: the job goes back in line and its prompt, if it was generating, back to approved. Call inside a transaction. */
  function requeue(jobId: string, promptId: number) {
    db.update(jobs).set({ state: "queued", leaseGeneratorId: null, leaseExpiresAt: null }).where(eq(jobs.id, jobId)).run();
    db.update(prompts)
      .set({ status: "approved" })
      .where(and(eq(prompts.id, promptId), eq(prompts.jobId, jobId), eq(prompts.status, "generating")))
      .run();
    changes.promptChanged(promptId);
    onLeaseEnded?.(jobId);
  }

  /** Marks a job done or failed (its lease ends); its prompt follows only if this is the prompt's current job. Call inside a transaction. */
  function finish(jobId: string, outcome: { state: "done" } | { state: "failed"; reason: string }) {
    const job = statements.finishJob.get({ id: jobId, state: outcome.state });
    if (!job) return;
    if (outcome.state === "done") statements.markPromptDone.run({ promptId: job.promptId, jobId });
    else statements.markPromptFailed.run({ promptId: job.promptId, jobId, reason: outcome.reason });
    changes.promptChanged(job.promptId);
    onLeaseEnded?.(jobId);
  }

  return {
    /** The job messages for these ids, each carrying the lease period. */
    messagesFor: (jobIds: string[]) => jobMessages(jobIds),

    /** Jobs waiting in line (unfinished, unleased, their prompt's current job), in fair order (server/domain/line.ts). */
    queued: (limit: number): QueuedJob[] => line.order().slice(0, limit),

    /**
     * Leases jobs in line to generators, all in one transaction: each a compare-and-set, so a job
     * is never leased twice. Returns the grants made; a job no longer in line is left out.
     */
    grantLeases<T extends { jobId: string; generatorId: string }>(grants: T[]): T[] {
      if (!grants.length) return [];
      return db.transaction(
        () => {
          const at = now();
          const made = grants.filter(({ jobId, generatorId }) => statements.grantLease.run({ id: jobId, generatorId, expiresAt: at + leaseMs, publishedAt: at }).changes === 1);
          countTurn(db, made.length);
          return made;
        },
        { behavior: "immediate" },
      );
    },

    /** Notes why no online generator can take a job (null: one can). */
    markBlocked(jobId: string, reason: string | null): void {
      const job = db.update(jobs).set({ blockedReason: reason }).where(eq(jobs.id, jobId)).returning({ promptId: jobs.promptId }).get();
      if (job) changes.promptChanged(job.promptId);
    },

    /**
     * The unfinished jobs whose lease `generatorId` holds, with their prompts; with `sentBefore`,
     * only those whose message went out before then (read from the database: the line does not
     * keep when each was sent).
     */
    leasesOf(generatorId: string, sentBefore?: Date): Array<{ jobId: string; promptId: number }> {
      return sentBefore ? statements.leasesOf.all({ generatorId, sentBeforeMs: sentBefore.getTime() }) : line.leasesOf(generatorId);
    },

    /**
     * How many of its jobs `generatorId` still works on: its leases, less those whose result is
     * being stored (the generator is done with them, so it may start its next job meanwhile).
     */
    busyWith(generatorId: string): number {
      return line.leasesOf(generatorId).filter((lease) => !storing.has(lease.jobId)).length;
    },

    /** The generator holding a job's lease, null when it waits in line, undefined when it is finished or unknown. */
    holderOf(jobId: string): string | null | undefined {
      const job = statements.jobById.get({ id: jobId });
      return job && isUnfinished(job.state) ? job.leaseGeneratorId : undefined;
    },

    /** The prompt of a job that `generatorId` holds (unfinished, leased to it), else null. */
    promptHeldBy(jobId: string, generatorId: string): number | null {
      const job = statements.jobById.get({ id: jobId });
      return job && isUnfinished(job.state) && job.leaseGeneratorId === generatorId ? job.promptId : null;
    },

    /** A heartbeat: extends the leases `generatorId` holds among `jobIds`. */
    extendLeases(generatorId: string, jobIds: string[]): number {
      let extended = 0;
      for (let start = 0; start < jobIds.length; start += 500) {
        extended += db
          .update(jobs)
          .set({ leaseExpiresAt: leaseEnd() })
          .where(and(inArray(jobs.id, jobIds.slice(start, start + 500)), eq(jobs.leaseGeneratorId, generatorId), inArray(jobs.state, UNFINISHED)))
          .run().changes;
      }
      return extended;
    },

    /**
     * Ends `generatorId`'s lease on a job (if it holds it); the job goes back in line. Not while
     * its result is being written: the generator acknowledged it and rightly no longer lists it.
     */
    release(jobId: string, generatorId: string): boolean {
      return db.transaction(
        () => {
          const job = statements.jobById.get({ id: jobId });
          if (!job || job.leaseGeneratorId !== generatorId || !isUnfinished(job.state) || storing.has(jobId)) return false;
          requeue(job.id, job.promptId);
          return true;
        },
        { behavior: "immediate" },
      );
    },

    /** Leases that ran out: their jobs go back in line. Returns them with their former holders. */
    expireLeases(): Array<{ jobId: string; generatorId: string }> {
      return db.transaction(
        (tx) => {
          const expired = tx
            .select({ jobId: jobs.id, promptId: jobs.promptId, generatorId: jobs.leaseGeneratorId })
            .from(jobs)
            .where(and(inArray(jobs.state, UNFINISHED), lt(jobs.leaseExpiresAt, new Date(now()))))
            .all()
            .filter((job) => !storing.has(job.jobId));
          for (const job of expired) requeue(job.jobId, job.promptId);
          return expired.map(({ jobId, generatorId }) => ({ jobId, generatorId: generatorId! }));
        },
        { behavior: "immediate" },
      );
    },

    /** At start: every lease gets one full period for its holder to reconnect and say it still has the job. */
    renewAllLeases(): number {
      return db.update(jobs).set({ leaseExpiresAt: leaseEnd() }).where(and(inArray(jobs.state, UNFINISHED), sql`${jobs.leaseGeneratorId} IS NOT NULL`)).run().changes;
    },

    /**
     * Applies a status from `fromGeneratorId`; only the lease holder's count. A failure fails the
     * job only when `anotherCanTry(generatorsThatFailedIt, job)` says no other generator could
     * make it; otherwise the job goes back in line for one that has not failed it ("retried"),
     * so a broken generator cannot fail what a healthy one can do.
     */
    applyStatus(
      status: StatusMessage,
      fromGeneratorId: string,
      anotherCanTry: (failedOn: string[], job: { width: number; height: number }) => boolean = () => false,
    ): "applied" | "retried" | "not-holder" | "finished" {
      return db.transaction(
        () => {
          const job = statements.jobById.get({ id: status.jobId });
          if (!job || !isUnfinished(job.state)) return "finished";
          if (job.leaseGeneratorId !== fromGeneratorId) return "not-holder";
          if (status.state === "failed") {
            const failedOn = [...new Set([...job.failedOn, fromGeneratorId])];
            const prompt = statements.promptById.get({ id: job.promptId })!;
            if (anotherCanTry(failedOn, prompt)) {
              db.update(jobs).set({ failedOn }).where(eq(jobs.id, job.id)).run();
              requeue(job.id, job.promptId);
              return "retried";
            }
            finish(job.id, { state: "failed", reason: status.reason });
            return "applied";
          }
          if (status.state === "released") {
            requeue(job.id, job.promptId);
            return "applied";
          }
          statements.extendLease.run({ id: job.id, expiresAt: leaseEnd().getTime() });
          // "accepted" may arrive after "started" (both QoS 1, separate publishes): never go backwards.
          if (status.state === "accepted" && job.state === "started") return "applied";
          if (status.state === "accepted") {
            statements.markAccepted.run({ id: job.id, generatorId: fromGeneratorId });
          } else {
            statements.markStarted.run({ id: job.id, generatorId: fromGeneratorId });
            statements.markGenerating.run({ promptId: job.promptId, jobId: job.id });
            changes.promptChanged(job.promptId);
          }
          return "applied";
        },
        { behavior: "immediate" },
      );
    },

    /**
     * Stores a result: the PNG is written and fsynced (with its directory) off the main thread
     * before the row that points to it is committed, and the commit is fsynced before this
     * resolves "stored", so a crash leaves at worst an orphan file, never a row without its
     * image, and an image acknowledged to its generator survives a power loss. The fsyncs are
     * shared by the results stored at the same time (group-sync.ts). A second result for a job
     * is ignored, also while the first is still being written (`storing`).
     */
    async storeResult(result: ResultMessage, fromGeneratorId: string): Promise<{ outcome: ResultOutcome; reason?: string }> {
      const job = statements.jobById.get({ id: result.jobId });
      if (!job) return { outcome: "unknown-job" };
      if (storing.has(job.id)) return { outcome: "storing" };
      if (job.state === "done") {
        if (statements.imageMakerOf.get({ jobId: job.id })?.generatorId !== fromGeneratorId) return { outcome: "duplicate" };
        // Committed, but maybe not yet on disk: "stored" waits for the WAL as the first answer did.
        await syncWal.sync();
        return { outcome: "already-stored" };
      }
      if (job.state === "cancelled") return { outcome: "cancelled" };
      const prompt = statements.promptById.get({ id: job.promptId })!;
      if (prompt.jobId !== job.id) return { outcome: "stale" };
      if (!mayDeliver(job, fromGeneratorId)) return { outcome: "not-holder" };
      // Until it is stored or refused, a copy of this result is answered "storing".
      storing.add(job.id);
      let closed: Promise<void> | undefined;
      try {
        const fileName = `${prompt.id}-${job.id}.png`;
        const finalPath = path.join(imageDir, fileName);
        // Written in place, not renamed: no row points at the file before it is on disk, so a
        // crash leaves at worst an orphan (retention removes those), and its data and its name in
        // the directory are synced at once instead of one after the other. Made while the PNG is
        // checked: creating a file waits for the file system's journal (0.1 ms here on a quiet
        // disk, up to 1 ms while others fsync), the longest step of a result before its fsyncs.
        const opening = open(finalPath, "w", 0o600);
        const png = Buffer.from(result.imagePng, "base64");
        // Fully checked (chunks, CRCs, image data): a corrupt image is never stored as done.
        const size = checkPng(png);
        const problem = !size.ok
          ? `the generator sent a broken PNG: ${size.problem}`
          : size.width !== prompt.width || size.height !== prompt.height
            ? `the generator sent a ${size.width}×${size.height} image for a ${prompt.width}×${prompt.height} prompt`
            : null;
        // The link refuses it and fails the job with this reason (a generator that sends a wrong
        // image would send it again, lease after lease).
        if (problem) {
          await opening.then((file) => file.close().then(() => unlink(finalPath))).catch(() => undefined);
          return { outcome: "rejected", reason: problem };
        }

        const file = await opening;
        const synced = file.writeFile(png).then(() => Promise.all([file.sync(), syncImageDir.sync()]));
        // Once the image is on disk, its descriptor is let go of beside the commit, not before it.
        closed = synced.catch(() => undefined).then(() => file.close());
        await synced;

        const stored = db.transaction(
          () => {
            const current = statements.jobById.get({ id: job.id });
            if (current?.state === "done") return { outcome: "duplicate" as const };
            if (current?.state === "cancelled") return { outcome: "cancelled" as const };
            // The lease may have gone to another generator while the file was written.
            if (!current || !mayDeliver(current, fromGeneratorId)) return { outcome: "not-holder" as const };
            if (statements.promptById.get({ id: prompt.id })?.jobId !== job.id) return { outcome: "stale" as const };
            statements.insertImage.run({
              promptId: prompt.id,
              jobId: job.id,
              fileName,
              bytes: png.length,
              width: prompt.width,
              height: prompt.height,
              seed: result.seed,
              backend: result.backend,
              generatorId: result.generatorId,
              parameters: result.parameters,
              queuedMs: Math.round(result.timing.queuedMs),
              generationMs: Math.round(result.timing.generationMs),
            });
            finish(job.id, { state: "done" });
            return { outcome: "stored" as const };
          },
          { behavior: "immediate" },
        );
        // Committed: a copy arriving from here on is answered "already-stored", after the same WAL fsync.
        storing.delete(job.id);
        // A result that lost the race keeps no file behind.
        if (stored.outcome !== "stored") await unlink(finalPath).catch(() => undefined);
        // The commit is in the WAL (synchronous = NORMAL: not yet on disk); only once it is
        // may the generator hear "stored" and forget its copy.
        else await syncWal.sync();
        return stored;
      } finally {
        storing.delete(job.id);
        await closed;
      }
    },

    /** Lets go of the files it fsyncs, once the fsyncs asked for have run. */
    async close(): Promise<void> {
      await Promise.all([syncImageDir.close(), syncWal.close()]);
    },

    imagePath: (fileName: string) => path.join(imageDir, fileName),
  };
}

export type JobService = ReturnType<typeof createJobService>;
