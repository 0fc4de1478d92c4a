/**
 * The server's end of the MQTT link, on the embedded broker's own API: it publishes jobs
 * (QoS 1) and consumes status, results and presence. Using the broker's API, not a network
 * client, means the server's subscriptions exist before the broker accepts any connection,
 * so a result that a generator re-sends right after a restart always has a receiver.
 *
 * Aedes 1.2 PUBACKs a QoS 1 publish before delivering it, so a crash in that instant can
 * lose a result the generator believes delivered. The job is then still unfinished in the
 * database and is re-sent when the generator announces itself again: generated twice, never
 * lost. (Exactly-once delivery with leases is a roadmap item.)
 */
import type { Aedes, AedesPublishPacket } from "aedes";
import {
  CONTRACT_QOS,
  PresenceMessageSchema,
  ResultMessageSchema,
  StatusMessageSchema,
  decode,
  encode,
  topicTail,
  topics,
  type JobMessage,
} from "../broker/contract";
import type { JobService } from "./domain/jobs";
import type { Logger } from "./logger";

export interface GeneratorPresence {
  generatorId: string;
  state: "online" | "offline";
  backend: string | null;
  concurrency: number | null;
  since: string;
}

export interface Link {
  /** Publishes the given jobs (after their transaction committed). */
  publish(jobIds: string[]): Promise<void>;
  /** Publishes every job without a result, except those listed. */
  republishUnfinished(except?: string[]): Promise<number>;
  generators(): GeneratorPresence[];
}

export async function connectLink(aedes: Aedes, jobService: JobService, log: Logger): Promise<Link> {
  const presence = new Map<string, GeneratorPresence>();

  const publishMessages = async (messages: JobMessage[]) => {
    for (const message of messages) {
      await new Promise<void>((resolve, reject) =>
        aedes.publish(
          { cmd: "publish", topic: topics.jobs, payload: encode(message), qos: CONTRACT_QOS, retain: false, dup: false },
          (error) => (error ? reject(error) : resolve()),
        ),
      );
    }
    jobService.markPublished(messages.map((message) => message.jobId));
    return messages.length;
  };

  const link: Link = {
    async publish(jobIds) {
      await publishMessages(jobService.messagesFor(jobIds));
    },
    republishUnfinished: (except = []) => publishMessages(jobService.unfinished(except)),
    generators: () => [...presence.values()],
  };

  /** Subscribes `handle` to `topic`; a failing handler is logged (the message was already acked). */
  const subscribe = (topic: string, handle: (packet: AedesPublishPacket) => void | Promise<void>) =>
    new Promise<void>((resolve) =>
      aedes.subscribe(
        topic,
        (packet, done) => {
          Promise.resolve()
            .then(() => handle(packet))
            .catch((error) => log.error(`handling ${packet.topic} failed: ${(error as Error).stack ?? error}`))
            .finally(done);
        },
        resolve,
      ),
    );

  await subscribe(topics.statusWildcard, (packet) => {
    const status = decode(StatusMessageSchema, packet.payload as Buffer);
    if (!status.ok || status.value.jobId !== topicTail(packet.topic)) {
      log.warn(`dropped a malformed status on ${packet.topic}: ${status.ok ? "jobId does not match the topic" : status.error}`);
      return;
    }
    if (jobService.applyStatus(status.value) && status.value.state === "failed") {
      log.warn(`job ${status.value.jobId} failed on ${status.value.generatorId}: ${status.value.reason}`);
    }
  });

  await subscribe(topics.resultWildcard, async (packet) => {
    const result = decode(ResultMessageSchema, packet.payload as Buffer);
    if (!result.ok || result.value.jobId !== topicTail(packet.topic)) {
      log.warn(`dropped a malformed result on ${packet.topic}: ${result.ok ? "jobId does not match the topic" : result.error}`);
      return;
    }
    const { outcome, reason } = await jobService.storeResult(result.value);
    if (outcome === "stored") log.info(`job ${result.value.jobId} stored (${result.value.backend}, ${Math.round(result.value.timing.generationMs)} ms)`);
    else if (outcome === "rejected") log.warn(`job ${result.value.jobId} rejected: ${reason}`);
    else log.info(`ignored a ${outcome} result for job ${result.value.jobId}`);
  });

  await subscribe(topics.presenceWildcard, (packet) => {
    const message = decode(PresenceMessageSchema, packet.payload as Buffer);
    if (!message.ok || message.value.generatorId !== topicTail(packet.topic)) {
      log.warn(`dropped a malformed presence on ${packet.topic}: ${message.ok ? "generatorId does not match the topic" : message.error}`);
      return;
    }
    const value = message.value;
    presence.set(value.generatorId, {
      generatorId: value.generatorId,
      state: value.state,
      backend: value.state === "online" ? value.backend : (presence.get(value.generatorId)?.backend ?? null),
      concurrency: value.state === "online" ? value.concurrency : null,
      since: new Date().toISOString(),
    });
    log.info(`generator ${value.generatorId} is ${value.state}`);
    const online = [...presence.values()].filter((generator) => generator.state === "online");
    if (value.state === "online" && online.length > 1) {
      // No shared subscriptions in Aedes: each generator receives every job; the first result wins.
      log.warn(
        `${online.length} generators online (${online.map((g) => g.generatorId).join(", ")}): each receives every job and the first result wins; ` +
          "with a GPU generator, start promptgate with LOCAL_GENERATOR=false",
      );
    }
    if (value.state === "online") {
      // The broker may have restarted since the job was published (its sessions are in memory):
      // whatever this generator does not hold goes out again; generators de-duplicate by jobId.
      void link
        .republishUnfinished(value.inFlight)
        .then((count) => count && log.info(`re-sent ${count} unfinished job(s) for ${value.generatorId}`))
        .catch((error) => log.error(`re-sending unfinished jobs failed: ${error}`));
    }
  });

  return link;
}
