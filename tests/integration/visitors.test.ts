/** Anonymous identity: colours, cookies, fingerprint recognition, "that's not me", privacy. */
import { readFileSync, readdirSync } from "node:fs";
import path from "node:path";
import { TestClient } from "../helpers/client";
import { removeDataDir, startTestServer, type TestServer } from "../helpers/server";

let server: TestServer;

beforeAll(async () => {
  // TRUST_PROXY lets the tests present different client networks via X-Forwarded-For.
  server = await startTestServer({ LOCAL_GENERATOR: "false", TRUST_PROXY: "loopback" });
});
afterAll(async () => {
  await server?.close();
  removeDataDir(server.dataDir);
});

const colourOf = (html: string) => /class="chip chip-large" style="background:(#[0-9a-f]{6})[^"]*"[^>]*>([^<]+)</.exec(html)?.slice(1, 3);

test("a first visit gets a colour and a cookie; the cookie brings the same colour back without a note", async () => {
  const visitor = new TestClient(server.url, { forwardedFor: "198.51.100.7", userAgent: "UA first-visit" });
  const first = await visitor.page("/");
  expect(visitor.cookies.get("pg_visitor")).toBeTruthy();
  const cookieHeader = first.response.headers.getSetCookie().find((c) => c.startsWith("pg_visitor="))!;
  expect(cookieHeader).toMatch(/HttpOnly/);
  expect(cookieHeader).toMatch(/SameSite=Lax/);
  const again = await visitor.page("/");
  expect(colourOf(again.html)).toEqual(colourOf(first.html));
  expect(again.html).not.toContain("lost your cookies");
});

test("a visitor who lost their cookies is recognised on the same /24 and browser, with a friendly note", async () => {
  const before = new TestClient(server.url, { forwardedFor: "203.0.113.10", userAgent: "UA cookie-loser" });
  const original = colourOf((await before.page("/")).html)!;
  const after = new TestClient(server.url, { forwardedFor: "203.0.113.99", userAgent: "UA cookie-loser" });
  const page = await after.page("/");
  expect(colourOf(page.html)).toEqual(original);
  expect(page.html).toContain("lost your cookies");
  expect(page.html).toContain(`you&#x27;re still <strong>${original[1]}</strong>`);
});

test("IPv6 visitors are recognised within their /48 and IPv4-mapped addresses count as IPv4", async () => {
  const ua = "UA ipv6";
  const original = colourOf((await new TestClient(server.url, { forwardedFor: "2001:db8:aaaa:1::10", userAgent: ua }).page("/")).html)!;
  const sameSite = await new TestClient(server.url, { forwardedFor: "2001:db8:aaaa:ffff::99", userAgent: ua }).page("/");
  expect(colourOf(sameSite.html)).toEqual(original);
  const otherSite = await new TestClient(server.url, { forwardedFor: "2001:db8:bbbb:1::10", userAgent: ua }).page("/");
  expect(colourOf(otherSite.html)![1]).not.toBe(original[1]);

  const v4 = colourOf((await new TestClient(server.url, { forwardedFor: "198.51.100.20", userAgent: "UA mapped" }).page("/")).html)!;
  const mapped = await new TestClient(server.url, { forwardedFor: "::ffff:198.51.100.21", userAgent: "UA mapped" }).page("/");
  expect(colourOf(mapped.html)).toEqual(v4);
});

test("another network, browser or language is a different visitor", async () => {
  const base = { forwardedFor: "192.0.2.10", userAgent: "UA distinct", acceptLanguage: "de-DE" };
  const colours = new Set<string>();
  for (const variant of [base, { ...base, forwardedFor: "192.0.3.10" }, { ...base, userAgent: "UA other" }, { ...base, acceptLanguage: "fr-FR" }]) {
    colours.add(colourOf((await new TestClient(server.url, variant).page("/")).html)![1]!);
  }
  expect(colours.size).toBe(4);
});

test("'that's not me' gives a new colour and the shared fingerprint never recognises anyone again", async () => {
  const party = { forwardedFor: "10.1.2.3", userAgent: "Party phone", acceptLanguage: "en-US" };
  const owner = colourOf((await new TestClient(server.url, party).page("/")).html)!;

  const lookalike = new TestClient(server.url, party);
  const recognised = await lookalike.page("/");
  expect(colourOf(recognised.html)).toEqual(owner);
  const fresh = await lookalike.postForm("/?index", { intent: "start-fresh" });
  expect(fresh.status).toBe(200);
  expect(fresh.html).toContain("you are now");
  const mine = colourOf((await lookalike.page("/")).html)!;
  expect(mine[1]).not.toBe(owner[1]);

  // A third cookie-less lookalike is no longer handed anyone's identity.
  const third = await new TestClient(server.url, party).page("/");
  expect(third.html).not.toContain("lost your cookies");
  expect([owner[1], mine[1]]).not.toContain(colourOf(third.html)![1]);
});

test("'that's not me' is refused for a visitor who was not recognised by fingerprint", async () => {
  const visitor = new TestClient(server.url, { forwardedFor: "198.51.100.200", userAgent: "UA never-recognised" });
  await visitor.page("/");
  const result = await visitor.postForm("/?index", { intent: "start-fresh" });
  expect(result.status).toBe(409);
  expect(result.html).toContain("already has its own colour");
});

test("concurrent first visits all succeed with distinct colours", async () => {
  const visitors = Array.from({ length: 40 }, (_, i) => new TestClient(server.url, { forwardedFor: `100.64.${i}.1`, userAgent: `UA concurrent ${i}` }));
  const pages = await Promise.all(visitors.map((visitor) => visitor.page("/")));
  expect(pages.map((page) => page.status)).toEqual(Array(40).fill(200));
  const names = pages.map((page) => colourOf(page.html)![1]);
  const swatches = pages.map((page) => colourOf(page.html)![0]);
  expect(new Set(names).size).toBe(40);
  expect(new Set(swatches).size).toBe(40);
});

test("no raw IP address or User-Agent is stored anywhere in DATA_DIR", async () => {
  const marker = "UA-privacy-marker-5f2c";
  await new TestClient(server.url, { forwardedFor: "198.18.77.201", userAgent: marker }).page("/");
  server.services.db.$client.pragma("wal_checkpoint(TRUNCATE)");
  for (const file of readdirSync(server.dataDir)) {
    if (file === "images") continue;
    const bytes = readFileSync(path.join(server.dataDir, file)).toString("latin1");
    expect(bytes, file).not.toContain(marker);
    expect(bytes, file).not.toContain("198.18.77");
  }
  const stored = server.services.db.$client.prepare("SELECT hash FROM fingerprints").all() as Array<{ hash: string }>;
  expect(stored.length).toBeGreaterThan(0);
  for (const { hash } of stored) expect(hash).toMatch(/^[A-Za-z0-9_-]{43}$/);
});

test("a valid visitor cookie skips fingerprint hashing entirely", async () => {
  const visitor = new TestClient(server.url, { forwardedFor: "198.51.100.77", userAgent: "UA hashing-check" });
  await visitor.page("/");
  const fingerprintsBefore = server.services.db.$client.prepare("SELECT count(*) AS n FROM fingerprints").get() as { n: number };
  const sessionsBefore = server.services.db.$client.prepare("SELECT count(*) AS n FROM sessions").get() as { n: number };
  // Same cookie from a completely different network and browser: the cookie wins, nothing new is created.
  const moved = new TestClient(server.url, { forwardedFor: "203.0.113.250", userAgent: "UA elsewhere" });
  moved.cookies.set("pg_visitor", visitor.cookies.get("pg_visitor")!);
  const page = await moved.page("/");
  expect(page.html).not.toContain("lost your cookies");
  expect(server.services.db.$client.prepare("SELECT count(*) AS n FROM fingerprints").get()).toEqual(fingerprintsBefore);
  expect(server.services.db.$client.prepare("SELECT count(*) AS n FROM sessions").get()).toEqual(sessionsBefore);
});
