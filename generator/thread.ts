/**
 * Runs a generator in a worker thread: the server's local generator lives here, so rendering
 * and encoding images (a 2048×2048 placeholder takes ~200 ms of CPU) never stalls the web
 * server's event loop. The worker runs the very same `startGenerator` and reaches the broker
 * over loopback, exactly like a generator on another machine.
 */
import { Worker } from "node:worker_threads";
import type { GeneratorConfig } from "./env";
import type { Logger, RunningGenerator } from "./generator";

/** Messages from the worker (thread-entry.ts) to its parent. */
export type FromWorker =
  | { kind: "log"; level: keyof Logger; message: string }
  | { kind: "ready"; generatorId: string; backend: string }
  | { kind: "failed"; message: string }
  | { kind: "closed" };

/**
 * From source (tsx) the worker first registers tsx's loader; compiled (`npm run build`), it runs
 * dist/generator/thread-entry.js, and this code is in a file one level below dist/ as well.
 */
const WORKER_ENTRY = import.meta.url.endsWith(".ts") ? new URL("./thread-bootstrap.mjs", import.meta.url) : new URL("../generator/thread-entry.js", import.meta.url);

/**
 * The worker's young generation, kept small: its V8 heap is part of the server's memory (issue
 * 10: RSS), and V8 would give it a busy web server's 32 MiB of new space, while a generator
 * allocates little per job (images are Buffers and large strings, which live elsewhere).
 */
const WORKER_LIMITS = { maxYoungGenerationSizeMb: 6 };

export function startGeneratorThread(config: GeneratorConfig, log: Logger): Promise<RunningGenerator> {
  const worker = new Worker(WORKER_ENTRY, { workerData: config, resourceLimits: WORKER_LIMITS });
  let closed: (() => void) | undefined;

  return new Promise((resolve, reject) => {
    worker.on("message", (message: FromWorker) => {
      if (message.kind === "log") log[message.level](message.message);
      else if (message.kind === "failed") reject(new Error(message.message));
      else if (message.kind === "closed") closed?.();
      else if (message.kind === "ready") {
        resolve({
          generatorId: message.generatorId,
          backend: message.backend,
          close: () =>
            new Promise<void>((done) => {
              closed = done;
              worker.postMessage("close");
            }).then(() => worker.terminate().then(() => undefined)),
        });
      }
    });
    worker.once("error", (error) => {
      log.error(`local generator thread crashed: ${error.stack ?? error}`);
      reject(error);
    });
    worker.once("exit", (code) => {
      if (!closed) log.error(`local generator thread exited (code ${code}); approved jobs wait for another generator`);
    });
  });
}
