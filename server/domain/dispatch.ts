/**
 * Which generator gets a job (ADR 008): pure, so the rules are tested on their own.
 * - Only generators that can make the job (its pixels) are candidates.
 * - The built-in generator serves only while no other generator is online (LOCAL_GENERATOR=auto):
 *   a GPU box takes over the moment it connects.
 * - Among those with a free slot, the fastest measured (seconds per megapixel) wins; one not yet
 *   measured goes first, so it gets measured. Faster generators free their slots sooner and so
 *   get more work. One whose last jobs failed lately is used only when no sound one can make it.
 */

export interface DispatchCandidate {
  generatorId: string;
  /** The server's built-in generator. */
  local: boolean;
  /** Jobs it may still take now (its concurrency minus the leases it holds). */
  freeSlots: number;
  maxPixels: number;
  /** Measured seconds per megapixel; null before its first result. */
  secondsPerMegapixel: number | null;
  /** Its last jobs failed lately: it gets work only when no other online generator can make the job. */
  failing: boolean;
}

export type DispatchChoice =
  | { kind: "lease"; generatorId: string }
  /** Someone can make it, but nobody has a free slot right now. */
  | { kind: "wait" }
  /** No online generator can make it at all: the admin and the author are told why. */
  | { kind: "blocked"; reason: string };

export function chooseGenerator(job: { width: number; height: number }, online: DispatchCandidate[]): DispatchChoice {
  const remoteOnline = online.some((generator) => !generator.local);
  const serving = online.filter((generator) => !(remoteOnline && generator.local));
  const able = serving.filter((generator) => generator.maxPixels >= job.width * job.height);
  if (serving.length && !able.length) {
    const largest = Math.max(...serving.map((generator) => generator.maxPixels));
    return { kind: "blocked", reason: `No generator can make this: ${job.width}×${job.height} is larger than any online generator takes (${largest.toLocaleString("en")} pixels at most).` };
  }
  // A failing generator would waste the job's turn: it waits for a sound one, even a busy one.
  const sound = able.filter((generator) => !generator.failing);
  const pool = (sound.length ? sound : able).filter((generator) => generator.freeSlots > 0);
  if (!pool.length) return { kind: "wait" };
  const speed = (generator: DispatchCandidate) => generator.secondsPerMegapixel ?? 0;
  const best = pool.reduce((a, b) => (speed(b) < speed(a) || (speed(b) === speed(a) && b.freeSlots > a.freeSlots) ? b : a));
  return { kind: "lease", generatorId: best.generatorId };
}
