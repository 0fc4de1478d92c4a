/**
 * A generator reads only what the server sends it: its own `jobs` and `control` topics (issue 7
 * §4). Any other filter (another's jobs, results, wildcards) gets SUBACK 0x80 [MQTT-3.9.3]; the
 * connection stays, so a generator with a stray subscription keeps working.
 */
import type { AedesOptions } from "aedes";
import { generatorOfClientId, topics } from "./contract";
import type { BrokerLog } from "./index";

export function createAuthorizeSubscribe(log: BrokerLog): NonNullable<AedesOptions["authorizeSubscribe"]> {
  return (client, subscription, callback) => {
    const name = generatorOfClientId(client.id);
    if (subscription.topic === topics.jobs(name) || subscription.topic === topics.control(name)) return callback(null, subscription);
    log.warn(`MQTT client ${client.id} may not subscribe to ${subscription.topic}: refused`);
    callback(null, null);
  };
}
