/**
 * Only the server writes to a generator's `jobs` and `control` topics (ADR 008). The server
 * publishes through the broker's own API (client === null), so a network client publishing
 * there is an impostor trying to inject work no admin approved, or to cancel another's job:
 * Aedes closes its connection.
 *
 * Per-generator credentials and topic rights are a later step (README roadmap).
 */
import type { AedesOptions } from "aedes";
import { parseGeneratorTopic } from "./contract";

const SERVER_ONLY = new Set(["jobs", "control"]);

export const authorizePublish: NonNullable<AedesOptions["authorizePublish"]> = (client, packet, callback) => {
  const kind = parseGeneratorTopic(packet.topic)?.kind;
  if (client && kind && SERVER_ONLY.has(kind)) {
    callback(new Error(`client ${client.id} may not publish on ${packet.topic}`));
    return;
  }
  callback(null);
};
