/** What the real server tells browsers: CSP with a per-response nonce, no framing, no caching of private answers, HSTS over https. */
import { TestClient } from "../helpers/client";
import { removeDataDir, startTestServer, type TestServer } from "../helpers/server";

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
