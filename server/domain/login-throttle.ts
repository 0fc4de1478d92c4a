/**
 * Slows down admin password guessing without letting guests lock the admin out (ADR 006).
 *
 * Failures count per browser (its signed device cookie): after a few, that browser waits
 * 1 s, 2 s, 4 s … up to a cap before each next try. A browser that once logged in is "trusted":
 * its attempts count only against itself, so a trusted browser that has not been failing is never
 * refused, whatever else happens on its network. Attempts from untrusted browsers also count per
 * network (IPv4 address, IPv6 /64) with a much higher threshold, so cookie rotation does not
 * buy unlimited guesses. In memory on purpose: a restart forgets it, and nothing about clients is
 * stored; the number of buckets is capped so a flood of fresh cookies cannot grow memory.
 */
import { ipv6Prefix, parseIp } from "./fingerprint";

/**
 * The network an address belongs to: its IPv4 address, or its IPv6 /64 (one subscriber's
 * allocation, so rotating addresses inside it does not reset the count).
 */
export function throttleKey(ip: string): string {
  const parsed = parseIp(ip);
  if (!parsed) return ip;
  return parsed.version === 4 ? parsed.octets.join(".") : ipv6Prefix(parsed.groups, 4);
}

export interface LoginAttempt {
  /** The browser's device id (from its signed device cookie). */
  device: string;
  /** Whether that browser has logged in successfully before. */
  trusted: boolean;
  /** The client's address; its network is `throttleKey(ip)`. */
  ip: string;
}

export interface Refusal {
  waitMs: number;
  /** What is being held back: this browser, or every untrusted browser on this network. */
  scope: "device" | "network";
}

export interface ThrottleOptions {
  /** Failures of one browser before the delays start. */
  deviceFreeFailures: number;
  /** Failures of untrusted browsers on one network before the delays start. */
  networkFreeFailures: number;
  /** The first delay; each further failure doubles it. */
  baseDelayMs: number;
  maxDelayMs: number;
  /** A bucket without failures for this long starts over (must exceed `maxDelayMs`). */
  forgetAfterMs: number;
  /** Buckets kept per kind; beyond it the least recently failing one is forgotten. */
  maxBuckets: number;
  now: () => number;
}

export const DEFAULT_THROTTLE: ThrottleOptions = {
  deviceFreeFailures: 5,
  networkFreeFailures: 100,
  baseDelayMs: 1_000,
  maxDelayMs: 15 * 60_000,
  forgetAfterMs: 60 * 60_000,
  maxBuckets: 10_000,
  now: () => Date.now(),
};

export interface LoginThrottle {
  /**
   * Either a refusal (nothing counted), or null: the attempt may verify its password and has
   * already been counted as a failure. Counting before the slow verification means parallel
   * guesses cannot all pass the check; `succeeded` takes the count back.
   */
  admit(attempt: LoginAttempt): Refusal | null;
  /** The password was right: the browser's failures are forgotten, and the network's count taken back. */
  succeeded(attempt: LoginAttempt): void;
}

interface Bucket {
  failures: number;
  lastFailureAt: number;
}

/** The wait after `failures` consecutive failures: none for the free ones, then doubling up to the cap. */
export function delayAfter(failures: number, free: number, options: Pick<ThrottleOptions, "baseDelayMs" | "maxDelayMs">): number {
  if (failures < free) return 0;
  // Exponent clamped so huge counts cannot overflow to Infinity before the cap applies.
  return Math.min(options.baseDelayMs * 2 ** Math.min(failures - free, 40), options.maxDelayMs);
}

/** "8 seconds", "3 minutes": a wait rounded up, in the unit a person would use. */
export function describeWait(waitMs: number): string {
  const seconds = Math.ceil(waitMs / 1000);
  if (seconds < 90) return `${seconds} second${seconds === 1 ? "" : "s"}`;
  return `${Math.ceil(seconds / 60)} minutes`;
}

export function createLoginThrottle(overrides: Partial<ThrottleOptions> = {}): LoginThrottle {
  const options = { ...DEFAULT_THROTTLE, ...overrides };
  const { now } = options;
  const devices = new Map<string, Bucket>();
  const networks = new Map<string, Bucket>();

  const live = (buckets: Map<string, Bucket>, key: string): Bucket | undefined => {
    const bucket = buckets.get(key);
    if (bucket && now() - bucket.lastFailureAt >= options.forgetAfterMs) {
      buckets.delete(key);
      return undefined;
    }
    return bucket;
  };
  const waitMs = (buckets: Map<string, Bucket>, key: string, free: number): number => {
    const bucket = live(buckets, key);
    if (!bucket) return 0;
    return Math.max(0, bucket.lastFailureAt + delayAfter(bucket.failures, free, options) - now());
  };
  const fail = (buckets: Map<string, Bucket>, key: string): void => {
    const failures = (live(buckets, key)?.failures ?? 0) + 1;
    // Re-inserted so the Map's order is least recently failing first: that one is evicted at the cap.
    buckets.delete(key);
    if (buckets.size >= options.maxBuckets) buckets.delete(buckets.keys().next().value!);
    buckets.set(key, { failures, lastFailureAt: now() });
  };

  return {
    admit(attempt) {
      const deviceWait = waitMs(devices, attempt.device, options.deviceFreeFailures);
      if (deviceWait > 0) return { waitMs: deviceWait, scope: "device" };
      const network = throttleKey(attempt.ip);
      if (!attempt.trusted) {
        const networkWait = waitMs(networks, network, options.networkFreeFailures);
        if (networkWait > 0) return { waitMs: networkWait, scope: "network" };
        fail(networks, network);
      }
      fail(devices, attempt.device);
      return null;
    },

    succeeded(attempt) {
      devices.delete(attempt.device);
      if (attempt.trusted) return;
      const bucket = networks.get(throttleKey(attempt.ip));
      if (bucket && --bucket.failures <= 0) networks.delete(throttleKey(attempt.ip));
    },
  };
}
