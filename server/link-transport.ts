/**
 * The link's transport to an external broker (MQTT_URL, ADR 009): an mqtt.js client with a
 * persistent session, so the server's subscriptions and the messages queued for it survive a
 * restart of the broker or of the server.
 */
import mqtt, { type IClientOptions, type MqttClient } from "mqtt";
import { CONTRACT_QOS } from "../broker/contract";
import { sendAtOnce } from "../generator/send-at-once";
import type { ExternalBrokerConfig } from "./env";
import type { LinkTransport } from "./link";
import type { Logger } from "./logger";
import { StartupError } from "./startup-error";

/** The server's MQTT client id: fixed, because the broker keeps its session under it. */
export const SERVER_CLIENT_ID = "promptgate-server";

/** Reconnection delays: doubled after each failed attempt up to the maximum, reset once connected. */
const FIRST_RETRY_MS = 250;
const MAX_RETRY_MS = 10_000;

/** CONNACK codes that no retry fixes: bad user name or password, not authorised (MQTT 3.1.1 and 5). */
const REFUSED = new Set([4, 5, 134, 135]);

export interface ExternalBrokerTransport extends LinkTransport {
  /** Resolves once connected; rejects with a StartupError when refused, or silent for the configured time. */
  connect(): Promise<void>;
  /** Told of every loss of the broker and every reconnection after it (not of the first connection). */
  onConnectionChange(listener: (connected: boolean) => void): void;
  close(): Promise<void>;
}

/** Whether an MQTT topic filter (with + and #) matches a topic. */
export function topicMatches(filter: string, topic: string): boolean {
  const wanted = filter.split("/");
  const levels = topic.split("/");
  for (let i = 0; i < wanted.length; i++) {
    if (wanted[i] === "#") return true;
    if (i >= levels.length || (wanted[i] !== "+" && wanted[i] !== levels[i])) return false;
  }
  return wanted.length === levels.length;
}

/**
 * Handlers are registered before the client connects: a resumed session delivers what was queued
 * for the server right after CONNACK, before any SUBSCRIBE of this run is answered.
 */
export function mqttClientTransport(config: ExternalBrokerConfig, log: Logger): ExternalBrokerTransport {
  const handlers = new Map<string, (topic: string, payload: Buffer) => Promise<void>>();
  const connectionListeners: Array<(connected: boolean) => void> = [];
  let client: MqttClient | null = null;

  const subscribeAll = (connected: MqttClient) =>
    connected.subscribeAsync([...handlers.keys()], { qos: CONTRACT_QOS }).then((granted) => {
      const refused = granted.filter((grant) => grant.qos === 128).map((grant) => grant.topic);
      if (refused.length) log.error(`the broker at ${config.url} refused the server's subscriptions to ${refused.join(", ")}: check its ACL (README "Running with an external broker")`);
    });

  return {
    async publish(topic, payload) {
      // Offline, mqtt.js would hold the message until it reconnects; the lease already covers a
      // message that never arrives, and dispatch must not wait for the broker.
      if (!client?.connected) throw new Error(`not connected to the broker at ${config.url}`);
      await client.publishAsync(topic, payload, { qos: CONTRACT_QOS });
    },

    async subscribe(filter, handle) {
      handlers.set(filter, handle);
      if (client?.connected) await subscribeAll(client);
    },

    onConnectionChange: (listener) => void connectionListeners.push(listener),

    connect() {
      const options: IClientOptions = {
        clientId: SERVER_CLIENT_ID,
        username: config.username,
        password: config.password,
        // A persistent session: QoS 1 messages for the server wait in the broker while it is away.
        clean: false,
        // Subscribed on every connection (below): also right after a broker that lost its sessions.
        resubscribe: false,
        reconnectPeriod: FIRST_RETRY_MS,
        connectTimeout: 10_000,
      };
      const connecting = mqtt.connect(config.url, options);
      client = connecting;
      // Refusals and unreachable brokers while reconnecting; "lost" and "reconnected" are logged below.
      connecting.on("error", (error) => log.debug(`MQTT client: ${error.message}`));
      // The PUBACK goes out when this callback is called, so a message counts as received only
      // once it is handled (stored). mqtt.js hands over the next packet only after this one.
      connecting.handleMessage = (packet, done) => {
        const matching = [...handlers].filter(([filter]) => topicMatches(filter, packet.topic));
        if (!matching.length) log.warn(`ignored a message on ${packet.topic}, which the server does not subscribe to`);
        void Promise.all(matching.map(([, handle]) => handle(packet.topic, packet.payload as Buffer))).finally(() => done());
      };

      let everConnected = false;
      let lost = false;
      connecting.on("connect", () => {
        sendAtOnce(connecting);
        connecting.options.reconnectPeriod = FIRST_RETRY_MS;
        subscribeAll(connecting).catch((error) => log.warn(`subscribing at ${config.url} failed, retried on reconnection: ${error}`));
        if (!everConnected) {
          everConnected = true;
          return;
        }
        if (lost) log.info(`reconnected to the broker at ${config.url}`);
        lost = false;
        for (const listener of connectionListeners) listener(true);
      });
      connecting.on("close", () => {
        // mqtt.js has already scheduled the next attempt: this lengthens the one after it.
        connecting.options.reconnectPeriod = Math.min(MAX_RETRY_MS, connecting.options.reconnectPeriod! * 2);
        if (everConnected && !lost && !connecting.disconnecting) {
          lost = true;
          log.warn(`lost the broker at ${config.url}; reconnecting`);
          for (const listener of connectionListeners) listener(false);
        }
      });

      return new Promise<void>((resolve, reject) => {
        let lastProblem = "no answer";
        const fail = (message: string) => {
          clearTimeout(timer);
          connecting.removeListener("error", onError);
          connecting.end(true);
          reject(new StartupError(message));
        };
        const timer = setTimeout(
          () => fail(`the broker at ${config.url} (MQTT_URL) did not answer within ${config.connectTimeoutMs / 1000} s (${lastProblem}); check that it runs and is reachable, or raise MQTT_CONNECT_TIMEOUT_SECONDS`),
          config.connectTimeoutMs,
        );
        const onError = (error: Error & { code?: string | number }) => {
          if (typeof error.code === "number" && REFUSED.has(error.code)) {
            fail(`the broker at ${config.url} (MQTT_URL) refused the server's user name or password (${error.message})`);
          } else {
            lastProblem = typeof error.code === "string" ? error.code : error.message;
          }
        };
        connecting.on("error", onError);
        connecting.once("connect", () => {
          clearTimeout(timer);
          connecting.removeListener("error", onError);
          log.info(`connected to the broker at ${config.url} as ${SERVER_CLIENT_ID}`);
          resolve();
        });
      });
    },

    async close() {
      await client?.endAsync();
    },
  };
}
