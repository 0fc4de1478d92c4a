/**
 * Moderators and the audit log (issue 9 §1): the admin adds and removes moderators; moderators
 * moderate and are refused everything else with 403 and a message; every moderation and admin
 * action and every login attempt is logged with its actor; `npm run admin -- user …`.
 */
import path from "node:path";
import argon2 from "argon2";
import { openDb } from "../../server/db/client";
import { verifyLogin } from "../../server/domain/accounts";
import { ensureAdminPassword, setAdminPassword } from "../../server/domain/admin-password";
import { StartupError } from "../../server/startup-error";
import { recordAudit } from "../../server/domain/audit";
import { TestClient } from "../helpers/client";
import { runEntry } from "../helpers/processes";
import { ADMIN_PASSWORD, makeDataDir, removeDataDir, signedInModerator, startTestServer, type TestServer } from "../helpers/server";

let server: TestServer;
let admin: TestClient;

beforeAll(async () => {
  server = await startTestServer({ LOCAL_GENERATOR: "false" });
  admin = new TestClient(server.url, { userAgent: "the admin" });
  await admin.loginAsAdmin(ADMIN_PASSWORD);
});
afterAll(async () => {
  await server?.close();
  removeDataDir(server.dataDir);
});

const moderator = (name: string) => signedInModerator(server, admin, name);

async function pendingPrompt(text: string): Promise<number> {
  const visitor = new TestClient(server.url, { userAgent: `visitor ${text}` });
  await visitor.page("/");
  return (await visitor.mutate("prompt.submit", { prompt: text, width: 512, height: 512 })).body.result.data.id;
}

const auditRows = () =>
  server.services.db.$client.prepare("SELECT actor, action, target FROM audit_log ORDER BY id").all() as Array<{ actor: string; action: string; target: string | null }>;

test("a moderator moderates but is refused accounts, tokens and generators with 403 and a message", async () => {
  const mo = await moderator("mo");
  const id = await pendingPrompt("a moderated lighthouse");
  expect((await mo.mutate("admin.approve", { id })).status).toBe(200);
  expect((await mo.query("admin.dashboard")).status).toBe(200);

  const refusals = await Promise.all([
    mo.mutate("access.addModerator", { name: "mo2", password: "whatever long" }),
    mo.mutate("access.removeAccount", { name: "mo" }),
    mo.mutate("access.createToken", { name: "script", scopes: ["read"] }),
    mo.query("access.audit", { page: 1 }),
    mo.mutate("admin.addGenerator", { name: "gpu-9" }),
    mo.query("admin.generators"),
  ]);
  for (const refusal of refusals) {
    expect(refusal.status).toBe(403);
    expect(refusal.body.error.data.userMessage).toBe("Only an admin can manage accounts, API tokens and generators.");
  }
  const page = await mo.page("/admin/people");
  expect(page.status).toBe(403);
  expect(page.html).toContain("Only an admin can manage accounts, API tokens and generators.");
  // Nothing the refusals asked for happened.
  expect((await admin.query("access.accounts")).body.result.data.accounts.map((a: { name: string }) => a.name)).toEqual(["admin", "mo"]);
  expect((await admin.query("access.tokens")).body.result.data).toEqual([]);
});

test("removing a moderator ends their logins at once; the first admin cannot be removed", async () => {
  const gone = await moderator("gone");
  expect((await gone.query("admin.dashboard")).status).toBe(200);
  expect((await admin.postForm("/admin/people", { intent: "remove", name: "gone" })).status).toBe(200);
  expect((await gone.query("admin.dashboard")).status).toBe(401);
  const again = new TestClient(server.url, { userAgent: "gone again" });
  await again.page("/admin/login");
  expect((await again.postForm("/admin/login", { name: "gone", password: "moderator's secret" })).status).toBe(401);

  const first = await admin.mutate("access.removeAccount", { name: "admin" });
  expect(first.status).toBe(409);
  expect(first.body.error.data.userMessage).toBe('"admin" is the first admin and cannot be removed.');
  expect((await admin.mutate("access.removeAccount", { name: "nobody" })).status).toBe(404);
});

test("hostile or taken names and short passwords are refused with a message, and nothing is stored", async () => {
  const before = (await admin.query("access.accounts")).body.result.data.accounts.length;
  const hostile = ["", " ", "../etc", "a b", "<script>alert(1)</script>", "x".repeat(65), "名前", "evil\u202Eadmin", "-dash-first", "name\nX-Promptgate-Role: admin"];
  for (const name of hostile) {
    const result = await admin.mutate("access.addModerator", { name, password: "long enough secret" });
    expect(result.status, JSON.stringify(name)).toBe(400);
    expect(result.body.error.data.userMessage, JSON.stringify(name)).toMatch(/name/i);
  }
  const taken = await admin.mutate("access.addModerator", { name: "admin", password: "long enough secret" });
  expect(taken.status).toBe(409);
  expect(taken.body.error.data.userMessage).toBe('There is already an account named "admin".');
  const short = await admin.mutate("access.addModerator", { name: "shorty", password: "short" });
  expect(short.status).toBe(400);
  expect(short.body.error.data.userMessage).toBe("A password has 8 to 1024 characters.");
  const form = await admin.postForm("/admin/people", { intent: "add", name: "a b", password: "long enough secret" });
  expect(form.status).toBe(400);
  expect(form.html).toContain("is not a valid name");
  expect((await admin.query("access.accounts")).body.result.data.accounts.length).toBe(before);
});

test("a new staff password among the common ones, in any case, is refused with a message when adding a moderator or changing one's password, and nothing changes", async () => {
  const common = "This password is among the 10,000 most common ones, the first an attacker tries: choose another.";
  const names = () => (server.services.db.$client.prepare("SELECT name FROM accounts").all() as Array<{ name: string }>).map((row) => row.name);
  for (const password of ["password1", "TrustNo1", "QWERTYUIOP"]) {
    const refused = await admin.mutate("access.addModerator", { name: "weak", password });
    expect([refused.status, refused.body.error.data.userMessage], password).toEqual([400, common]);
  }
  const form = await admin.postForm("/admin/people", { intent: "add", name: "weak", password: "Sunshine1" });
  expect(form.status).toBe(400);
  expect(form.html).toContain(common);
  expect(names()).not.toContain("weak");

  const careful = await moderator("careful");
  const changed = await careful.mutate("admin.changePassword", { currentPassword: "moderator's secret", newPassword: "Baseball1" });
  expect([changed.status, changed.body.error.data.userMessage]).toEqual([400, common]);
  await careful.page("/admin/account");
  const changedByForm = await careful.postForm("/admin/account", { intent: "change-password", currentPassword: "moderator's secret", newPassword: "iloveyou2", confirmPassword: "iloveyou2" });
  expect(changedByForm.status).toBe(400);
  expect(changedByForm.html).toContain(common);
  // The old password still opens the account.
  const again = new TestClient(server.url, { userAgent: "careful's other browser" });
  await again.page("/admin/login");
  expect((await again.postForm("/admin/login", { name: "careful", password: "moderator's secret" })).status).toBe(302);
});

test("a login link that is unknown, used or expired is refused with 401 and in the audit log as a failed login", async () => {
  const stranger = new TestClient(server.url, { userAgent: "link guesser" });
  const refused = await stranger.mutate("admin.redeemLoginLink", { token: "not-a-login-link" });
  expect(refused.status).toBe(401);
  const last = server.services.db.$client.prepare("SELECT actor, action, details FROM audit_log ORDER BY id DESC LIMIT 1").get();
  expect(last).toEqual({ actor: "admin", action: "login.failed", details: JSON.stringify({ reason: "login link expired, used or unknown" }) });
  expect((await stranger.query("admin.me")).body.result.data).toBeNull();
});

test("without TRUSTED_PROXIES nobody can be added by a sign-in identity: the page offers no such form and the API says why", async () => {
  expect((await admin.page("/admin/people")).html).not.toContain('value="add-identity"');
  const refused = await admin.mutate("access.addIdentity", { kind: "email", identity: "frank@example.org", role: "moderator" });
  expect(refused.status).toBe(412);
  expect(refused.body.error.data.userMessage).toBe("Nobody signs in through a proxy here: set TRUSTED_PROXIES to your sign-in proxy's address first.");
  expect((await admin.query("access.accounts")).body.result.data.accounts.map((a: { name: string }) => a.name)).not.toContain("proxy:email:frank@example.org");
});

test("every moderation and admin action and every login attempt is in the audit log with its actor", async () => {
  const auditor = await moderator("auditor");
  const id = await pendingPrompt("an audited prompt");
  await auditor.mutate("admin.deny", { id });
  const typo = new TestClient(server.url, { userAgent: "typo" });
  await typo.page("/admin/login");
  expect((await typo.postForm("/admin/login", { name: "auditor", password: "not it at all" })).status).toBe(401);
  expect((await typo.postForm("/admin/login", { name: "nobody-at-all", password: "not it at all" })).status).toBe(401);
  await admin.mutate("admin.addGenerator", { name: "gpu-audit" });
  await admin.mutate("admin.revokeGenerator", { name: "gpu-audit" });
  await auditor.postForm("/admin?index", { intent: "logout" });

  const rows = auditRows();
  const has = (actor: string, action: string, target: string | null = null) =>
    expect(rows.some((row) => row.actor === actor && row.action === action && (target === null || row.target === target)), `${actor} ${action} ${target}`).toBe(true);
  has("admin", "login");
  has("admin", "account.add", "auditor");
  has("auditor", "login");
  has("auditor", "prompt.deny", `prompt ${id}`);
  has("auditor", "login.failed");
  has("nobody-at-all", "login.failed");
  has("admin", "generator.add", "gpu-audit");
  has("admin", "generator.revoke", "gpu-audit");
  has("auditor", "logout");
  has("mo", "prompt.approve");
});

test("admins page through the audit log, newest first", async () => {
  for (let i = 0; i < 120; i++) recordAudit(server.services.db, { actor: "paging-test", action: "test.entry", target: `entry ${i}` });
  const first = (await admin.query("access.audit", { page: 1 })).body.result.data;
  expect(first.entries).toHaveLength(50);
  expect(first.entries[0].target).toBe("entry 119");
  expect(first.pages).toBe(Math.ceil(first.total / 50));
  const second = (await admin.query("access.audit", { page: 2 })).body.result.data;
  expect(second.entries[0].target).toBe("entry 69");
  expect(second.entries[0].id).toBeLessThan(first.entries.at(-1).id);
  const html = (await admin.page("/admin/audit?page=2")).html;
  expect(html).toContain("page 2 of");
  expect(html).toContain("entry 69");
  expect(html).toContain('href="/admin/audit?page=1"');
  expect((await admin.page("/admin/audit?page=banana")).status).toBe(400);
  // Past the end: the last page, not an error.
  expect((await admin.query("access.audit", { page: 9999 })).body.result.data.page).toBe(first.pages);
});

test("the login page returns to a same-site ?next= and never to another site", async () => {
  const browser = new TestClient(server.url, { userAgent: "next" });
  const page = await browser.page("/admin/login?next=%2Fsd%2F%3Ftab%3D2%26x%3D1");
  expect(page.html).toContain('name="next" value="/sd/?tab=2&amp;x=1"');
  const login = await browser.postForm("/admin/login", { password: ADMIN_PASSWORD, next: "/sd/?tab=2&x=1" });
  expect(login.location).toBe("/sd/?tab=2&x=1");
  // Already logged in: the login page forwards at once.
  expect((await browser.fetch("/admin/login?next=%2Fsd%2F")).headers.get("location")).toBe("/sd/");
  const evil = new TestClient(server.url, { userAgent: "evil next" });
  await evil.page("/admin/login");
  expect((await evil.postForm("/admin/login", { password: ADMIN_PASSWORD, next: "//evil.example/" })).location).toBe("/admin");
  // Dot segments that collapse into `//host`, in the form and in the already-logged-in redirect.
  for (const next of ["/..//evil.example/x", "/.//evil.example", "/%2e%2e//evil.example"]) {
    expect((await evil.fetch(`/admin/login?next=${encodeURIComponent(next)}`)).headers.get("location"), next).toBe("/admin");
    const fresh = new TestClient(server.url, { userAgent: `evil next ${next}` });
    await fresh.page("/admin/login");
    expect((await fresh.postForm("/admin/login", { password: ADMIN_PASSWORD, next })).location, next).toBe("/admin");
  }
  // nginx's refused browser: the address it wanted reaches the login page only as a same-site `next`.
  expect((await evil.fetch("/auth/login", { headers: { "x-original-uri": "/..//evil.example/v" } })).headers.get("location")).toBe("/admin/login");
  expect((await evil.fetch("/auth/login", { headers: { "x-original-uri": "/sd/?a=1" } })).headers.get("location")).toBe("/admin/login?next=%2Fsd%2F%3Fa%3D1");
});

describe("npm run admin -- user", () => {
  const cli = (args: string[]) => runEntry(["server/admin-cli.ts", "user", ...args], { DATA_DIR: server.dataDir });

  test("adds a moderator with a password shown once, lists and removes them, each in the audit log as cli", async () => {
    const added = await cli(["add", "night-shift"]);
    expect(await added.exited).toBe(0);
    const password = /shown only this once\) is:\n(\S+)/.exec(added.output())![1]!;
    const client = new TestClient(server.url, { userAgent: "night shift" });
    await client.page("/admin/login");
    expect((await client.postForm("/admin/login", { name: "night-shift", password })).status).toBe(302);

    const listed = await cli(["list"]);
    expect(await listed.exited).toBe(0);
    expect(listed.output()).toMatch(/^admin\tadmin\t/m);
    expect(listed.output()).toMatch(/^night-shift\tmoderator\t/m);

    const removed = await cli(["remove", "night-shift"]);
    expect(await removed.exited).toBe(0);
    expect((await client.query("admin.dashboard")).status).toBe(401);
    const rows = auditRows();
    expect(rows).toContainEqual({ actor: "cli", action: "account.add", target: "night-shift" });
    expect(rows).toContainEqual({ actor: "cli", action: "account.remove", target: "night-shift" });
  });

  test("a hostile name or a wrong invocation is refused in one line", async () => {
    const [hostile, usage, admin1] = await Promise.all([cli(["add", "../../etc/passwd"]), cli(["add"]), cli(["remove", "admin"])]);
    expect(await hostile.exited).toBe(1);
    expect(hostile.output()).toContain("is not a valid name");
    expect(await usage.exited).toBe(2);
    expect(usage.output()).toContain("usage: user add NAME | user list | user remove NAME");
    expect(await admin1.exited).toBe(1);
    expect(admin1.output()).toContain("cannot be removed");
  });
});

test("an ADMIN_PASSWORD among the common ones, in any case, stops the start without being echoed, unless an earlier version already applied it", async () => {
  const dir = makeDataDir();
  const db = openDb(path.join(dir, "promptgate.db"));
  try {
    const refusal = await ensureAdminPassword(db, "Qwertyuiop").catch((error: Error) => error);
    expect(refusal).toBeInstanceOf(StartupError);
    expect((refusal as Error).message).toBe("ADMIN_PASSWORD is among the 10,000 most common passwords, the first an attacker tries: choose another");
    expect(await ensureAdminPassword(db, "correct horse battery staple")).toBeNull();
    expect(await verifyLogin(db, "admin", "correct horse battery staple")).toMatchObject({ name: "admin" });

    // Applied from the environment before the rule existed (then changed in the UI, or not): an upgrade starts.
    await setAdminPassword(db, "Qwertyuiop", { fromEnv: true });
    expect(await ensureAdminPassword(db, "Qwertyuiop")).toBeNull();
  } finally {
    db.$client.close();
    removeDataDir(dir);
  }
});

test("a database from before accounts keeps its admin password: the hash moves into the admin account", async () => {
  const dir = makeDataDir();
  const db = openDb(path.join(dir, "promptgate.db"));
  try {
    const legacy = await argon2.hash("the old admin password", { type: argon2.argon2id });
    db.$client.prepare("INSERT INTO settings (key, value) VALUES ('admin_password_hash', ?)").run(legacy);
    expect(await ensureAdminPassword(db, undefined)).toBeNull();
    expect(await verifyLogin(db, "admin", "the old admin password")).toMatchObject({ name: "admin", role: "admin" });
    expect(db.$client.prepare("SELECT count(*) AS n FROM settings WHERE key = 'admin_password_hash'").get()).toEqual({ n: 0 });
  } finally {
    db.$client.close();
    removeDataDir(dir);
  }
});
