import type { MqttClient } from "mqtt";

/**
 * Turns Nagle's algorithm off on an MQTT client's socket: its packets are small and
 * latency-bound, and a small write behind an unacknowledged one would wait for the peer's
 * delayed ACK (up to ~40 ms). Call on every connect: a reconnection opens a new socket. A
 * WebSocket stream has no such switch (ws turns it off itself).
 */
export function sendAtOnce(client: MqttClient): void {
  (client.stream as { setNoDelay?: (noDelay: boolean) => void }).setNoDelay?.(true);
}
