/**
 * Fair turns (issue 8 §3): the order in which jobs waiting in line go to generators, and each
 * one's estimated finish. Pure, so the rules are tested on their own; server/domain/line.ts
 * feeds them from the database.
 *
 * The order, first to last:
 * 1. Jobs the admin pinned, in the admin's order.
 * 2. Aged jobs: approved `agingTurns` or more leases ago, oldest first, so nothing starves.
 * 3. Every colour's first jobs up to its cap (counting what it has leased or ahead in line),
 *    by virtual finish tag; then everyone's further jobs, by tag.
 * Tags are start-time fair queueing, weighted by cost: a job starts at the later of the line's
 * virtual time and its colour's previous finish, and finishes `cost` later. A guest with twenty
 * jobs holds tags far ahead, so a newcomer's single job slots in before most of them, and a
 * 2048×2048 job counts as sixteen 512×512 ones.
 */

/** Steps are the generator's (SD_STEPS), the same for every job: the cost of a job is its megapixels. */
export const costOf = (job: { width: number; height: number }) => (job.width * job.height) / 1_000_000;

/** Estimate of a generator's speed before its first result is measured: a mid-range GPU at 30 steps. */
export const DEFAULT_SECONDS_PER_MEGAPIXEL = 20;

export interface FairTags {
  start: number;
  finish: number;
}

/**
 * The tags of a newly approved job. `virtualTime`: the line's (see `virtualTimeOf`);
 * `colourFinish`: the largest finish tag of its colour's jobs so far, null for none.
 */
export function tagsFor(cost: number, virtualTime: number, colourFinish: number | null): FairTags {
  const start = Math.max(virtualTime, colourFinish ?? 0);
  return { start, finish: start + cost };
}

/**
 * The line's virtual time: the smallest start tag among unfinished jobs (the turn being served),
 * or, with nothing unfinished, the largest finish tag ever given, so a newcomer never queues
 * behind tags that were already served.
 */
export function virtualTimeOf(unfinishedStarts: number[], largestFinish: number | null): number {
  return unfinishedStarts.length ? Math.min(...unfinishedStarts) : (largestFinish ?? 0);
}

export interface LineJob {
  jobId: string;
  visitorId: number;
  /** Virtual finish tag. */
  finish: number;
  /** Approval order (ties between equal tags). */
  seq: number;
  /** Leases granted before this job was approved (the line's turn counter then). */
  approvedTurn: number;
  /** The admin's order for pinned jobs, smallest first; null when not pinned. */
  pinRank: number | null;
}

export interface FairRules {
  /** A colour's jobs beyond this many leased or ahead in line wait behind every colour's first ones; 0: no cap. */
  colourCap: number;
  /** A job waiting this many turns (leases granted to anyone) goes ahead of all but pinned ones; 0: no aging. */
  agingTurns: number;
}

export interface LineState {
  /** Leases granted so far. */
  turn: number;
  /** Jobs each colour has leased to generators now. */
  leasedPerColour: ReadonlyMap<number, number>;
}

const byTag = (a: LineJob, b: LineJob) => a.finish - b.finish || a.seq - b.seq;

/** The jobs in line (unleased), in the order they go to generators. */
export function fairOrder<T extends LineJob>(queued: readonly T[], rules: FairRules, state: LineState): T[] {
  const pinned = queued.filter((job) => job.pinRank !== null).sort((a, b) => a.pinRank! - b.pinRank! || a.seq - b.seq);
  const isAged = (job: LineJob) => rules.agingTurns > 0 && state.turn - job.approvedTurn >= rules.agingTurns;
  const aged = queued.filter((job) => job.pinRank === null && isAged(job)).sort((a, b) => a.approvedTurn - b.approvedTurn || a.seq - b.seq);
  const ahead = new Map(state.leasedPerColour);
  for (const job of [...pinned, ...aged]) ahead.set(job.visitorId, (ahead.get(job.visitorId) ?? 0) + 1);
  const withinCap: T[] = [];
  const beyondCap: T[] = [];
  for (const job of queued.filter((job) => job.pinRank === null && !isAged(job)).sort(byTag)) {
    const count = ahead.get(job.visitorId) ?? 0;
    if (rules.colourCap > 0 && count >= rules.colourCap) beyondCap.push(job);
    else {
      withinCap.push(job);
      ahead.set(job.visitorId, count + 1);
    }
  }
  return [...pinned, ...aged, ...withinCap, ...beyondCap];
}

/**
 * The admin's reorder, as pin ranks for the head of the line: moving the job at `from` to `to`
 * pins every job up to the further of the two (and every job already pinned) in the new order,
 * so the rest of the line keeps its fair order behind them.
 */
export function reorder<T extends LineJob>(order: readonly T[], from: number, to: number): Array<{ jobId: string; pinRank: number }> {
  const moved = [...order];
  const [job] = moved.splice(from, 1);
  moved.splice(to, 0, job!);
  const pinnedCount = order.filter((entry) => entry.pinRank !== null).length;
  const head = Math.max(from, to) + 1;
  return moved.slice(0, Math.max(head, pinnedCount)).map((entry, index) => ({ jobId: entry.jobId, pinRank: index }));
}

export interface EstimateGenerator {
  generatorId: string;
  /** Jobs it makes at once (its backend's concurrency). */
  lanes: number;
  maxPixels: number;
  secondsPerMegapixel: number | null;
}

export interface EstimateJob {
  jobId: string;
  width: number;
  height: number;
}

export interface LeasedEstimateJob extends EstimateJob {
  generatorId: string;
  /** When it started generating (ms); null while it waits at its generator. */
  startedAt: number | null;
}

/**
 * Seconds from `now` until each job is expected to finish, simulating the generators working
 * through what they hold and then the line in order, each job on the lane that frees first
 * among the generators that can make it. Speeds are the measured seconds per megapixel (or
 * DEFAULT_SECONDS_PER_MEGAPIXEL). A job no generator can make gets no estimate.
 */
export function estimateFinishes(generators: readonly EstimateGenerator[], leased: readonly LeasedEstimateJob[], line: readonly EstimateJob[], now: number): Map<string, number> {
  const finishes = new Map<string, number>();
  const lanes = new Map(generators.map((generator) => [generator.generatorId, Array.from({ length: Math.max(1, generator.lanes) }, () => 0)]));
  const duration = (generator: EstimateGenerator, job: EstimateJob) => costOf(job) * (generator.secondsPerMegapixel ?? DEFAULT_SECONDS_PER_MEGAPIXEL);
  /** Puts a job on the generator's earliest free lane; returns its finish. */
  const place = (generator: EstimateGenerator, seconds: number) => {
    const free = lanes.get(generator.generatorId)!;
    const lane = free.indexOf(Math.min(...free));
    free[lane]! += seconds;
    return free[lane]!;
  };
  // Running jobs first (oldest first), then those waiting at their generator.
  const held = [...leased].sort((a, b) => (a.startedAt ?? Infinity) - (b.startedAt ?? Infinity));
  for (const job of held) {
    const generator = generators.find((candidate) => candidate.generatorId === job.generatorId);
    if (!generator) continue;
    const whole = duration(generator, job);
    // A job running longer than estimated is "about to finish", never already done.
    const remaining = job.startedAt === null ? whole : Math.max(whole - (now - job.startedAt) / 1000, Math.min(1, whole));
    finishes.set(job.jobId, place(generator, remaining));
  }
  for (const job of line) {
    const able = generators.filter((generator) => generator.maxPixels >= job.width * job.height);
    if (!able.length) continue;
    const best = able
      .map((generator) => ({ generator, finish: Math.min(...lanes.get(generator.generatorId)!) + duration(generator, job) }))
      .reduce((a, b) => (b.finish < a.finish ? b : a));
    finishes.set(job.jobId, place(best.generator, duration(best.generator, job)));
  }
  return finishes;
}
