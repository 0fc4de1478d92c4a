/**
 * API tokens for scripts (issue 9 §5): created by an admin with scopes, shown once, stored as a
 * SHA-256, sent as `Authorization: Bearer` to /api/trpc and /images with no cookies and no CSRF
 * token; scopes enforced; revoked tokens refused at once.
 */
import { createHash } from "node:crypto";
import { readFileSync } from "node:fs";
import path from "node:path";
import { TestClient, TokenClient } from "../helpers/client";
import { SseStream } from "../helpers/sse";
import { ADMIN_PASSWORD, removeDataDir, startTestServer, waitFor, type TestServer } from "../helpers/server";

let server: TestServer;
let admin: TestClient;

beforeAll(async () => {
  server = await startTestServer();
  admin = new TestClient(server.url, { userAgent: "the admin" });
  await admin.loginAsAdmin(ADMIN_PASSWORD);
});
afterAll(async () => {
  await server?.close();
  removeDataDir(server.dataDir);
});

async function createToken(name: string, scopes: string[]): Promise<TokenClient> {
  const created = await admin.mutate("access.createToken", { name, scopes });
  expect(created.status).toBe(200);
  return new TokenClient(server.url, created.body.result.data.token);
}

test("a token is shown once: the list never has it, and only its SHA-256 is stored", async () => {
  const form = await admin.postForm("/admin/tokens", { intent: "create", name: "shown-once", scope: "read" });
  expect(form.status).toBe(200);
  const token = /<pre data-token="true">(pgt_[A-Za-z0-9_-]{43})<\/pre>/.exec(form.html)?.[1];
  expect(token).toBeDefined();
  const page = await admin.page("/admin/tokens");
  expect(page.html).toContain("shown-once");
  expect(page.html).not.toContain(token);
  const listed = (await admin.query("access.tokens")).body.result.data.find((t: { name: string }) => t.name === "shown-once");
  expect(listed).toMatchObject({ name: "shown-once", scopes: ["read"], createdBy: "admin", lastUsedAt: null });
  expect(JSON.stringify(listed)).not.toContain(token!.slice(4));

  const row = server.services.db.$client.prepare("SELECT token_hash FROM api_tokens WHERE name = 'shown-once'").get() as { token_hash: string };
  expect(row.token_hash).toBe(createHash("sha256").update(token!).digest("base64url"));
  server.services.db.$client.pragma("wal_checkpoint(TRUNCATE)");
  expect(readFileSync(path.join(server.dataDir, "promptgate.db")).toString("latin1")).not.toContain(token!.slice(4));

  // Its use is listed.
  expect((await new TokenClient(server.url, token!).query("admin.dashboard")).status).toBe(200);
  const used = (await admin.query("access.tokens")).body.result.data.find((t: { name: string }) => t.name === "shown-once");
  expect(used.lastUsedAt).not.toBeNull();
});

test("a script submits as its own stable colour, another approves, a third fetches the image; all in the audit log", async () => {
  const submitter = await createToken("party-bot", ["submit"]);
  const moderator = await createToken("auto-mod", ["moderate"]);
  const reader = await createToken("archiver", ["read"]);

  const first = await submitter.mutate("prompt.submit", { prompt: "a lighthouse made of tokens", width: 256, height: 256 });
  expect(first.status).toBe(200);
  const second = await submitter.mutate("prompt.submit", { prompt: "the same bot again", width: 256, height: 256 });
  const mine = (await submitter.query("prompt.mine")).body.result.data;
  expect(mine.map((p: { id: number }) => p.id).sort()).toEqual([first.body.result.data.id, second.body.result.data.id].sort());
  const me = (await submitter.query("visitor.me")).body.result.data;
  expect((await submitter.query("visitor.me")).body.result.data.colour.name).toBe(me.colour.name);
  // A browser is someone else.
  const browser = new TestClient(server.url, { userAgent: "a guest" });
  expect((await browser.query("visitor.me")).body.result.data.colour.name).not.toBe(me.colour.name);

  const id = first.body.result.data.id;
  expect((await moderator.mutate("admin.approve", { id })).status).toBe(200);
  await waitFor("the image", async () => (await reader.query("admin.dashboard")).body.result.data.prompts.find((p: { id: number; status: string }) => p.id === id)?.status === "done");
  const image = await reader.fetch(`/images/${id}.png`);
  expect(image.status).toBe(200);
  expect(image.headers.get("content-type")).toBe("image/png");
  // The author sees it only after the reveal, like any visitor.
  expect((await submitter.fetch(`/images/${id}.png`)).status).toBe(404);
  expect((await moderator.mutate("admin.markRevealed", { id })).status).toBe(200);
  expect((await submitter.fetch(`/images/${id}.png`)).status).toBe(200);

  const rows = server.services.db.$client.prepare("SELECT actor, action, target FROM audit_log").all();
  expect(rows).toContainEqual({ actor: "admin", action: "token.create", target: "party-bot" });
  expect(rows).toContainEqual({ actor: "token:auto-mod", action: "prompt.approve", target: `prompt ${id}` });
  expect(rows).toContainEqual({ actor: "token:auto-mod", action: "prompt.reveal", target: `prompt ${id}` });
});

test("each scope is enforced with 403 naming what is missing; no token manages anything", async () => {
  const submitter = await createToken("only-submit", ["submit"]);
  const reader = await createToken("only-read", ["read"]);
  const everything = await createToken("everything", ["submit", "moderate", "read"]);
  const cases: Array<[Promise<{ status: number; body: any }>, string]> = [
    [submitter.mutate("admin.approve", { id: 1 }), 'API token "only-submit" has no moderate scope.'],
    [submitter.query("admin.dashboard"), 'API token "only-submit" has no read scope.'],
    [reader.mutate("admin.deny", { id: 1 }), 'API token "only-read" has no moderate scope.'],
    [reader.mutate("prompt.submit", { prompt: "nope", width: 64, height: 64 }), 'API token "only-read" has no submit scope.'],
    [reader.query("prompt.mine"), 'API token "only-read" has no submit scope.'],
    [everything.mutate("access.createToken", { name: "escalate", scopes: ["read"] }), "This needs a login, not an API token."],
    [everything.mutate("admin.addGenerator", { name: "gpu-x" }), "This needs a login, not an API token."],
    [everything.mutate("admin.changePassword", { currentPassword: "x", newPassword: "long enough" }), "This needs a login, not an API token."],
    [everything.mutate("admin.login", { password: ADMIN_PASSWORD }), "An API token cannot log in, log out or recover a colour: it is not a browser session."],
    [everything.mutate("visitor.recover", { code: "otter maple 42" }), "An API token cannot log in, log out or recover a colour: it is not a browser session."],
  ];
  for (const [call, message] of cases) {
    const result = await call;
    expect(result.status, message).toBe(403);
    expect(result.body.error.data.userMessage).toBe(message);
  }
  // A token's read scope does not show images to nobody: a token without it gets the visitor's 404.
  expect((await submitter.fetch("/images/1.png")).status).toBe(404);
  expect(server.services.db.$client.prepare("SELECT count(*) AS n FROM api_tokens WHERE name = 'escalate'").get()).toEqual({ n: 0 });
});

test("a revoked token is refused at once with 401", async () => {
  const doomed = await createToken("doomed", ["read", "moderate"]);
  expect((await doomed.query("admin.dashboard")).status).toBe(200);
  expect((await admin.postForm("/admin/tokens", { intent: "revoke", name: "doomed" })).status).toBe(200);
  const refused = await doomed.query("admin.dashboard");
  expect(refused.status).toBe(401);
  expect(refused.body.error.message).toBe("This API token is not valid (mistyped or revoked).");
  expect((await doomed.fetch("/images/1.png")).status).toBe(401);
  expect((await admin.mutate("access.revokeToken", { name: "doomed" })).status).toBe(404);
});

/** A stream a revoked token held: ended with UNAUTHORIZED, and `unseen` never reached it. */
async function expectEndedUnauthorized(stream: SseStream, unseen: number) {
  await waitFor("the stream to end", () => stream.messages.some((message) => message.event === "serialized-error"));
  expect(stream.messages.at(-1)!.data.data.code).toBe("UNAUTHORIZED");
  expect(stream.data.some((data) => data.type === "prompt" && data.id === unseen)).toBe(false);
  stream.close();
}

test("a live stream opened with a token ends at its next event once the token is revoked", async () => {
  const watcher = await createToken("watcher", ["read"]);
  const stream = await SseStream.open(watcher, "admin.onChange", { input: { lastEventId: (await watcher.query("prompt.liveCursor")).body.result.data } });
  const guest = new TestClient(server.url, { userAgent: "stream guest" });
  await guest.page("/");
  const before = (await guest.mutate("prompt.submit", { prompt: "seen by the watcher" })).body.result.data.id;
  await stream.waitForData("the first prompt", (data) => data.type === "prompt" && data.id === before);
  expect((await admin.mutate("access.revokeToken", { name: "watcher" })).status).toBe(200);
  const after = (await guest.mutate("prompt.submit", { prompt: "never seen by the watcher" })).body.result.data.id;
  await expectEndedUnauthorized(stream, after);
});

test("a submit token's own stream ends at its next event once the token is revoked, and tells nothing more", async () => {
  const bot = await createToken("stream-bot", ["submit"]);
  const first = (await bot.mutate("prompt.submit", { prompt: "a bot's first prompt" })).body.result.data.id;
  const second = (await bot.mutate("prompt.submit", { prompt: "a bot's second prompt" })).body.result.data.id;
  const stream = await SseStream.open(bot, "prompt.onChange", { input: { lastEventId: (await bot.query("prompt.liveCursor")).body.result.data } });
  expect((await admin.mutate("admin.deny", { id: first, reason: "seen by the bot" })).status).toBe(200);
  await stream.waitForData("the first denial", (data) => data.type === "prompt" && data.id === first && data.prompt?.status === "denied");
  expect((await admin.mutate("access.revokeToken", { name: "stream-bot" })).status).toBe(200);
  expect((await admin.mutate("admin.deny", { id: second, reason: "after the revoke" })).status).toBe(200);
  await expectEndedUnauthorized(stream, second);
});

test("a token's colour has no recovery code or link, and one held from before opens nothing once the token is revoked", async () => {
  const bot = await createToken("colour-bot", ["submit"]);
  const own = (await bot.mutate("prompt.submit", { prompt: "a bot's private prompt" })).body.result.data.id;
  const me = (await bot.query("visitor.me")).body.result.data;
  expect(me.recovery).toBeNull();
  const renew = await bot.mutate("visitor.renewRecovery");
  expect([renew.status, renew.body.error.message]).toEqual([403, "An API token cannot log in, log out or recover a colour: it is not a browser session."]);
  expect((await bot.fetch("/me/recovery-qr.svg")).status).toBe(404);

  // What visitor.me handed a token before this was fixed: a working code and link for its colour.
  const { visitorId } = server.services.db.$client.prepare("SELECT visitor_id AS visitorId FROM api_tokens WHERE name = 'colour-bot'").get() as { visitorId: number };
  const earlier = server.services.visitors.recoveryProof(visitorId);
  expect((await admin.mutate("access.revokeToken", { name: "colour-bot" })).status).toBe(200);

  const taker = new TestClient(server.url, { userAgent: "colour taker" });
  await taker.page("/");
  const byLink = await taker.mutate("visitor.useLink", { secret: earlier.linkSecret });
  expect([byLink.status, byLink.body.error.message]).toEqual([404, "This link does not work (any more): its owner may have made a new one."]);
  expect((await taker.mutate("visitor.recover", { code: earlier.code, colourName: me.colour.name })).status).toBe(400);
  expect((await taker.query("visitor.me")).body.result.data.colour.name).not.toBe(me.colour.name);
  expect((await taker.query("prompt.mine")).body.result.data.map((prompt: { id: number }) => prompt.id)).not.toContain(own);
});

test("hostile token strings and headers are refused clearly, and a bearer request never rides on cookies", async () => {
  const reader = await createToken("with-cookies", ["read"]);
  const headers = [
    "Bearer",
    "Bearer ",
    "Bearer pgt_short",
    `Bearer pgt_${"A".repeat(43)}`,
    `Bearer ${reader.token}x`,
    `Bearer ${reader.token.toUpperCase()}`,
    `Bearer ${"x".repeat(4000)}`,
    `Bearer ${reader.token} ${reader.token}`,
    "Basic YWRtaW46YWRtaW4=",
    "pgt_nobearer",
    `Bearer ' OR 1=1 --`,
  ];
  for (const authorization of headers) {
    const response = await fetch(`${server.url}/api/trpc/admin.dashboard`, { headers: { authorization } });
    expect(response.status, authorization.slice(0, 40)).toBe(401);
    expect((await response.json()).error.message).toMatch(/Bearer <API token>|not valid/);
  }
  // A valid token with the admin's cookies: refused, not merged.
  const both = await fetch(`${server.url}/api/trpc/admin.dashboard`, {
    headers: { authorization: `Bearer ${reader.token}`, cookie: [...admin.cookies].map(([k, v]) => `${k}=${v}`).join("; ") },
  });
  expect(both.status).toBe(400);
  expect((await both.json()).error.message).toBe("A request with an API token must not also send cookies: use one or the other.");
  // No CSRF token needed, and no cookie ever set on a bearer answer.
  const moderator = await createToken("no-cookies", ["moderate", "submit"]);
  const sent = await moderator.mutate("prompt.submit", { prompt: "no cookies please", width: 64, height: 64 });
  expect(sent.status).toBe(200);
  const response = await moderator.fetch("/api/trpc/admin.deny", { method: "POST", body: JSON.stringify({ id: sent.body.result.data.id }), headers: { "content-type": "application/json" } });
  expect(response.status).toBe(200);
  expect(response.headers.getSetCookie()).toEqual([]);

  for (const name of ["", "a b", "../x", "x".repeat(65), "tok\u0000en", "<img>"]) {
    const created = await admin.mutate("access.createToken", { name, scopes: ["read"] });
    expect(created.status, JSON.stringify(name)).toBe(400);
    expect(created.body.error.data.userMessage).toMatch(/name/i);
  }
  for (const scopes of [[], ["admin"], ["read", "root"], "read", null]) {
    const created = await admin.mutate("access.createToken", { name: "bad-scopes", scopes });
    expect(created.status, JSON.stringify(scopes)).toBe(400);
  }
  const taken = await admin.mutate("access.createToken", { name: "with-cookies", scopes: ["read"] });
  expect(taken.status).toBe(409);
  expect(server.services.db.$client.prepare("SELECT count(*) AS n FROM api_tokens WHERE name = 'bad-scopes'").get()).toEqual({ n: 0 });
});
