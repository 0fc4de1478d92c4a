/**
 * A generator writes only under its own name (ADR 008, issue 7 §4): its presence, heartbeat, and
 * the status, result and progress of a job. `jobs` and `control` are the server's, which publishes through
 * the broker's own API (client === null). Whether the job is leased to it is the link's check
 * (server/link.ts ignores non-holders). Anything else is refused, and Aedes closes the connection.
 */
import type { AedesOptions } from "aedes";
import { generatorOfClientId, parseGeneratorTopic, type GeneratorTopicKind } from "./contract";
import type { BrokerLog } from "./index";

const GENERATOR_WRITES = new Set<GeneratorTopicKind>(["presence", "heartbeat", "status", "results", "progress"]);

export function createAuthorizePublish(log: BrokerLog): NonNullable<AedesOptions["authorizePublish"]> {
  return (client, packet, callback) => {
    if (!client) return callback(null);
    const named = parseGeneratorTopic(packet.topic);
    if (named && named.generatorId === generatorOfClientId(client.id) && GENERATOR_WRITES.has(named.kind)) return callback(null);
    log.warn(`MQTT client ${client.id} may not publish on ${packet.topic}: disconnected`);
    callback(new Error(`client ${client.id} may not publish on ${packet.topic}`));
  };
}
