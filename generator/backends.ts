/**
 * Image backends behind one interface: AUTOMATIC1111's txt2img API (a1111.ts) or the
 * built-in placeholder renderer. The MQTT side (generator.ts) only calls this interface:
 *
 * - `check()` once at start: a bad sampler or model throws a BackendConfigError (one line,
 *   the generator must not start); an unreachable backend returns a warning and starts
 *   unhealthy, because the SD server may simply come up later.
 * - `render(job, parameters, { signal, onProgress })` does a whole job, reporting how far it is: it retries transient failures
 *   with backoff, using one concrete seed for every attempt so a retry gives the same
 *   picture. It settles in one of four ways:
 *     - a RenderedImage;
 *     - the signal's reason, when the caller aborted (shutdown, a lost lease, a cancel):
 *       by then the backend's own work on this job has been interrupted;
 *     - a BackendUnavailableError: the SD server could not be reached or answered like a
 *       proxy with nothing behind it (refused, reset, 502, 503, 504) on every attempt. Not
 *       the job's fault: hand the job back or keep it for later, never fail it;
 *     - any other Error: the job failed, and its message is the backend's own (a 4xx, a
 *       500 such as "HTTP 500: OutOfMemoryError: CUDA out of memory", a timeout on every
 *       attempt, an answer that is not an image).
 * - `health()` / `onHealthChange()`: unhealthy from the first unreachable answer until the
 *   SD server answers again; `whenHealthy(signal)` probes until then.
 */
import { randomInt } from "node:crypto";
import type { JobMessage, SamplingParameters } from "../broker/contract";
import { renderPlaceholder } from "./placeholder";

export interface RenderedImage {
  png: Buffer;
  seed: number;
}

export interface BackendHealth {
  healthy: boolean;
  /** Why it is unhealthy: the last failure, e.g. "cannot reach http://gpu:7860: ECONNREFUSED". */
  reason?: string;
}

/** How far a render is: step `step` of `steps`; `fraction` 0..1; the backend's estimate of the seconds left, if any. */
export interface RenderProgress {
  step: number;
  steps: number;
  fraction: number;
  etaSeconds?: number;
}

export interface RenderOptions {
  signal: AbortSignal;
  /** Called as the backend advances; may be called often (the caller throttles). Never carries an image. */
  onProgress?: (progress: RenderProgress) => void;
  /** Called before each retry, e.g. to log it. */
  onAttemptFailed?: (failure: { attempt: number; message: string; retryInMs: number }) => void;
}

export interface Backend {
  /** Reported in results and presence: "a1111" or "placeholder". */
  readonly name: string;
  /** Throws a BackendConfigError if the configuration cannot work; returns a warning to log, or null. */
  check(): Promise<string | null>;
  render(job: JobMessage, parameters: SamplingParameters, options: RenderOptions): Promise<RenderedImage>;
  health(): BackendHealth;
  /** Returns a function that removes the listener. */
  onHealthChange(listener: (health: BackendHealth) => void): () => void;
  /** Resolves once the backend answers (at once if healthy); rejects with the signal's reason. */
  whenHealthy(signal: AbortSignal): Promise<void>;
}

/** A start-up configuration the backend refuses (unknown sampler or model, wrong credentials). */
export class BackendConfigError extends Error {
  override name = "BackendConfigError";
}

/** Every attempt found the backend down: the job is not at fault (see the header). */
export class BackendUnavailableError extends Error {
  override name = "BackendUnavailableError";
}

/** A seed as A1111 draws them (0 … 2³²−1). */
export const randomSeed = () => randomInt(0, 2 ** 32);

export function createPlaceholderBackend(): Backend {
  return {
    name: "placeholder",
    async check() {
      return null;
    },
    async render(job, parameters, { onProgress }) {
      const seed = parameters.seed >= 0 ? parameters.seed : randomSeed();
      const png = renderPlaceholder({ prompt: job.prompt, width: job.width, height: job.height, colour: job.authorColour, seed });
      // Drawn in one go: its only step is the whole image.
      onProgress?.({ step: 1, steps: 1, fraction: 1 });
      return { png, seed };
    },
    health: () => ({ healthy: true }),
    onHealthChange: () => () => undefined,
    whenHealthy: async () => undefined,
  };
}

/** Health state with change listeners, for backends that can be down. */
export function healthTracker() {
  let current: BackendHealth = { healthy: true };
  const listeners = new Set<(health: BackendHealth) => void>();
  const set = (next: BackendHealth) => {
    const changed = next.healthy !== current.healthy;
    current = next;
    if (changed) for (const listener of listeners) listener(next);
  };
  return {
    health: () => current,
    onHealthChange(listener: (health: BackendHealth) => void) {
      listeners.add(listener);
      return () => void listeners.delete(listener);
    },
    up: () => set({ healthy: true }),
    down: (reason: string) => set({ healthy: false, reason }),
  };
}

/** Resolves after `ms`, or rejects with the signal's reason as soon as it is aborted. */
export function sleep(ms: number, signal: AbortSignal): Promise<void> {
  return new Promise((resolve, reject) => {
    if (signal.aborted) return reject(signal.reason);
    const onAbort = () => {
      clearTimeout(timer);
      reject(signal.reason);
    };
    const timer = setTimeout(() => {
      signal.removeEventListener("abort", onAbort);
      resolve();
    }, ms);
    signal.addEventListener("abort", onAbort, { once: true });
  });
}
