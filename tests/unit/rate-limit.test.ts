import { createRateLimiter, describeWait } from "../../server/domain/rate-limit";

function clock() {
  let now = 1_000_000;
  return { now: () => now, advance: (ms: number) => void (now += ms) };
}

test("a key may act `limit` times, then waits for the next token, which comes back at limit per window", () => {
  const time = clock();
  const limiter = createRateLimiter({ limit: 3, windowMs: 60_000 }, time.now);
  expect([limiter.take("a"), limiter.take("a"), limiter.take("a")]).toEqual([0, 0, 0]);
  expect(limiter.take("a")).toBe(20_000);
  expect(limiter.retryAfterMs("a")).toBe(20_000);
  expect(limiter.take("b")).toBe(0);
  time.advance(19_999);
  expect(limiter.take("a")).toBe(1);
  time.advance(1);
  expect(limiter.take("a")).toBe(0);
  expect(limiter.take("a")).toBe(20_000);
});

test("retryAfterMs only looks: it uses nothing up", () => {
  const limiter = createRateLimiter({ limit: 1, windowMs: 1000 }, clock().now);
  expect(limiter.retryAfterMs("a")).toBe(0);
  expect(limiter.retryAfterMs("a")).toBe(0);
  expect(limiter.take("a")).toBe(0);
  expect(limiter.retryAfterMs("a")).toBe(1000);
});

test("a limit of 0 is off", () => {
  const limiter = createRateLimiter({ limit: 0, windowMs: 1000 }, clock().now);
  for (let i = 0; i < 100; i++) expect(limiter.take("a")).toBe(0);
});

test("the number of keys is capped; an evicted key starts again with a full allowance", () => {
  const limiter = createRateLimiter({ limit: 1, windowMs: 60_000 }, clock().now, 100);
  limiter.take("first");
  expect(limiter.take("first")).toBeGreaterThan(0);
  for (let i = 0; i < 100; i++) limiter.take(`flood ${i}`);
  expect(limiter.take("first")).toBe(0);
});

test.each([
  [1, "1 second"],
  [40_000, "40 seconds"],
  [89_000, "89 seconds"],
  [90_000, "2 minutes"],
  [15 * 60_000, "15 minutes"],
  [3 * 3_600_000, "3 hours"],
])("a wait of %i ms is said as %j", (ms, words) => {
  expect(describeWait(ms)).toBe(words);
});
