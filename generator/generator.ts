/**
 * A generator: subscribes to approved jobs over MQTT, feeds them through p-queue into
 * an image backend, and publishes status and results back (see broker/contract.ts).
 *
 * Delivery rules (README "MQTT contract"):
 * - fixed client id + persistent session (clean: false) + QoS 1, so jobs published
 *   while this generator is briefly offline are delivered when it reconnects;
 * - a job id already held (queued, running, or its result not yet acknowledged) is
 *   ignored: Aedes redelivers without the DUP flag, and the server re-sends unfinished
 *   jobs whenever a generator announces itself;
 * - a job is held until the broker has acknowledged its result, so a result that is
 *   still in mqtt.js's outgoing store when the server restarts is never regenerated.
 */
import { performance } from "node:perf_hooks";
import mqtt from "mqtt";
import PQueue from "p-queue";
import {
  CONTRACT_QOS,
  JobMessageSchema,
  SCHEMA_VERSION,
  decode,
  encode,
  topics,
  type JobMessage,
  type PresenceMessage,
  type SamplingParameters,
  type StatusMessage,
} from "../broker/contract";
import { createA1111Backend } from "./a1111";
import { createPlaceholderBackend, renderWhenAvailable, type Backend } from "./backends";
import type { GeneratorConfig } from "./env";

export interface Logger {
  info(message: string): void;
  warn(message: string): void;
  error(message: string): void;
}

export interface RunningGenerator {
  readonly generatorId: string;
  readonly backend: string;
  /** Stops taking jobs, waits for running ones, says "offline", disconnects. */
  close(): Promise<void>;
}

export function createBackend(config: GeneratorConfig): Backend {
  return config.sdApiUrl
    ? createA1111Backend({
        baseUrl: config.sdApiUrl,
        auth: config.sdApiAuth,
        timeoutMs: config.sdTimeoutMs,
        sampler: config.defaults.samplerName,
        model: config.sdModel,
        maxAttempts: config.maxAttempts,
        retryDelaysMs: config.retryDelaysMs,
      })
    : createPlaceholderBackend();
}

export async function startGenerator(config: GeneratorConfig, log: Logger): Promise<RunningGenerator> {
  const backend = createBackend(config);
  const warning = await backend.check();
  if (warning) log.warn(warning);
  backend.onHealthChange((health) =>
    health.healthy ? log.info("the SD server answers again") : log.warn(`the SD server is unhealthy: ${health.reason}; jobs wait for it`),
  );
  const queue = new PQueue({ concurrency: config.concurrency });
  const held = new Set<string>();
  const shutdown = new AbortController();
  const now = () => new Date().toISOString();

  const offline: PresenceMessage = { schemaVersion: SCHEMA_VERSION, generatorId: config.generatorId, state: "offline" };
  const client = mqtt.connect(config.mqttUrl, {
    clientId: config.generatorId,
    username: config.mqttUsername ?? config.generatorId,
    password: config.mqttPassword,
    clean: false,
    reconnectPeriod: config.reconnectMs,
    connectTimeout: 10_000,
    // The broker publishes this if the connection drops without a DISCONNECT (crash, network loss).
    will: { topic: topics.presence(config.generatorId), payload: encode(offline), qos: CONTRACT_QOS, retain: false },
  });

  const publish = (topic: string, message: Parameters<typeof encode>[0]) =>
    client.publishAsync(topic, encode(message), { qos: CONTRACT_QOS });

  const sendStatus = (job: JobMessage, status: { state: "accepted" | "started" } | { state: "failed"; reason: string }) =>
    publish(topics.status(job.jobId), {
      schemaVersion: SCHEMA_VERSION,
      jobId: job.jobId,
      generatorId: config.generatorId,
      at: now(),
      ...status,
    } as StatusMessage).catch((error) => log.warn(`status ${status.state} for job ${job.jobId} not sent: ${error}`));

  /** Only the backend call takes a p-queue slot: sending a result must not keep the GPU idle. */
  async function run(job: JobMessage, receivedAt: number) {
    const parameters: SamplingParameters = { ...config.defaults, seed: -1, ...job.parameters };
    try {
      const { image, startedAt, finishedAt } = await queue.add(async () => {
        const startedAt = performance.now();
        void sendStatus(job, { state: "started" });
        const image = await renderWhenAvailable(backend, job, parameters, {
          signal: shutdown.signal,
          onAttemptFailed: ({ message, retryInMs }) => log.warn(`job ${job.jobId}: ${message}; retrying in ${retryInMs / 1000} s`),
        });
        return { image, startedAt, finishedAt: performance.now() };
      });
      await publish(topics.result(job.jobId), {
        schemaVersion: SCHEMA_VERSION,
        jobId: job.jobId,
        generatorId: config.generatorId,
        imagePng: image.png.toString("base64"),
        seed: image.seed,
        width: job.width,
        height: job.height,
        parameters: { ...parameters, seed: image.seed },
        backend: backend.name,
        timing: { queuedMs: Math.round(startedAt - receivedAt), generationMs: Math.round(finishedAt - startedAt) },
        finishedAt: now(),
      });
      log.info(`job ${job.jobId} done in ${Math.round(finishedAt - startedAt)} ms (${job.width}×${job.height}, seed ${image.seed})`);
    } catch (error) {
      if (shutdown.signal.aborted) return; // not a job failure: the server re-sends it to the next generator
      const reason = error instanceof Error ? error.message : String(error);
      log.error(`job ${job.jobId} failed: ${reason}`);
      await sendStatus(job, { state: "failed", reason });
    } finally {
      held.delete(job.jobId);
    }
  }

  client.on("message", (topic, payload) => {
    if (topic !== topics.jobs) return;
    const decoded = decode(JobMessageSchema, payload);
    if (!decoded.ok) {
      log.warn(`dropped a malformed job on ${topic}: ${decoded.error}`);
      return;
    }
    const job = decoded.value;
    if (held.has(job.jobId) || shutdown.signal.aborted) return;
    held.add(job.jobId);
    void sendStatus(job, { state: "accepted" });
    const receivedAt = performance.now();
    void run(job, receivedAt);
  });

  client.on("connect", () => {
    // Small, latency-bound packets: without this, Nagle + delayed ACKs add ~40 ms per result.
    (client.stream as { setNoDelay?: (noDelay: boolean) => void }).setNoDelay?.(true);
    // Subscribe on every connect: after a broker restart the session is gone (sessionPresent false).
    client
      .subscribeAsync(topics.jobs, { qos: CONTRACT_QOS })
      .then(() =>
        publish(topics.presence(config.generatorId), {
          schemaVersion: SCHEMA_VERSION,
          generatorId: config.generatorId,
          state: "online",
          inFlight: [...held],
          concurrency: config.concurrency,
          backend: backend.name,
        }),
      )
      .then(() => log.info(`generator ${config.generatorId} online at ${redact(config.mqttUrl)} (backend: ${backend.name}, concurrency ${config.concurrency})`))
      .catch((error) => log.warn(`subscription failed, will retry on reconnect: ${error}`));
  });
  client.on("error", (error) => log.warn(`MQTT: ${error.message}`));

  await new Promise<void>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`cannot connect to the broker at ${redact(config.mqttUrl)}`)), 15_000);
    client.once("connect", () => {
      clearTimeout(timer);
      resolve();
    });
  }).catch(async (error) => {
    await client.endAsync(true);
    throw error;
  });

  return {
    generatorId: config.generatorId,
    backend: backend.name,
    async close() {
      queue.clear();
      shutdown.abort();
      await queue.onIdle();
      if (client.connected) await publish(topics.presence(config.generatorId), offline).catch(() => undefined);
      await client.endAsync();
    },
  };
}

/** The broker URL without credentials, for logs. */
function redact(url: string): string {
  const parsed = new URL(url);
  parsed.username = "";
  parsed.password = "";
  return parsed.toString();
}
