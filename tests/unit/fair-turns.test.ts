import fc from "fast-check";
import { costOf, estimateFinishes, fairOrder, reorder, tagsFor, virtualTimeOf, type FairRules, type LineJob } from "../../server/domain/fair-turns";

/** The line as server/domain/line.ts keeps it, in memory: approve, lease the head, finish. */
function line(rules: FairRules) {
  const jobs: Array<LineJob & { start: number; state: "queued" | "leased" | "done" }> = [];
  let turn = 0;
  const order = () => {
    const leasedPerColour = new Map<number, number>();
    for (const job of jobs) if (job.state === "leased") leasedPerColour.set(job.visitorId, (leasedPerColour.get(job.visitorId) ?? 0) + 1);
    return fairOrder(
      jobs.filter((job) => job.state === "queued"),
      rules,
      { turn, leasedPerColour },
    );
  };
  return {
    approve(visitorId: number, size = { width: 512, height: 512 }): string {
      const unfinished = jobs.filter((job) => job.state !== "done").map((job) => job.start);
      const largest = jobs.length ? Math.max(...jobs.map((job) => job.finish)) : null;
      const colour = jobs.filter((job) => job.visitorId === visitorId).map((job) => job.finish);
      const tags = tagsFor(costOf(size), virtualTimeOf(unfinished, largest), colour.length ? Math.max(...colour) : null);
      const jobId = `v${visitorId}-${jobs.length}`;
      jobs.push({ jobId, visitorId, start: tags.start, finish: tags.finish, seq: jobs.length, approvedTurn: turn, pinRank: null, state: "queued" });
      return jobId;
    },
    /** Leases the head of the line (a generator took it); returns it. */
    lease(): string {
      const head = order()[0]!;
      head.state = "leased";
      turn++;
      return head.jobId;
    },
    finish(jobId: string) {
      jobs.find((job) => job.jobId === jobId)!.state = "done";
    },
    order,
    pin(jobId: string, pinRank: number) {
      jobs.find((job) => job.jobId === jobId)!.pinRank = pinRank;
    },
  };
}

const rules: FairRules = { colourCap: 2, agingTurns: 50 };

test("ten guests' single jobs approved after one guest's twenty all run before the heavy guest's fourth", () => {
  const queue = line(rules);
  const heavy = Array.from({ length: 20 }, () => queue.approve(1));
  // One generator: one job running, one waiting at it.
  const running = [queue.lease(), queue.lease()];
  const guests = Array.from({ length: 10 }, (_, index) => queue.approve(100 + index));
  const finished: string[] = [];
  while (finished.length < 30) {
    const done = running.shift()!;
    queue.finish(done);
    finished.push(done);
    if (queue.order().length) running.push(queue.lease());
  }
  expect(finished.slice(0, 12)).toEqual([heavy[0], heavy[1], ...guests]);
  expect(finished.indexOf(heavy[3]!)).toBeGreaterThan(Math.max(...guests.map((guest) => finished.indexOf(guest))));
});

test("a job four times the size takes the turn of four small ones: another colour's three go first", () => {
  const queue = line({ colourCap: 0, agingTurns: 0 });
  const big = queue.approve(1, { width: 1024, height: 1024 });
  const small = Array.from({ length: 5 }, () => queue.approve(2));
  expect(queue.order().map((job) => job.jobId)).toEqual([small[0], small[1], small[2], big, small[3], small[4]]);
});

test("jobs beyond a colour's cap wait behind every other colour's first ones", () => {
  const queue = line({ colourCap: 1, agingTurns: 0 });
  const first = queue.approve(1);
  const second = queue.approve(1);
  const other = queue.approve(2, { width: 2048, height: 2048 });
  expect(queue.order().map((job) => job.jobId)).toEqual([first, other, second]);
});

test("pinned jobs go first, in the admin's order", () => {
  const queue = line(rules);
  const [a, b, c] = [queue.approve(1), queue.approve(2), queue.approve(3)];
  queue.pin(c, 0);
  queue.pin(b, 1);
  expect(queue.order().map((job) => job.jobId)).toEqual([c, b, a]);
});

test("moving a job pins the head of the line in the new order and leaves the rest to fair turns", () => {
  const order = ["a", "b", "c", "d"].map((jobId, seq) => ({ jobId, visitorId: seq, finish: seq, seq, approvedTurn: 0, pinRank: null }));
  expect(reorder(order, 2, 1)).toEqual([
    { jobId: "a", pinRank: 0 },
    { jobId: "c", pinRank: 1 },
    { jobId: "b", pinRank: 2 },
  ]);
  expect(reorder(order, 3, 0).map((pin) => pin.jobId)).toEqual(["d", "a", "b", "c"]);
  // Already pinned jobs stay pinned when a job moves among them.
  const pinned = order.map((job, index) => ({ ...job, pinRank: index < 3 ? index : null }));
  expect(reorder(pinned, 1, 0).map((pin) => pin.jobId)).toEqual(["b", "a", "c"]);
});

test("aging: a job runs within a bounded number of turns, whatever keeps arriving", () => {
  const agingTurns = 8;
  fc.assert(
    fc.property(
      // Each turn: which colours approve a job, and how large.
      fc.array(fc.array(fc.record({ visitor: fc.integer({ min: 2, max: 12 }), side: fc.constantFrom(64, 512, 1024) }), { maxLength: 4 }), { minLength: 40, maxLength: 80 }),
      fc.integer({ min: 0, max: 3 }),
      (arrivals, cap) => {
        const queue = line({ colourCap: cap, agingTurns });
        // Colour 1 already has jobs leased or waiting, so its big job is the least deserving.
        for (let i = 0; i < 3; i++) queue.approve(1);
        const watched = queue.approve(1, { width: 2048, height: 2048 });
        for (let turn = 0; turn < arrivals.length; turn++) {
          for (const { visitor, side } of arrivals[turn]!) queue.approve(visitor, { width: side, height: side });
          const leased = queue.lease();
          queue.finish(leased);
          if (leased === watched) return turn < agingTurns + 4;
        }
        return false;
      },
    ),
    { seed: 8, numRuns: 200 },
  );
});

test("the line is always a permutation of the waiting jobs", () => {
  fc.assert(
    fc.property(
      fc.array(fc.record({ visitor: fc.integer({ min: 1, max: 5 }), side: fc.constantFrom(64, 512, 2048), lease: fc.boolean() }), { maxLength: 60 }),
      fc.integer({ min: 0, max: 3 }),
      (steps, cap) => {
        const queue = line({ colourCap: cap, agingTurns: 5 });
        const waiting = new Set<string>();
        for (const step of steps) {
          waiting.add(queue.approve(step.visitor, { width: step.side, height: step.side }));
          if (step.lease) waiting.delete(queue.lease());
        }
        const ids = queue.order().map((job) => job.jobId);
        return ids.length === waiting.size && new Set(ids).size === ids.length && ids.every((id) => waiting.has(id));
      },
    ),
    { seed: 8, numRuns: 200 },
  );
});

describe("estimates", () => {
  const gpu = { generatorId: "gpu", lanes: 1, maxPixels: 1024 * 1024, secondsPerMegapixel: 10 };
  const job = (jobId: string, side = 1000) => ({ jobId, width: side, height: side });

  test("a running job finishes after its remaining time; the line follows it on the lane that frees first", () => {
    const now = 100_000;
    const finishes = estimateFinishes([gpu, { ...gpu, generatorId: "gpu-2" }], [{ ...job("running"), generatorId: "gpu", startedAt: now - 4000 }], [job("a"), job("b"), job("c")], now);
    expect(finishes.get("running")).toBe(6);
    expect(finishes.get("a")).toBe(10);
    expect(finishes.get("b")).toBe(16);
    expect(finishes.get("c")).toBe(20);
  });

  test("an unmeasured generator is estimated at the default speed, an overdue job as about to finish", () => {
    const finishes = estimateFinishes([{ ...gpu, secondsPerMegapixel: null }], [{ ...job("late"), generatorId: "gpu", startedAt: 0 }], [job("next")], 1_000_000);
    expect(finishes.get("late")).toBe(1);
    expect(finishes.get("next")).toBe(21);
  });

  test("without a generator that can make a job, it has no estimate", () => {
    expect(estimateFinishes([], [], [job("a")], 0).size).toBe(0);
    expect(estimateFinishes([gpu], [], [job("huge", 2048)], 0).has("huge")).toBe(false);
  });
});
