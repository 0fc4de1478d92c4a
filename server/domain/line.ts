/**
 * The line of approved jobs, as the database holds it: fair-turn tags given at approval, the
 * turn counter, the admin's pins, and each waiting prompt's place and estimated finish. The
 * rules themselves are in fair-turns.ts; everything they need is stored, so a restart keeps
 * the order.
 */
import { eq, inArray, max, min, sql } from "drizzle-orm";
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

/** Prepared once per database: approvals and leases run these for every job. */
function prepareStatements(db: Db) {
  return {
    turn: db.select({ value: settings.value }).from(settings).where(eq(settings.key, TURN_KEY)).prepare(),
    countTurns: db
      .insert(settings)
      .values({ key: TURN_KEY, value: sql`${sql.placeholder("leases")}` })
      .onConflictDoUpdate({ target: settings.key, set: { value: sql`CAST(${settings.value} AS INTEGER) + ${sql.placeholder("leases")}` } })
      .prepare(),
    // Indexed (jobs_fair_start, jobs_fair_finish): an approval costs the same at 10 or 100,000 jobs.
    unfinishedStart: db.select({ start: min(jobs.fairStart) }).from(jobs).where(inArray(jobs.state, UNFINISHED)).prepare(),
    largestFinish: db.select({ finish: max(jobs.fairFinish) }).from(jobs).prepare(),
    colourFinish: db
      .select({ finish: max(jobs.fairFinish) })
      .from(jobs)
      .innerJoin(prompts, eq(prompts.id, jobs.promptId))
      .where(eq(prompts.visitorId, sql.placeholder("visitorId")))
      .prepare(),
    finishOf: db.select({ finish: jobs.fairFinish }).from(jobs).where(eq(jobs.id, sql.placeholder("id"))).prepare(),
    /**
     * Each colour's newest job and its finish tag. Tags are given once, at approval, each past
     * its colour's previous finish, so a colour's newest job holds its largest tag: an approval
     * checks that one row instead of reading every job the visitor ever had. A remembered job
     * that is not there (its approval rolled back, retention removed it) sends the look back to
     * `colourFinish`.
     */
    newestOfColour: new Map<number, { jobId: string; finish: number }>(),
  };
}
const prepared = new WeakMap<Db, ReturnType<typeof prepareStatements>>();
function statementsOf(db: Db) {
  let statements = prepared.get(db);
  if (!statements) prepared.set(db, (statements = prepareStatements(db)));
  return statements;
}

function colourFinishOf(db: Db, visitorId: number): number | null {
  const statements = statementsOf(db);
  const newest = statements.newestOfColour.get(visitorId);
  if (newest && statements.finishOf.get({ id: newest.jobId })?.finish === newest.finish) return newest.finish;
  return statements.colourFinish.get({ visitorId })?.finish ?? null;
}

const turnOf = (db: Db) => Number(statementsOf(db).turn.get()?.value ?? 0);

/** Leases were granted: as many more turns. Call inside the transaction that grants them. */
export function countTurn(db: Db, leases = 1): void {
  if (leases > 0) statementsOf(db).countTurns.run({ leases });
}

/** The fair-turn columns of job `jobId`, approved now for `visitorId`. Call inside the transaction that inserts it. */
export function newJobPlace(db: Db, jobId: string, visitorId: number, size: { width: number; height: number }) {
  const statements = statementsOf(db);
  const unfinished = statements.unfinishedStart.get()?.start ?? null;
  const largest = statements.largestFinish.get()?.finish ?? null;
  const tags = tagsFor(costOf(size), virtualTimeOf(unfinished === null ? [] : [unfinished], largest), colourFinishOf(db, visitorId));
  statements.newestOfColour.set(visitorId, { jobId, finish: tags.finish });
  return { fairStart: tags.start, fairFinish: tags.finish, approvedTurn: turnOf(db) };
}

/** One visitor's entries of `all`, without the visitor. */
function ownStandings(all: Map<number, Standing & { visitorId: number }>, visitorId: number): Map<number, Standing> {
  const own = new Map<number, Standing>();
  for (const [promptId, { visitorId: author, place, etaSeconds }] of all) if (author === visitorId) own.set(promptId, { place, etaSeconds });
  return own;
}

/** A current, unfinished job as the line keeps it: in line (no lease) or with a generator. */
interface LineEntry extends WaitingJob {
  generatorId: string | null;
  state: JobState;
  startedAt: Date | null;
}

/** The SQL function the line's triggers call; one line per database connection. */
const TOUCHED = "promptgate_line_touched";

/**
 * Every column the line reads: a write to any of them marks the job for a fresh read. Lease
 * extensions, publish counts and blocked notes, written for every heartbeat and status, do not.
 */
const LINE_TRIGGERS = `
  CREATE TEMP TRIGGER IF NOT EXISTS line_job_inserted AFTER INSERT ON main.jobs BEGIN SELECT ${TOUCHED}(NEW.id); END;
  CREATE TEMP TRIGGER IF NOT EXISTS line_job_updated
    AFTER UPDATE OF prompt_id, state, lease_generator_id, started_at, failed_on, fair_finish, approved_turn, pin_rank ON main.jobs
    BEGIN SELECT ${TOUCHED}(NEW.id); END;
  CREATE TEMP TRIGGER IF NOT EXISTS line_job_deleted AFTER DELETE ON main.jobs BEGIN SELECT ${TOUCHED}(OLD.id); END;
  CREATE TEMP TRIGGER IF NOT EXISTS line_prompt_updated AFTER UPDATE OF job_id, visitor_id, width, height ON main.prompts
    BEGIN SELECT ${TOUCHED}(OLD.job_id); SELECT ${TOUCHED}(NEW.job_id); END;
  CREATE TEMP TRIGGER IF NOT EXISTS line_prompt_deleted AFTER DELETE ON main.prompts BEGIN SELECT ${TOUCHED}(OLD.job_id); END;
`;

/**
 * What the line keeps of a job and its prompt, in plain SQL: it is read back for every job a
 * write touched, several times per job, and the ORM's mapping of each row cost more than the query.
 */
const LINE_SELECT = `SELECT j.id AS jobId, j.prompt_id AS promptId, p.visitor_id AS visitorId, p.width, p.height, j.failed_on AS failedOn,
  j.fair_finish AS finish, j.rowid AS seq, j.approved_turn AS approvedTurn, j.pin_rank AS pinRank, j.lease_generator_id AS generatorId,
  j.state, j.started_at AS startedAt, p.job_id = j.id AS isCurrent
  FROM jobs j JOIN prompts p ON p.id = j.prompt_id`;
const UNFINISHED_SQL = `j.state IN (${UNFINISHED.map((state) => `'${state}'`).join(", ")})`;
type LineRow = Omit<LineEntry, "failedOn" | "startedAt"> & { failedOn: string; startedAt: number | null; isCurrent: number };
const fromRow = ({ failedOn, startedAt, ...row }: LineRow): LineEntry & { isCurrent: number } => ({
  ...row,
  failedOn: JSON.parse(failedOn) as string[],
  startedAt: startedAt === null ? null : new Date(startedAt),
});

export function createLine(db: Db, rules: FairRules) {
  const statements = {
    all: db.$client.prepare<[], LineRow>(`${LINE_SELECT} WHERE ${UNFINISHED_SQL} AND p.job_id = j.id`),
    leased: db.$client.prepare<[], LineRow>(`${LINE_SELECT} WHERE ${UNFINISHED_SQL} AND j.lease_generator_id IS NOT NULL`),
    // Any number of ids in one bound JSON array: no IN list to build, no limit on variables.
    some: db.$client.prepare<[string], LineRow>(`${LINE_SELECT} WHERE j.id IN (SELECT value FROM json_each(?))`),
  };

  /**
   * The line in memory (ADR 010, addendum): every current unfinished job, read in full once here
   * and then only the jobs that changed. Whatever writes a job or its prompt, in any service or
   * test, in the same statement marks it changed through a temporary trigger, so nothing has to
   * remember to tell the line; a rolled-back write is read back as it is, unchanged.
   */
  const entries = new Map<string, LineEntry>();
  /** The entries with a generator: few, read for every order (the colour cap counts them). */
  const withGenerators = new Map<string, LineEntry & { generatorId: string }>();
  /**
   * The jobs in line (no lease), kept sorted by tag: fairOrder's sorts then find their input in
   * order already, which V8's sort (TimSort) goes through in one linear pass.
   */
  let byTag: WaitingJob[] = [];
  /**
   * Every unfinished job with a lease, its prompt's current one or not, by job: each dispatch
   * pass counts a generator's leases, and every change of the generators view lists them.
   */
  const leases = new Map<string, { generatorId: string; promptId: number; seq: number }>();
  const changed = new Set<string>();
  db.$client.function(TOUCHED, (jobId: unknown) => {
    if (typeof jobId === "string") changed.add(jobId);
    return null;
  });
  db.$client.exec(LINE_TRIGGERS);

  const tagOrder = (a: WaitingJob, b: WaitingJob) => a.finish - b.finish || a.seq - b.seq;
  function keepLease({ jobId, generatorId, state, promptId, seq }: LineEntry) {
    if (generatorId !== null && UNFINISHED.includes(state)) leases.set(jobId, { generatorId, promptId, seq });
  }
  function keep({ isCurrent, generatorId, state, startedAt, ...job }: LineEntry & { isCurrent: number }): WaitingJob | null {
    const entry = { ...job, generatorId, state, startedAt };
    entries.set(job.jobId, entry);
    if (generatorId === null) return job;
    withGenerators.set(job.jobId, { ...entry, generatorId });
    return null;
  }
  byTag = statements.all
    .all()
    .map((row) => keep(fromRow(row)))
    .filter((job) => job !== null)
    .sort(tagOrder);
  for (const row of statements.leased.all()) keepLease(fromRow(row));

  /** Where `job` is, or goes, in `byTag`: a binary search by tag, so a job enters or leaves the line with one splice, not a sort or a filter. */
  function placeByTag(job: WaitingJob): number {
    let low = 0;
    let high = byTag.length;
    while (low < high) {
      const middle = (low + high) >> 1;
      if (tagOrder(byTag[middle]!, job) < 0) low = middle + 1;
      else high = middle;
    }
    return low;
  }

  /** Reads the changed jobs again. Inside a transaction they stay marked: it may yet roll back. */
  function refresh() {
    if (!changed.size) return;
    const ids = [...changed];
    if (!db.$client.inTransaction) changed.clear();
    for (const id of ids) {
      const entry = entries.get(id);
      if (entry?.generatorId === null) byTag.splice(placeByTag(entry), 1);
      entries.delete(id);
      withGenerators.delete(id);
      leases.delete(id);
    }
    for (const row of statements.some.all(JSON.stringify(ids)).map(fromRow)) {
      keepLease(row);
      if (!row.isCurrent || !UNFINISHED.includes(row.state)) continue;
      const job = keep(row);
      if (job) byTag.splice(placeByTag(job), 0, job);
    }
  }

  const waiting = (): readonly WaitingJob[] => {
    refresh();
    return byTag;
  };
  const leased = () => {
    refresh();
    return [...withGenerators.values()];
  };
  const turn = () => turnOf(db);

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
  let placesMemo: { seq: number; places: Record<number, number> } | null = null;
  const places = (): Record<number, number> => Object.fromEntries(order().map((job, index) => [job.promptId, index + 1]));

  return {
    /** The jobs in line, in the order they go to generators. */
    order: () => order(),

    /** The unfinished jobs whose lease `generatorId` holds, with their prompts, in the order they were approved. */
    leasesOf(generatorId: string): Array<{ jobId: string; promptId: number }> {
      refresh();
      const held = [...leases].filter(([, lease]) => lease.generatorId === generatorId).sort(([, a], [, b]) => a.seq - b.seq);
      return held.map(([jobId, { promptId }]) => ({ jobId, promptId }));
    },

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
    places,

    /** The same at live event `seq`, worked out once per event however many admin pages follow it (shared: read only). */
    placesAt(seq: number): Readonly<Record<number, number>> {
      if (placesMemo?.seq !== seq) placesMemo = { seq, places: places() };
      return placesMemo.places;
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
