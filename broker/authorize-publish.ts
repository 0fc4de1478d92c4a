/**
 * Only the server may publish jobs. The server publishes through the broker's own API
 * (client === null), so a network client publishing on the jobs topic is an impostor
 * trying to inject work that no admin approved: Aedes closes its connection.
 *
 * Full authentication and per-generator ACLs are a later step (README roadmap).
 */
import type { AedesOptions } from "aedes";
import { topics } from "./contract";

export const authorizePublish: NonNullable<AedesOptions["authorizePublish"]> = (client, packet, callback) => {
  if (client && packet.topic === topics.jobs) {
    callback(new Error(`client ${client.id} may not publish on ${topics.jobs}`));
    return;
  }
  callback(null);
};
