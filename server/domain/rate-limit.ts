/**
 * In-memory token buckets: `limit` actions per `windowMs` for each key, refilled continuously,
 * so a client that used its allowance gets one more every windowMs / limit and is told exactly
 * when (Retry-After). In memory on purpose: a restart forgets them and nothing about clients is
 * stored. The number of keys is capped: a flood of fresh keys evicts the oldest buckets, which
 * only ever errs towards letting someone try again.
 */
export interface RateLimit {
  /** Actions allowed per window; 0 turns the limit off. */
  limit: number;
  windowMs: number;
}

export interface RateLimiter {
  /** Milliseconds until `key` may act again (0: now), without using anything up. */
  retryAfterMs(key: string): number;
  /** Uses one action of `key`'s allowance if there is one: returns 0, else the wait in ms. */
  take(key: string): number;
  /** Whether `key` has used any of its allowance lately (its bucket is not full). */
  hasUsed(key: string): boolean;
}

interface Bucket {
  tokens: number;
  at: number;
}

export function createRateLimiter({ limit, windowMs }: RateLimit, now: () => number = Date.now, maxKeys = 100_000): RateLimiter {
  const buckets = new Map<string, Bucket>();
  const refillPerMs = limit / windowMs;

  const current = (key: string): Bucket => {
    const bucket = buckets.get(key);
    const time = now();
    if (!bucket) return { tokens: limit, at: time };
    return { tokens: Math.min(limit, bucket.tokens + (time - bucket.at) * refillPerMs), at: time };
  };
  const waitFor = (bucket: Bucket) => (bucket.tokens >= 1 ? 0 : Math.ceil((1 - bucket.tokens) / refillPerMs));

  return {
    retryAfterMs: (key) => (limit === 0 ? 0 : waitFor(current(key))),
    hasUsed: (key) => limit > 0 && current(key).tokens < limit,
    take(key) {
      if (limit === 0) return 0;
      const bucket = current(key);
      const wait = waitFor(bucket);
      if (wait > 0) return wait;
      buckets.delete(key); // re-inserted last: the Map's order is least recently used first
      buckets.set(key, { tokens: bucket.tokens - 1, at: bucket.at });
      if (buckets.size > maxKeys) buckets.delete(buckets.keys().next().value!);
      return 0;
    },
  };
}

/** "3 minutes", "40 seconds": a wait as people say it. */
export function describeWait(ms: number): string {
  const seconds = Math.max(1, Math.ceil(ms / 1000));
  if (seconds < 90) return `${seconds} second${seconds === 1 ? "" : "s"}`;
  const minutes = Math.ceil(seconds / 60);
  if (minutes < 90) return `${minutes} minutes`;
  return `${Math.ceil(minutes / 60)} hours`;
}
