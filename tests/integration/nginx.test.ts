/**
 * nginx auth_request (issue 9 §3): GET /auth/verify on its own, then a real nginx running
 * docs/deploy/nginx.conf in front of a tiny upstream standing for the A1111 web UI at /sd/.
 */
import { createServer, type IncomingHttpHeaders, type Server } from "node:http";
import argon2 from "argon2";
import { TestClient, TokenClient } from "../helpers/client";
import { startNginx, type RunningNginx } from "../helpers/nginx";
import { ADMIN_PASSWORD, removeDataDir, signedInModerator, startTestServer, type TestServer } from "../helpers/server";

let server: TestServer;
let upstream: Server;
let nginx: RunningNginx;
/** What the protected upstream was asked, and with which headers. */
const seen: Array<{ url: string; headers: IncomingHttpHeaders }> = [];

beforeAll(async () => {
  // nginx on loopback tells promptgate the scheme (the https test below).
  server = await startTestServer({ LOCAL_GENERATOR: "false", TRUST_PROXY: "loopback" });
  upstream = createServer((req, res) => {
    seen.push({ url: req.url ?? "", headers: req.headers });
    res.setHeader("content-type", "text/plain");
    res.end(`upstream ${req.url}`);
  });
  await new Promise<void>((resolve) => upstream.listen(0, "127.0.0.1", resolve));
  nginx = await startNginx({ promptgatePort: server.httpPort, upstreamPort: upstreamPort() });
});
afterAll(async () => {
  await nginx?.close();
  await new Promise((resolve) => upstream?.close(resolve));
  await server?.close();
  removeDataDir(server.dataDir);
});

function upstreamPort(): number {
  const address = upstream.address();
  return typeof address === "object" && address ? address.port : 0;
}

async function token(name: string, scopes: string[]): Promise<string> {
  const admin = new TestClient(server.url, { userAgent: `token maker ${name}` });
  await admin.loginAsAdmin(ADMIN_PASSWORD);
  return (await admin.mutate("access.createToken", { name, scopes })).body.result.data.token;
}

describe("GET /auth/verify", () => {
  test("never runs argon2, for any kind of caller, while a login beside it does", async () => {
    // The server runs in this process, so a spy on the argon2 module sees every hash and verification it makes.
    const calls = [vi.spyOn(argon2, "verify"), vi.spyOn(argon2, "hash")];
    const argon2Calls = () => calls.reduce((sum, spy) => sum + spy.mock.calls.length, 0);
    try {
      const admin = new TestClient(server.url, { userAgent: "argon2 counter" });
      await admin.loginAsAdmin(ADMIN_PASSWORD);
      expect(argon2Calls()).toBeGreaterThan(0);
      const secret = await token("argon2-counter", ["read"]);
      calls.forEach((spy) => spy.mockClear());
      const callers: Array<Record<string, string>> = [
        {},
        { cookie: `pg_admin=${admin.cookies.get("pg_admin")}` },
        { cookie: "pg_admin=forged; pg_visitor=forged" },
        { authorization: `Bearer ${secret}` },
        { authorization: `Bearer ${secret}x` },
        { "user-agent": "a new browser", "accept-language": "fr" },
      ];
      const statuses = [];
      for (const headers of callers) statuses.push((await fetch(`${server.url}/auth/verify`, { headers })).status);
      expect(statuses).toEqual([401, 204, 401, 204, 401, 401]);
      expect(argon2Calls()).toBe(0);
    } finally {
      calls.forEach((spy) => spy.mockRestore());
    }
  });

  test("answers 401 without a body, and creates no visitor and no cookie", async () => {
    const visitors = () => server.services.db.$client.prepare("SELECT count(*) AS n FROM visitors").get();
    const before = visitors();
    const response = await fetch(`${server.url}/auth/verify`, { headers: { "user-agent": "nginx subrequest" } });
    expect(response.status).toBe(401);
    expect(await response.text()).toBe("");
    expect(response.headers.getSetCookie()).toEqual([]);
    expect(visitors()).toEqual(before);
  });

  test("answers 204 with the user and role of a session or token, 403 for a submit-only token, and 401 for a bad token or one sent with cookies", async () => {
    const admin = new TestClient(server.url, { userAgent: "verify admin" });
    await admin.loginAsAdmin(ADMIN_PASSWORD);
    const withSession = await admin.fetch("/auth/verify");
    expect(withSession.status).toBe(204);
    expect(withSession.headers.get("x-promptgate-user")).toBe("admin");
    expect(withSession.headers.get("x-promptgate-role")).toBe("admin");
    expect(await withSession.text()).toBe("");

    const mod = await signedInModerator(server, admin, "verify-mod", { userAgent: "verify mod" });
    const moderated = await mod.fetch("/auth/verify");
    expect([moderated.status, moderated.headers.get("x-promptgate-user"), moderated.headers.get("x-promptgate-role")]).toEqual([204, "verify-mod", "moderator"]);

    const secret = await token("verify-script", ["read"]);
    const script = new TokenClient(server.url, secret);
    const withToken = await script.fetch("/auth/verify");
    expect([withToken.status, withToken.headers.get("x-promptgate-user"), withToken.headers.get("x-promptgate-role")]).toEqual([204, "token:verify-script", "token"]);
    const bot = await new TokenClient(server.url, await token("verify-bot", ["submit"])).fetch("/auth/verify");
    expect([bot.status, await bot.text()]).toEqual([403, ""]);
    const refusals: Array<Record<string, string>> = [{ authorization: `Bearer ${secret}x` }, { authorization: `Bearer ${secret}`, cookie: `pg_admin=${admin.cookies.get("pg_admin")}` }, { authorization: "Basic eDp5" }];
    for (const headers of refusals) {
      const refused = await fetch(`${server.url}/auth/verify`, { headers });
      expect(refused.status).toBe(401);
      expect(await refused.text()).toBe("");
    }
  });
});

describe("behind a real nginx", () => {
  test("a browser without a session is sent to the login, then back, and reaches the upstream until it logs out", async () => {
    const browser = new TestClient(nginx.url, { userAgent: "browser behind nginx" });
    const refused = await browser.fetch("/sd/txt2img?tab=1&x=a%20b");
    expect(refused.status, nginx.output()).toBe(302);
    const login = refused.headers.get("location")!;
    expect(new URL(login, nginx.url).pathname).toBe("/admin/login");
    expect(new URL(login, nginx.url).searchParams.get("next")).toBe("/sd/txt2img?tab=1&x=a%20b");
    expect(seen).toEqual([]);

    const page = await browser.page(login);
    expect(page.status).toBe(200);
    const loggedIn = await browser.postForm(login, { password: ADMIN_PASSWORD, next: "/sd/txt2img?tab=1&x=a%20b" });
    expect(loggedIn.status).toBe(302);
    expect(loggedIn.location).toBe("/sd/txt2img?tab=1&x=a%20b");

    const through = await browser.fetch(loggedIn.location!);
    expect(through.status).toBe(200);
    expect(await through.text()).toBe("upstream /txt2img?tab=1&x=a%20b");
    const request = seen.at(-1)!;
    expect(request.headers["x-promptgate-user"]).toBe("admin");
    expect(request.headers["x-promptgate-role"]).toBe("admin");
    // The upstream never sees promptgate's session.
    expect(request.headers.cookie).toBeUndefined();

    await browser.page("/admin");
    const session = browser.cookies.get("pg_admin")!;
    expect((await browser.postForm("/admin?index", { intent: "logout" })).status).toBe(302);
    const after = await browser.fetch("/sd/txt2img");
    expect(after.status).toBe(302);
    // Logout ends the session on the server, not only in this browser: the old cookie, replayed, opens nothing.
    const replayed = await fetch(`${nginx.url}/sd/txt2img`, { redirect: "manual", headers: { cookie: `pg_admin=${session}` } });
    expect(replayed.status).toBe(302);
    expect((await fetch(`${server.url}/auth/verify`, { headers: { cookie: `pg_admin=${session}` } })).status).toBe(401);
    expect(seen).toHaveLength(1);
  });

  test("over https a login session reaches the upstream through verify, and a bare-named cookie planted with its value does not", async () => {
    const tls = await startNginx({ promptgatePort: server.httpPort, upstreamPort: upstreamPort(), tls: true });
    try {
      const browser = new TestClient(tls.url, { userAgent: "browser behind https nginx", dispatcher: tls.dispatcher });
      const refused = await browser.fetch("/sd/over-https");
      expect(refused.status, tls.output()).toBe(302);
      await browser.page(refused.headers.get("location")!);
      const loggedIn = await browser.postForm("/admin/login", { password: ADMIN_PASSWORD, next: "/sd/over-https" });
      expect([loggedIn.status, loggedIn.location]).toEqual([302, "/sd/over-https"]);
      const session = browser.cookies.get("__Host-pg_admin");
      expect(session, [...browser.cookies.keys()].join()).toBeDefined();
      expect(browser.cookies.has("pg_admin")).toBe(false);

      const through = await browser.fetch("/sd/over-https");
      expect(through.status, tls.output()).toBe(200);
      expect(await through.text()).toBe("upstream /over-https");
      expect(seen.at(-1)!.headers["x-promptgate-user"]).toBe("admin");

      // A plain-http page of a sibling host can plant the bare name; over https it is never read.
      const count = seen.length;
      const planted = new TestClient(tls.url, { userAgent: "planted cookie", dispatcher: tls.dispatcher });
      planted.cookies.set("pg_admin", session!);
      expect((await planted.fetch("/sd/over-https")).status).toBe(302);
      expect(seen).toHaveLength(count);
    } finally {
      await tls.close();
    }
  });

  test("a script with a token reaches the upstream; once the token is revoked it gets 401", async () => {
    const secret = await token("nginx-script", ["read"]);
    const script = new TokenClient(nginx.url, secret);
    const through = await script.fetch("/sd/sdapi/v1/options");
    expect(through.status).toBe(200);
    expect(await through.text()).toBe("upstream /sdapi/v1/options");
    expect(seen.at(-1)!.headers["x-promptgate-user"]).toBe("token:nginx-script");
    expect(seen.at(-1)!.headers.authorization).toBeUndefined();

    const admin = new TestClient(server.url, { userAgent: "revoker" });
    await admin.loginAsAdmin(ADMIN_PASSWORD);
    expect((await admin.mutate("access.revokeToken", { name: "nginx-script" })).status).toBe(200);
    const count = seen.length;
    expect((await script.fetch("/sd/sdapi/v1/options")).status).toBe(401);
    expect((await new TokenClient(nginx.url, "pgt_made-up").fetch("/sd/")).status).toBe(401);
    expect(seen).toHaveLength(count);
  });
});
