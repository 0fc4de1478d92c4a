/**
 * The embedded MQTT broker (Aedes): MQTT over TCP on its own port and MQTT over
 * WebSocket at /mqtt on the web server (attached by server/app.ts).
 */
import { createServer, type Server } from "node:net";
import type { IncomingMessage } from "node:http";
import type { Duplex } from "node:stream";
import { Aedes } from "aedes";
import { WebSocketServer, createWebSocketStream } from "ws";
import { createAuthenticate } from "./authenticate";
import { authorizePublish } from "./authorize-publish";

export interface EmbeddedBroker {
  readonly aedes: Aedes;
  /** Starts MQTT over TCP; resolves with the bound port (useful with port 0). */
  listen(port: number, host: string): Promise<number>;
  /** Hands a WebSocket upgrade request to the broker (MQTT over WebSocket). */
  handleUpgrade(request: IncomingMessage, socket: Duplex, head: Buffer): void;
  close(): Promise<void>;
}

/** `token`: the password every network client must present (see authenticate.ts). */
export async function createBroker(token: string): Promise<EmbeddedBroker> {
  const aedes = await Aedes.createBroker({ authenticate: createAuthenticate(token), authorizePublish });
  // noDelay: MQTT packets are small and latency-bound; Nagle + delayed ACKs would add ~40 ms per exchange.
  const tcp: Server = createServer({ noDelay: true }, (socket) => aedes.handle(socket));
  const websockets = new WebSocketServer({ noServer: true });
  websockets.on("connection", (socket, request) => {
    aedes.handle(createWebSocketStream(socket), request);
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
    async close() {
      for (const client of websockets.clients) client.terminate();
      await new Promise<void>((resolve) => websockets.close(() => resolve()));
      await new Promise<void>((resolve) => aedes.close(() => resolve()));
      await new Promise<void>((resolve) => (tcp.listening ? tcp.close(() => resolve()) : resolve()));
    },
  };
}
