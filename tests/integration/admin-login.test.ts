/**
 * The admin login at a party: every client shares one address (127.0.0.1 here), so nothing a
 * guest does may lock the host out. Throttling, session rotation and expiry, log out
 * everywhere, password change, and `npm run admin` as a real child process.
 */
import path from "node:path";
import { openDb, type Db } from "../../server/db/client";
import { accounts } from "../../server/db/schema";
import { setAdminPassword } from "../../server/domain/admin-password";
import { createAdminSessions } from "../../server/domain/admin-sessions";
import { createRefusalAudit } from "../../server/domain/audit";
import { hashSecretToken } from "../../server/domain/secret-tokens";
import { createLoginThrottle, type ThrottleOptions } from "../../server/domain/login-throttle";
import { TestClient } from "../helpers/client";
import { runEntry } from "../helpers/processes";
import { ADMIN_PASSWORD, makeDataDir, removeDataDir, signedInModerator, startTestServer, type TestServer } from "../helpers/server";

let server: TestServer;
const clock = { now: 1_000_000 };

beforeAll(async () => {
  server = await startTestServer({ LOCAL_GENERATOR: "false" });
});
afterAll(async () => {
  await server?.close();
  removeDataDir(server.dataDir);
});
/** Every test starts with a throttle that has seen nothing, on a clock the test moves. */
const useThrottle = (options: Partial<ThrottleOptions> = {}) => {
  server.services.loginThrottle = createLoginThrottle({ now: () => clock.now, ...options });
};
beforeEach(() => useThrottle());
/** A session needs an account; its password does not matter to these tests. */
const anAccount = (db: Db) => db.insert(accounts).values({ name: "admin", role: "admin", passwordHash: "unused" }).returning().get().id;

const login = (client: TestClient, password: string) => client.postForm("/admin/login", { password });
const canModerate = async (client: TestClient) => (await client.query("admin.dashboard")).status === 200;
async function adminClient(name: string, password = ADMIN_PASSWORD, on: TestServer = server): Promise<TestClient> {
  const client = new TestClient(on.url, { userAgent: name });
  await client.loginAsAdmin(password);
  return client;
}

describe("throttling", () => {
  test("a guest failing 50 times on the admin's address stops neither the admin's browser nor a fresh one", async () => {
    const host = await adminClient("host's laptop");
    await host.postForm("/admin?index", { intent: "logout" });
    const guest = new TestClient(server.url, { userAgent: "guest" });
    await guest.page("/admin/login");
    const statuses: number[] = [];
    for (let i = 0; i < 50; i++) statuses.push((await login(guest, `guess ${i}`)).status);
    expect(statuses.filter((status) => status === 401)).toHaveLength(5);
    expect(statuses.filter((status) => status === 429)).toHaveLength(45);

    expect((await login(host, ADMIN_PASSWORD)).status).toBe(302);
    expect(await canModerate(host)).toBe(true);
    const fresh = await adminClient("a borrowed phone");
    expect(await canModerate(fresh)).toBe(true);
  });

  test("a script's refused logins are two audit lines, the first refusal at once and the rest counted when the minute ends, not one line each", async () => {
    // A window no test outlasts: the minute's end is the flush that `close` also runs.
    const serverOwn = server.services.loginRefusals;
    onTestFinished(() => void (server.services.loginRefusals = serverOwn));
    server.services.loginRefusals = createRefusalAudit(server.services.db, (error) => expect.unreachable(String(error)), 3_600_000);
    const since = (server.services.db.$client.prepare("SELECT max(id) AS id FROM audit_log").get() as { id: number }).id;
    const throttled = () =>
      (server.services.db.$client.prepare("SELECT actor, details FROM audit_log WHERE id > ? AND action = 'login.failed' ORDER BY id").all(since) as Array<{ actor: string; details: string }>)
        .map((row) => ({ actor: row.actor, details: JSON.parse(row.details) }))
        .filter((row) => row.details.reason === "throttled");
    const script = new TestClient(server.url, { userAgent: "flooding script" });
    await script.page("/admin/login");
    const statuses: number[] = [];
    for (let i = 0; i < 30; i++) statuses.push((await login(script, `flood ${i}`)).status);
    const refused = statuses.filter((status) => status === 429).length;
    expect(refused).toBe(25);
    expect(throttled()).toEqual([{ actor: "admin", details: { reason: "throttled", refused: 1 } }]);

    server.services.loginRefusals.close();
    expect(throttled()).toEqual([
      { actor: "admin", details: { reason: "throttled", refused: 1 } },
      { actor: "admin", details: { reason: "throttled", refused: refused - 1 } },
    ]);
  });

  test("the failing browser waits longer after each failure: 429 with Retry-After and the wait in words", async () => {
    const guest = new TestClient(server.url, { userAgent: "guest" });
    await guest.page("/admin/login");
    for (let i = 0; i < 5; i++) expect((await login(guest, `guess ${i}`)).status).toBe(401);
    const waits: string[] = [];
    for (let i = 0; i < 3; i++) {
      const refused = await login(guest, "guess again");
      expect(refused.status).toBe(429);
      waits.push(refused.headers.get("retry-after")!);
      clock.now += Number(refused.headers.get("retry-after")) * 1000;
      expect((await login(guest, "guess again")).status).toBe(401);
    }
    expect(waits).toEqual(["1", "2", "4"]);
    const api = await guest.mutate("admin.login", { password: ADMIN_PASSWORD });
    expect(api.status).toBe(429);
    expect(api.body.error.message).toBe("Too many wrong passwords from this browser. Try again in 8 seconds.");
    expect(guest.cookies.has("pg_admin")).toBe(false);
  });

  test("parallel guesses cannot all pass the check: the count comes before the slow verification", async () => {
    const guest = new TestClient(server.url, { userAgent: "parallel guest" });
    await guest.page("/admin/login");
    await guest.mutate("admin.login", { password: "prime the device cookie" });
    const results = await Promise.all(Array.from({ length: 20 }, (_, i) => guest.mutate("admin.login", { password: `parallel ${i}` })));
    expect(results.filter((result) => result.status === 401)).toHaveLength(4);
    expect(results.filter((result) => result.status === 429)).toHaveLength(16);
  });

  test("a guest rotating cookies holds back untrusted browsers on the network, never the trusted one, and a login link gets the host in", async () => {
    const host = await adminClient("host's laptop");
    useThrottle({ networkFreeFailures: 5 });
    for (let i = 0; i < 5; i++) {
      const rotating = new TestClient(server.url, { userAgent: "guest with fresh cookies" });
      await rotating.page("/admin/login");
      expect((await login(rotating, `guess ${i}`)).status).toBe(401);
    }
    const fresh = new TestClient(server.url, { userAgent: "the host's new phone" });
    await fresh.page("/admin/login");
    const refused = await login(fresh, ADMIN_PASSWORD);
    expect(refused.status).toBe(429);
    expect(refused.headers.get("retry-after")).toBe("1");
    expect(refused.html).toContain("Too many wrong passwords from this network.");
    expect(refused.html).toContain("npm run admin -- login-link");
    // A trusted device cookie cannot be made up: a forged one counts as a fresh, untrusted browser.
    const forger = new TestClient(server.url, { userAgent: "forger" });
    await forger.page("/admin/login");
    forger.cookies.set("pg_device", `${host.cookies.get("pg_device")!.split(".")[0]}.1.forged`);
    expect((await login(forger, ADMIN_PASSWORD)).status).toBe(429);

    await host.postForm("/admin?index", { intent: "logout" });
    expect((await login(host, ADMIN_PASSWORD)).status).toBe(302);

    const cli = await runEntry(["server/admin-cli.ts", "login-link"], { DATA_DIR: server.dataDir, PORT: String(server.httpPort) });
    expect(await cli.exited).toBe(0);
    const link = /http:\/\/localhost:\d+\/admin\/link\?token=[\w-]+/.exec(cli.output())![0];
    const page = await fresh.page(link.replace("localhost", "127.0.0.1"));
    expect(page.html).toContain("Log in as the admin");
    const token = new URL(link).searchParams.get("token")!;
    expect((await fresh.postForm("/admin/link", { token })).location).toBe("/admin");
    expect(await canModerate(fresh)).toBe(true);
    // The link was used up; and the new phone is trusted from now on.
    const again = await new TestClient(server.url).postForm("/admin/link", { token });
    expect(again.status).toBe(401);
    expect(again.html).toContain("expired or was already used");
    const audit = server.services.db.$client.prepare("SELECT actor, action FROM audit_log WHERE action LIKE 'login%' ORDER BY id DESC LIMIT 3").all();
    expect(audit).toEqual([
      { actor: "admin", action: "login.failed" },
      { actor: "admin", action: "login" },
      { actor: "cli", action: "login-link.create" },
    ]);
    await fresh.postForm("/admin?index", { intent: "logout" });
    expect((await login(fresh, ADMIN_PASSWORD)).status).toBe(302);
  }, 30_000);
});

describe("sessions", () => {
  test("logging in gives a new session token and ends the one the browser had", async () => {
    const admin = await adminClient("rotation");
    const first = admin.cookies.get("pg_admin")!;
    await admin.loginAsAdmin(ADMIN_PASSWORD);
    const second = admin.cookies.get("pg_admin")!;
    expect(second).not.toBe(first);
    expect(await canModerate(admin)).toBe(true);
    const replay = new TestClient(server.url);
    replay.cookies.set("pg_admin", first);
    expect(await canModerate(replay)).toBe(false);
  });

  test("a session planted before login is never the one that gets admin rights", async () => {
    const victim = new TestClient(server.url, { userAgent: "fixation" });
    victim.cookies.set("pg_admin", "chosen-by-the-attacker");
    await victim.loginAsAdmin(ADMIN_PASSWORD);
    expect(victim.cookies.get("pg_admin")).not.toBe("chosen-by-the-attacker");
    const attacker = new TestClient(server.url);
    attacker.cookies.set("pg_admin", "chosen-by-the-attacker");
    expect(await canModerate(attacker)).toBe(false);
  });

  test.each([
    ["idle for longer than ADMIN_IDLE_MINUTES", "last_seen_at", 61 * 60_000],
    ["past its absolute expiry (ADMIN_SESSION_HOURS)", "expires_at", 1],
  ])("a session %s is refused and deleted", async (_name, column, ago) => {
    const admin = await adminClient(`expiry ${column}`);
    const sessions = () => (server.services.db.$client.prepare("SELECT count(*) AS n FROM admin_sessions").get() as { n: number }).n;
    const before = sessions();
    server.services.db.$client.prepare(`UPDATE admin_sessions SET ${column} = ? WHERE token_hash = ?`).run(Date.now() - ago, hashSecretToken(admin.cookies.get("pg_admin")!));
    expect(await canModerate(admin)).toBe(false);
    expect(sessions()).toBe(before - 1);
    expect((await admin.fetch("/admin")).headers.get("location")).toBe("/admin/login");
  });

  test("log out everywhere ends every admin session, this one included", async () => {
    const laptop = await adminClient("laptop");
    const phone = await adminClient("phone");
    await laptop.page("/admin/account");
    const out = await laptop.postForm("/admin/account", { intent: "logout-everywhere" });
    expect(out.location).toBe("/admin/login");
    expect(await canModerate(laptop)).toBe(false);
    expect(await canModerate(phone)).toBe(false);
    expect((await phone.fetch("/admin/account")).headers.get("location")).toBe("/admin/login");
  });
});

describe("one's own sessions on /admin/account", () => {
  const rows = (sql: string, ...params: unknown[]) => server.services.db.$client.prepare(sql).all(...params) as Array<Record<string, unknown>>;
  const sessionCount = () => rows("SELECT count(*) AS n FROM admin_sessions")[0]!.n;
  const sessionEnds = () => rows("SELECT actor, target, details FROM audit_log WHERE action = 'session.end' ORDER BY id");
  // The other tests' logins of the admin account would be listed too.
  beforeEach(() => void server.services.adminSessions.endAll(rows("SELECT id FROM accounts WHERE name = 'admin'")[0]!.id as number));

  test("an admin signed in on two browsers sees both sessions, this one marked, and ending the other (a form post, no JavaScript) signs that browser out and leaves this one", async () => {
    const laptop = await adminClient("laptop");
    const phone = await adminClient("lost phone");
    const listed = (await laptop.query("admin.sessions")).body.result.data;
    expect(listed.viaProxy).toBe(false);
    expect(listed.sessions).toHaveLength(2);
    const [mine, other] = [listed.sessions.find((s: { current: boolean }) => s.current), listed.sessions.find((s: { current: boolean }) => !s.current)];
    expect(mine && other).toBeTruthy();
    for (const session of listed.sessions) expect(Date.parse(session.expiresAt)).toBeGreaterThan(Date.parse(session.createdAt));

    const { html } = await laptop.page("/admin/account");
    expect(html).toContain("Your sessions");
    expect(html.match(/This browser/g)).toHaveLength(1);
    expect(html.match(/name="session" value="([^"]+)"/g)).toEqual([`name="session" value="${other.id}"`]);
    for (const client of [laptop, phone]) {
      const token = client.cookies.get("pg_admin")!;
      expect(html).not.toContain(token);
      expect(html).not.toContain(hashSecretToken(token));
    }

    const ended = await laptop.postForm("/admin/account", { intent: "end-session", session: other.id });
    expect(ended.status).toBe(200);
    expect(ended.html).toContain("Session ended: that browser is signed out at its next request.");
    expect(ended.html).not.toContain(`value="${other.id}"`);
    expect(await canModerate(phone)).toBe(false);
    expect((await phone.fetch("/admin/account")).headers.get("location")).toBe("/admin/login");
    expect(await canModerate(laptop)).toBe(true);
    expect((await laptop.query("admin.sessions")).body.result.data.sessions).toEqual([{ ...mine, lastSeenAt: expect.any(String) }]);
    const audit = sessionEnds();
    expect(audit).toEqual([{ actor: "admin", target: "admin", details: JSON.stringify({ startedAt: other.createdAt }) }]);
    expect(JSON.stringify(audit)).not.toContain(hashSecretToken(phone.cookies.get("pg_admin")!));
  });

  test("a session id of another account cannot be ended: 404, and it stays", async () => {
    const admin = await adminClient("admin's laptop");
    const moderator = await signedInModerator(server, admin, "session-mod", { userAgent: "moderator's phone" });
    const [theirs] = (await moderator.query("admin.sessions")).body.result.data.sessions;
    const before = { sessions: sessionCount(), ends: sessionEnds() };

    await admin.page("/admin/account");
    const form = await admin.postForm("/admin/account", { intent: "end-session", session: theirs.id });
    expect(form.status).toBe(404);
    expect(form.html).toContain("No live session of yours has this id: it may have ended already. Reload the page to see your sessions.");
    const api = await admin.mutate("admin.endSession", { id: theirs.id });
    expect([api.status, api.body.error.data.userMessage]).toEqual([404, "No live session of yours has this id: it may have ended already. Reload the page to see your sessions."]);
    const empty = await admin.mutate("admin.endSession", { id: " " });
    expect([empty.status, empty.body.error.data.userMessage]).toEqual([400, "Id missing: name a session to end."]);

    expect({ sessions: sessionCount(), ends: sessionEnds() }).toEqual(before);
    expect(await canModerate(moderator)).toBe(true);
    expect(await canModerate(admin)).toBe(true);
  });
});

describe("expiry in the session module, on a clock the test moves", () => {
  let dir: string;
  beforeAll(() => {
    dir = makeDataDir();
  });
  afterAll(() => removeDataDir(dir));

  test("activity keeps a session alive until its absolute expiry, writing last_seen_at at most once a minute", () => {
    const db = openDb(path.join(dir, "sessions.db"));
    try {
      let now = 0;
      const sessions = createAdminSessions(db, { idleMs: 10 * 60_000, absoluteMs: 60 * 60_000, now: () => now });
      const adminId = anAccount(db);
      const token = sessions.start(adminId);
      const lastSeen = () => (db.$client.prepare("SELECT last_seen_at AS t FROM admin_sessions").get() as { t: number }).t;
      now = 30_000;
      expect(sessions.live(token)?.name).toBe("admin");
      expect(lastSeen()).toBe(0);
      for (now = 9 * 60_000; now < 60 * 60_000; now += 9 * 60_000) expect(sessions.live(token)?.name).toBe("admin");
      expect(lastSeen()).toBe(54 * 60_000);
      now = 60 * 60_000;
      expect(sessions.live(token)).toBeNull();
      const idle = sessions.start(adminId);
      now += 10 * 60_000;
      expect(sessions.live(idle)).toBeNull();
      expect(sessions.pruneExpired()).toBe(0);
    } finally {
      db.$client.close();
    }
  });

  test("pruning deletes idle and expired sessions and keeps live ones", () => {
    const db = openDb(path.join(dir, "prune.db"));
    try {
      let now = 0;
      const sessions = createAdminSessions(db, { idleMs: 10 * 60_000, absoluteMs: 60 * 60_000, now: () => now });
      const adminId = anAccount(db);
      sessions.start(adminId);
      now = 55 * 60_000;
      const live = sessions.start(adminId);
      now = 61 * 60_000;
      expect(sessions.pruneExpired()).toBe(1);
      expect(sessions.live(live)?.name).toBe("admin");
    } finally {
      db.$client.close();
    }
  });
});

describe("password change", () => {
  let own: TestServer;
  beforeAll(async () => {
    own = await startTestServer({ LOCAL_GENERATOR: "false" });
  });
  afterAll(async () => {
    await own?.close();
    removeDataDir(own.dataDir);
  });
  const change = (client: TestClient, fields: Record<string, string>) => client.postForm("/admin/account", { intent: "change-password", ...fields });

  test("needs the current password and a confirmed new one of at least 8 characters; then only the new one works and other sessions end", async () => {
    const admin = await adminClient("account", ADMIN_PASSWORD, own);
    const other = await adminClient("other browser", ADMIN_PASSWORD, own);
    await admin.page("/admin/account");

    const wrong = await change(admin, { currentPassword: "not it", newPassword: "a new secret", confirmPassword: "a new secret" });
    expect(wrong.status).toBe(403);
    expect(wrong.html).toContain("The current password is not right; nothing was changed.");
    const differ = await change(admin, { currentPassword: ADMIN_PASSWORD, newPassword: "a new secret", confirmPassword: "a new secreT" });
    expect(differ.status).toBe(400);
    expect(differ.html).toContain("differ");
    const short = await change(admin, { currentPassword: ADMIN_PASSWORD, newPassword: "short", confirmPassword: "short" });
    expect(short.status).toBe(400);
    expect(short.html).toContain("New password: At least 8 characters.");
    expect(await canModerate(other)).toBe(true);

    const before = admin.cookies.get("pg_admin");
    const changed = await change(admin, { currentPassword: ADMIN_PASSWORD, newPassword: "a new secret", confirmPassword: "a new secret" });
    expect(changed.status).toBe(200);
    expect(changed.html).toContain("Password changed. Every other session of this account has ended.");
    expect(admin.cookies.get("pg_admin")).not.toBe(before);
    expect(await canModerate(admin)).toBe(true);
    expect(await canModerate(other)).toBe(false);

    const fresh = new TestClient(own.url, { userAgent: "after the change" });
    await fresh.page("/admin/login");
    expect((await login(fresh, ADMIN_PASSWORD)).status).toBe(401);
    expect((await login(fresh, "a new secret")).status).toBe(302);
  });

  test("a restart with the same ADMIN_PASSWORD keeps the changed password; a new ADMIN_PASSWORD replaces it", async () => {
    await own.close();
    own = await startTestServer({ ...own.env });
    await adminClient("after restart", "a new secret", own);
    await own.close();
    own = await startTestServer({ ...own.env, ADMIN_PASSWORD: "the variable changed" });
    await adminClient("after the variable changed", "the variable changed", own);
    const old = new TestClient(own.url, { userAgent: "old password" });
    await old.page("/admin/login");
    expect((await login(old, "a new secret")).status).toBe(401);
  });
});

describe("npm run admin", () => {
  const admin = (args: string[], env: Record<string, string> = { DATA_DIR: server.dataDir }) => runEntry(["server/admin-cli.ts", ...args], env);

  test("logout-everywhere ends the sessions of a running server at once", async () => {
    const laptop = await adminClient("cli laptop");
    const phone = await adminClient("cli phone");
    const cli = await admin(["logout-everywhere"]);
    expect(await cli.exited).toBe(0);
    expect(cli.output()).toMatch(/Ended \d+ admin sessions\./);
    expect(await canModerate(laptop)).toBe(false);
    expect(await canModerate(phone)).toBe(false);
  });

  test("reset-password prints a new password once, which works at once; the old one and every session stop", async () => {
    const laptop = await adminClient("before reset");
    const cli = await admin(["reset-password"]);
    expect(await cli.exited).toBe(0);
    const password = /shown only this once\): (\S+)/.exec(cli.output())![1]!;
    expect(await canModerate(laptop)).toBe(false);
    const guest = new TestClient(server.url, { userAgent: "old password" });
    await guest.page("/admin/login");
    expect((await login(guest, ADMIN_PASSWORD)).status).toBe(401);
    await adminClient("after reset", password);
    // Leave the shared server as the other tests expect it.
    await setAdminPassword(server.services.db, ADMIN_PASSWORD);
  });

  test("an unknown command prints the usage and exits with 2; a wrong DATA_DIR is named", async () => {
    const [unknown, missing] = await Promise.all([admin(["reset-pasword"]), admin(["logout-everywhere"], { DATA_DIR: path.join(server.dataDir, "nowhere") })]);
    expect(await unknown.exited).toBe(2);
    expect(unknown.output()).toContain('unknown command "reset-pasword"');
    expect(unknown.output()).toContain("Usage: npm run admin -- <command>");
    expect(await missing.exited).toBe(1);
    expect(missing.output()).toContain("no database at");
  });
});
