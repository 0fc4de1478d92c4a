/**
 * How far each job being made is, as its lease holder last reported (broker/contract.ts
 * `progress`). Kept in memory only: it is stale within a second, and a restart loses nothing that
 * the next report does not bring back. Each change becomes a live event at most
 * PROGRESS_PER_SECOND times a second per job, whatever a generator sends.
 */
import { PROGRESS_PER_SECOND } from "../../broker/contract";

/** What a page shows: "step 12 of 30", a bar, and the backend's estimate when it gave one. */
export interface JobProgress {
  step: number;
  steps: number;
  fraction: number;
  etaSeconds: number | null;
}

export interface ProgressBoardOptions {
  /** Told that a prompt's progress moved (a live event; ADR 012). */
  onChange: (promptId: number) => void;
  now?: () => number;
}

/** Reports older than this belong to a job nobody finished telling us about (a generator gone). */
const FORGET_AFTER_MS = 10 * 60_000;

export function createProgressBoard({ onChange, now = Date.now }: ProgressBoardOptions) {
  const minGapMs = 1000 / PROGRESS_PER_SECOND;
  /** By prompt: a prompt has one current job, and only its holder's reports reach here. */
  const byPrompt = new Map<number, { jobId: string; progress: JobProgress; at: number; notedAt: number; trailing?: NodeJS.Timeout }>();

  function note(promptId: number) {
    const entry = byPrompt.get(promptId);
    if (!entry) return;
    entry.notedAt = now();
    entry.trailing = undefined;
    onChange(promptId);
  }

  function drop(promptId: number) {
    clearTimeout(byPrompt.get(promptId)?.trailing);
    byPrompt.delete(promptId);
  }

  return {
    /**
     * The holder's latest report for `jobId` (of prompt `promptId`; a new job's replaces the old one's). A report within the minimum
     * gap of the last event is shown with the next one (the latest wins), never dropped: the bar
     * ends where the generator's reports did.
     */
    report(jobId: string, promptId: number, progress: JobProgress): void {
      const at = now();
      for (const [id, entry] of byPrompt) if (at - entry.at > FORGET_AFTER_MS) drop(id);
      const entry = byPrompt.get(promptId);
      if (entry?.jobId !== jobId) {
        drop(promptId);
        byPrompt.set(promptId, { jobId, progress, at, notedAt: at });
        return onChange(promptId);
      }
      Object.assign(entry, { progress, at });
      if (entry.trailing) return;
      const wait = entry.notedAt + minGapMs - at;
      if (wait <= 0) return note(promptId);
      entry.trailing = setTimeout(() => note(promptId), wait);
      entry.trailing.unref();
    },

    /** The latest progress of a prompt's job, or null. */
    of(promptId: number): JobProgress | null {
      return byPrompt.get(promptId)?.progress ?? null;
    },

    /** The job's lease ended (stored, failed, handed back, cancelled): its progress is gone. */
    clear(jobId: string): void {
      for (const [promptId, entry] of byPrompt) if (entry.jobId === jobId) drop(promptId);
    },

    close(): void {
      for (const promptId of [...byPrompt.keys()]) drop(promptId);
    },
  };
}

export type ProgressBoard = ReturnType<typeof createProgressBoard>;
