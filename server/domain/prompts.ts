/**
 * Prompts: submission, moderation, the reveal, and who may see which image.
 * Approval writes the job (outbox row) in the same transaction that changes the prompt;
 * publishing happens after commit, by the caller (server/link.ts).
 */
import { randomUUID } from "node:crypto";
import { and, count, desc, eq, inArray, isNotNull, lt, ne, sql, type SQL } from "drizzle-orm";
import type { Db } from "../db/client";
import { images, jobs, nowMs, prompts, visitors, type PromptStatus } from "../db/schema";
import { colourFor, swatchOf } from "./colours";
import { DomainError } from "./errors";
import type { Blocklist } from "./blocklist";
import { UNFINISHED } from "./jobs";
import { newJobPlace } from "./line";
import { alikeKey, UNDO_SECONDS } from "./moderation";
import type { ChangeNotes } from "./live-events";
import type { PromptInput } from "./prompt-input";
import { createRateLimiter, describeWait } from "./rate-limit";

/** A prompt as its author sees it: never an image before the reveal. */
export interface OwnPrompt {
  id: number;
  prompt: string;
  negativePrompt: string;
  width: number;
  height: number;
  status: PromptStatus;
  createdAt: string;
  /** Set once the admin has revealed the image. */
  imageUrl: string | null;
  /** Why an approved prompt is not being made ("no generator can make this …"), while that lasts. */
  notice: string | null;
  /** Why it was denied, when the moderator said. */
  denyReason: string | null;
}

export interface ModeratedPrompt extends Omit<OwnPrompt, "imageUrl"> {
  author: { id: number; name: string; hex: string; text: string; muted: boolean };
  /** Sent while its author was muted: held apart from the queue. */
  held: boolean;
  /** The blocklist entry it matched, if any. */
  flaggedBy: string | null;
  /** What the guest sent, when a moderator has edited it (the guest sees the edited text). */
  original: { prompt: string; negativePrompt: string } | null;
  /** Kept out of the reveal, the show and the gallery. */
  hidden: boolean;
  decidedAt: string | null;
  revealedAt: string | null;
  failureReason: string | null;
  imageUrl: string | null;
  image: { seed: number; backend: string; generatorId: string; generationMs: number } | null;
}

export const imageUrlFor = (promptId: number) => `/images/${promptId}.png`;

type PromptRow = typeof prompts.$inferSelect;
/**
 * What the views need of a prompt row: Drizzle's, or SQLite's own from a plain statement
 * (times in milliseconds, booleans as 0 and 1).
 */
type ViewedRow = Pick<PromptRow, "id" | "prompt" | "negativePrompt" | "width" | "height" | "status" | "denyReason"> & {
  createdAt: Date | number;
  revealedAt: Date | number | null;
  hidden: boolean | number;
};

/** The fields every view of a prompt shares. */
function promptFields(row: ViewedRow) {
  return {
    id: row.id,
    prompt: row.prompt,
    negativePrompt: row.negativePrompt,
    width: row.width,
    height: row.height,
    status: row.status,
    createdAt: new Date(row.createdAt).toISOString(),
    denyReason: row.denyReason,
  };
}

/** The author's view: the image only once revealed. */
const ownView = (row: ViewedRow, notice: string | null = null): OwnPrompt => ({
  ...promptFields(row),
  imageUrl: row.revealedAt !== null && !row.hidden ? imageUrlFor(row.id) : null,
  notice,
});

/**
 * Who may cancel what: the author while it waits (for the host, or in line: its job not yet
 * started), the host at any time before its image exists. Cancelled is final: neither approve
 * nor retry reopens it (a guest who called it off must not see it made anyway).
 */
const CANCELLABLE: Record<"author" | "host", PromptStatus[]> = { author: ["pending", "approved"], host: ["pending", "approved", "generating"] };

/** States from which a prompt may be (re-)approved: a fresh job is created. */
const APPROVABLE: PromptStatus[] = ["pending", "denied"];
/** States in which a prompt is already approved: approving again is a no-op. */
const ALREADY_APPROVED: PromptStatus[] = ["approved", "generating", "done"];

export interface PromptLimits {
  /** Prompts one visitor may send per minute; 0: no limit. */
  submitsPerMinute: number;
  /** Prompts of one visitor waiting for moderation at once; 0: no limit. */
  pendingPrompts: number;
}

/** What a visitor at the pending limit is told to wait: a hint, since it ends when the host acts. */
const PENDING_RETRY_MS = 60_000;

/** Which prompts the admin's list holds: one page, newest first. */
export interface ModeratedQuery {
  /** Only prompts in this status (the admin's filter). */
  status?: PromptStatus;
  /** Only this colour's prompts (the admin's filter). */
  visitorId?: number;
  /** Only prompts held apart (muted authors'), however old. */
  onlyHeld?: boolean;
  /** Only prompts older than this id: the next page. */
  before?: number;
  limit?: number;
  id?: number;
}

export function createPromptService(
  db: Db,
  { limits, blocklist, changes, now = Date.now }: { limits: PromptLimits; blocklist: Blocklist; changes: ChangeNotes; now?: () => number },
) {
  const submitLimiter = createRateLimiter({ limit: limits.submitsPerMinute, windowMs: 60_000 }, now);
  // Prepared once: moderation runs these for every prompt, often in bursts.
  const statements = {
    promptById: db.select().from(prompts).where(eq(prompts.id, sql.placeholder("id"))).prepare(),
    insertJob: db
      .insert(jobs)
      .values({
        id: sql.placeholder("id"),
        promptId: sql.placeholder("promptId"),
        fairStart: sql.placeholder("fairStart"),
        fairFinish: sql.placeholder("fairFinish"),
        approvedTurn: sql.placeholder("approvedTurn"),
      })
      .prepare(),
    markApproved: db
      .update(prompts)
      // An approved prompt is the host's choice, wherever it waited: it leaves the held-apart list.
      .set({ status: "approved", jobId: sql`${sql.placeholder("jobId")}`, failureReason: null, denyReason: null, decidedAt: nowMs, held: false })
      .where(eq(prompts.id, sql.placeholder("id")))
      .prepare(),
  };

  function get(id: number) {
    const row = statements.promptById.get({ id });
    if (!row) throw new DomainError("PROMPT_NOT_FOUND", `There is no prompt #${id}.`);
    return row;
  }

  /** Creates a job for a prompt, with its place in the fair line, and moves the prompt to "approved". Call inside a transaction. */
  function enqueueJob(row: typeof prompts.$inferSelect): string {
    const jobId = randomUUID();
    statements.insertJob.run({ id: jobId, promptId: row.id, ...newJobPlace(db, jobId, row.visitorId, row) });
    statements.markApproved.run({ id: row.id, jobId });
    changes.promptChanged(row.id);
    return jobId;
  }

  // Prepared once: every visitor page view and every change on a visitor's stream reads these.
  // Plain SQL with only the columns the author's view shows: the ORM's mapping of every column
  // of every row cost more than the query.
  const OWN_COLUMNS = `p.id, p.prompt, p.negative_prompt AS negativePrompt, p.width, p.height, p.status, p.created_at AS createdAt,
    p.deny_reason AS denyReason, p.revealed_at AS revealedAt, p.hidden, j.blocked_reason AS notice
    FROM prompts p LEFT JOIN jobs j ON j.id = p.job_id`;
  type OwnRow = ViewedRow & { notice: string | null };
  const ownStatements = {
    all: db.$client.prepare<[number], OwnRow>(`SELECT ${OWN_COLUMNS} WHERE p.visitor_id = ? ORDER BY p.id DESC`),
    one: db.$client.prepare<[number, number], OwnRow>(`SELECT ${OWN_COLUMNS} WHERE p.visitor_id = ? AND p.id = ?`),
  };

  function listOwn(visitorId: number, id?: number): OwnPrompt[] {
    const rows = id === undefined ? ownStatements.all.all(visitorId) : ownStatements.one.all(visitorId, id);
    return rows.map((row) => ownView(row, row.notice));
  }

  function listModerated({ status, visitorId, onlyHeld, before, limit, id }: ModeratedQuery): ModeratedPrompt[] {
    const where: Array<SQL | undefined> = [
      status === undefined ? undefined : eq(prompts.status, status),
      visitorId === undefined ? undefined : eq(prompts.visitorId, visitorId),
      onlyHeld ? eq(prompts.held, true) : undefined,
      before === undefined ? undefined : lt(prompts.id, before),
      id === undefined ? undefined : eq(prompts.id, id),
    ];
    const query = db
      .select({ prompt: prompts, hex: visitors.hex, muted: visitors.muted, image: images, notice: jobs.blockedReason })
      .from(prompts)
      .innerJoin(visitors, eq(visitors.id, prompts.visitorId))
      .leftJoin(images, eq(images.promptId, prompts.id))
      .leftJoin(jobs, eq(jobs.id, prompts.jobId))
      .where(and(...where))
      .orderBy(desc(prompts.id));
    return (limit === undefined ? query.all() : query.limit(limit).all()).map(({ prompt: row, hex, muted, image, notice }) => ({
      ...promptFields(row),
      decidedAt: row.decidedAt?.toISOString() ?? null,
      revealedAt: row.revealedAt?.toISOString() ?? null,
      failureReason: row.failureReason,
      author: { id: row.visitorId, name: colourFor(row.visitorId).name, ...swatchOf(hex), muted },
      held: row.held,
      notice,
      flaggedBy: row.flaggedBy,
      original: row.originalPrompt === null ? null : { prompt: row.originalPrompt, negativePrompt: row.originalNegativePrompt ?? "" },
      hidden: row.hidden,
      imageUrl: image ? imageUrlFor(row.id) : null,
      image: image && { seed: image.seed, backend: image.backend, generatorId: image.generatorId, generationMs: image.generationMs },
    }));
  }

  return {
    /**
     * Stores a visitor's prompt, within the limits for anonymous visitors. A muted author's
     * prompt is held apart; one that matches the blocklist is flagged. Neither is dropped.
     */
    submit(visitorId: number, input: PromptInput): OwnPrompt {
      return db.transaction(
        (tx) => {
          const pending = tx.select({ n: count() }).from(prompts).where(and(eq(prompts.visitorId, visitorId), eq(prompts.status, "pending"))).get()!.n;
          if (limits.pendingPrompts > 0 && pending >= limits.pendingPrompts) {
            throw new DomainError(
              "RATE_LIMITED",
              `You have ${pending} prompt${pending === 1 ? "" : "s"} waiting; send more once one is approved.`,
              PENDING_RETRY_MS,
            );
          }
          const waitMs = submitLimiter.take(`visitor:${visitorId}`);
          if (waitMs > 0) throw new DomainError("RATE_LIMITED", `That was quick! You can send your next prompt in ${describeWait(waitMs)}.`, waitMs);
          const author = tx.select({ muted: visitors.muted }).from(visitors).where(eq(visitors.id, visitorId)).get();
          const row = tx
            .insert(prompts)
            .values({
              visitorId,
              prompt: input.prompt,
              negativePrompt: input.negativePrompt,
              width: input.width,
              height: input.height,
              held: author?.muted ?? false,
              // Each field on its own: a phrase must not be found across the two.
              flaggedBy: blocklist.match(input.prompt) ?? blocklist.match(input.negativePrompt),
            })
            .returning()
            .get();
          changes.promptChanged(row.id);
          return ownView(row);
        },
        { behavior: "immediate" },
      );
    },

    /**
     * Mutes or unmutes a visitor: a muted visitor's pending and new prompts are held apart from
     * the queue; unmuting puts their pending prompts back in it.
     */
    setMuted(visitorId: number, muted: boolean): void {
      db.transaction(
        (tx) => {
          const updated = tx.update(visitors).set({ muted }).where(eq(visitors.id, visitorId)).run();
          if (!updated.changes) throw new DomainError("VISITOR_NOT_FOUND", `There is no visitor #${visitorId}.`);
          tx.update(prompts)
            .set({ held: muted })
            .where(and(eq(prompts.visitorId, visitorId), eq(prompts.status, "pending")))
            .run();
          changes.promptChanged(tx.select({ id: prompts.id }).from(prompts).where(eq(prompts.visitorId, visitorId)).all().map((row) => row.id));
        },
        { behavior: "immediate" },
      );
    },

    listOwn: (visitorId: number): OwnPrompt[] => listOwn(visitorId),

    /** One of the visitor's prompts as they see it; null when it is not (or no longer) theirs. */
    ownById: (visitorId: number, id: number): OwnPrompt | null => listOwn(visitorId, id)[0] ?? null,

    /** Prompts for the admin, newest first. */
    listAll: (query: ModeratedQuery = {}): ModeratedPrompt[] => listModerated(query),

    /** Every colour that has sent a prompt, by name: the admin's colour filter offers them all, not only those on the page. */
    authors(): Array<ModeratedPrompt["author"]> {
      return db
        .select({ id: visitors.id, hex: visitors.hex, muted: visitors.muted })
        .from(visitors)
        .where(sql`exists (select 1 from ${prompts} where ${prompts.visitorId} = ${visitors.id})`)
        .all()
        .map((row) => ({ id: row.id, name: colourFor(row.id).name, ...swatchOf(row.hex), muted: row.muted }))
        .sort((a, b) => a.name.localeCompare(b.name));
    },

    /** One prompt as the admin sees it; null when it does not exist (any more). */
    moderatedById: (id: number): ModeratedPrompt | null => listModerated({ id })[0] ?? null,

    /**
     * Approves a pending (or previously denied) prompt. Returns the new job's id, or null when
     * the prompt was already approved: approving twice publishes once.
     */
    approve(id: number): string | null {
      return db.transaction(
        () => {
          const row = get(id);
          if (ALREADY_APPROVED.includes(row.status)) return null;
          if (!APPROVABLE.includes(row.status)) {
            throw new DomainError("INVALID_TRANSITION", `Prompt #${id} is ${row.status}; use retry for failed prompts.`);
          }
          return enqueueJob(row);
        },
        { behavior: "immediate" },
      );
    },

    /** Denies a pending prompt; its author reads `reason` (empty: none). Denying again only updates the reason. */
    deny(id: number, reason = ""): void {
      db.transaction(
        (tx) => {
          const row = get(id);
          if (row.status !== "pending" && row.status !== "denied") {
            throw new DomainError("INVALID_TRANSITION", `Prompt #${id} is already ${row.status}; only pending prompts can be denied.`);
          }
          tx.update(prompts)
            .set({ status: "denied", denyReason: reason || null, decidedAt: row.decidedAt ?? new Date() })
            .where(eq(prompts.id, id))
            .run();
          changes.promptChanged(id);
        },
        { behavior: "immediate" },
      );
    },

    /**
     * Denies, as duplicates, the other pending prompts alike to this one (alikeKey, from any
     * colour). Returns their ids.
     */
    denyAlike(id: number, reason: string): number[] {
      return db.transaction(
        (tx) => {
          const key = alikeKey(get(id).prompt);
          const others = tx
            .select({ id: prompts.id, prompt: prompts.prompt })
            .from(prompts)
            .where(and(eq(prompts.status, "pending"), ne(prompts.id, id)))
            .all()
            .filter((row) => alikeKey(row.prompt) === key)
            .map((row) => row.id);
          if (!others.length) return [];
          tx.update(prompts).set({ status: "denied", denyReason: reason || null, decidedAt: new Date() }).where(inArray(prompts.id, others)).run();
          changes.promptChanged(others);
          return others;
        },
        { behavior: "immediate" },
      );
    },

    /**
     * A moderator's rewording of a pending prompt: the guest and the generator get the new text,
     * the guest's first text stays on record. It is checked against the blocklist again.
     */
    edit(id: number, input: Pick<PromptInput, "prompt" | "negativePrompt">): void {
      db.transaction(
        (tx) => {
          const row = get(id);
          if (row.status !== "pending") throw new DomainError("INVALID_TRANSITION", `Prompt #${id} is ${row.status}; only pending prompts can be edited.`);
          tx.update(prompts)
            .set({
              prompt: input.prompt,
              negativePrompt: input.negativePrompt,
              originalPrompt: row.originalPrompt ?? row.prompt,
              originalNegativePrompt: row.originalPrompt === null ? row.negativePrompt : row.originalNegativePrompt,
              flaggedBy: blocklist.match(input.prompt) ?? blocklist.match(input.negativePrompt),
            })
            .where(eq(prompts.id, id))
            .run();
          changes.promptChanged(id);
        },
        { behavior: "immediate" },
      );
    },

    /**
     * Takes a decision back within UNDO_SECONDS of it: a denied prompt is pending again; an
     * approved one too, but only while its job waits in line (no generator has leased it), else it
     * is refused: the image is on its way. Returns what was undone.
     */
    undo(id: number): "approve" | "deny" {
      return db.transaction(
        (tx) => {
          const row = get(id);
          const tooLate = () => {
            // No time on record (a decision from before decisions were timed): nothing to go by, so too late.
            if (!row.decidedAt || now() - row.decidedAt.getTime() > UNDO_SECONDS * 1000) {
              throw new DomainError(
                "INVALID_TRANSITION",
                `Too late to undo: a decision can be taken back for ${UNDO_SECONDS} s. Prompt #${id} stays ${row.status}${row.status === "denied" ? "; you can still approve it" : ""}.`,
              );
            }
          };
          if (row.status === "denied") {
            tooLate();
            tx.update(prompts).set({ status: "pending", denyReason: null, decidedAt: null }).where(eq(prompts.id, id)).run();
            changes.promptChanged(id);
            return "deny";
          }
          const job = row.status === "approved" && row.jobId ? tx.select().from(jobs).where(eq(jobs.id, row.jobId)).get() : undefined;
          if (!job || job.state !== "queued" || job.leaseGeneratorId !== null) {
            throw new DomainError("INVALID_TRANSITION", `Prompt #${id} is ${row.status === "approved" ? "already with a generator" : row.status}; only a denial, or an approval still waiting in line, can be undone.`);
          }
          tooLate();
          tx.update(prompts).set({ status: "pending", jobId: null, decidedAt: null }).where(eq(prompts.id, id)).run();
          tx.delete(jobs).where(eq(jobs.id, job.id)).run();
          changes.promptChanged(id);
          return "approve";
        },
        { behavior: "immediate" },
      );
    },

    /**
     * Cancels a prompt (`by` its author, or the host): it becomes "cancelled" and its job, if any,
     * leaves the line or its lease. Returns the job and the generator holding it, which must be told
     * to stop; cancelling again changes nothing.
     */
    cancel(id: number, by: { visitorId: number } | "host"): { jobId: string | null; holder: string | null } {
      return db.transaction(
        (tx) => {
          const row = statements.promptById.get({ id });
          // Someone else's prompt is as unknown to a guest as a missing one.
          if (!row || (by !== "host" && row.visitorId !== by.visitorId)) throw new DomainError("PROMPT_NOT_FOUND", `There is no prompt #${id}.`);
          if (row.status === "cancelled") return { jobId: null, holder: null };
          if (!CANCELLABLE[by === "host" ? "host" : "author"].includes(row.status)) {
            throw new DomainError(
              "INVALID_TRANSITION",
              row.status === "generating" ? "Your picture is already being made; it can no longer be cancelled." : `Prompt #${id} is ${row.status}; it can no longer be cancelled.`,
            );
          }
          tx.update(prompts).set({ status: "cancelled" }).where(eq(prompts.id, id)).run();
          const job = row.jobId ? tx.select({ state: jobs.state, holder: jobs.leaseGeneratorId }).from(jobs).where(eq(jobs.id, row.jobId)).get() : undefined;
          const unfinished = job && UNFINISHED.includes(job.state);
          if (unfinished) {
            tx.update(jobs)
              .set({ state: "cancelled", finishedAt: new Date(now()), leaseGeneratorId: null, leaseExpiresAt: null, blockedReason: null })
              .where(eq(jobs.id, row.jobId!))
              .run();
          }
          changes.promptChanged(id);
          return { jobId: row.jobId, holder: unfinished ? job.holder : null };
        },
        { behavior: "immediate" },
      );
    },

    /** Keeps a finished image out of the reveal, the show and the gallery (or lets it back). */
    setHidden(id: number, hidden: boolean): void {
      const row = get(id);
      if (row.status !== "done") throw new DomainError("INVALID_TRANSITION", `Prompt #${id} has no image yet.`);
      if (row.hidden === hidden) return;
      db.update(prompts).set({ hidden }).where(eq(prompts.id, id)).run();
      changes.promptChanged(id);
    },

    /** Sends a failed prompt to the generators again, as a new job. Returns the job id. */
    retry(id: number): string {
      return db.transaction(
        () => {
          const row = get(id);
          if (row.status !== "failed") throw new DomainError("INVALID_TRANSITION", `Prompt #${id} is ${row.status}; only failed prompts can be retried.`);
          return enqueueJob(row);
        },
        { behavior: "immediate" },
      );
    },

    /** The ids of every failed prompt, for "retry all failed". */
    failedIds(): number[] {
      return db.select({ id: prompts.id }).from(prompts).where(eq(prompts.status, "failed")).orderBy(prompts.id).all().map((row) => row.id);
    },

    /** The reveal has shown this image: from now on its author sees it too. */
    markRevealed(id: number): void {
      const row = get(id);
      if (row.status !== "done") throw new DomainError("INVALID_TRANSITION", `Prompt #${id} has no image yet.`);
      if (row.revealedAt) return;
      db.update(prompts).set({ revealedAt: new Date() }).where(eq(prompts.id, id)).run();
      changes.promptChanged(id);
    },

    /**
     * The image file of a prompt (and its prompt, to name a download) if `viewer` may see it,
     * else null (the route answers 404, so a guessed URL learns nothing). The admin always may;
     * an author once it is revealed; anyone once it is revealed while the gallery is open.
     */
    imageFileFor(promptId: number, viewer: { admin: true } | { visitorId: number | null; galleryOpen: boolean }): { fileName: string; prompt: string } | null {
      const row = db
        .select({ fileName: images.fileName, prompt: prompts.prompt, visitorId: prompts.visitorId, revealedAt: prompts.revealedAt, hidden: prompts.hidden })
        .from(images)
        .innerJoin(prompts, eq(prompts.id, images.promptId))
        .where(eq(images.promptId, promptId))
        .get();
      if (!row) return null;
      const file = { fileName: row.fileName, prompt: row.prompt };
      if ("admin" in viewer) return file;
      return row.revealedAt && !row.hidden && (viewer.galleryOpen || row.visitorId === viewer.visitorId) ? file : null;
    },

    counts(): Record<PromptStatus, number> & { revealed: number } {
      const result = { pending: 0, approved: 0, generating: 0, done: 0, denied: 0, failed: 0, cancelled: 0, revealed: 0 };
      for (const row of db.select({ status: prompts.status, n: count() }).from(prompts).groupBy(prompts.status).all()) result[row.status] = row.n;
      result.revealed = db.select({ n: count() }).from(prompts).where(isNotNull(prompts.revealedAt)).get()?.n ?? 0;
      return result;
    },
  };
}

export type PromptService = ReturnType<typeof createPromptService>;
