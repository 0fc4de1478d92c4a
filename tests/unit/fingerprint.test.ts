import { anonymiseIp, createFingerprintHasher, fingerprintMaterial } from "../../server/domain/fingerprint";

describe("anonymiseIp", () => {
  test.each([
    ["203.0.113.77", "203.0.113.0"],
    ["10.0.0.1", "10.0.0.0"],
    ["::ffff:198.51.100.23", "198.51.100.0"],
    ["::FFFF:198.51.100.23", "198.51.100.0"],
    ["2001:db8:abcd:12:1:2:3:4", "2001:db8:abcd::/48"],
    ["2001:0db8:00ab:ffff::1", "2001:db8:ab::/48"],
    ["2001:db8::1", "2001:db8:0::/48"],
    ["::1", "0:0:0::/48"],
    ["fe80::1%eth0", "fe80:0:0::/48"],
    ["64:ff9b::192.0.2.33", "64:ff9b:0::/48"],
  ])("%s → %s", (ip, expected) => {
    expect(anonymiseIp(ip)).toBe(expected);
  });

  test.each([[undefined], [null], [""], ["not an ip"], ["300.1.1.1"], ["1.2.3"]])("%s → unknown", (ip) => {
    expect(anonymiseIp(ip)).toBe("unknown");
  });

  test("addresses in the same /24 or /48 anonymise alike; neighbours do not", () => {
    expect(anonymiseIp("192.0.2.1")).toBe(anonymiseIp("192.0.2.254"));
    expect(anonymiseIp("192.0.2.1")).not.toBe(anonymiseIp("192.0.3.1"));
    expect(anonymiseIp("2001:db8:1:aaaa::1")).toBe(anonymiseIp("2001:db8:1:bbbb::2"));
    expect(anonymiseIp("2001:db8:1::1")).not.toBe(anonymiseIp("2001:db8:2::1"));
  });
});

describe("fingerprintMaterial", () => {
  test("missing headers are empty, not an error, and the raw IP never appears", () => {
    const material = fingerprintMaterial({ ip: "198.51.100.99", userAgent: undefined, acceptLanguage: null });
    expect(material).toBe("198.51.100.0\n\n");
    expect(material).not.toContain("99");
  });

  test("huge headers are capped", () => {
    expect(fingerprintMaterial({ ip: "1.2.3.4", userAgent: "u".repeat(100_000), acceptLanguage: "l".repeat(100_000) }).length).toBeLessThan(1100);
  });
});

describe("createFingerprintHasher", () => {
  const source = { ip: "203.0.113.5", userAgent: "Firefox", acceptLanguage: "en" };

  test("is deterministic for one key, so stored hashes can be looked up by equality", async () => {
    const hash = createFingerprintHasher("k".repeat(32), 1024);
    expect(await hash(source)).toBe(await hash({ ...source, ip: "203.0.113.200" }));
  });

  test("differs by key: without the server's secret a stolen hash cannot be matched", async () => {
    const a = await createFingerprintHasher("a".repeat(32), 1024)(source);
    const b = await createFingerprintHasher("b".repeat(32), 1024)(source);
    expect(a).not.toBe(b);
  });

  test("differs by browser and language", async () => {
    const hash = createFingerprintHasher("k".repeat(32), 1024);
    const results = new Set([await hash(source), await hash({ ...source, userAgent: "Chrome" }), await hash({ ...source, acceptLanguage: "de" })]);
    expect(results.size).toBe(3);
  });
});
