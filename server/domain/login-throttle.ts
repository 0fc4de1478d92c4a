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

/** Every method takes the client's IP address and counts it in its bucket (`throttleKey`). */
export interface LoginThrottle {
  /** Milliseconds the client must still wait, or 0. */
  retryAfterMs(ip: string): number;
  recordFailure(ip: string): void;
  reset(ip: string): void;
}

export function createLoginThrottle(maxFailures = 10, windowMs = 15 * 60_000, now = () => Date.now()): LoginThrottle {
  const failures = new Map<string, number[]>();
  const recent = (key: string) => {
    const times = (failures.get(key) ?? []).filter((time) => now() - time < windowMs);
    if (times.length) failures.set(key, times);
    else failures.delete(key);
    return times;
  };
  return {
    retryAfterMs(ip) {
      const times = recent(throttleKey(ip));
      return times.length < maxFailures ? 0 : windowMs - (now() - times[times.length - maxFailures]!);
    },
    recordFailure(ip) {
      const key = throttleKey(ip);
      failures.set(key, [...recent(key), now()]);
    },
    reset(ip) {
      failures.delete(throttleKey(ip));
    },
  };
}
