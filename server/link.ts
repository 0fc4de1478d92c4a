/**
 * The server's end of the MQTT link (ADR 008): it leases each job to one generator and
 * publishes it on that generator's topic, keeps leases alive with the holder's heartbeats and
 * statuses, takes results only from the holder, and puts a job back in line when its lease ends
 * (expiry, release, the holder going offline). Whatever it does not take from a generator is
 * answered with a `refused` on that generator's control topic (docs/protocol.md).
 */
import type { Aedes } from "aedes";
import {
  CONTRACT_QOS,
  ContractError,
  ControlMessageSchema,
  GeneratorIdSchema,
  HeartbeatMessageSchema,
  JobMessageSchema,
  PresenceMessageSchema,
  ProgressMessageSchema,
  REFUSAL_REASON_MAX,
  ResultMessageSchema,
  SCHEMA_VERSION,
  STATUS_REASON_MAX,
  StatusMessageSchema,
  decode,
  encode,
  parseGeneratorTopic,
  topics,
  type ControlMessage,
  type JobMessage,
  type StatusMessage,
} from "../broker/contract";
import { chooseGenerator, type DispatchCandidate } from "./domain/dispatch";
import type { JobService } from "./domain/jobs";
import type { ProgressBoard } from "./domain/progress";
import { createRateLimiter } from "./domain/rate-limit";
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
  /** Jobs failed in a row (reset by a stored result). */
  failuresInARow: number;
  /** When it last failed a job (ms since the epoch), 0 if never. */
  lastFailureAt: number;
}

/** A generator as the admin sees it: its presence, and the prompts it is working on. */
export interface GeneratorView extends GeneratorPresence {
  workingOn: number[];
}

export interface Link {
  /** Leases jobs in line to generators with free slots; call after new jobs are approved. Coalesces calls. */
  dispatch(): Promise<void>;
  generators(): GeneratorView[];
  /** Tells `generatorId` to stop working on `jobId` (cancelled); its work on other jobs goes on. */
  cancel(generatorId: string, jobId: string, reason: string): Promise<void>;
  /** Stops the lease timer and the offlines being weighed. */
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
  /**
   * For a transport that can lose the broker (and the broker its clients): calls `listener`
   * with false when the connection is lost, true when it is back. Absent: the broker lives and
   * dies with the server.
   */
  onConnectionChange?(listener: (connected: boolean) => void): void;
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
  /** Called whenever what `generators()` shows may have changed; may be called when it has not. */
  onChange: () => void;
  /** Where the lease holders' progress reports go. */
  progress: ProgressBoard;
}

/** Failed jobs in a row after which a generator is used only when no sound one can make a job… */
const FAILING_AFTER = 2;
/** …for this long after its last failure; then it gets a job again, to see whether it recovered. */
const FAILING_FOR_MS = 60_000;

/** Why a generator that missed its heartbeats gets no jobs. */
const SILENT = "stopped sending heartbeats";

/**
 * A job sent to a generator this recently may still be on its way to it: a presence that does
 * not list it was published before it arrived, so its lease stays. Without this, a burst of
 * "online" presences would release and re-send the same jobs again and again. If the generator
 * really lost it, its heartbeats do not list it and the lease runs out.
 */
const IN_FLIGHT_GRACE_MS = 2000;

/**
 * An `offline` that arrives this close to the server losing or regaining the broker is most
 * likely a will the broker published because it stopped, not because the generator did: the
 * generator's leases decide instead (ADR 008, "broker restarts"). It is weighed this long after it
 * arrives, since the server's own connection drops a moment after the broker sent the wills.
 */
const BROKER_SETTLE_MS = 2000;

/** Weight of the newest measurement in a generator's moving average of seconds per megapixel. */
const SPEED_SMOOTHING = 0.3;

/** Why a well-formed result was not taken, as its generator is told. */
const IGNORED_RESULT: Record<"duplicate" | "stale" | "cancelled" | "unknown-job" | "not-holder", string> = {
  duplicate: "the job already has its image",
  cancelled: "the job was cancelled: its image is no longer wanted",
  stale: "the job was replaced (its prompt was retried): this result is no longer wanted",
  "unknown-job": "no such job",
  "not-holder": "the lease on this job is not yours (it ran out, or the job went to another generator)",
};

/** Refusals one generator id is sent per second (after a burst as large); a flood of garbage past it is only logged. */
const REFUSALS_PER_SECOND = 5;

export async function connectLink(transport: LinkTransport, jobService: JobService, log: Logger, options: LinkOptions): Promise<Link> {
  const registry = new Map<string, GeneratorPresence>();
  /** Each generator's session, from its latest `online`: only an `offline` of that session counts. */
  const sessions = new Map<string, string>();
  /** Offlines being weighed (settleOffline): dropped when the link closes. */
  const settling = new Set<NodeJS.Timeout>();

  /** When the server last lost or regained the broker (performance.now()), and whether it has it. */
  let brokerChangedAt = -Infinity;
  let brokerConnected = true;
  transport.onConnectionChange?.((connected) => {
    brokerConnected = connected;
    brokerChangedAt = performance.now();
    // Jobs whose publish failed while the broker was away are not lost (leases), but need not wait.
    if (connected) void dispatch();
  });

  /** Rejects with a ContractError, before anything is sent, when the message does not fit the contract. */
  const publish = async (topic: string, message: { job: JobMessage } | { control: ControlMessage }) =>
    transport.publish(topic, "job" in message ? encode(JobMessageSchema, message.job) : encode(ControlMessageSchema, message.control));

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
    return publish(topics.control(generatorId), { control: { schemaVersion: SCHEMA_VERSION, command: "cancel", jobId, reason } }).catch((error) =>
      log.warn(`cancel of job ${jobId} for ${generatorId} not sent: ${error}`),
    );
  };

  /** Fails a job that `generatorId` holds, as if it had said so; nothing else would ever finish it. */
  function failOnBehalfOf(generatorId: string, jobId: string, reason: string) {
    const failed: StatusMessage = { schemaVersion: SCHEMA_VERSION, jobId, generatorId, state: "failed", reason: reason.slice(0, STATUS_REASON_MAX), at: new Date().toISOString() };
    const outcome = jobService.applyStatus(failed, generatorId, anotherCanTry);
    if (outcome !== "applied" && outcome !== "retried") return;
    log.warn(outcome === "retried" ? `job ${jobId}: ${reason}; trying another generator` : `job ${jobId} failed: ${reason}`);
    recordError(generatorId, reason);
    void dispatch();
  }

  /** Whether a generator other than those that failed a job could make it: then a failure moves it, not fails it. */
  function anotherCanTry(failedOn: string[], job: { width: number; height: number }): boolean {
    const others = candidates().filter((generator) => !failedOn.includes(generator.generatorId));
    return others.length > 0 && chooseGenerator(job, others).kind !== "blocked";
  }

  /** Refusals per generator id: a burst, then REFUSALS_PER_SECOND; a bounded number of ids is remembered. */
  const refusals = createRateLimiter({ limit: REFUSALS_PER_SECOND, windowMs: 1000 }, Date.now, 1000);

  /**
   * Tells the generator of `topic` why the server did not take what it sent there (the caller
   * logs it), on its control topic, so a generator never believes it delivered what was dropped.
   * Only topics of the contract (a valid generator id; a job id that is one) get an answer, at
   * most a burst of REFUSALS_PER_SECOND and then REFUSALS_PER_SECOND a second per generator id.
   */
  function refuse(topic: string, reason: string) {
    const named = parseGeneratorTopic(topic);
    if (!named || !GeneratorIdSchema.safeParse(named.generatorId).success) return;
    const jobId = named.jobId ?? undefined;
    if (jobId !== undefined && !JobMessageSchema.shape.jobId.safeParse(jobId).success) return;
    if (refusals.take(named.generatorId) > 0) return;
    const control: ControlMessage = { schemaVersion: SCHEMA_VERSION, command: "refused", topic, jobId, reason: reason.slice(0, REFUSAL_REASON_MAX) };
    void publish(topics.control(named.generatorId), { control }).catch((error) => log.warn(`refusal for ${topic} not sent: ${error}`));
  }

  const candidates = (): DispatchCandidate[] =>
    [...registry.values()]
      .filter((generator) => generator.state === "online" && generator.healthy && (generator.concurrency ?? 0) > 0)
      .map((generator) => ({
        generatorId: generator.generatorId,
        local: generator.local,
        freeSlots: generator.concurrency! - jobService.busyWith(generator.generatorId),
        maxPixels: generator.maxPixels!,
        secondsPerMegapixel: generator.secondsPerMegapixel,
        failing: generator.failuresInARow >= FAILING_AFTER && Date.now() - generator.lastFailureAt < FAILING_FOR_MS,
      }));

  /** Blocked reasons already written, so a pass rewrites only what changed. */
  const blocked = new Map<string, string>();

  async function dispatchOnce() {
    const online = candidates();
    if (!online.length) return;
    const planned: Array<{ generatorId: string; jobId: string }> = [];
    // Enough of the line to fill every free slot even past jobs nobody can make.
    const line = jobService.queued(Math.max(100, online.reduce((sum, generator) => sum + Math.max(0, generator.freeSlots), 0) * 4));
    for (const job of line) {
      const choice = chooseGenerator(job, online.filter((generator) => !job.failedOn.includes(generator.generatorId)));
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
      online.find((generator) => generator.generatorId === choice.generatorId)!.freeSlots--;
      planned.push({ generatorId: choice.generatorId, jobId: job.jobId });
    }
    // One transaction for the whole pass. The line was read in this same synchronous stretch, so
    // every grant normally holds; a job that left the line meanwhile frees its slot for one more pass.
    const granted = jobService.grantLeases(planned);
    if (granted.length < planned.length) again = true;
    for (const { generatorId, jobId } of granted) cancelled.get(generatorId)?.delete(jobId);
    const messages = new Map(jobService.messagesFor(granted.map((grant) => grant.jobId)).map((message) => [message.jobId, message]));
    for (const { generatorId, jobId } of granted) {
      // A lost publish (the generator just dropped) is recovered by the lease: it expires, or the
      // generator does not list the job when it comes back. A job that breaks the contract would
      // be refused by every generator, lease after lease: it fails at once, with the reason.
      await publish(topics.jobs(generatorId), { job: messages.get(jobId)! }).catch((error) => {
        if (!(error instanceof ContractError)) return log.warn(`job ${jobId} for ${generatorId} not sent: ${error}`);
        log.error(`job ${jobId} cannot be sent: ${error.message}`);
        failOnBehalfOf(generatorId, jobId, `the job cannot be sent to a generator: ${error.message}`);
      });
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
        await dispatchOnce().catch((error) => log.error(`dispatch failed: ${(error as Error).stack ?? error}`));
      } while (again);
      // In the same microtask as the last look at `again`: a call in between would be lost.
      running = null;
      options.onChange();
    })();
    return running;
  }

  /** Releases every lease of a generator that went away; its jobs go back in line. */
  function releaseAllOf(generatorId: string, why: string) {
    const released = jobService.leasesOf(generatorId).filter(({ jobId }) => jobService.release(jobId, generatorId));
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
    for (const { jobId } of jobService.leasesOf(generatorId, new Date(Date.now() - IN_FLIGHT_GRACE_MS))) {
      if (!listed.has(jobId) && jobService.release(jobId, generatorId)) log.info(`job ${jobId} back in line: ${generatorId} no longer has it`);
    }
    for (const jobId of listed) {
      const holder = jobService.holderOf(jobId);
      if (holder === null && !dropped?.has(jobId) && jobService.grantLeases([{ jobId, generatorId }]).length) continue;
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
        .catch((error) => log.error(`handling ${topic} failed: ${(error as Error).stack ?? error}`))
        .finally(options.onChange);
    });

  function recordError(generatorId: string, reason: string) {
    const generator = registry.get(generatorId);
    if (!generator) return;
    generator.lastError = reason;
    generator.failuresInARow++;
    generator.lastFailureAt = Date.now();
  }

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
    if (!message.ok || problem) {
      log.warn(`dropped a malformed presence on ${packet.topic}: ${problem}`);
      return refuse(packet.topic, `malformed presence: ${problem}`);
    }
    const value = message.value;
    log.debug(`presence of ${generatorId}: ${value.state}`);
    const known = registry.get(generatorId);
    if (value.state === "offline" && (known?.state !== "online" || sessions.get(generatorId) !== value.session)) {
      // A will from an earlier run (a restarted broker replays it), or a repeat: the generator
      // running now, if any, is not affected.
      if (known?.state === "online") log.info(`ignored an "offline" of ${generatorId} from session ${value.session} (sent ${value.at}): it runs as session ${sessions.get(generatorId)}`);
      return;
    }
    if (value.state === "online") sessions.set(generatorId, value.session);
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
      failuresInARow: known?.failuresInARow ?? 0,
      lastFailureAt: known?.lastFailureAt ?? 0,
    };
    registry.set(generatorId, presence);
    if (known?.state !== value.state || known.healthy !== presence.healthy) {
      log.info(`generator ${generatorId} is ${value.state}${value.state === "online" && !value.healthy ? ` but unhealthy (${value.reason ?? "no reason given"})` : ""}`);
    }
    if (value.state === "online") reconcile(generatorId, value.inFlight);
    else if (!transport.onConnectionChange) releaseAllOf(generatorId, "it went offline");
    else settleOffline(generatorId, value.session, known!);
    void dispatch();
  });

  /**
   * An `offline` through a broker that may restart (a will published as it stops, delivered
   * before the server's own connection drops, or queued for the server and delivered right after
   * it reconnects): while the broker was in doubt around it, the generator is taken as still
   * online and its leases decide (it reconnects and lists its jobs, or they run out); otherwise
   * its jobs go back in line.
   */
  function settleOffline(generatorId: string, session: string, before: GeneratorPresence) {
    const arrived = performance.now();
    const timer = setTimeout(() => {
      settling.delete(timer);
      const current = registry.get(generatorId);
      // Back meanwhile (reconciled), or gone for good by another way.
      if (current?.state !== "offline" || sessions.get(generatorId) !== session) return;
      if (brokerConnected && brokerChangedAt < arrived - BROKER_SETTLE_MS) {
        releaseAllOf(generatorId, "it went offline");
        return void dispatch();
      }
      log.info(`generator ${generatorId}'s "offline" came as the broker restarted: taken as still online; its leases decide`);
      const { state, concurrency, healthy, reason, since } = before;
      Object.assign(current, { state, concurrency, healthy, reason, since });
    }, BROKER_SETTLE_MS);
    settling.add(timer);
  }

  await subscribe(topics.heartbeatWildcard, (packet, generatorId) => {
    const message = decode(HeartbeatMessageSchema, packet.payload);
    const problem = message.ok ? mismatch(message.value, generatorId, null) : message.error;
    if (!message.ok || problem) {
      log.warn(`dropped a malformed heartbeat on ${packet.topic}: ${problem}`);
      return refuse(packet.topic, `malformed heartbeat: ${problem}`);
    }
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
    if (!status.ok || problem) {
      log.warn(`dropped a malformed status on ${packet.topic}: ${problem}`);
      return refuse(packet.topic, `malformed status: ${problem}`);
    }
    const value = status.value;
    heard(generatorId);
    const outcome = jobService.applyStatus(value, generatorId, anotherCanTry);
    if (outcome === "not-holder") {
      log.warn(`ignored "${value.state}" for job ${value.jobId} from ${generatorId}, which does not hold its lease`);
      // A cancel answers a generator still working on the job; a refusal answers the rest.
      if (value.state !== "failed" && value.state !== "released") void cancel(generatorId, value.jobId, "the lease on this job is not yours");
      else refuse(packet.topic, "the lease on this job is not yours");
      return;
    }
    if (outcome === "finished") {
      log.info(`ignored "${value.state}" for job ${value.jobId} from ${generatorId}: the job is finished or unknown`);
      return refuse(packet.topic, "the job is finished or unknown");
    }
    if (outcome === "retried" && value.state === "failed") {
      log.warn(`job ${value.jobId} failed on ${generatorId} (${value.reason}); trying another generator`);
      recordError(generatorId, value.reason);
      return void dispatch();
    }
    if (value.state === "failed") {
      log.warn(`job ${value.jobId} failed on ${generatorId}: ${value.reason}`);
      recordError(generatorId, value.reason);
    }
    if (value.state === "released") log.info(`job ${value.jobId} handed back by ${generatorId} (${value.reason}); back in line`);
    if (value.state === "failed" || value.state === "released") void dispatch();
  });

  await subscribe(topics.resultWildcard, async (packet, generatorId, jobId) => {
    const result = decode(ResultMessageSchema, packet.payload);
    const problem = result.ok ? mismatch(result.value, generatorId, jobId) : result.error;
    if (!result.ok || problem) {
      log.warn(`dropped a malformed result on ${packet.topic}: ${problem}`);
      refuse(packet.topic, `malformed result: ${problem}`);
      if (jobId) failOnBehalfOf(generatorId, jobId, `the result from ${generatorId} was refused: malformed result: ${problem}`);
      return;
    }
    const value = result.value;
    const storing = jobService.storeResult(value, generatorId);
    // The generator's slot is free once its result is here: its next job goes out while this one
    // is written. This pass is the only one a result needs: however the store ends, it frees no
    // further slot (a refused result fails the job, and that dispatches).
    void dispatch();
    const { outcome, reason } = await storing;
    if (outcome === "stored" || outcome === "already-stored") {
      // After the commit: until it hears this, the generator keeps the result and sends it again.
      void publish(topics.control(generatorId), { control: { schemaVersion: SCHEMA_VERSION, command: "stored", jobId: value.jobId } }).catch((error) =>
        log.warn(`"stored" for job ${value.jobId} not sent to ${generatorId}: ${error}`),
      );
    }
    if (outcome === "already-stored") {
      log.info(`job ${value.jobId} stored already: ${generatorId} sent its result again, and is told so again`);
    } else if (outcome === "storing") {
      log.info(`ignored a second result for job ${value.jobId} from ${generatorId}, which arrived while the first is stored`);
    } else if (outcome === "stored") {
      log.info(`job ${value.jobId} stored (${generatorId}, ${value.backend}, ${Math.round(value.timing.generationMs)} ms)`);
      const generator = registry.get(generatorId);
      if (generator) {
        generator.jobsDone++;
        generator.failuresInARow = 0;
        const seconds = value.timing.generationMs / 1000 / ((value.width * value.height) / 1_000_000);
        generator.secondsPerMegapixel = generator.secondsPerMegapixel === null ? seconds : generator.secondsPerMegapixel * (1 - SPEED_SMOOTHING) + seconds * SPEED_SMOOTHING;
      }
    } else if (outcome === "rejected") {
      log.warn(`job ${value.jobId} rejected: ${reason}`);
      refuse(packet.topic, reason!);
      failOnBehalfOf(generatorId, value.jobId, `the result from ${generatorId} was refused: ${reason}`);
    } else {
      log.info(`ignored a ${outcome} result for job ${value.jobId} from ${generatorId}`);
      refuse(packet.topic, IGNORED_RESULT[outcome]);
    }
  });

  // Progress is a courtesy at QoS 0 (contract.ts): only the holder's counts; anything else is
  // dropped without a refusal, since a generator sends two a second and needs no answer to any.
  await transport.subscribe(topics.progressWildcard, async (topic, payload) => {
    const named = parseGeneratorTopic(topic);
    if (!named?.jobId) return;
    const progress = decode(ProgressMessageSchema, payload);
    const problem = progress.ok ? mismatch(progress.value, named.generatorId, named.jobId) : progress.error;
    if (!progress.ok || problem) return log.debug(`dropped a malformed progress on ${topic}: ${problem}`);
    const promptId = jobService.promptHeldBy(named.jobId, named.generatorId);
    if (promptId === null) return;
    const { step, steps, fraction, etaSeconds } = progress.value;
    options.progress.report(named.jobId, promptId, { step, steps, fraction, etaSeconds: etaSeconds ?? null });
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
    cancel,
    generators: () => [...registry.values()].map((generator) => ({ ...generator, workingOn: jobService.leasesOf(generator.generatorId).map((lease) => lease.promptId) })),
    close: () => {
      clearInterval(sweep);
      for (const timer of settling) clearTimeout(timer);
    },
  };
}
