import { createLoginThrottle, throttleKey } from "../../server/domain/login-throttle";

test("a client is held back after too many failures, until the oldest leaves the window", () => {
  let now = 0;
  const throttle = createLoginThrottle(3, 60_000, () => now);
  for (let i = 0; i < 3; i++) {
    expect(throttle.retryAfterMs("a")).toBe(0);
    throttle.recordFailure("a");
    now += 1_000;
  }
  expect(throttle.retryAfterMs("a")).toBe(57_000);
  expect(throttle.retryAfterMs("b")).toBe(0);
  now = 60_000;
  expect(throttle.retryAfterMs("a")).toBe(0);
});

test("a success clears the client's failures", () => {
  const throttle = createLoginThrottle(2, 60_000, () => 0);
  throttle.recordFailure("a");
  throttle.reset("a");
  throttle.recordFailure("a");
  expect(throttle.retryAfterMs("a")).toBe(0);
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

test("addresses in one IPv6 /64 share their failures", () => {
  const throttle = createLoginThrottle(2, 60_000, () => 0);
  throttle.recordFailure("2001:db8:1:2::1");
  throttle.recordFailure("2001:db8:1:2::ffff");
  expect(throttle.retryAfterMs("2001:db8:1:2:abcd::9")).toBe(60_000);
  expect(throttle.retryAfterMs("2001:db8:1:3::1")).toBe(0);
});
