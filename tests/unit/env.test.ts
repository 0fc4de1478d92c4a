import { EnvError } from "../../generator/env";
import { parseEnv } from "../../server/env";

test("defaults make `npm start` work with no configuration", () => {
  const config = parseEnv({});
  expect(config).toMatchObject({ port: 3000, host: "0.0.0.0", mqttPort: 1883, trustProxy: false });
  expect(config.dataDir).toMatch(/\/data$/);
  expect(config.localGenerator).toMatchObject({ concurrency: 1, defaults: { steps: 30, cfgScale: 5, samplerName: "DPM++ SDE Karras", restoreFaces: true } });
  expect(config.localGenerator?.sdApiUrl).toBeUndefined();
});

test("an empty variable counts as unset", () => {
  expect(parseEnv({ PORT: "", SD_API_URL: "" }).port).toBe(3000);
});

test("every bad variable is named with what is allowed", () => {
  let error: unknown;
  try {
    parseEnv({ PORT: "70000", MQTT_PORT: "x", ADMIN_PASSWORD: "short", SESSION_SECRET: "tiny", SD_CFG_SCALE: "high" });
  } catch (caught) {
    error = caught;
  }
  expect(error).toBeInstanceOf(EnvError);
  const message = (error as Error).message;
  expect(message).toContain('PORT="70000": expected at most 65535');
  expect(message).toContain('MQTT_PORT="x": expected a whole number');
  expect(message).toContain("ADMIN_PASSWORD: must be at least 8 characters");
  expect(message).toContain("SESSION_SECRET: SESSION_SECRET must be at least 32 characters");
  // Secrets are never echoed.
  expect(message).not.toContain("short");
  expect(message).not.toContain("tiny");
  expect(message).toContain('SD_CFG_SCALE="high"');
});

test("TRUST_PROXY takes express's forms: a boolean, a hop count, or addresses", () => {
  expect(parseEnv({ TRUST_PROXY: "true" }).trustProxy).toBe(true);
  expect(parseEnv({ TRUST_PROXY: "2" }).trustProxy).toBe(2);
  expect(parseEnv({ TRUST_PROXY: "loopback, 10.0.0.0/8" }).trustProxy).toBe("loopback, 10.0.0.0/8");
});

test("RETENTION_DAYS is off unless set to a whole number of days", () => {
  expect(parseEnv({}).retentionDays).toBeNull();
  expect(parseEnv({ RETENTION_DAYS: "" }).retentionDays).toBeNull();
  expect(parseEnv({ RETENTION_DAYS: "30" }).retentionDays).toBe(30);
  expect(() => parseEnv({ RETENTION_DAYS: "0" })).toThrow(/RETENTION_DAYS="0": expected at least 1/);
  expect(() => parseEnv({ RETENTION_DAYS: "a month" })).toThrow(/RETENTION_DAYS="a month": expected a whole number/);
});

test("MQTT_MAX_PACKET_BYTES defaults to 24 MiB, room for a 2048×2048 result, and is bounded", () => {
  expect(parseEnv({}).mqttMaxPacketBytes).toBe(24 * 1024 * 1024);
  expect(parseEnv({ MQTT_MAX_PACKET_BYTES: "1048576" }).mqttMaxPacketBytes).toBe(1048576);
  expect(() => parseEnv({ MQTT_MAX_PACKET_BYTES: "100" })).toThrow(/MQTT_MAX_PACKET_BYTES="100": expected at least 65536/);
});

test("the shared MQTT_TOKEN of earlier versions stops start-up, saying what replaced it, without echoing it", () => {
  expect(() => parseEnv({ MQTT_TOKEN: "x".repeat(40) })).toThrow(/MQTT_TOKEN: is no longer used: every generator has its own token \(`npm run admin -- generator add NAME`/);
  expect(() => parseEnv({ MQTT_TOKEN: "x".repeat(40) })).not.toThrow(/xxxx/);
});

test("MQTT_URL names an external broker: its user and password are taken apart from the URL, decoded", () => {
  expect(parseEnv({}).externalBroker).toBeNull();
  const config = parseEnv({ MQTT_URL: "mqtts://promptgate:p%40ss%2Fword@broker.example.org:8883" });
  expect(config.externalBroker).toEqual({ url: "mqtts://broker.example.org:8883", username: "promptgate", password: "p@ss/word", connectTimeoutMs: 30_000 });
  // The built-in generator would need a broker user of its own.
  expect(config.localGenerator).toBeNull();
  expect(parseEnv({ MQTT_URL: "ws://broker:9001/mqtt", MQTT_CONNECT_TIMEOUT_SECONDS: "5" }).externalBroker).toMatchObject({ url: "ws://broker:9001/mqtt", connectTimeoutMs: 5000 });
});

test("a bad MQTT_URL is named without echoing its password", () => {
  expect(() => parseEnv({ MQTT_URL: "http://promptgate:hunter2@broker:1883" })).toThrow('MQTT_URL="http://***@broker:1883": expected the broker\'s URL');
  expect(() => parseEnv({ MQTT_URL: "http://promptgate:hunter2@broker:1883" })).not.toThrow(/hunter2/);
});

test("LOCAL_GENERATOR=true with an external broker is refused, naming the way out", () => {
  expect(() => parseEnv({ MQTT_URL: "mqtt://broker:1883", LOCAL_GENERATOR: "true" })).toThrow(/LOCAL_GENERATOR: the local generator needs the embedded broker/);
});

test("TRUSTED_PROXIES takes addresses, CIDRs and loopback, and names a bad entry", () => {
  const config = parseEnv({ TRUSTED_PROXIES: "10.0.0.0/8, 127.0.0.1, ::1, loopback, fd00::/8", ADMIN_GROUPS: "ops", MODERATOR_GROUPS: "a, b" });
  expect(config.proxyTrust).toEqual({ proxies: ["10.0.0.0/8", "127.0.0.1", "::1", "loopback", "fd00::/8"], adminGroups: ["ops"], moderatorGroups: ["a", "b"] });
  const trust = config.trustProxy as (address: string) => boolean;
  expect(["10.2.3.4", "::ffff:127.0.0.1", "127.9.9.9", "::1", "fd12::1"].map(trust)).toEqual([true, true, true, true, true]);
  expect(["11.0.0.1", "192.168.1.1", "::2", "fe80::1", "not an address"].map(trust)).toEqual([false, false, false, false, false]);
  expect(() => parseEnv({ TRUSTED_PROXIES: "10.0.0.0/33" })).toThrow(/TRUSTED_PROXIES.*"10\.0\.0\.0\/33" is not an IP address or CIDR/s);
  expect(() => parseEnv({ TRUSTED_PROXIES: "proxy.example.org" })).toThrow(/not an IP address or CIDR/);
});

test("TRUSTED_PROXIES and TRUST_PROXY are one story: setting both, or groups without proxies, is refused", () => {
  expect(() => parseEnv({ TRUSTED_PROXIES: "127.0.0.1", TRUST_PROXY: "1" })).toThrow(/unset TRUST_PROXY/);
  expect(() => parseEnv({ ADMIN_GROUPS: "ops" })).toThrow(/set TRUSTED_PROXIES too/);
  expect(parseEnv({}).proxyTrust).toBeNull();
});
