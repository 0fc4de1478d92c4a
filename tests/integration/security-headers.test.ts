/** What the real server tells browsers: CSP with a per-response nonce, no framing, no caching of private answers, HSTS and __Host- cookies over https. */
import { TestClient } from "../helpers/client";
import { ADMIN_PASSWORD, removeDataDir, startTestServer, type TestServer } from "../helpers/server";

let server: TestServer;

beforeAll(async () => {
  // TRUST_PROXY: the tests play a reverse proxy that terminates https (X-Forwarded-Proto).
  server = await startTestServer({ LOCAL_GENERATOR: "false", TRUST_PROXY: "loopback" });
});
afterAll(async () => {
  await server?.close();
  removeDataDir(server.dataDir);
});

function directives(response: Response): Map<string, string> {
  const policy = response.headers.get("content-security-policy") ?? "";
  return new Map(policy.split(";").map((part) => part.trim().split(/\s+(.*)/s).slice(0, 2) as [string, string]));
}

test("every page's scripts carry that response's own CSP nonce, and the policy allows no other inline script", async () => {
  const client = new TestClient(server.url);
  const nonces: string[] = [];
  for (const path of ["/", "/", "/admin/login", "/no-such-page"]) {
    const { html, response } = await client.page(path);
    const policy = directives(response);
    const scriptSrc = policy.get("script-src")!;
    expect(scriptSrc).not.toContain("unsafe-inline");
    const nonce = /'nonce-([A-Za-z0-9+/]{22}==)'/.exec(scriptSrc)?.[1];
    expect(nonce).toBeDefined();
    nonces.push(nonce!);
    const scripts = html.match(/<script\b[^>]*>/g) ?? [];
    expect(scripts.length).toBeGreaterThan(2);
    for (const script of scripts) expect(script).toContain(`nonce="${nonce}"`);
    expect(policy.get("default-src")).toBe("'self'");
    expect(policy.get("object-src")).toBe("'none'");
    expect(policy.get("base-uri")).toBe("'none'");
    expect(policy.get("frame-ancestors")).toBe("'none'");
  }
  expect(new Set(nonces).size).toBe(nonces.length);
});

test("pages, page data and API answers are never stored; built assets are cached for good", async () => {
  const visitor = new TestClient(server.url);
  const { html } = await visitor.page("/");
  for (const path of ["/", "/_root.data", "/admin", "/admin/login", "/admin.data", "/api/trpc/prompt.mine", "/api/trpc/admin.dashboard", "/healthz"]) {
    const response = await visitor.fetch(path);
    expect(`${path}: ${response.headers.get("cache-control")}`).toBe(`${path}: no-store`);
  }
  const asset = /href="(\/build\/[^"]+\.js)"/.exec(html)![1]!;
  const response = await visitor.fetch(asset);
  expect(response.status).toBe(200);
  expect(response.headers.get("cache-control")).toBe("public, max-age=31536000, immutable");
});

test("HSTS is sent over https seen through the trusted proxy, never over plain http", async () => {
  const client = new TestClient(server.url);
  const https = await client.fetch("/", { headers: { "x-forwarded-proto": "https" } });
  expect(https.headers.get("strict-transport-security")).toBe("max-age=31536000; includeSubDomains");
  const http = await client.fetch("/");
  expect(http.headers.get("strict-transport-security")).toBeNull();
});

test("over https every cookie is __Host-, Secure, HttpOnly, SameSite=Lax and Path=/ without a Domain, and a bare-named one planted beside it is never read", async () => {
  const https = { "x-forwarded-proto": "https" };
  const admin = new TestClient(server.url, { userAgent: "https admin" });
  const form = await admin.fetch("/admin/login", { headers: https });
  admin.csrfToken = /name="_csrf" value="([^"]+)"/.exec(await form.text())![1]!;
  const login = await admin.postForm("/admin/login", { password: ADMIN_PASSWORD }, https);
  expect(login.status).toBe(302);
  const visitorPage = await admin.fetch("/", { headers: https });
  const lines = [form, login, visitorPage].flatMap((response) => response.headers.getSetCookie());
  expect(new Set(lines.map((line) => line.split("=")[0]))).toEqual(new Set(["__Host-pg_csrf", "__Host-pg_device", "__Host-pg_admin", "__Host-pg_visitor"]));
  for (const line of lines) {
    const attributes = line.split(";").slice(1).map((attribute) => attribute.trim().toLowerCase());
    expect(attributes, line).toEqual(expect.arrayContaining(["secure", "httponly", "samesite=lax", "path=/"]));
    expect(attributes.some((attribute) => attribute.startsWith("domain=")), line).toBe(false);
  }
  const me = async (cookie: string) => (await (await fetch(`${server.url}/api/trpc/admin.me`, { headers: { ...https, cookie } })).json()).result.data;
  const session = admin.cookies.get("__Host-pg_admin")!;
  expect(await me(`__Host-pg_admin=${session}`)).toMatchObject({ name: "admin" });
  // As a sibling subdomain or a plain-http page could set it: even a live session's token is not read under the bare name.
  expect(await me(`pg_admin=${session}`)).toBeNull();
});

test("a proxy that is not trusted cannot claim https", async () => {
  const untrusting = await startTestServer({ LOCAL_GENERATOR: "false" });
  try {
    const response = await new TestClient(untrusting.url).fetch("/healthz", { headers: { "x-forwarded-proto": "https" } });
    expect(response.headers.get("strict-transport-security")).toBeNull();
  } finally {
    await untrusting.close();
    removeDataDir(untrusting.dataDir);
  }
});
