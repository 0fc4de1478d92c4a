/**
 * The embedded MQTT broker (Aedes): MQTT over TCP on its own port and MQTT over
 * WebSocket at /mqtt on the web server (attached by server/app.ts). Every network client is a
 * generator with its own credential and rights (authenticate.ts, authorize-*.ts); packets over
 * `maxPacketBytes` are refused before they are buffered (packet-size-limit.ts).
 */
import { createServer, type Server } from "node:net";
import type { IncomingMessage } from "node:http";
import type { Duplex } from "node:stream";
import { Aedes, type Client } from "aedes";
import { WebSocketServer, createWebSocketStream } from "ws";
import { generatorOfClientId } from "./contract";
import { createAuthenticate, type VerifyGenerator } from "./authenticate";
import { createAuthorizePublish } from "./authorize-publish";
import { createAuthorizeSubscribe } from "./authorize-subscribe";
import { limitPacketSize } from "./packet-size-limit";

/** Where the broker reports refusals: the server's logger, or anything with these methods. */
export interface BrokerLog {
  warn(message: string): void;
}

export interface BrokerOptions {
  /** Whether generator `username` presented its own token. */
  verify: VerifyGenerator;
  /** The largest MQTT packet accepted (its remaining length, in bytes). */
  maxPacketBytes: number;
  log: BrokerLog;
  /** A generator connected or went away (for "last seen"). */
  onConnection?(clientId: string, state: "connected" | "disconnected"): void;
}

export interface EmbeddedBroker {
  readonly aedes: Aedes;
  /** Starts MQTT over TCP; resolves with the bound port (useful with port 0). */
  listen(port: number, host: string): Promise<number>;
  /** Hands a WebSocket upgrade request to the broker (MQTT over WebSocket). */
  handleUpgrade(request: IncomingMessage, socket: Duplex, head: Buffer): void;
  /** The generators connected now (by name, whatever their client ids' suffixes). */
  connectedIds(): string[];
  /** Closes every connection of a generator (its will is published); false if none is connected. */
  disconnect(name: string): boolean;
  close(): Promise<void>;
}

/** A WebSocket frame carries at most one MQTT packet here: its header, at most 5 bytes, on top. */
const MQTT_FIXED_HEADER_MAX = 5;

export async function createBroker({ verify, maxPacketBytes, log, onConnection }: BrokerOptions): Promise<EmbeddedBroker> {
  const aedes = await Aedes.createBroker({
    authenticate: createAuthenticate(verify, log),
    authorizePublish: createAuthorizePublish(log),
    authorizeSubscribe: createAuthorizeSubscribe(log),
  });
  const connected = new Map<string, Client>();
  aedes.on("client", (client) => {
    connected.set(client.id, client);
    onConnection?.(client.id, "connected");
  });
  aedes.on("clientDisconnect", (client) => {
    // A takeover by the same id closes the older connection after the newer one is registered.
    if (connected.get(client.id) !== client) return;
    connected.delete(client.id);
    onConnection?.(client.id, "disconnected");
  });

  const tooLarge = (remote: string, what: string) => log.warn(`MQTT client at ${remote} disconnected: it sent ${what}, over MQTT_MAX_PACKET_BYTES (${maxPacketBytes})`);
  const handle = (connection: Duplex, remote: string, request?: IncomingMessage) =>
    aedes.handle(
      limitPacketSize(connection, maxPacketBytes, (error) => tooLarge(remote, `a packet of ${error.bytes} bytes`)),
      request,
    );
  // noDelay: MQTT packets are small and latency-bound; Nagle + delayed ACKs would add ~40 ms per exchange.
  const tcp: Server = createServer({ noDelay: true }, (socket) => handle(socket, `${socket.remoteAddress}:${socket.remotePort}`));
  // maxPayload: ws would otherwise buffer a frame of up to 100 MiB before the MQTT check sees it.
  const websockets = new WebSocketServer({ noServer: true, maxPayload: maxPacketBytes + MQTT_FIXED_HEADER_MAX });
  websockets.on("connection", (socket, request) => {
    const remote = `${request.socket.remoteAddress} (WebSocket)`;
    // 1009: ws refused a frame over maxPayload before the MQTT check saw its packet.
    socket.on("close", (code) => code === 1009 && tooLarge(remote, "a WebSocket frame larger than a packet may be"));
    handle(createWebSocketStream(socket), remote, request);
  });

  return {
    aedes,
    listen(port, host) {
      return new Promise((resolve, reject) => {
        tcp.once("error", reject);
        tcp.listen(port, host, () => {
          tcp.off("error", reject);
          const address = tcp.address();
          resolve(typeof address === "object" && address ? address.port : port);
        });
      });
    },
    handleUpgrade(request, socket, head) {
      websockets.handleUpgrade(request, socket, head, (ws) => websockets.emit("connection", ws, request));
    },
    connectedIds: () => [...new Set([...connected.keys()].map(generatorOfClientId))],
    disconnect(name) {
      const clients = [...connected.values()].filter((client) => generatorOfClientId(client.id) === name);
      for (const client of clients) client.close();
      return clients.length > 0;
    },
    async close() {
      for (const client of websockets.clients) client.terminate();
      await new Promise<void>((resolve) => websockets.close(() => resolve()));
      await new Promise<void>((resolve) => aedes.close(() => resolve()));
      await new Promise<void>((resolve) => (tcp.listening ? tcp.close(() => resolve()) : resolve()));
    },
  };
}
