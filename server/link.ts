/**
 * The server's end of the MQTT link (ADR 008): it leases each job to one generator and
 * publishes it on that generator's topic, keeps leases alive with the holder's heartbeats and
 * statuses, takes results only from the holder, and puts a job back in line when its lease ends
 * (expiry, release, the holder going offline).
 */
import type { Aedes } from "aedes";
import {
  CONTRACT_QOS,
  HeartbeatMessageSchema,
  PresenceMessageSchema,
  ResultMessageSchema,
  SCHEMA_VERSION,
  StatusMessageSchema,
  decode,
  encode,
  parseGeneratorTopic,
  topics,
  type ControlMessage,
  type JobMessage,
} from "../broker/contract";
import { chooseGenerator, type DispatchCandidate } from "./domain/dispatch";
import type { JobService } from "./domain/jobs";
import type { Logger } from "./logger";

/** What the admin sees of a generator. */
export interface GeneratorPresence {
  generatorId: string;
  state: "online" | "offline";
  /** The server's built-in generator. */
  local: boolean;
  backend: string | null;
  concurrency: number | null;
  maxPixels: number | null;
  healthy: boolean;
  /** Why it is unhealthy, as it says. */
  reason: string | null;
  since: string;
  jobsDone: number;
  /** Measured seconds per megapixel (moving average), null before its first result. */
  secondsPerMegapixel: number | null;
  lastError: string | null;
}

export interface Link {
  /** Leases jobs in line to generators with free slots; call after new jobs are approved. Coalesces calls. */
  dispatch(): Promise<void>;
  generators(): GeneratorPresence[];
  /** Stops the lease timer. */
  close(): void;
}

/**
 * How the link reaches the broker: the embedded one through its own API (`aedesTransport`), or
 * any MQTT 3.1.1 broker as a client. Messages are QoS 1, never retained.
 */
export interface LinkTransport {
  publish(topic: string, payload: Buffer): Promise<void>;
  /** Delivers every message on `filter` to `handle`; a message counts as handled when its promise settles. */
  subscribe(filter: string, handle: (topic: string, payload: Buffer) => Promise<void>): Promise<void>;
}

/**
 * The embedded broker's own API: the server's subscriptions exist before the broker accepts any
 * connection, so nothing a generator sends right after a restart goes unheard.
 */
export function aedesTransport(aedes: Aedes): LinkTransport {
  return {
    publish: (topic, payload) =>
      new Promise<void>((resolve, reject) =>
        aedes.publish({ cmd: "publish", topic, payload, qos: CONTRACT_QOS, retain: false, dup: false }, (error) => (error ? reject(error) : resolve())),
      ),
    subscribe: (filter, handle) =>
      new Promise<void>((resolve) =>
        aedes.subscribe(filter, (packet, done) => void handle(packet.topic, packet.payload as Buffer).finally(done), resolve),
      ),
  };
}

export interface LinkOptions {
  /** The built-in generator's id, if there is one: it serves only while no other generator is online. */
  localGeneratorId: string | null;
  /** How often expired leases are looked for. */
  sweepMs: number;
}

/** Why a generator that missed its heartbeats gets no jobs. */
const SILENT = "stopped sending heartbeats";

/** Weight of the newest measurement in a generator's moving average of seconds per megapixel. */
const SPEED_SMOOTHING = 0.3;

export async function connectLink(transport: LinkTransport, jobService: JobService, log: Logger, options: LinkOptions): Promise<Link> {
  const registry = new Map<string, GeneratorPresence>();

  const publish = (topic: string, message: JobMessage | ControlMessage) => transport.publish(topic, encode(message));

  /**
   * Jobs each generator was told to drop, until it stops listing them: a presence it sent before
   * the cancel reached it (a broker restart makes this likely) must not lease them back to it.
   * Kept while it is offline too: a cancel sent then was lost, and is sent again when it lists the job.
   */
  const cancelled = new Map<string, Set<string>>();
  /** What a generator no longer lists, it has dropped. */
  function forgetDropped(generatorId: string, listed: string[]) {
    const dropped = cancelled.get(generatorId);
    for (const jobId of dropped ?? []) if (!listed.includes(jobId)) dropped!.delete(jobId);
  }

  /** Tells a generator to stop working on a job that is no longer its own. */
  const cancel = (generatorId: string, jobId: string, reason: string) => {
    cancelled.set(generatorId, (cancelled.get(generatorId) ?? new Set()).add(jobId));
    return publish(topics.control(generatorId), { schemaVersion: SCHEMA_VERSION, command: "cancel", jobId, reason }).catch((error) =>
      log.warn(`cancel of job ${jobId} for ${generatorId} not sent: ${error}`),
    );
  };

  const candidates = (): DispatchCandidate[] =>
    [...registry.values()]
      .filter((generator) => generator.state === "online" && generator.healthy && (generator.concurrency ?? 0) > 0)
      .map((generator) => ({
        generatorId: generator.generatorId,
        local: generator.local,
        freeSlots: generator.concurrency! - jobService.leasesOf(generator.generatorId).length,
        maxPixels: generator.maxPixels!,
        secondsPerMegapixel: generator.secondsPerMegapixel,
      }));

  /** Blocked reasons already written, so a pass rewrites only what changed. */
  const blocked = new Map<string, string>();

  async function dispatchOnce() {
    const online = candidates();
    if (!online.length) return;
    const granted: Array<{ generatorId: string; jobId: string }> = [];
    // Enough of the line to fill every free slot even past jobs nobody can make.
    const line = jobService.queued(Math.max(100, online.reduce((sum, generator) => sum + Math.max(0, generator.freeSlots), 0) * 4));
    for (const job of line) {
      const choice = chooseGenerator(job, online);
      if (choice.kind === "blocked") {
        if (blocked.get(job.jobId) !== choice.reason) {
          jobService.markBlocked(job.jobId, choice.reason);
          blocked.set(job.jobId, choice.reason);
        }
        continue;
      }
      if (blocked.delete(job.jobId)) jobService.markBlocked(job.jobId, null);
      if (choice.kind === "wait") {
        if (online.every((generator) => generator.freeSlots <= 0)) break;
        continue;
      }
      if (!jobService.grantLease(job.jobId, choice.generatorId)) continue;
      cancelled.get(choice.generatorId)?.delete(job.jobId);
      online.find((generator) => generator.generatorId === choice.generatorId)!.freeSlots--;
      granted.push({ generatorId: choice.generatorId, jobId: job.jobId });
    }
    const messages = new Map(jobService.messagesFor(granted.map((grant) => grant.jobId)).map((message) => [message.jobId, message]));
    for (const { generatorId, jobId } of granted) {
      // A lost publish (the generator just dropped) is recovered by the lease: it expires, or the
      // generator does not list the job when it comes back.
      await publish(topics.jobs(generatorId), messages.get(jobId)!).catch((error) => log.warn(`job ${jobId} for ${generatorId} not sent: ${error}`));
    }
    if (granted.length) log.debug(`leased ${granted.length} job(s): ${granted.map((grant) => `${grant.jobId}→${grant.generatorId}`).join(", ")}`);
  }

  let running: Promise<void> | null = null;
  let again = false;
  /** One pass at a time; calls during a pass make one more pass after it, never a pile of them. */
  function dispatch(): Promise<void> {
    if (running) {
      again = true;
      return running;
    }
    running = (async () => {
      do {
        again = false;
        await dispatchOnce();
      } while (again);
    })()
      .catch((error) => log.error(`dispatch failed: ${(error as Error).stack ?? error}`))
      .finally(() => {
        running = null;
      });
    return running;
  }

  /** Releases every lease of a generator that went away; its jobs go back in line. */
  function releaseAllOf(generatorId: string, why: string) {
    const released = jobService.leasesOf(generatorId).filter((jobId) => jobService.release(jobId, generatorId));
    if (released.length) log.info(`${released.length} job(s) of ${generatorId} back in line (${why})`);
  }

  /**
   * A generator (re)connected and lists what it holds: its own leases stay, an unleased unfinished
   * job is leased to it again (it is already working on it), anything else is cancelled; leases
   * it no longer knows about go back in line.
   */
  function reconcile(generatorId: string, inFlight: string[]) {
    const listed = new Set(inFlight);
    forgetDropped(generatorId, inFlight);
    const dropped = cancelled.get(generatorId);
    for (const jobId of jobService.leasesOf(generatorId)) {
      if (!listed.has(jobId) && jobService.release(jobId, generatorId)) log.info(`job ${jobId} back in line: ${generatorId} no longer has it`);
    }
    for (const jobId of listed) {
      const holder = jobService.holderOf(jobId);
      if (holder === null && !dropped?.has(jobId) && jobService.grantLease(jobId, generatorId)) continue;
      if (holder === generatorId) continue;
      void cancel(generatorId, jobId, holder === undefined ? "the job is finished or unknown" : holder === null ? "the job was taken back" : "the job went to another generator");
    }
    jobService.extendLeases(generatorId, inFlight);
  }

  /** Subscribes `handle` to a generator topic filter; a failing handler is logged, never thrown. */
  const subscribe = (filter: string, handle: (packet: { topic: string; payload: Buffer }, generatorId: string, jobId: string | null) => void | Promise<void>) =>
    transport.subscribe(filter, (topic, payload) => {
      const named = parseGeneratorTopic(topic);
      return Promise.resolve()
        .then(() => (named ? handle({ topic, payload }, named.generatorId, named.jobId) : undefined))
        .catch((error) => log.error(`handling ${topic} failed: ${(error as Error).stack ?? error}`));
    });

  /** A generator marked silent that speaks again is back in service. */
  function heard(generatorId: string) {
    const generator = registry.get(generatorId);
    if (generator?.reason !== SILENT || generator.state !== "online") return;
    Object.assign(generator, { healthy: true, reason: null });
    log.info(`generator ${generatorId} is sending heartbeats again`);
    void dispatch();
  }

  /** The topic names the generator (and job); a payload that names another is malformed. */
  const mismatch = (payload: { generatorId: string; jobId?: string }, generatorId: string, jobId: string | null) =>
    payload.generatorId !== generatorId ? "generatorId does not match the topic" : jobId !== null && payload.jobId !== jobId ? "jobId does not match the topic" : null;

  await subscribe(topics.presenceWildcard, (packet, generatorId) => {
    const message = decode(PresenceMessageSchema, packet.payload);
    const problem = message.ok ? mismatch(message.value, generatorId, null) : message.error;
    if (!message.ok || problem) return void log.warn(`dropped a malformed presence on ${packet.topic}: ${problem}`);
    const value = message.value;
    log.debug(`presence of ${generatorId}: ${value.state}`);
    const known = registry.get(generatorId);
    const presence: GeneratorPresence = {
      generatorId,
      state: value.state,
      local: generatorId === options.localGeneratorId,
      backend: value.state === "online" ? value.backend : (known?.backend ?? null),
      concurrency: value.state === "online" ? value.concurrency : null,
      maxPixels: value.state === "online" ? value.maxPixels : (known?.maxPixels ?? null),
      healthy: value.state === "online" ? value.healthy : false,
      reason: value.state === "online" ? (value.reason ?? null) : null,
      since: known?.state === value.state ? known.since : new Date().toISOString(),
      jobsDone: known?.jobsDone ?? 0,
      secondsPerMegapixel: known?.secondsPerMegapixel ?? null,
      lastError: known?.lastError ?? null,
    };
    registry.set(generatorId, presence);
    if (known?.state !== value.state || known.healthy !== presence.healthy) {
      log.info(`generator ${generatorId} is ${value.state}${value.state === "online" && !value.healthy ? ` but unhealthy (${value.reason ?? "no reason given"})` : ""}`);
    }
    if (value.state === "online") reconcile(generatorId, value.inFlight);
    else releaseAllOf(generatorId, "it went offline");
    void dispatch();
  });

  await subscribe(topics.heartbeatWildcard, (packet, generatorId) => {
    const message = decode(HeartbeatMessageSchema, packet.payload);
    const problem = message.ok ? mismatch(message.value, generatorId, null) : message.error;
    if (!message.ok || problem) return void log.warn(`dropped a malformed heartbeat on ${packet.topic}: ${problem}`);
    heard(generatorId);
    forgetDropped(generatorId, message.value.jobIds);
    jobService.extendLeases(generatorId, message.value.jobIds);
    // A job it still works on but no longer holds (its lease ran out): stop the wasted work.
    for (const jobId of message.value.jobIds) {
      if (jobService.holderOf(jobId) !== generatorId) void cancel(generatorId, jobId, "the lease on this job has ended");
    }
  });

  await subscribe(topics.statusWildcard, (packet, generatorId, jobId) => {
    const status = decode(StatusMessageSchema, packet.payload);
    const problem = status.ok ? mismatch(status.value, generatorId, jobId) : status.error;
    if (!status.ok || problem) return void log.warn(`dropped a malformed status on ${packet.topic}: ${problem}`);
    const value = status.value;
    heard(generatorId);
    const outcome = jobService.applyStatus(value, generatorId);
    if (outcome === "not-holder") {
      log.warn(`ignored "${value.state}" for job ${value.jobId} from ${generatorId}, which does not hold its lease`);
      if (value.state !== "failed" && value.state !== "released") void cancel(generatorId, value.jobId, "the lease on this job is not yours");
      return;
    }
    if (outcome !== "applied") return;
    if (value.state === "failed") {
      log.warn(`job ${value.jobId} failed on ${generatorId}: ${value.reason}`);
      const generator = registry.get(generatorId);
      if (generator) generator.lastError = value.reason;
    }
    if (value.state === "released") log.info(`job ${value.jobId} handed back by ${generatorId} (${value.reason}); back in line`);
    if (value.state === "failed" || value.state === "released") void dispatch();
  });

  await subscribe(topics.resultWildcard, async (packet, generatorId, jobId) => {
    const result = decode(ResultMessageSchema, packet.payload);
    const problem = result.ok ? mismatch(result.value, generatorId, jobId) : result.error;
    if (!result.ok || problem) return void log.warn(`dropped a malformed result on ${packet.topic}: ${problem}`);
    const value = result.value;
    const { outcome, reason } = await jobService.storeResult(value, generatorId);
    if (outcome === "stored") {
      log.info(`job ${value.jobId} stored (${generatorId}, ${value.backend}, ${Math.round(value.timing.generationMs)} ms)`);
      const generator = registry.get(generatorId);
      if (generator) {
        generator.jobsDone++;
        const seconds = value.timing.generationMs / 1000 / ((value.width * value.height) / 1_000_000);
        generator.secondsPerMegapixel = generator.secondsPerMegapixel === null ? seconds : generator.secondsPerMegapixel * (1 - SPEED_SMOOTHING) + seconds * SPEED_SMOOTHING;
      }
    } else if (outcome === "rejected") {
      log.warn(`job ${value.jobId} rejected: ${reason}`);
    } else {
      log.info(`ignored a ${outcome} result for job ${value.jobId} from ${generatorId}`);
    }
    void dispatch();
  });

  const sweep = setInterval(() => {
    const expired = jobService.expireLeases();
    for (const { jobId, generatorId } of expired) {
      log.warn(`the lease of ${generatorId} on job ${jobId} ran out (no heartbeat); back in line`);
      void cancel(generatorId, jobId, "the lease ran out");
      // A silent generator gets nothing more until it speaks again (a heartbeat, status or presence).
      const generator = registry.get(generatorId);
      if (generator?.healthy) Object.assign(generator, { healthy: false, reason: SILENT });
    }
    if (expired.length) void dispatch();
  }, options.sweepMs);
  sweep.unref();

  return {
    dispatch,
    generators: () => [...registry.values()],
    close: () => clearInterval(sweep),
  };
}
