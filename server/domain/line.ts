/**
 * The line of approved jobs, as the database holds it: fair-turn tags given at approval, the
 * turn counter, the admin's pins, and each waiting prompt's place and estimated finish. The
 * rules themselves are in fair-turns.ts; everything they need is stored, so a restart keeps
 * the order.
 */
import { and, eq, inArray, isNotNull, isNull, max, min, sql } from "drizzle-orm";
import type { Db } from "../db/client";
import { jobs, prompts, settings, type JobState } from "../db/schema";
import { DomainError } from "./errors";
import { costOf, estimateFinishes, fairOrder, reorder, tagsFor, virtualTimeOf, type EstimateGenerator, type FairRules, type LineJob } from "./fair-turns";

const UNFINISHED: JobState[] = ["queued", "accepted", "started"];
const TURN_KEY = "fair.turns";

/** A job waiting in line, with what dispatch and the estimates need. */
export interface WaitingJob extends LineJob {
  promptId: number;
  width: number;
  height: number;
  /** Generators that reported it failed: it goes to others. */
  failedOn: string[];
}

/** What the line needs to know of a generator (server/link.ts GeneratorView). */
export interface LineGenerator {
  generatorId: string;
  state: "online" | "offline";
  local: boolean;
  healthy: boolean;
  /** Leases it takes: its backend's concurrency plus one waiting (generator/generator.ts). */
  concurrency: number | null;
  maxPixels: number | null;
  secondsPerMegapixel: number | null;
}

/** Where an approved, unfinished prompt stands. */
export interface Standing {
  /** 1 = next to go to a generator; null while a generator has it. */
  place: number | null;
  /** Seconds until its image is expected; null when no online generator can make it. */
  etaSeconds: number | null;
}

const turnOf = (db: Db) => Number(db.select({ value: settings.value }).from(settings).where(eq(settings.key, TURN_KEY)).get()?.value ?? 0);

/** A lease was granted: one more turn. Call inside the transaction that grants it. */
export function countTurn(db: Db): void {
  db.insert(settings)
    .values({ key: TURN_KEY, value: "1" })
    .onConflictDoUpdate({ target: settings.key, set: { value: sql`CAST(${settings.value} AS INTEGER) + 1` } })
    .run();
}

/** The fair-turn columns of a job approved now for `visitorId`. Call inside the approving transaction. */
export function newJobPlace(db: Db, visitorId: number, size: { width: number; height: number }) {
  const unfinished = db.select({ start: min(jobs.fairStart) }).from(jobs).where(inArray(jobs.state, UNFINISHED)).get()?.start ?? null;
  const largest = db.select({ finish: max(jobs.fairFinish) }).from(jobs).get()?.finish ?? null;
  const colour = db
    .select({ finish: max(jobs.fairFinish) })
    .from(jobs)
    .innerJoin(prompts, eq(prompts.id, jobs.promptId))
    .where(eq(prompts.visitorId, visitorId))
    .get()?.finish;
  const tags = tagsFor(costOf(size), virtualTimeOf(unfinished === null ? [] : [unfinished], largest), colour ?? null);
  return { fairStart: tags.start, fairFinish: tags.finish, approvedTurn: turnOf(db) };
}

/** Unfinished jobs that are their prompt's current one. */
const current = and(inArray(jobs.state, UNFINISHED), eq(prompts.jobId, jobs.id));

/** One visitor's entries of `all`, without the visitor. */
function ownStandings(all: Map<number, Standing & { visitorId: number }>, visitorId: number): Map<number, Standing> {
  const own = new Map<number, Standing>();
  for (const [promptId, { visitorId: author, place, etaSeconds }] of all) if (author === visitorId) own.set(promptId, { place, etaSeconds });
  return own;
}

export function createLine(db: Db, rules: FairRules) {
  // Prepared once: dispatch reads the whole line after every result.
  const statements = {
    waiting: db
      .select({
        jobId: jobs.id,
        promptId: jobs.promptId,
        visitorId: prompts.visitorId,
        width: prompts.width,
        height: prompts.height,
        failedOn: jobs.failedOn,
        finish: jobs.fairFinish,
        seq: sql<number>`${jobs}.rowid`,
        approvedTurn: jobs.approvedTurn,
        pinRank: jobs.pinRank,
      })
      .from(jobs)
      .innerJoin(prompts, eq(prompts.id, jobs.promptId))
      .where(and(current, isNull(jobs.leaseGeneratorId)))
      .prepare(),
    leased: db
      .select({
        jobId: jobs.id,
        promptId: jobs.promptId,
        visitorId: prompts.visitorId,
        width: prompts.width,
        height: prompts.height,
        generatorId: jobs.leaseGeneratorId,
        state: jobs.state,
        startedAt: jobs.startedAt,
      })
      .from(jobs)
      .innerJoin(prompts, eq(prompts.id, jobs.promptId))
      .where(and(current, isNotNull(jobs.leaseGeneratorId)))
      .prepare(),
    turn: db.select({ value: settings.value }).from(settings).where(eq(settings.key, TURN_KEY)).prepare(),
  };
  const waiting = (): WaitingJob[] => statements.waiting.all();
  const leased = () => statements.leased.all();
  const turn = () => Number(statements.turn.get()?.value ?? 0);

  function order(held = leased()): WaitingJob[] {
    const leasedPerColour = new Map<number, number>();
    for (const job of held) leasedPerColour.set(job.visitorId, (leasedPerColour.get(job.visitorId) ?? 0) + 1);
    return fairOrder(waiting(), rules, { turn: turn(), leasedPerColour });
  }

  function indexOf(line: WaitingJob[], promptId: number): number {
    const index = line.findIndex((job) => job.promptId === promptId);
    if (index < 0) throw new DomainError("INVALID_TRANSITION", `Prompt #${promptId} is not waiting in line (only approved prompts no generator has yet can be moved).`);
    return index;
  }

  function applyPins(pins: Array<{ jobId: string; pinRank: number }>) {
    db.transaction(
      () => {
        for (const pin of pins) db.update(jobs).set({ pinRank: pin.pinRank }).where(eq(jobs.id, pin.jobId)).run();
      },
      { behavior: "immediate" },
    );
  }

  /**
   * Where every approved, unfinished prompt stands: its place in line and when its image is
   * expected, from the generators online now and their measured speeds.
   */
  function standings(generators: LineGenerator[], now = Date.now()): Map<number, Standing & { visitorId: number }> {
    const held = leased();
    const line = order(held);
    const remoteOnline = generators.some((generator) => generator.state === "online" && !generator.local);
    // As dispatch (server/domain/dispatch.ts): the built-in generator steps aside for any other.
    const serving: EstimateGenerator[] = generators
      .filter((generator) => generator.state === "online" && generator.healthy && (generator.concurrency ?? 0) > 0 && !(remoteOnline && generator.local))
      .map((generator) => ({
        generatorId: generator.generatorId,
        lanes: Math.max(1, generator.concurrency! - 1),
        maxPixels: generator.maxPixels ?? 0,
        secondsPerMegapixel: generator.secondsPerMegapixel,
      }));
    const finishes = estimateFinishes(
      serving,
      held.map((job) => ({ ...job, generatorId: job.generatorId!, startedAt: job.state === "started" ? (job.startedAt?.getTime() ?? now) : null })),
      line,
      now,
    );
    const eta = (jobId: string) => {
      const seconds = finishes.get(jobId);
      return seconds === undefined ? null : Math.max(1, Math.round(seconds));
    };
    const all = new Map<number, Standing & { visitorId: number }>();
    for (const job of held) all.set(job.promptId, { visitorId: job.visitorId, place: null, etaSeconds: eta(job.jobId) });
    line.forEach((job, index) => all.set(job.promptId, { visitorId: job.visitorId, place: index + 1, etaSeconds: eta(job.jobId) }));
    return all;
  }
  let memo: { seq: number; all: ReturnType<typeof standings> } | null = null;

  return {
    /** The jobs in line, in the order they go to generators. */
    order: () => order(),

    /** The admin puts a waiting prompt's job first in line, ahead of everything pinned before. */
    pinToFront(promptId: number): void {
      const line = order();
      applyPins(reorder(line, indexOf(line, promptId), 0));
    },

    /** The admin swaps a waiting prompt's job with its neighbour ahead ("up") or behind ("down"); at either end, nothing moves. */
    move(promptId: number, direction: "up" | "down"): void {
      const line = order();
      const from = indexOf(line, promptId);
      const to = from + (direction === "up" ? -1 : 1);
      if (to < 0 || to >= line.length) return;
      applyPins(reorder(line, from, to));
    },

    /** Place in line of every waiting prompt, for the admin. */
    places(): Record<number, number> {
      return Object.fromEntries(order().map((job, index) => [job.promptId, index + 1]));
    },

    /** Where each of a visitor's approved, unfinished prompts stands, by prompt id. */
    standingsOf(visitorId: number, generators: LineGenerator[], now = Date.now()): Map<number, Standing> {
      return ownStandings(standings(generators, now), visitorId);
    },

    /**
     * The same for one visitor at live event `seq`: the whole line is worked out once per event,
     * however many pages follow it (ADR 012).
     */
    standingsAt(seq: number, visitorId: number, generators: () => LineGenerator[]): Map<number, Standing> {
      if (memo?.seq !== seq) memo = { seq, all: standings(generators()) };
      return ownStandings(memo.all, visitorId);
    },
  };
}

export type Line = ReturnType<typeof createLine>;
