/**
 * TRUSTED_PROXIES (issue 9 §4) through a real nginx running docs/deploy/nginx.conf: nginx talks
 * to promptgate from 127.0.0.2 (the only trusted proxy) and stands in for oauth2-proxy by turning
 * the test's X-Test-* headers into X-Forwarded-User, -Email, -Preferred-Username, -Groups.
 * Direct clients come from 127.0.0.1 or 127.0.1.5 (another /24, so a fingerprint shows which
 * address it was made from).
 */
import { readFileSync } from "node:fs";
import { request } from "node:http";
import { createServer, type Server } from "node:http";
import { createFingerprintHasher } from "../../server/domain/fingerprint";
import { hashSecretToken } from "../../server/domain/secret-tokens";
import { secretsFile } from "../../server/secrets";
import { TestClient } from "../helpers/client";
import { startNginx, type RunningNginx } from "../helpers/nginx";
import { ADMIN_PASSWORD, removeDataDir, startTestServer, waitFor, type TestServer } from "../helpers/server";
import { SseStream } from "../helpers/sse";

let server: TestServer;
let upstream: Server;
let nginx: RunningNginx;

beforeAll(async () => {
  server = await startTestServer({ LOCAL_GENERATOR: "false", TRUSTED_PROXIES: "127.0.0.2", ADMIN_GROUPS: "pg-admins", MODERATOR_GROUPS: "pg-mods, night-shift" });
  upstream = createServer((_req, res) => res.end("upstream"));
  await new Promise<void>((resolve) => upstream.listen(0, "127.0.0.1", resolve));
  const address = upstream.address();
  nginx = await startNginx({ promptgatePort: server.httpPort, upstreamPort: typeof address === "object" && address ? address.port : 0, bindAddress: "127.0.0.2", testIdentity: true });
});
afterAll(async () => {
  await nginx?.close();
  await new Promise((resolve) => upstream?.close(resolve));
  await server?.close();
  removeDataDir(server.dataDir);
});

interface Answer {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  body: string;
}

/** A GET from a chosen local address (node:http; fetch cannot choose one). */
function get(base: string, path: string, headers: Record<string, string> = {}, localAddress = "127.0.0.1"): Promise<Answer> {
  return new Promise((resolve, reject) => {
    const req = request(new URL(path, base), { headers: { "user-agent": "proxy test", "accept-language": "en", ...headers }, localAddress }, (res) => {
      let body = "";
      res.setEncoding("utf8");
      res.on("data", (chunk) => (body += chunk));
      res.on("end", () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body }));
    });
    req.on("error", reject);
    req.end();
  });
}

const trpc = async (base: string, procedure: string, headers: Record<string, string> = {}, localAddress?: string) => {
  const answer = await get(base, `/api/trpc/${procedure}`, headers, localAddress);
  return { ...answer, json: JSON.parse(answer.body) };
};
const signedIn = (user: string, groups = "", extra: Record<string, string> = {}) => ({ "x-test-user": user, "x-test-groups": groups, ...extra });

describe("identity headers", () => {
  test("from an untrusted peer, or sent by a client through the proxy, they change nothing", async () => {
    const forged = { "x-forwarded-user": "mallory", "x-forwarded-email": "mallory@example.org", "x-forwarded-groups": "pg-admins" };
    expect((await trpc(server.url, "admin.me", forged)).json.result.data).toBeNull();
    expect((await get(server.url, "/auth/verify", forged)).status).toBe(401);
    // nginx replaces a client's own identity headers (the shipped config blanks them).
    expect((await trpc(nginx.url, "admin.me", forged)).json.result.data).toBeNull();
    expect((await trpc(nginx.url, "access.accounts", forged)).status).toBe(401);
    // Nor on the way to the protected upstream: the verify subrequest blanks them too.
    const sd = await get(nginx.url, "/sd/secret", forged);
    expect(sd.status).toBe(302);
    expect(sd.body).not.toBe("upstream");
    const accounts = server.services.db.$client.prepare("SELECT name FROM accounts WHERE name LIKE 'proxy:%'").all();
    expect(accounts).toEqual([]);
  });

  test("a group grants admin only through the trusted proxy, audited, and /auth/verify names the person", async () => {
    const alice = signedIn("alice@example.org", "staff, pg-admins", { "x-test-preferred-username": "alice" });
    expect((await trpc(nginx.url, "admin.me", alice)).json.result.data).toMatchObject({ name: "proxy:user:alice@example.org", role: "admin" });
    expect((await trpc(nginx.url, "access.accounts", alice)).status).toBe(200);
    const verify = await get(nginx.url, "/auth/verify", alice);
    expect([verify.status, verify.headers["x-promptgate-user"], verify.headers["x-promptgate-role"]]).toEqual([204, "proxy:user:alice@example.org", "admin"]);
    const audit = server.services.db.$client.prepare("SELECT actor, action, target FROM audit_log WHERE action = 'login.proxy'").all();
    expect(audit).toEqual([{ actor: "proxy:user:alice@example.org", action: "login.proxy", target: "alice" }]);

    const bob = signedIn("bob", "night-shift");
    expect((await trpc(nginx.url, "admin.me", bob)).json.result.data).toMatchObject({ name: "proxy:user:bob", role: "moderator" });
    expect((await trpc(nginx.url, "admin.dashboard", bob)).status).toBe(200);
    expect((await trpc(nginx.url, "access.accounts", bob)).status).toBe(403);
    // The proxy's sign-in keeps no session here: the account page says where to sign out.
    expect((await trpc(nginx.url, "admin.sessions", bob)).json.result.data).toEqual({ viaProxy: true, sessions: [] });
    const accountPage = (await get(nginx.url, "/admin/account", bob)).body;
    expect(accountPage).toContain("You are signed in through your organisation&#x27;s sign-in, which keeps no session here: sign out there.");
    // Nor a password to change.
    expect(accountPage).toContain("This account has no password here");
    expect(accountPage).not.toContain('name="currentPassword"');

    // Without a staff group: no account, a guest.
    expect((await trpc(nginx.url, "admin.me", signedIn("carol", "staff"))).json.result.data).toBeNull();
  });

  test("a proxy user named like the first admin does not become it", async () => {
    const me = (await trpc(nginx.url, "admin.me", signedIn("admin", "night-shift"))).json.result.data;
    expect(me).toMatchObject({ name: "proxy:user:admin", role: "moderator" });
  });

  test("a signed-in person keeps one colour on every device, and nobody else has it", async () => {
    const phone = await trpc(nginx.url, "visitor.me", { ...signedIn("dora@example.org"), "user-agent": "phone" });
    const laptop = await trpc(nginx.url, "visitor.me", { ...signedIn("dora@example.org"), "user-agent": "laptop", "accept-language": "de" });
    const other = await trpc(nginx.url, "visitor.me", { ...signedIn("erin@example.org"), "user-agent": "phone" });
    expect(phone.json.result.data.colour).toEqual(laptop.json.result.data.colour);
    expect(other.json.result.data.colour).not.toEqual(phone.json.result.data.colour);
    // The proxy's headers are the identity: no visitor cookie is handed out.
    expect(String(phone.headers["set-cookie"] ?? "")).not.toContain("pg_visitor");
  });

  test("a signed-in person is shown no recovery code, link or QR code, cannot make one, and is not offered to recover a colour", async () => {
    const uma = new TestClient(nginx.url, { userAgent: "uma's phone", headers: signedIn("uma@example.org") });
    const page = await uma.page("/");
    expect(page.status).toBe(200);
    expect((await uma.query("visitor.me")).body.result.data).toMatchObject({ recovery: null });
    for (const shown of ["recovery-code", "recovery-link", "recovery-qr", "Get your colour back"]) expect(page.html).not.toContain(shown);
    expect((await uma.fetch("/me/recovery-qr.svg")).status).toBe(404);
    const renewed = await uma.mutate("visitor.renewRecovery");
    expect([renewed.status, renewed.body.error.data.userMessage]).toEqual([403, "You are signed in through your organisation: your colour follows you to every device, nothing to recover."]);
    // A guest the proxy does not sign in keeps all of it.
    const anonymous = new TestClient(nginx.url, { userAgent: "anonymous phone" });
    expect((await anonymous.page("/")).html).toContain("recovery-code");
    expect((await anonymous.fetch("/me/recovery-qr.svg")).status).toBe(200);
  });
});

describe("the client's address", () => {
  const hasher = () => createFingerprintHasher(JSON.parse(readFileSync(secretsFile(server.dataDir), "utf8")).fingerprintSecret, Number(server.env.FINGERPRINT_MEMORY_KIB));
  /** The fingerprint a new visitor's session was opened with. */
  async function fingerprintOf(base: string, headers: Record<string, string>, localAddress: string): Promise<string> {
    const answer = await trpc(base, "visitor.me", { "user-agent": "fingerprint probe", ...headers }, localAddress);
    expect(answer.status).toBe(200);
    const cookie = ([] as string[]).concat(answer.headers["set-cookie"] ?? []).find((line) => line.startsWith("pg_visitor="))!;
    const token = decodeURIComponent(/^pg_visitor=([^;]+)/.exec(cookie)![1]!);
    const row = server.services.db.$client.prepare("SELECT fingerprint_hash AS hash FROM sessions WHERE token_hash = ?").get(hashSecretToken(token)) as { hash: string };
    return row.hash;
  }
  const expected = (ip: string) => hasher()({ ip, userAgent: "fingerprint probe", acceptLanguage: "en" });

  test("a forged X-Forwarded-For from an untrusted peer does not change the fingerprint", async () => {
    const forged = await fingerprintOf(server.url, { "x-forwarded-for": "198.51.100.7" }, "127.0.1.5");
    expect(forged).toBe(await expected("127.0.1.5"));
    expect(forged).not.toBe(await expected("198.51.100.7"));
  });

  test("through the trusted proxy, a comma list gives the last address that is not a trusted proxy", async () => {
    const viaProxy = await fingerprintOf(nginx.url, { "x-forwarded-for": "198.51.100.7, 10.0.0.1" }, "127.0.1.5");
    // nginx appends 127.0.1.5; promptgate's peer is 127.0.0.2, the trusted proxy itself.
    expect(viaProxy).toBe(await expected("127.0.1.5"));
    expect(viaProxy).not.toBe(await expected("127.0.0.2"));
    expect(viaProxy).not.toBe(await expected("10.0.0.1"));
  });
});

describe("people an admin adds by their sign-in identity", () => {
  let admin: TestClient;
  beforeAll(async () => {
    admin = new TestClient(server.url, { userAgent: "password admin" });
    await admin.loginAsAdmin(ADMIN_PASSWORD);
    await admin.page("/admin/people");
  });
  /** A client of the proxy: every request carries the identity the test's oauth2-proxy stand-in passes on. */
  const throughProxy = (headers: Record<string, string>) => ({
    fetch: (path: string, init: RequestInit & { headers?: Record<string, string> } = {}) => fetch(new URL(path, nginx.url), { ...init, headers: { ...headers, ...init.headers } }),
  });

  test("an email added as a moderator is one only through the trusted proxy, with no group; removed, it loses the role and its live page ends", async () => {
    const added = await admin.postForm("/admin/people", { intent: "add-identity", kind: "email", identity: " Frank@Example.org ", role: "moderator" });
    expect(added.html).toContain("proxy:email:frank@example.org is now a moderator when signed in through your proxy.");
    expect((await admin.page("/admin/people")).html).toContain("through the proxy, added here");
    // The proxy sends a user id and the email, in whatever case; no staff group.
    const frank = signedIn("f-7781", "staff", { "x-test-email": "FRANK@example.org" });
    expect((await trpc(nginx.url, "admin.me", frank)).json.result.data).toMatchObject({ name: "proxy:email:frank@example.org", role: "moderator" });
    const verify = await get(nginx.url, "/auth/verify", frank);
    expect([verify.status, verify.headers["x-promptgate-user"], verify.headers["x-promptgate-role"]]).toEqual([204, "proxy:email:frank@example.org", "moderator"]);
    expect((await trpc(nginx.url, "admin.dashboard", frank)).status).toBe(200);
    expect((await trpc(nginx.url, "access.accounts", frank)).status).toBe(403);

    // Straight to promptgate, the same headers are nobody's.
    const direct = { "x-forwarded-user": "f-7781", "x-forwarded-email": "frank@example.org" };
    expect((await trpc(server.url, "admin.me", direct)).json.result.data).toBeNull();
    expect((await get(server.url, "/auth/verify", direct)).status).toBe(401);
    expect((await trpc(server.url, "admin.dashboard", direct)).status).toBe(401);

    const proxied = throughProxy(frank);
    const cursor = (await trpc(nginx.url, "prompt.liveCursor", frank)).json.result.data;
    const stream = await SseStream.open(proxied, "admin.onChange", { input: { lastEventId: cursor } });
    const guest = new TestClient(server.url, { userAgent: "guest of the proxy test" });
    await guest.page("/");
    const before = (await guest.mutate("prompt.submit", { prompt: "seen by frank" })).body.result.data.id;
    await stream.waitForData("frank's page to show the prompt", (data) => data.type === "prompt" && data.id === before);

    const removed = await admin.postForm("/admin/people", { intent: "remove", name: "proxy:email:frank@example.org" });
    expect(removed.html).toContain("proxy:email:frank@example.org is removed");
    const after = (await guest.mutate("prompt.submit", { prompt: "never seen by frank" })).body.result.data.id;
    await waitFor("frank's live page to end", () => stream.messages.some((message) => message.event === "serialized-error"));
    expect(stream.messages.at(-1)!.data.data.code).toBe("UNAUTHORIZED");
    expect(stream.data.some((data) => data.type === "prompt" && data.id === after)).toBe(false);
    stream.close();
    expect((await trpc(nginx.url, "admin.me", frank)).json.result.data).toBeNull();
    expect((await get(nginx.url, "/auth/verify", frank)).status).toBe(401);

    const audit = server.services.db.$client.prepare("SELECT actor, action, target FROM audit_log WHERE target = 'proxy:email:frank@example.org' ORDER BY id").all();
    expect(audit).toEqual([
      { actor: "admin", action: "account.add", target: "proxy:email:frank@example.org" },
      { actor: "admin", action: "account.remove", target: "proxy:email:frank@example.org" },
    ]);
  });

  test("a user name added as an admin is one through the proxy and cannot remove itself; a group may raise an added moderator but not lower an added admin", async () => {
    expect((await admin.mutate("access.addIdentity", { kind: "user", identity: "gina", role: "admin" })).status).toBe(200);
    expect((await admin.mutate("access.addIdentity", { kind: "email", identity: "hank@example.org", role: "moderator" })).status).toBe(200);
    expect((await trpc(nginx.url, "access.accounts", signedIn("gina", "night-shift"))).status).toBe(200);
    // An admin never removes their own account (nor locks themselves out by it).
    const gina = new TestClient(nginx.url, { userAgent: "gina" });
    await gina.page("/");
    const own = await gina.mutate("access.removeAccount", { name: "proxy:user:gina" }, signedIn("gina"));
    expect([own.status, own.body.error.data.userMessage]).toEqual([409, "You cannot remove your own account: ask another admin."]);
    expect((await trpc(nginx.url, "admin.me", signedIn("h-1", "pg-admins", { "x-test-email": "hank@example.org" }))).json.result.data).toMatchObject({ name: "proxy:email:hank@example.org", role: "admin" });
    expect((await trpc(nginx.url, "admin.me", signedIn("h-1", "", { "x-test-email": "hank@example.org" }))).json.result.data).toMatchObject({ role: "moderator" });
    // Someone their group made staff already: the admin's word now holds, group or not.
    expect((await trpc(nginx.url, "admin.me", signedIn("ivy", "night-shift"))).json.result.data).toMatchObject({ name: "proxy:user:ivy", role: "moderator" });
    expect((await admin.mutate("access.addIdentity", { kind: "user", identity: "ivy", role: "admin" })).status).toBe(200);
    expect((await trpc(nginx.url, "admin.me", signedIn("ivy", "staff"))).json.result.data).toMatchObject({ name: "proxy:user:ivy", role: "admin" });
  });

  test("a grant matches only the header it names: a user name chosen equal to someone's email gets neither their role nor their colour; user names match exactly, emails in any case", async () => {
    expect((await admin.mutate("access.addIdentity", { kind: "email", identity: "boss@example.org", role: "admin" })).status).toBe(200);
    const boss = signedIn("", "", { "x-test-email": "BOSS@example.org" });
    expect((await trpc(nginx.url, "admin.me", boss)).json.result.data).toMatchObject({ name: "proxy:email:boss@example.org", role: "admin" });
    // The impostor's identity provider let them pick the user name "boss@example.org".
    const impostor = signedIn("boss@example.org", "", { "x-test-email": "mallory@example.org" });
    expect((await trpc(nginx.url, "admin.me", impostor)).json.result.data).toBeNull();
    expect((await get(nginx.url, "/auth/verify", impostor)).status).toBe(401);
    // With a staff group of their own they are staff under their own name, never the boss's account.
    expect((await trpc(nginx.url, "admin.me", { ...impostor, "x-test-groups": "night-shift" })).json.result.data).toMatchObject({ name: "proxy:user:boss@example.org", role: "moderator" });
    expect((await trpc(nginx.url, "admin.me", boss)).json.result.data).toMatchObject({ name: "proxy:email:boss@example.org", role: "admin" });
    const colour = async (headers: Record<string, string>) => (await trpc(nginx.url, "visitor.me", { ...headers, "user-agent": "one phone" })).json.result.data.colour.name;
    expect(await colour(impostor)).not.toBe(await colour(boss));

    expect((await admin.mutate("access.addIdentity", { kind: "user", identity: "Quinn", role: "moderator" })).status).toBe(200);
    expect((await trpc(nginx.url, "admin.me", signedIn("Quinn"))).json.result.data).toMatchObject({ name: "proxy:user:Quinn", role: "moderator" });
    expect((await trpc(nginx.url, "admin.me", signedIn("quinn"))).json.result.data).toBeNull();
    // An email grant is not a user name: the same text in X-Forwarded-User opens nothing.
    expect((await admin.mutate("access.addIdentity", { kind: "email", identity: "Rae", role: "moderator" })).status).toBe(200);
    expect((await trpc(nginx.url, "admin.me", signedIn("Rae"))).json.result.data).toBeNull();
    expect((await admin.mutate("access.addIdentity", { identity: "no-kind", role: "moderator" })).status).toBe(400);
  });

  test("a taken, blank or malformed identity is refused with a message and nothing is stored", async () => {
    const count = () => (server.services.db.$client.prepare("SELECT count(*) AS n FROM accounts").get() as { n: number }).n;
    const before = count();
    expect((await admin.mutate("access.addIdentity", { kind: "email", identity: "jo@example.org", role: "moderator" })).status).toBe(200);
    const taken = await admin.mutate("access.addIdentity", { kind: "email", identity: "JO@example.org", role: "admin" });
    expect([taken.status, taken.body.error.data.userMessage]).toEqual([409, "proxy:email:jo@example.org already has a role: remove it first to give another."]);
    for (const identity of ["", "   ", "two words", "a,b", "tab\there", "x".repeat(201)]) {
      const refused = await admin.mutate("access.addIdentity", { kind: "user", identity, role: "moderator" });
      expect(refused.status).toBe(400);
      expect(refused.body.error.data.userMessage).toMatch(/identity|user name or email/);
    }
    expect((await admin.mutate("access.addIdentity", { kind: "user", identity: "kim", role: "owner" })).status).toBe(400);
    expect(count()).toBe(before + 1);
  });

  test("a first sign-in through the proxy is in the audit log once, for an added identity and for a guest (by colour, never by identity), however many requests it opens with", async () => {
    const since = (server.services.db.$client.prepare("SELECT max(id) AS id FROM audit_log").get() as { id: number }).id;
    const logins = () =>
      (server.services.db.$client.prepare("SELECT actor, action, target, details FROM audit_log WHERE id > ? AND action = 'login.proxy' ORDER BY id").all(since) as Array<Record<string, string>>).map((row) => ({ ...row, details: JSON.parse(row.details!) }));
    expect((await admin.mutate("access.addIdentity", { kind: "user", identity: "vera", role: "moderator" })).status).toBe(200);
    const vera = signedIn("vera", "staff", { "x-test-preferred-username": "Vera V." });
    const opening = await Promise.all([1, 2, 3].map(() => trpc(nginx.url, "admin.me", vera)));
    expect(opening.map((answer) => answer.json.result.data?.name)).toEqual(["proxy:user:vera", "proxy:user:vera", "proxy:user:vera"]);
    const walt = signedIn("walt@example.org");
    const colours = await Promise.all([1, 2, 3].map(async () => (await trpc(nginx.url, "visitor.me", walt)).json.result.data.colour.name));
    expect(new Set(colours).size).toBe(1);
    const { id: waltId } = server.services.db.$client.prepare("SELECT visitor_id AS id FROM proxy_identities WHERE subject_hash = ?").get(hashSecretToken("proxy:user:walt@example.org")) as { id: number };
    expect(logins()).toEqual([
      { actor: "proxy:user:vera", action: "login.proxy", target: "Vera V.", details: { role: "moderator", change: "first sign-in", groups: ["staff"] } },
      { actor: `visitor ${waltId}`, action: "login.proxy", target: null, details: { role: "guest", change: "created" } },
    ]);
    // Later requests are no new sign-ins.
    await trpc(nginx.url, "admin.me", vera);
    await trpc(nginx.url, "visitor.me", walt);
    expect(logins()).toHaveLength(2);
    expect(JSON.stringify(server.services.db.$client.prepare("SELECT * FROM audit_log").all())).not.toContain("walt");
    const html = (await admin.page("/admin/audit")).html;
    expect(html).toContain("proxy:user:vera");
    expect(html).toContain(`visitor ${waltId}`);
  });
});
