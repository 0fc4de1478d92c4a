/** The worker side of thread.ts: starts a generator and relays its log lines to the parent. */
import { parentPort, workerData } from "node:worker_threads";
import type { GeneratorConfig } from "./env";
import { startGenerator, type Logger } from "./generator";
import type { FromWorker } from "./thread";

const port = parentPort!;
const send = (message: FromWorker) => port.postMessage(message);
const log: Logger = {
  info: (message) => send({ kind: "log", level: "info", message }),
  warn: (message) => send({ kind: "log", level: "warn", message }),
  error: (message) => send({ kind: "log", level: "error", message }),
};

try {
  const generator = await startGenerator(workerData as GeneratorConfig, log);
  port.on("message", (message) => {
    if (message === "close") void generator.close().finally(() => send({ kind: "closed" }));
  });
  send({ kind: "ready", generatorId: generator.generatorId, backend: generator.backend });
} catch (error) {
  send({ kind: "failed", message: (error as Error).message });
}
