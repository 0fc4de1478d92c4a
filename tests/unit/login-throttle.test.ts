import { createLoginThrottle, delayAfter, throttleKey, type LoginAttempt, type ThrottleOptions } from "../../server/domain/login-throttle";

/** A throttle on a clock the test moves: 2 free failures per browser, 4 per network, 1 s doubling to 8 s. */
function throttleAt(overrides: Partial<ThrottleOptions> = {}) {
  const clock = { now: 0 };
  const throttle = createLoginThrottle({
    deviceFreeFailures: 2,
    networkFreeFailures: 4,
    baseDelayMs: 1_000,
    maxDelayMs: 8_000,
    forgetAfterMs: 60_000,
    now: () => clock.now,
    ...overrides,
  });
  return { throttle, clock };
}

const guest = (device: string, ip = "203.0.113.7"): LoginAttempt => ({ device, trusted: false, ip });
const host: LoginAttempt = { device: "host", trusted: true, ip: "203.0.113.7" };

test("delays start after the free failures, double each time, and stop growing at the cap", () => {
  const options = { baseDelayMs: 1_000, maxDelayMs: 15 * 60_000 };
  expect([0, 1, 2, 3, 4, 5, 6, 7].map((failures) => delayAfter(failures, 3, options))).toEqual([0, 0, 0, 1_000, 2_000, 4_000, 8_000, 16_000]);
  expect(delayAfter(13, 3, options)).toBe(15 * 60_000);
  expect(delayAfter(10_000, 3, options)).toBe(15 * 60_000);
});

test("a failing browser waits longer after each failure, and is told how long", () => {
  const { throttle, clock } = throttleAt();
  expect(throttle.admit(guest("g"))).toBeNull();
  expect(throttle.admit(guest("g"))).toBeNull();
  expect(throttle.admit(guest("g"))).toEqual({ waitMs: 1_000, scope: "device" });
  clock.now += 1_000;
  expect(throttle.admit(guest("g"))).toBeNull();
  expect(throttle.admit(guest("g"))).toEqual({ waitMs: 2_000, scope: "device" });
  clock.now += 1_500;
  expect(throttle.admit(guest("g"))).toEqual({ waitMs: 500, scope: "device" });
});

test("refused attempts are not counted, so waiting out the delay always gets one more try", () => {
  const { throttle, clock } = throttleAt();
  throttle.admit(guest("g"));
  throttle.admit(guest("g"));
  for (let i = 0; i < 20; i++) expect(throttle.admit(guest("g"))?.waitMs).toBe(1_000);
  clock.now += 1_000;
  expect(throttle.admit(guest("g"))).toBeNull();
});

test("the delay never exceeds the cap", () => {
  const { throttle, clock } = throttleAt();
  for (let i = 0; i < 30; i++) {
    const refusal = throttle.admit(guest("g"));
    if (refusal) {
      expect(refusal.waitMs).toBeLessThanOrEqual(8_000);
      clock.now += refusal.waitMs;
    }
  }
  expect(throttle.admit(guest("g"))).toEqual({ waitMs: 8_000, scope: "device" });
});

test("a trusted browser that has not been failing is admitted whatever its network did", () => {
  const { throttle } = throttleAt();
  for (let i = 0; i < 50; i++) throttle.admit(guest(`rotating cookie ${i}`));
  expect(throttle.admit(guest("fresh"))?.scope).toBe("network");
  expect(throttle.admit(host)).toBeNull();
});

test("a trusted browser that keeps failing is slowed down like any other", () => {
  const { throttle } = throttleAt();
  throttle.admit(host);
  throttle.admit(host);
  expect(throttle.admit(host)).toEqual({ waitMs: 1_000, scope: "device" });
});

test("a fresh browser is admitted until its network's untrusted failures pass the threshold", () => {
  const { throttle, clock } = throttleAt();
  for (let i = 0; i < 3; i++) throttle.admit(guest(`rotating ${i}`));
  expect(throttle.admit(guest("fresh"))).toBeNull();
  expect(throttle.admit(guest("another"))).toEqual({ waitMs: 1_000, scope: "network" });
  expect(throttle.admit(guest("fresh", "198.51.100.1"))).toBeNull();
  clock.now += 1_000;
  expect(throttle.admit(guest("another"))).toBeNull();
  expect(throttle.admit(guest("third"))).toEqual({ waitMs: 2_000, scope: "network" });
});

test("a success forgets the browser's failures and takes back its own count on the network", () => {
  const { throttle } = throttleAt();
  throttle.admit(guest("g"));
  throttle.admit(guest("g"));
  throttle.succeeded(guest("g"));
  expect(throttle.admit(guest("g"))).toBeNull();
  expect(throttle.admit(guest("g"))).toBeNull();
  // The network holds three failures (two before the success, which took one back, and two after): one more is free.
  throttle.admit(guest("other"));
  expect(throttle.admit(guest("other 2"))?.scope).toBe("network");
});

test("a quiet bucket starts over", () => {
  const { throttle, clock } = throttleAt();
  for (let i = 0; i < 2; i++) throttle.admit(guest("g"));
  clock.now += 60_000;
  expect(throttle.admit(guest("g"))).toBeNull();
  expect(throttle.admit(guest("g"))).toBeNull();
});

test("a flood of fresh cookies keeps at most maxBuckets buckets, forgetting the least recent", () => {
  const { throttle } = throttleAt({ maxBuckets: 3, networkFreeFailures: 1_000 });
  throttle.admit(guest("first"));
  throttle.admit(guest("first"));
  for (let i = 0; i < 3; i++) throttle.admit(guest(`flood ${i}`));
  // "first" was evicted: its two failures are forgotten.
  expect(throttle.admit(guest("first"))).toBeNull();
  throttle.admit(guest("flood 2"));
  expect(throttle.admit(guest("flood 2"))).toEqual({ waitMs: 1_000, scope: "device" });
});

test.each([
  ["203.0.113.7", "203.0.113.7"],
  ["::ffff:203.0.113.7", "203.0.113.7"],
  ["2001:db8:1:2:aaaa::1", "2001:db8:1:2::/64"],
  ["2001:db8:1:2:bbbb::ffff", "2001:db8:1:2::/64"],
  ["2001:db8:1:3::1", "2001:db8:1:3::/64"],
])("failures from %s count as %s", (ip, key) => {
  expect(throttleKey(ip)).toBe(key);
});

test("addresses in one IPv6 /64 share their network's failures", () => {
  const { throttle } = throttleAt({ networkFreeFailures: 2 });
  throttle.admit(guest("a", "2001:db8:1:2::1"));
  throttle.admit(guest("b", "2001:db8:1:2::ffff"));
  expect(throttle.admit(guest("c", "2001:db8:1:2:abcd::9"))).toEqual({ waitMs: 1_000, scope: "network" });
  expect(throttle.admit(guest("c", "2001:db8:1:3::1"))).toBeNull();
});
