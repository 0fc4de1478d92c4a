/**
 * Slows down password guessing: after `maxFailures` wrong admin passwords from one client
 * within `windowMs`, that client must wait until the oldest failure leaves the window.
 * In memory on purpose: a restart forgets it, and nothing about clients is stored.
 */
import { ipv6Prefix, parseIp } from "./fingerprint";

/**
 * The bucket a client's failures count in: its IPv4 address, or its IPv6 /64 (one subscriber's
 * allocation, so rotating addresses inside it does not reset the count).
 */
export function throttleKey(ip: string): string {
  const parsed = parseIp(ip);
  if (!parsed) return ip;
  return parsed.version === 4 ? parsed.octets.join(".") : ipv6Prefix(parsed.groups, 4);
}

export interface LoginThrottle {
  /** Milliseconds `client` must still wait, or 0. */
  retryAfterMs(client: string): number;
  recordFailure(client: string): void;
  reset(client: string): void;
}

export function createLoginThrottle(maxFailures = 10, windowMs = 15 * 60_000, now = () => Date.now()): LoginThrottle {
  const failures = new Map<string, number[]>();
  const recent = (client: string) => {
    const times = (failures.get(client) ?? []).filter((time) => now() - time < windowMs);
    if (times.length) failures.set(client, times);
    else failures.delete(client);
    return times;
  };
  return {
    retryAfterMs(client) {
      const times = recent(client);
      return times.length < maxFailures ? 0 : windowMs - (now() - times[times.length - maxFailures]!);
    },
    recordFailure(client) {
      failures.set(client, [...recent(client), now()]);
    },
    reset(client) {
      failures.delete(client);
    },
  };
}
