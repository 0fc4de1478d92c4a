/** Submitting prompts, validation, isolation between visitors, CSRF, and moderation. */
import mqtt from "mqtt";
import { PresenceMessageSchema, SCHEMA_VERSION, encode, topics } from "../../broker/contract";
import { TestClient } from "../helpers/client";
import { ADMIN_PASSWORD, generatorCredential, removeDataDir, startTestServer, waitFor, type TestServer } from "../helpers/server";
import { handSession } from "../helpers/results";

let server: TestServer;

beforeAll(async () => {
  // No generator: approved jobs stay approved, so moderation can be observed on its own.
  server = await startTestServer({ LOCAL_GENERATOR: "false" });
});
afterAll(async () => {
  await server?.close();
  removeDataDir(server.dataDir);
});

const promptCount = () => (server.services.db.$client.prepare("SELECT count(*) AS n FROM prompts").get() as { n: number }).n;

describe("validation", () => {
  const cases: Array<[string, Record<string, string>, string, RegExp]> = [
    ["letters as width", { width: "abc" }, "width", /^Width must be a whole number of pixels$/],
    ["63 (too small)", { width: "63" }, "width", /^Width must be at least 64 pixels$/],
    ["2049 (too large)", { height: "2049" }, "height", /^Height must be at most 2048 pixels$/],
    ["100 (not a multiple of 8)", { width: "100" }, "width", /^Width must be a multiple of 8/],
    ["100 as height", { height: "100" }, "height", /^Height must be a multiple of 8/],
    ["-512", { height: "-512" }, "height", /^Height must be at least 64 pixels$/],
    ["an empty width", { width: "" }, "width", /^Width must be a whole number of pixels$/],
    ["an empty prompt", { prompt: "   " }, "prompt", /^Prompt is empty: describe the image you want$/],
    ["a prompt of a single NUL", { prompt: "\u0000" }, "prompt", /^Prompt must not contain control characters/],
    ["an escape sequence", { prompt: "a \u001b[2J cat" }, "prompt", /^Prompt must not contain control characters/],
    ["a lone carriage return", { prompt: "a\rcat" }, "prompt", /^Prompt must not contain control characters/],
    ["a right-to-left override", { prompt: "a \u202Etac" }, "prompt", /^Prompt must not contain text-direction override characters$/],
    ["a C1 control in the negative prompt", { negativePrompt: "blurry\u0085" }, "negativePrompt", /^Negative prompt must not contain control characters/],
    ["a 10 kB prompt", { prompt: "x".repeat(10_000) }, "prompt", /^Prompt must be at most 1000 characters$/],
    ["a 10 kB negative prompt", { negativePrompt: "y".repeat(10_000) }, "negativePrompt", /^Negative prompt must be at most 1000 characters$/],
  ];

  test.each(cases)("the form refuses %s with a 400 and a message next to the field, storing nothing", async (_name, override, field, message) => {
    const visitor = new TestClient(server.url, { userAgent: `validation ${_name}` });
    await visitor.page("/");
    const before = promptCount();
    const result = await visitor.postForm("/?index", { intent: "submit", prompt: "a cat", negativePrompt: "", width: "512", height: "512", ...override });
    expect(result.status).toBe(400);
    const fieldError = new RegExp(`data-field="${field}"[^>]*>([^<]*)<`).exec(result.html)?.[1];
    expect(fieldError).toMatch(message);
    expect(promptCount()).toBe(before);
  });

  test.each(cases)("the tRPC API refuses %s with a 400 and the field's message, storing nothing", async (_name, override, field, message) => {
    const visitor = new TestClient(server.url, { userAgent: `api validation ${_name}` });
    await visitor.page("/");
    const before = promptCount();
    const input: Record<string, unknown> = { prompt: "a cat", width: 512, height: 512, ...override };
    const result = await visitor.mutate("prompt.submit", input);
    expect(result.status).toBe(400);
    expect(result.body.error.data.fieldErrors[field]).toEqual([expect.stringMatching(message)]);
    expect(result.body.error.data.userMessage).toMatch(message);
    expect(promptCount()).toBe(before);
  });

  test("the tRPC API refuses a lone surrogate (a form cannot even send one), storing nothing", async () => {
    const visitor = new TestClient(server.url, { userAgent: "api validation lone surrogate" });
    await visitor.page("/");
    const before = promptCount();
    const result = await visitor.mutate("prompt.submit", { prompt: "half an emoji \ud83d" });
    expect(result.status).toBe(400);
    expect(result.body.error.data.userMessage).toMatch(/^Prompt must not contain broken characters/);
    expect(promptCount()).toBe(before);
  });

  test("a textarea's CRLF text is stored with LF line breaks, NFC-normalised and trimmed", async () => {
    const visitor = new TestClient(server.url, { userAgent: "crlf form" });
    await visitor.page("/");
    const result = await visitor.postForm("/?index", { intent: "submit", prompt: "  a cafe\u0301\r\nat dusk\r\n", negativePrompt: "blurry,\r\n\tdark ", width: "512", height: "512" });
    expect(result.status).toBe(200);
    const stored = server.services.db.$client.prepare("SELECT prompt, negative_prompt AS negativePrompt FROM prompts WHERE prompt LIKE 'a caf%' ORDER BY id DESC").get();
    expect(stored).toEqual({ prompt: "a caf\u00e9\nat dusk", negativePrompt: "blurry,\n\tdark" });
  });

  test("the boundaries 64 and 2048 and a 1000-character prompt are accepted", async () => {
    const visitor = new TestClient(server.url, { userAgent: "boundaries" });
    await visitor.page("/");
    const result = await visitor.mutate("prompt.submit", { prompt: "z".repeat(1000), width: 64, height: 2048 });
    expect(result.status).toBe(200);
    expect(result.body.result.data).toMatchObject({ width: 64, height: 2048, status: "pending" });
  });
});

test("50 visitors submitting at once leave exactly 50 prompts and no error", async () => {
  const visitors = Array.from({ length: 50 }, (_, i) => new TestClient(server.url, { userAgent: `burst ${i}` }));
  await Promise.all(visitors.map((visitor) => visitor.page("/")));
  const before = promptCount();
  const results = await Promise.all(visitors.map((visitor, i) => visitor.postForm("/?index", { intent: "submit", prompt: `burst prompt ${i}`, width: "512", height: "512" })));
  expect(results.map((r) => r.status)).toEqual(Array(50).fill(200));
  expect(promptCount()).toBe(before + 50);
  const texts = server.services.db.$client.prepare("SELECT prompt FROM prompts WHERE prompt LIKE 'burst prompt %'").all() as Array<{ prompt: string }>;
  expect(new Set(texts.map((t) => t.prompt)).size).toBe(50);
});

test("a visitor sees only their own prompts", async () => {
  const alice = new TestClient(server.url, { userAgent: "alice" });
  const bob = new TestClient(server.url, { userAgent: "bob" });
  await alice.page("/");
  await bob.page("/");
  await alice.mutate("prompt.submit", { prompt: "alice's secret idea" });
  await bob.mutate("prompt.submit", { prompt: "bob's idea" });
  const bobs = (await bob.query("prompt.mine")).body.result.data as Array<{ prompt: string }>;
  expect(bobs.map((p) => p.prompt)).toEqual(["bob's idea"]);
  expect((await bob.page("/")).html).not.toContain("alice");
});

test("an oversized request body is refused with 413 before it is read", async () => {
  const visitor = new TestClient(server.url, { userAgent: "huge body" });
  await visitor.page("/");
  const before = promptCount();
  const form = await visitor.postForm("/?index", { intent: "submit", prompt: "x".repeat(100_000) });
  expect(form.status).toBe(413);
  const api = await visitor.fetch("/api/trpc/prompt.submit", {
    method: "POST",
    body: JSON.stringify({ prompt: "y".repeat(100_000) }),
    headers: { "content-type": "application/json", "x-csrf-token": visitor.csrfToken! },
  });
  expect(api.status).toBe(413);
  const chunked = await visitor.fetch("/?index", {
    method: "POST",
    body: new ReadableStream({
      start(controller) {
        controller.enqueue(new TextEncoder().encode(`_csrf=${visitor.csrfToken}&intent=submit&prompt=${"z".repeat(1000)}`));
        controller.close();
      },
    }),
    headers: { "content-type": "application/x-www-form-urlencoded" },
    duplex: "half",
  } as RequestInit & { duplex: "half"; headers: Record<string, string> });
  expect(chunked.status).toBe(411);
  expect(promptCount()).toBe(before);
});

describe("CSRF", () => {
  test("a form post without the token is refused with 403 and stores nothing", async () => {
    const visitor = new TestClient(server.url, { userAgent: "csrf-form" });
    await visitor.page("/");
    const before = promptCount();
    const result = await visitor.postForm("/?index", { intent: "submit", prompt: "forged", _csrf: "" });
    expect(result.status).toBe(403);
    expect(promptCount()).toBe(before);
  });

  test("a token from another browser is refused", async () => {
    const attacker = new TestClient(server.url, { userAgent: "attacker" });
    await attacker.page("/");
    const victim = new TestClient(server.url, { userAgent: "victim" });
    await victim.page("/");
    const result = await victim.postForm("/?index", { intent: "submit", prompt: "forged", _csrf: attacker.csrfToken! });
    expect(result.status).toBe(403);
  });

  test("a cross-site request is refused before it reaches a handler", async () => {
    const visitor = new TestClient(server.url, { userAgent: "csrf-origin" });
    await visitor.page("/");
    const viaOrigin = await visitor.postForm("/?index", { intent: "submit", prompt: "forged" }, { origin: "https://evil.example" });
    expect(viaOrigin.status).toBe(403);
    const viaFetchMetadata = await visitor.mutate("prompt.submit", { prompt: "forged" }, { "sec-fetch-site": "cross-site" });
    expect(viaFetchMetadata.status).toBe(403);
  });

  test("a tRPC mutation without the x-csrf-token header is refused", async () => {
    const visitor = new TestClient(server.url, { userAgent: "csrf-trpc" });
    await visitor.page("/");
    const result = await visitor.mutate("prompt.submit", { prompt: "forged" }, { "x-csrf-token": "" });
    expect(result.status).toBe(403);
  });
});

describe("admin", () => {
  test("/admin requires a login, and a wrong password is refused with 401", async () => {
    const guest = new TestClient(server.url);
    const page = await guest.fetch("/admin");
    expect(page.status).toBe(302);
    expect(page.headers.get("location")).toBe("/admin/login");
    await guest.page("/admin/login");
    const wrong = await guest.postForm("/admin/login", { password: "not it" });
    expect(wrong.status).toBe(401);
    expect(wrong.html).toContain("Wrong name or password.");
    expect((await guest.query("admin.dashboard")).status).toBe(401);
  });

  test("password guessing slows the guessing browser down with 429, Retry-After and a clear message", async () => {
    const guesser = new TestClient(server.url, { userAgent: "guesser" });
    await guesser.page("/admin/login");
    for (let i = 0; i < 5; i++) expect((await guesser.postForm("/admin/login", { password: `guess ${i}` })).status).toBe(401);
    // Each further failure doubles the wait (1 s, 2 s, 4 s …). On a loaded machine one slow
    // password check can outlast a short wait, so guess on until the browser is held back.
    let refused: Awaited<ReturnType<TestClient["postForm"]>> | undefined;
    for (let i = 5; i < 12 && !refused; i++) {
      const guess = await guesser.postForm("/admin/login", { password: `guess ${i}` });
      if (guess.status === 429) refused = guess;
      else expect(guess.status).toBe(401);
    }
    expect(Number(refused?.headers.get("retry-after"))).toBeGreaterThanOrEqual(1);
    expect(refused?.html).toMatch(/Too many wrong passwords from this browser\. Try again in \d+ seconds?\./);
    // Held back, even the right password is refused before it is checked.
    const blocked = await guesser.postForm("/admin/login", { password: ADMIN_PASSWORD });
    expect(blocked.status).toBe(429);
    expect(guesser.cookies.has("pg_admin")).toBe(false);
    // Another browser on the same address is not held back.
    const admin = new TestClient(server.url, { userAgent: "guesser" });
    await admin.loginAsAdmin(ADMIN_PASSWORD);
    expect((await admin.query("admin.dashboard")).status).toBe(200);
  });

  test("admin rights never come from request headers or a visitor's fingerprint", async () => {
    const admin = new TestClient(server.url, { userAgent: "the admin's browser" });
    await admin.loginAsAdmin(ADMIN_PASSWORD);
    // Same fingerprint, no admin cookie.
    const copycat = new TestClient(server.url, { userAgent: "the admin's browser" });
    await copycat.page("/");
    expect((await copycat.query("admin.dashboard")).status).toBe(401);
    const forged = await copycat.fetch("/api/trpc/admin.dashboard", { headers: { "x-forwarded-user": "admin", "x-remote-user": "admin", authorization: `Basic ${Buffer.from(`admin:${ADMIN_PASSWORD}`).toString("base64")}` } });
    expect(forged.status).toBe(401);
  });

  test("logging out ends the admin session", async () => {
    const admin = new TestClient(server.url, { userAgent: "logout" });
    await admin.loginAsAdmin(ADMIN_PASSWORD);
    const cookie = admin.cookies.get("pg_admin")!;
    await admin.page("/admin");
    const out = await admin.postForm("/admin?index", { intent: "logout" });
    expect(out.status).toBe(302);
    const replay = new TestClient(server.url);
    replay.cookies.set("pg_admin", cookie);
    expect((await replay.query("admin.dashboard")).status).toBe(401);
  });

  test("the dashboard lists prompts newest first with colour, full timestamp and size", async () => {
    const visitor = new TestClient(server.url, { userAgent: "listing" });
    await visitor.page("/");
    await visitor.mutate("prompt.submit", { prompt: "older", width: 768, height: 512 });
    await visitor.mutate("prompt.submit", { prompt: "newer" });
    const admin = new TestClient(server.url);
    await admin.loginAsAdmin(ADMIN_PASSWORD);
    const { prompts } = (await admin.query("admin.dashboard")).body.result.data;
    const ids = prompts.map((p: { id: number }) => p.id);
    expect(ids).toEqual([...ids].sort((a, b) => b - a));
    const older = prompts.find((p: { prompt: string }) => p.prompt === "older");
    expect(older).toMatchObject({ width: 768, height: 512, author: { name: expect.any(String), hex: expect.stringMatching(/^#[0-9a-f]{6}$/) } });
    expect(older.createdAt).toMatch(/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/);
    const html = (await admin.page("/admin")).html;
    expect(html.indexOf("newer")).toBeLessThan(html.indexOf("older"));
  });

  test("approving twice publishes once; deny and invalid transitions answer clearly", async () => {
    const subscriber = await mqtt.connectAsync(`mqtt://127.0.0.1:${server.mqttPort}`, { clientId: "test-observer-approve", ...generatorCredential(server, "test-observer-approve") });
    const published: string[] = [];
    subscriber.on("message", (_topic, payload) => published.push(JSON.parse(payload.toString()).jobId));
    // A generator that takes every job it is given, and never finishes one.
    await subscriber.subscribeAsync(topics.jobs("test-observer-approve"), { qos: 1 });
    await subscriber.publishAsync(
      topics.presence("test-observer-approve"),
      encode(PresenceMessageSchema, { schemaVersion: SCHEMA_VERSION, generatorId: "test-observer-approve", state: "online", ...handSession(), inFlight: [], concurrency: 8, backend: "test", maxPixels: 2048 * 2048, healthy: true }),
      { qos: 1 },
    );
    try {
      const visitor = new TestClient(server.url, { userAgent: "approve-twice" });
      await visitor.page("/");
      const { id } = (await visitor.mutate("prompt.submit", { prompt: "approve me twice" })).body.result.data;
      const { id: other } = (await visitor.mutate("prompt.submit", { prompt: "deny me" })).body.result.data;
      const admin = new TestClient(server.url);
      await admin.loginAsAdmin(ADMIN_PASSWORD);
      const [first, second] = await Promise.all([admin.mutate("admin.approve", { id }), admin.mutate("admin.approve", { id })]);
      expect([first.body.result.data.published, second.body.result.data.published].sort()).toEqual([false, true]);
      const { jobId } = server.services.db.$client.prepare("SELECT job_id AS jobId FROM prompts WHERE id = ?").get(id) as { jobId: string };
      await waitFor("the job to be published", () => published.includes(jobId));
      await new Promise((resolve) => setTimeout(resolve, 200));
      expect(published.filter((published) => published === jobId)).toHaveLength(1);

      expect((await admin.mutate("admin.deny", { id: other })).status).toBe(200);
      const denyApproved = await admin.mutate("admin.deny", { id });
      expect(denyApproved.status).toBe(409);
      expect(denyApproved.body.error.data.userMessage).toMatch(/only pending prompts can be denied/);
      expect((await admin.mutate("admin.approve", { id: 999_999 })).status).toBe(404);
      expect((await admin.mutate("admin.approve", { id: "abc" })).status).toBe(400);
      const statuses = (await visitor.query("prompt.mine")).body.result.data.map((p: { prompt: string; status: string }) => [p.prompt, p.status]);
      expect(statuses).toEqual([
        ["deny me", "denied"],
        ["approve me twice", "approved"],
      ]);
    } finally {
      await subscriber.publishAsync(topics.presence("test-observer-approve"), encode(PresenceMessageSchema, { schemaVersion: SCHEMA_VERSION, generatorId: "test-observer-approve", state: "offline", ...handSession() }), { qos: 1 });
      await subscriber.endAsync();
    }
  });
});
