/**
 * A generator: takes the jobs the server leases to it over MQTT (ADR 008), feeds them through
 * p-queue into an image backend, and publishes status, heartbeats and results back (see
 * broker/contract.ts).
 *
 * Rules (docs/protocol.md, docs/decisions/008-leased-dispatch.md):
 * - it subscribes to its own `jobs` and `control` topics, then announces itself `online` with
 *   its capabilities and the jobs it holds; `offline` is its will. `clean: true`: the server's
 *   database, not the broker's session, knows which jobs are whose;
 * - a job id already held is ignored (QoS 1 may deliver twice);
 * - while it holds jobs it sends a heartbeat every third of their lease, listing them;
 * - while the backend works on a job it reports how far it is (`progress`, QoS 0, at most
 *   PROGRESS_PER_SECOND a second per job; never a preview image);
 * - `cancel` on its control topic makes it drop the job (aborting the backend call); `refused`
 *   there means the server did not take something it sent: logged (a result it could not take
 *   from the job's holder has already failed that job, with the reason);
 * - everything it publishes is checked against the contract first, so a bug here is a clear
 *   local error, never a silent drop at the server;
 * - it holds a finished job, and its encoded result, until the server says `stored` (or refuses
 *   the result, or cancels the job): listed in heartbeats and presence, so its lease stays, and
 *   sent again on every reconnection and whenever a lease passes without an answer;
 * - closing (SIGTERM) drains it: no new jobs, queued ones handed back, the running ones finished,
 *   then at most `drainMs` for the server to confirm their results; never longer.
 */
import { randomUUID } from "node:crypto";
import mqtt from "mqtt";
import PQueue from "p-queue";
import type { z } from "zod";
import {
  CONTRACT_QOS,
  ContractError,
  ControlMessageSchema,
  HeartbeatMessageSchema,
  JobMessageSchema,
  PROGRESS_PER_SECOND,
  PROGRESS_QOS,
  PresenceMessageSchema,
  ProgressMessageSchema,
  ResultMessageSchema,
  SCHEMA_VERSION,
  STATUS_REASON_MAX,
  StatusMessageSchema,
  decode,
  encode,
  topics,
  type JobMessage,
  type PresenceMessage,
  type SamplingParameters,
  type StatusMessage,
} from "../broker/contract";
import { createA1111Backend } from "./a1111";
import { BackendUnavailableError, createPlaceholderBackend, type Backend, type RenderProgress } from "./backends";
import type { GeneratorConfig } from "./env";
import { sendAtOnce } from "./send-at-once";

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

interface HeldJob {
  job: JobMessage;
  /** Aborts this job's backend call: a cancel from the server, or shutdown. */
  abort: AbortController;
  /** Sent to the backend: then draining lets it finish instead of handing it back. */
  started: boolean;
  /** The encoded result, kept until the server has stored it. */
  result?: Buffer;
  /** What to log once the broker first acknowledges the result. */
  done?: string;
  /** Sends the result again when no `stored` came within a lease. */
  resend?: NodeJS.Timeout;
}

export async function startGenerator(config: GeneratorConfig, log: Logger): Promise<RunningGenerator> {
  const backend = createBackend(config);
  const warning = await backend.check();
  if (warning) log.warn(warning);
  const queue = new PQueue({ concurrency: config.concurrency });
  const held = new Map<string, HeldJob>();
  /** Every job's run, from receipt until its backend call ended (its result, if any, is then in `held`). */
  const runs = new Set<Promise<void>>();
  let draining = false;
  const now = () => new Date().toISOString();
  const own = config.generatorId;

  /** This process's run: the server ignores an `offline` of another session (contract.ts). */
  const session = randomUUID();
  const offline = (): PresenceMessage => ({ schemaVersion: SCHEMA_VERSION, generatorId: own, state: "offline", session, at: now() });
  const client = mqtt.connect(config.mqttUrl, {
    clientId: own,
    username: config.mqttUsername ?? own,
    password: config.mqttPassword,
    clean: true,
    reconnectPeriod: config.reconnectMs,
    connectTimeout: 10_000,
    // The broker publishes this if the connection drops without a DISCONNECT (crash, network loss).
    will: { topic: topics.presence(own), payload: encode(PresenceMessageSchema, offline()), qos: CONTRACT_QOS, retain: false },
  });

  /** Rejects with a ContractError, before anything is sent, when `message` does not fit `schema`. */
  const publish = async <S extends z.ZodType>(topic: string, schema: S, message: z.input<S>) =>
    client.publishAsync(topic, encode(schema, message), { qos: CONTRACT_QOS });

  /** A message that breaks the contract is a bug here; a lost connection is not. */
  const notSent = (what: string) => (error: unknown) =>
    error instanceof ContractError ? log.error(`${what} not sent: ${error.message}`) : log.warn(`${what} not sent: ${error}`);

  const sendStatus = (jobId: string, status: { state: "accepted" | "started" } | { state: "failed" | "released"; reason: string }) =>
    publish(topics.status(own, jobId), StatusMessageSchema, {
      schemaVersion: SCHEMA_VERSION,
      jobId,
      generatorId: own,
      at: now(),
      ...("reason" in status ? { ...status, reason: status.reason.slice(0, STATUS_REASON_MAX) } : status),
    } as StatusMessage).catch(notSent(`status ${status.state} for job ${jobId}`));

  const announce = () =>
    publish(topics.presence(own), PresenceMessageSchema, {
      schemaVersion: SCHEMA_VERSION,
      generatorId: own,
      state: "online",
      session,
      at: now(),
      inFlight: [...held.keys()],
      // One more than the backend runs at once: the next job waits here, so the GPU never idles
      // for a round trip to the server. Draining: nothing new.
      concurrency: draining ? 0 : config.concurrency + 1,
      backend: backend.name,
      maxPixels: config.maxPixels,
      ...backend.health(),
    });

  /** Heartbeats every third of the shortest lease held, while anything is held. */
  let heartbeat: NodeJS.Timeout | undefined;
  let heartbeatMs = 0;
  function scheduleHeartbeat() {
    const wanted = held.size ? Math.max(250, Math.floor(Math.min(...[...held.values()].map(({ job }) => job.leaseMs)) / 3)) : 0;
    if (wanted === heartbeatMs) return;
    clearInterval(heartbeat);
    heartbeatMs = wanted;
    if (!wanted) return;
    heartbeat = setInterval(() => {
      if (!client.connected || !held.size) return;
      void publish(topics.heartbeat(own), HeartbeatMessageSchema, { schemaVersion: SCHEMA_VERSION, generatorId: own, jobIds: [...held.keys()], at: now() }).catch(
        notSent("heartbeat"),
      );
    }, wanted);
  }

  function forget(jobId: string) {
    clearTimeout(held.get(jobId)?.resend);
    held.delete(jobId);
    scheduleHeartbeat();
    if (!awaitingStored().length) allStored?.();
  }

  const awaitingStored = () => [...held.values()].filter((entry) => entry.result);
  /** Resolves the wait of `close()` once no result waits for its `stored`. */
  let allStored: (() => void) | undefined;

  /**
   * Publishes a finished job's result, now and again after every lease without a `stored`: the
   * broker's PUBACK only says the broker has it, and a server that dies before storing it would
   * otherwise lose it (an SD call wasted). Offline, mqtt.js sends it once reconnected.
   */
  function sendResult(entry: HeldJob) {
    clearTimeout(entry.resend);
    entry.resend = setTimeout(() => {
      log.warn(`job ${entry.job.jobId}: the server has not confirmed its result; sending it again`);
      sendResult(entry);
    }, entry.job.leaseMs);
    if (!client.connected) return;
    client
      .publishAsync(topics.result(own, entry.job.jobId), entry.result!, { qos: CONTRACT_QOS })
      .then(() => {
        if (entry.done) log.info(entry.done);
        entry.done = undefined;
      })
      .catch(notSent(`result of job ${entry.job.jobId}`));
  }

  /** Ends when this generator closes: stops waiting for a backend that is down. */
  const closing = new AbortController();

  // While the SD server is down this generator says so and gets no jobs; the server gives them
  // to others, or keeps them until it answers again.
  backend.onHealthChange((health) => {
    if (health.healthy) log.info("the SD server answers again");
    else log.warn(`the SD server is unhealthy: ${health.reason}; handing jobs back until it answers`);
    if (client.connected) void announce().catch(notSent("presence"));
  });

  /** Probes a backend found down until it answers (the health listener announces it). */
  function awaitRecovery() {
    backend.whenHealthy(closing.signal).catch(() => undefined);
  }
  if (!backend.health().healthy) awaitRecovery();

  /**
   * Reports a job's progress, at most PROGRESS_PER_SECOND a second and only when it moved. QoS 0
   * and never awaited: a lost report is replaced by the next one.
   */
  function progressReporter(entry: HeldJob) {
    let lastSentAt = -Infinity;
    let lastStep = -1;
    return (progress: RenderProgress) => {
      const at = performance.now();
      if (entry.abort.signal.aborted || !client.connected || progress.step === lastStep || at - lastSentAt < 1000 / PROGRESS_PER_SECOND) return;
      lastSentAt = at;
      lastStep = progress.step;
      const message = { schemaVersion: SCHEMA_VERSION, jobId: entry.job.jobId, generatorId: own, ...progress, at: now() };
      try {
        client.publish(topics.progress(own, entry.job.jobId), encode(ProgressMessageSchema, message), { qos: PROGRESS_QOS });
      } catch (error) {
        notSent(`progress of job ${entry.job.jobId}`)(error);
      }
    };
  }

  /** Only the backend call takes a p-queue slot: sending a result must not keep the GPU idle. */
  async function run(entry: HeldJob, receivedAt: number) {
    const { job, abort } = entry;
    const parameters: SamplingParameters = { ...config.defaults, seed: -1, ...job.parameters };
    try {
      const rendered = await queue.add(async () => {
        // Cancelled or handed back while it waited.
        if (abort.signal.aborted) return null;
        entry.started = true;
        const startedAt = performance.now();
        void sendStatus(job.jobId, { state: "started" });
        const image = await backend.render(job, parameters, {
          signal: abort.signal,
          onProgress: progressReporter(entry),
          onAttemptFailed: ({ message, retryInMs }) => log.warn(`job ${job.jobId}: ${message}; retrying in ${retryInMs / 1000} s`),
        });
        return { image, queuedMs: startedAt - receivedAt, generationMs: performance.now() - startedAt };
      });
      if (!rendered || abort.signal.aborted) return;
      const { image, queuedMs, generationMs } = rendered;
      entry.result = encode(ResultMessageSchema, {
        schemaVersion: SCHEMA_VERSION,
        jobId: job.jobId,
        generatorId: own,
        imagePng: image.png.toString("base64"),
        seed: image.seed,
        width: job.width,
        height: job.height,
        parameters: { ...parameters, seed: image.seed },
        backend: backend.name,
        timing: { queuedMs, generationMs },
        finishedAt: now(),
      });
      entry.done = `job ${job.jobId} done in ${Math.round(generationMs)} ms (${job.width}×${job.height}, seed ${image.seed})`;
      sendResult(entry);
    } catch (error) {
      if (abort.signal.aborted) return; // cancelled by the server: the job is someone else's now
      const reason = error instanceof Error ? error.message : String(error);
      if (error instanceof BackendUnavailableError) {
        // Not the job's fault: another generator, or this one later, makes it.
        void sendStatus(job.jobId, { state: "released", reason });
        awaitRecovery();
        return;
      }
      log.error(`job ${job.jobId} failed: ${reason}`);
      // Not awaited: a broker that is away would hold the run, and with it `close()`, for ever.
      void sendStatus(job.jobId, { state: "failed", reason });
    } finally {
      // A result waiting for its `stored` keeps the job (and its lease).
      if (!entry.result) forget(job.jobId);
    }
  }

  function onJob(payload: Buffer) {
    const decoded = decode(JobMessageSchema, payload);
    if (!decoded.ok) return void log.warn(`dropped a malformed job: ${decoded.error}`);
    const job = decoded.value;
    if (held.has(job.jobId)) return;
    if (draining) return void sendStatus(job.jobId, { state: "released", reason: "the generator is shutting down" });
    const entry: HeldJob = { job, abort: new AbortController(), started: false };
    held.set(job.jobId, entry);
    scheduleHeartbeat();
    void sendStatus(job.jobId, { state: "accepted" });
    const running = run(entry, performance.now()).finally(() => runs.delete(running));
    runs.add(running);
  }

  function onControl(payload: Buffer) {
    const decoded = decode(ControlMessageSchema, payload);
    if (!decoded.ok) return void log.warn(`dropped a malformed control message: ${decoded.error}`);
    const control = decoded.value;
    const entry = control.jobId === undefined ? undefined : held.get(control.jobId);
    if (control.command === "refused") {
      log.warn(`the server refused what this generator sent on ${control.topic}: ${control.reason}`);
      // The server will not store this result (nor would it a copy): nothing to wait for.
      if (entry?.result && control.topic === topics.result(own, entry.job.jobId)) forget(entry.job.jobId);
      return;
    }
    if (!entry) return;
    if (control.command === "stored") {
      if (!entry.result) return void log.warn(`"stored" for job ${control.jobId}, which has no result yet: ignored`);
      log.info(`job ${control.jobId} stored by the server`);
      return forget(control.jobId);
    }
    log.info(`job ${control.jobId} cancelled by the server: ${control.reason}`);
    entry.abort.abort();
    forget(control.jobId);
  }

  client.on("message", (topic, payload) => {
    if (topic === topics.jobs(own)) onJob(payload);
    else if (topic === topics.control(own)) onControl(payload);
  });

  client.on("connect", () => {
    sendAtOnce(client);
    // Subscribe on every connect (clean sessions), then say what is held, then send again the
    // results not yet confirmed: the server (or broker) may have restarted without them.
    client
      .subscribeAsync([topics.jobs(own), topics.control(own)], { qos: CONTRACT_QOS })
      .then(announce)
      .then(() => awaitingStored().forEach(sendResult))
      .then(() => log.info(`generator ${own} online at ${redact(config.mqttUrl)} (backend: ${backend.name}, concurrency ${config.concurrency})`))
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
    generatorId: own,
    backend: backend.name,
    async close() {
      draining = true;
      closing.abort();
      // Jobs still waiting go back to the server now; the running ones are finished.
      const waiting = [...held.values()].filter((entry) => !entry.started);
      for (const entry of waiting) {
        entry.abort.abort();
        forget(entry.job.jobId);
      }
      // Not awaited: publishes resolve on the broker's PUBACK, which never comes while it is away
      // (or has revoked this generator). MQTT keeps their order: no new jobs, then these back.
      if (client.connected) {
        void announce().catch(notSent("presence"));
        for (const entry of waiting) void sendStatus(entry.job.jobId, { state: "released", reason: "the generator is shutting down" });
      }
      await Promise.all(runs);
      // After the backend calls, everything has a deadline.
      const deadline = new Promise<false>((resolve) => setTimeout(() => resolve(false), config.drainMs).unref());
      const withDeadline = (work: Promise<unknown>) => Promise.race([work.then(() => true, () => false), deadline]);
      if (awaitingStored().length) await withDeadline(new Promise<void>((resolve) => (allStored = resolve)));
      const unconfirmed = awaitingStored().map((entry) => entry.job.jobId);
      if (unconfirmed.length) {
        log.warn(
          `stopping without the server's confirmation for the results of job(s) ${unconfirmed.join(", ")} (waited ${config.drainMs / 1000} s); the server puts their jobs back in line if it does not have them`,
        );
      }
      for (const entry of held.values()) clearTimeout(entry.resend);
      clearInterval(heartbeat);
      const saidOffline = client.connected && (await withDeadline(publish(topics.presence(own), PresenceMessageSchema, offline())));
      // A clean end waits for the PUBACK of everything in flight, which may never come.
      await client.endAsync(!saidOffline || unconfirmed.length > 0);
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
