/**
 * The site password (issue 9 §2) and the session key ring (§6), on a real server: the password
 * asked before anything else, its pass cookie, and rotations that log nobody out.
 */
import Database from "better-sqlite3";
import { readFileSync, writeFileSync } from "node:fs";
import path from "node:path";
import { TestClient, TokenClient } from "../helpers/client";
import { hashSecretToken } from "../../server/domain/secret-tokens";
import { KEY_FILE_CHECK_MS } from "../../server/secrets";
import { runEntry } from "../helpers/processes";
import { ADMIN_PASSWORD, makeDataDir, removeDataDir, startTestServer, waitFor, type TestServer } from "../helpers/server";
import { useCleanups } from "../helpers/cleanups";

const SITE_PASSWORD = "party at the lake";
let server: TestServer;
const cleanup = useCleanups();

beforeAll(async () => {
  server = await startTestServer({ LOCAL_GENERATOR: "false", SITE_PASSWORD });
});
afterAll(async () => {
  await server?.close();
  removeDataDir(server.dataDir);
});

/** A browser that has given the site password. */
async function entered(userAgent: string, on: TestServer = server): Promise<TestClient> {
  const client = new TestClient(on.url, { userAgent });
  await client.page("/site-login");
  const result = await client.postForm("/site-login", { password: SITE_PASSWORD, next: "/" });
  expect([result.status, result.location]).toEqual([303, "/"]);
  return client;
}

const visitorCount = () => (server.services.db.$client.prepare("SELECT count(*) AS n FROM visitors").get() as { n: number }).n;

describe("SITE_PASSWORD", () => {
  test("pages send a browser to the password form and back, the API and images answer 401, and nobody becomes a visitor", async () => {
    const before = visitorCount();
    const stranger = new TestClient(server.url, { userAgent: "stranger" });
    const home = await stranger.fetch("/admin/reveal?x=1");
    expect([home.status, home.headers.get("location")]).toEqual([303, "/site-login?next=%2Fadmin%2Freveal%3Fx%3D1"]);
    const api = await stranger.query("prompt.mine");
    expect(api.status).toBe(401);
    expect(api.body.error.message).toMatch(/needs its password/);
    expect((await stranger.fetch("/images/1.png")).status).toBe(401);
    const form = await stranger.page("/site-login?next=%2Fgallery");
    expect(form.status).toBe(200);
    expect(form.html).toContain('name="next" value="/gallery"');
    expect(visitorCount()).toBe(before);
  });

  test("/healthz and /auth/verify answer without the password", async () => {
    expect((await fetch(`${server.url}/healthz`)).status).toBe(200);
    expect((await fetch(`${server.url}/auth/verify`)).status).toBe(401);
  });

  test("the right password gives a pass cookie that opens the site; a wrong one is refused with the form again", async () => {
    const guest = new TestClient(server.url, { userAgent: "wrong guess" });
    await guest.page("/site-login");
    const wrong = await guest.postForm("/site-login", { password: "not it at all", next: "/" });
    expect(wrong.status).toBe(401);
    expect(wrong.html).toContain("That is not the password.");
    expect(guest.cookies.has("pg_site")).toBe(false);

    const friend = await entered("friend");
    expect(friend.cookies.get("pg_site")).toMatch(/^\d+\.[\w-]{43}$/);
    // Everyone may know the site password: it never makes a browser trusted for the admin login (ADR 006).
    expect(friend.cookies.get("pg_device")).toMatch(/^[\w-]+\.0\./);
    expect((await friend.page("/")).status).toBe(200);
  });

  test("an address off the site is never where the form sends a browser, however its dots are written", async () => {
    const client = new TestClient(server.url, { userAgent: "open redirect" });
    await client.page("/site-login");
    const result = await client.postForm("/site-login", { password: SITE_PASSWORD, next: "//evil.example/" });
    expect([result.status, result.location]).toEqual([303, "/"]);
    for (const next of ["/..//evil.example/x", "/.//evil.example", "/%2e%2e//evil.example"]) {
      const stranger = new TestClient(server.url, { userAgent: `open redirect ${next}` });
      await stranger.page("/site-login");
      expect((await stranger.postForm("/site-login", { password: SITE_PASSWORD, next })).location, next).toBe("/");
      // With the pass already given, the form forwards at once: still to this site.
      expect((await stranger.fetch(`/site-login?next=${encodeURIComponent(next)}`)).headers.get("location"), next).toBe("/");
    }
  });

  test("a forged or expired pass cookie opens nothing", async () => {
    const friend = await entered("forger");
    const [, mac] = friend.cookies.get("pg_site")!.split(".");
    for (const forged of [`${Date.now() + 10 ** 12}.${mac}`, `${Date.now() - 1000}.${mac}`, "garbage"]) {
      const response = await fetch(`${server.url}/`, { redirect: "manual", headers: { cookie: `pg_site=${forged}` } });
      expect(response.status).toBe(303);
    }
  });

  test("wrong passwords are throttled per browser with Retry-After", async () => {
    const guesser = new TestClient(server.url, { userAgent: "guesser" });
    await guesser.page("/site-login");
    const statuses: number[] = [];
    for (let i = 0; i < 7; i++) statuses.push((await guesser.postForm("/site-login", { password: `guess ${i}`, next: "/" })).status);
    expect(statuses.slice(0, 5)).toEqual([401, 401, 401, 401, 401]);
    expect(statuses).toContain(429);
    const refused = await guesser.postForm("/site-login", { password: SITE_PASSWORD, next: "/" });
    expect(refused.status).toBe(429);
    expect(Number(refused.headers.get("retry-after"))).toBeGreaterThan(0);
  });

  test("wrong site passwords are in the audit log without their text; refusals by the throttle are one line at once and one counted line at the minute's end, not one each", async () => {
    const own = await startTestServer({ LOCAL_GENERATOR: "false", SITE_PASSWORD });
    cleanup(() => removeDataDir(own.dataDir), () => own.close());
    const guesser = new TestClient(own.url, { userAgent: "audited guesser" });
    await guesser.page("/site-login");
    const statuses: number[] = [];
    for (let i = 0; statuses.filter((status) => status === 429).length < 3 && i < 30; i++) {
      statuses.push((await guesser.postForm("/site-login", { password: `secret guess ${i}`, next: "/" })).status);
    }
    const wrong = statuses.filter((status) => status === 401).length;
    expect(wrong).toBeGreaterThanOrEqual(5);
    const rows = own.services.db.$client.prepare("SELECT actor, action, target, details FROM audit_log WHERE actor = 'site password' ORDER BY id").all() as Array<Record<string, string>>;
    const reasons = rows.map((row) => ({ ...row, details: JSON.parse(row.details!) }));
    expect(reasons.filter((row) => row.details.reason === "wrong password")).toHaveLength(wrong);
    expect(reasons.filter((row) => row.details.reason === "throttled")).toEqual([{ actor: "site password", action: "login.failed", target: null, details: { reason: "throttled", refused: 1 } }]);
    expect(rows).toHaveLength(wrong + 1);
    expect(JSON.stringify(own.services.db.$client.prepare("SELECT * FROM audit_log").all())).not.toContain("secret guess");
    const countedLater = statuses.filter((status) => status === 429).length - 1;

    const admin = await entered("audit reader", own);
    await admin.loginAsAdmin(ADMIN_PASSWORD);
    const html = (await admin.page("/admin/audit")).html;
    expect(html.match(/data-audit="login.failed"/g)).toHaveLength(wrong + 1);
    expect(html).toContain("site password");
    expect(html).toContain("{&quot;reason&quot;:&quot;throttled&quot;,&quot;refused&quot;:1}");

    // The minute's count is written by the time the server has stopped.
    await own.close();
    const stopped = new Database(path.join(own.dataDir, "promptgate.db"), { readonly: true });
    const counted = stopped.prepare("SELECT details FROM audit_log WHERE actor = 'site password' ORDER BY id DESC LIMIT 1").get() as { details: string };
    stopped.close();
    expect(JSON.parse(counted.details)).toEqual({ reason: "throttled", refused: countedLater });
  });

  test("a script with an API token needs no site password; a bad token does not pass", async () => {
    const admin = await entered("token maker");
    await admin.loginAsAdmin(ADMIN_PASSWORD);
    const secret = (await admin.mutate("access.createToken", { name: "site-script", scopes: ["read"] })).body.result.data.token as string;
    expect((await new TokenClient(server.url, secret).query("admin.dashboard")).status).toBe(200);
    expect((await fetch(`${server.url}/`, { redirect: "manual", headers: { authorization: `Bearer ${secret}x` } })).status).toBe(303);
  });
});

describe("rotating the session keys", () => {
  /** The command line, with its own environment: one-day cookies where the server has 30 days. */
  const rotate = async (env: Record<string, string> = {}) => {
    const cli = await runEntry(["server/admin-cli.ts", "rotate-keys"], { DATA_DIR: server.dataDir, SITE_PASSWORD, SITE_SESSION_DAYS: "1", ADMIN_SESSION_HOURS: "1", ...env });
    expect(await cli.exited).toBe(0);
    return cli.output();
  };
  const secretsFile = () => path.join(server.dataDir, "secrets.json");
  const keys = () => JSON.parse(readFileSync(secretsFile(), "utf8")).sessionKeys as Array<{ key: string; addedAt: string }>;
  /** Time passes for the key ring: every key was added `days` earlier (the server re-reads the file). */
  const age = (days: number) => {
    const stored = JSON.parse(readFileSync(secretsFile(), "utf8"));
    const earlier = (iso: string) => new Date(Date.parse(iso) - days * 86_400_000).toISOString();
    writeFileSync(secretsFile(), JSON.stringify({ ...stored, sessionKeys: keys().map((key) => ({ ...key, addedAt: earlier(key.addedAt) })) }));
  };
  const opens = async (pass: string) => (await fetch(`${server.url}/`, { redirect: "manual", headers: { cookie: `pg_site=${pass}` } })).status === 200;

  test("logs nobody out for the server's cookie lifetime, not the rotating command line's: an old pass and an open form still work, the pass is signed again with the new key; after that the old key is refused", async () => {
    const friend = await entered("before rotation");
    const oldPass = friend.cookies.get("pg_site")!;
    await friend.page("/");
    const oldCsrf = friend.csrfToken!;
    const output = await rotate();
    const until = Date.parse(/1 older key still verifies until (\S+)\./.exec(output)![1]!);
    expect(until).toBeGreaterThan(Date.now() + 29 * 86_400_000);
    expect(keys()).toHaveLength(2);

    // The old pass opens the site, and comes back signed by the new key once the server has read
    // the file (within a second: server/secrets.ts).
    const withOldPass = () => fetch(`${server.url}/`, { redirect: "manual", headers: { cookie: `pg_site=${oldPass}` } });
    const again = await waitFor("the old pass signed again with the new key", async () => {
      const response = await withOldPass();
      expect(response.status).toBe(200);
      return response.headers.getSetCookie().some((line) => line.startsWith("pg_site=")) ? response : null;
    });
    const renewed = again.headers.getSetCookie().find((line) => line.startsWith("pg_site="))!;
    const newPass = /^pg_site=([^;]+)/.exec(renewed)![1]!;
    expect(newPass).not.toBe(oldPass);
    expect(newPass.split(".")[0]).toBe(oldPass.split(".")[0]);
    // A form rendered before the rotation still posts (its CSRF token is under the old key).
    const stillValid = await friend.mutate("visitor.declineOffer", undefined, { "x-csrf-token": oldCsrf });
    expect(stillValid.body.error?.message ?? "").not.toMatch(/csrf/i);

    // New passes are signed with the new key only: they do not verify under the old one alone.
    const late = await entered("after rotation");
    expect(late.cookies.get("pg_site")).not.toBe(oldPass);

    // Two days on, past the command line's one day: the server's 30 days still hold, once it has
    // looked at the file again (it trusts what it read for KEY_FILE_CHECK_MS).
    age(2);
    const agedAt = Date.now();
    await waitFor("the server's next look at the key file", async () => Date.now() - agedAt > KEY_FILE_CHECK_MS);
    expect(await opens(oldPass)).toBe(true);
    // Thirty-one days on, the old key has retired (once the server has read the file: within a second).
    age(29);
    await waitFor("the old key to be refused", async () => !(await opens(oldPass)));
    expect(await opens(newPass)).toBe(true);
    const refusedForm = await friend.mutate("visitor.declineOffer", undefined, { "x-csrf-token": oldCsrf });
    expect(refusedForm.status).toBe(403);
  });

  test("a later rotation removes the keys the server has retired, whatever the command line's own lifetime", async () => {
    age(31);
    const output = await rotate({ SITE_SESSION_DAYS: "365" });
    expect(output).toMatch(/1 older key still verifies until .*; \d+ retired keys? removed\./);
    expect(keys()).toHaveLength(2);
  });

  test("is refused, saying why, while SESSION_SECRET fixes the key", async () => {
    const cli = await runEntry(["server/admin-cli.ts", "rotate-keys"], { DATA_DIR: server.dataDir, SESSION_SECRET: "s".repeat(40) });
    expect(await cli.exited).toBe(1);
    expect(cli.output()).toContain("SESSION_SECRET is set");
  });
});

describe("GUEST_MODE=submit", () => {
  let guests: TestServer;
  beforeAll(async () => {
    // The built-in generator makes the images the guests must not see of each other.
    guests = await startTestServer({ LOCAL_GENERATOR: "true", SITE_PASSWORD, GUEST_MODE: "submit" });
  });
  afterAll(async () => {
    await guests?.close();
    removeDataDir(guests.dataDir);
  });

  test("a guest without the password submits prompts and sees their own, and reaches nothing else", async () => {
    const guest = new TestClient(guests.url, { userAgent: "guest" });
    const home = await guest.page("/");
    expect(home.status).toBe(200);
    const submitted = await guest.mutate("prompt.submit", { prompt: "a lighthouse in fog", width: 512, height: 512 });
    expect(submitted.status).toBe(200);
    const mine = await guest.query("prompt.mine");
    expect(mine.body.result.data.map((prompt: { prompt: string }) => prompt.prompt)).toEqual(["a lighthouse in fog"]);

    for (const path of ["/gallery", "/admin", "/admin/login", "/gallery.data", "/admin.data"]) expect((await guest.fetch(path)).headers.get("location"), path).toMatch(/^\/site-login\?next=/);
    // The visitor page's and a recovery link's own data requests (Remix single fetch) are a guest's.
    expect((await guest.fetch("/_root.data")).status).toBe(200);
    const { link } = (await guest.query("visitor.me")).body.result.data.recovery;
    expect((await guest.fetch(`${new URL(link).pathname}.data`)).status).toBe(200);
    expect((await guest.query("gallery.page")).status).toBe(401);
    expect((await guest.query("admin.dashboard")).status).toBe(401);
    // A batch is let in only if every call in it is a guest's.
    expect((await guest.fetch("/api/trpc/prompt.mine,gallery.isOpen?batch=1&input=%7B%7D")).status).toBe(401);
  });

  test("a guest never gets another guest's image, even shown and in the open gallery, nor the gallery, the show or the export", async () => {
    const host = new TestClient(guests.url, { userAgent: "host" });
    await host.page("/site-login");
    await host.postForm("/site-login", { password: SITE_PASSWORD, next: "/" });
    await host.loginAsAdmin(ADMIN_PASSWORD);
    const author = new TestClient(guests.url, { userAgent: "guest author" });
    await author.page("/");
    const id = (await author.mutate("prompt.submit", { prompt: "a secret boat", width: 64, height: 64 })).body.result.data.id as number;
    expect((await host.mutate("admin.approve", { id })).status).toBe(200);
    await waitFor(`prompt ${id}'s image`, () => guests.services.db.$client.prepare("SELECT 1 FROM images WHERE prompt_id = ?").get(id));
    // On the projector (which reveals it) and in the open gallery: as public as an image gets.
    const code = (await host.mutate("show.openLink")).body.result.data.code as string;
    expect((await host.mutate("show.start")).status).toBe(200);
    expect((await host.mutate("show.next")).status).toBe(200);
    expect((await host.mutate("gallery.setOpen", { open: true })).status).toBe(200);

    const member = new TestClient(guests.url, { userAgent: "member with the password" });
    await member.page("/site-login");
    await member.postForm("/site-login", { password: SITE_PASSWORD, next: "/" });
    expect((await member.fetch(`/images/${id}.png`)).status).toBe(200);
    expect((await member.fetch(`/show/${code}/images/${id}.png`)).status).toBe(200);
    expect((await author.fetch(`/images/${id}.png`)).status).toBe(200);

    const other = new TestClient(guests.url, { userAgent: "another guest" });
    await other.page("/");
    expect((await other.fetch(`/images/${id}.png`)).status).toBe(404);
    expect((await other.fetch(`/images/${id}.png?download=1`)).status).toBe(404);
    for (const path of [`/show/${code}/images/${id}.png`, "/gallery", `/show/${code}`, "/show", "/admin/export.zip?scope=revealed"]) {
      expect((await other.fetch(path)).headers.get("location"), path).toMatch(/^\/site-login\?next=/);
    }
    for (const procedure of ["gallery.page", "show.presenter", "admin.dashboard"]) expect((await other.query(procedure)).status, procedure).toBe(401);
    expect((await other.query("show.audience", { code })).status).toBe(401);
    // prompt.mine is the guest's own only.
    expect((await other.query("prompt.mine")).body.result.data).toEqual([]);
  });

  test("with the password, the same site is whole again", async () => {
    const member = new TestClient(guests.url, { userAgent: "member" });
    await member.page("/site-login");
    expect((await member.postForm("/site-login", { password: SITE_PASSWORD, next: "/gallery" })).location).toBe("/gallery");
    expect((await member.fetch("/admin/login")).status).toBe(200);
  });
});

describe("rotating the fingerprint key", () => {
  test("keeps every cookie and recovery code working; a cookieless return is a new browser until it recovers", async () => {
    const first = await startTestServer({ LOCAL_GENERATOR: "false" });
    const { dataDir } = first;
    try {
      const returning = new TestClient(first.url, { userAgent: "returning visitor" });
      const before = (await returning.query("visitor.me")).body.result.data;
      const fingerprintOfSession = (db: TestServer["services"]["db"], token: string) =>
        (db.$client.prepare("SELECT fingerprint_hash AS hash FROM sessions WHERE token_hash = ?").get(hashSecretToken(token)) as { hash: string }).hash;
      const oldFingerprint = fingerprintOfSession(first.services.db, returning.cookies.get("pg_visitor")!);
      await first.close();

      const cli = await runEntry(["server/admin-cli.ts", "rotate-keys", "--fingerprint"], { DATA_DIR: dataDir });
      expect(await cli.exited).toBe(0);
      expect(cli.output()).toContain("Fingerprint key replaced; restart the server");

      const second = await startTestServer({ LOCAL_GENERATOR: "false", DATA_DIR: dataDir });
      try {
        const withCookie = new TestClient(second.url, { userAgent: "returning visitor" });
        for (const [name, value] of returning.cookies) withCookie.cookies.set(name, value);
        expect((await withCookie.query("visitor.me")).body.result.data.colour).toEqual(before.colour);

        const cookieless = new TestClient(second.url, { userAgent: "returning visitor" });
        const fresh = (await cookieless.query("visitor.me")).body.result.data;
        expect(fresh.colour).not.toEqual(before.colour);
        expect(fingerprintOfSession(second.services.db, cookieless.cookies.get("pg_visitor")!)).not.toBe(oldFingerprint);
        await cookieless.page("/");
        const recovered = await cookieless.mutate("visitor.recover", { code: before.recovery.code, colourName: before.colour.name });
        expect(recovered.body.result.data.colour).toEqual(before.colour);
      } finally {
        await second.close();
      }
    } finally {
      removeDataDir(dataDir);
    }
  });
});

test("KEY_ROTATION_DAYS rotates at start when the newest session key is older than that", async () => {
  const dataDir = makeDataDir();
  try {
    const old = { key: "k".repeat(43), addedAt: new Date(Date.now() - 3 * 86_400_000).toISOString() };
    writeFileSync(path.join(dataDir, "secrets.json"), JSON.stringify({ sessionKeys: [old] }));
    const rotating = await startTestServer({ LOCAL_GENERATOR: "false", DATA_DIR: dataDir, KEY_ROTATION_DAYS: "2" });
    const audit = rotating.services.db.$client.prepare("SELECT actor, action, target FROM audit_log WHERE action = 'keys.rotate'").all();
    await rotating.close();
    const keys = JSON.parse(readFileSync(path.join(dataDir, "secrets.json"), "utf8")).sessionKeys;
    expect(keys).toHaveLength(2);
    expect(keys[0]).toEqual(old);
    expect(Date.parse(keys[1].addedAt)).toBeGreaterThan(Date.parse(old.addedAt));
    expect(rotating.log.lines.some((line) => line.includes("session keys rotated (KEY_ROTATION_DAYS)"))).toBe(true);
    expect(audit).toEqual([{ actor: "server", action: "keys.rotate", target: "session" }]);
  } finally {
    removeDataDir(dataDir);
  }
});
