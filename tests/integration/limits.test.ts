/** Limits for anonymous visitors, muting a colour, and the blocklist. */
import { writeFileSync } from "node:fs";
import path from "node:path";
import { TestClient } from "../helpers/client";
import { ADMIN_PASSWORD, makeDataDir, removeDataDir, startTestServer, type TestServer } from "../helpers/server";

let server: TestServer;
let admin: TestClient;

beforeAll(async () => {
  const dataDir = makeDataDir();
  const blocklist = path.join(dataDir, "blocklist.txt");
  writeFileSync(blocklist, "# words and /regular expressions/\nred wine\n\n/drag(on|oon)s?/i\n");
  server = await startTestServer({
    DATA_DIR: dataDir,
    LOCAL_GENERATOR: "false",
    TRUST_PROXY: "loopback",
    LIMIT_SUBMITS_PER_MINUTE: "3",
    LIMIT_PENDING_PROMPTS: "2",
    LIMIT_NEW_VISITORS_PER_HOUR: "3",
    BLOCKLIST_FILE: blocklist,
  });
  admin = new TestClient(server.url, { userAgent: "the admin" });
  await admin.loginAsAdmin(ADMIN_PASSWORD);
});
afterAll(async () => {
  await server?.close();
  removeDataDir(server.dataDir);
});

let network = 0;
/** A visitor on a network of its own, so the new-visitor limit of one test does not touch another. */
async function newVisitor(userAgent: string) {
  const visitor = new TestClient(server.url, { userAgent, forwardedFor: `172.16.${++network}.1` });
  expect((await visitor.page("/")).status).toBe(200);
  return visitor;
}
const submit = (visitor: TestClient, prompt: string) => visitor.mutate("prompt.submit", { prompt, width: 512, height: 512 });
const promptCount = () => (server.services.db.$client.prepare("SELECT count(*) AS n FROM prompts").get() as { n: number }).n;
const dashboard = async () => (await admin.query("admin.dashboard")).body.result.data as { prompts: Array<{ id: number; prompt: string; held: boolean; flaggedBy: string | null; author: { id: number; muted: boolean } }> };

test("a visitor with too many prompts waiting is told so with 429 and Retry-After, in the API and in the form", async () => {
  const visitor = await newVisitor("UA pending");
  expect((await submit(visitor, "first")).status).toBe(200);
  expect((await submit(visitor, "second")).status).toBe(200);
  const before = promptCount();

  const refused = await visitor.fetch("/api/trpc/prompt.submit", {
    method: "POST",
    body: JSON.stringify({ prompt: "third", width: 512, height: 512 }),
    headers: { "content-type": "application/json", "x-csrf-token": visitor.csrfToken! },
  });
  expect(refused.status).toBe(429);
  expect(Number(refused.headers.get("retry-after"))).toBeGreaterThan(0);
  expect((await refused.json()).error.data.userMessage).toBe("You have 2 prompts waiting; send more once one is approved.");

  const form = await visitor.postForm("/?index", { intent: "submit", prompt: "third, by the form", width: "512", height: "512" });
  expect(form.status).toBe(429);
  expect(Number(form.headers.get("retry-after"))).toBeGreaterThan(0);
  expect(form.html).toContain("You have 2 prompts waiting; send more once one is approved.");
  // What the guest typed is still in the form.
  expect(form.html).toContain("third, by the form");
  expect(promptCount()).toBe(before);

  const waiting = (await dashboard()).prompts.find((prompt) => prompt.prompt === "first")!;
  expect((await admin.mutate("admin.approve", { id: waiting.id })).status).toBe(200);
  expect((await submit(visitor, "third, after an approval")).status).toBe(200);
});

test("a visitor sending faster than the per-minute limit is asked to wait, with the wait", async () => {
  const visitor = await newVisitor("UA quick");
  for (const prompt of ["one", "two", "three"]) {
    const sent = await submit(visitor, prompt);
    expect(sent.status).toBe(200);
    // Approved at once, so the pending limit is never what refuses.
    expect((await admin.mutate("admin.approve", { id: sent.body.result.data.id })).status).toBe(200);
  }
  const refused = await submit(visitor, "four");
  expect(refused.status).toBe(429);
  expect(refused.body.error.data.userMessage).toMatch(/^That was quick! You can send your next prompt in \d+ seconds\.$/);
});

test("a network that makes too many new identities gets 429 with Retry-After; other networks and known visitors are unaffected", async () => {
  const known = new TestClient(server.url, { userAgent: "UA known", forwardedFor: "192.168.77.2" });
  expect((await known.page("/")).status).toBe(200);
  for (let i = 0; i < 2; i++) expect((await new TestClient(server.url, { userAgent: `UA flood ${i}`, forwardedFor: `192.168.77.${10 + i}` }).page("/")).status).toBe(200);
  const flood = await new TestClient(server.url, { userAgent: "UA flood x", forwardedFor: "192.168.77.99" }).page("/");
  expect(flood.status).toBe(429);
  expect(Number(flood.response.headers.get("retry-after"))).toBeGreaterThan(0);
  expect(flood.html).toContain("Too many new visitors from your network right now. Try again in");
  expect(flood.response.headers.getSetCookie().some((cookie) => cookie.startsWith("pg_visitor="))).toBe(false);
  expect((await known.page("/")).status).toBe(200);
  expect((await new TestClient(server.url, { userAgent: "UA elsewhere", forwardedFor: "192.168.78.5" }).page("/")).status).toBe(200);
});

test("a muted colour's waiting and new prompts are held apart; unmuting puts the waiting ones back", async () => {
  const noisy = await newVisitor("UA noisy");
  const waiting = await submit(noisy, "noise before the mute");
  const authorId = (await dashboard()).prompts.find((prompt) => prompt.id === waiting.body.result.data.id)!.author.id;
  expect((await admin.mutate("admin.mute", { visitorId: authorId })).status).toBe(200);
  const afterMute = await submit(noisy, "noise after the mute");
  // The guest sees an ordinary "waiting" prompt: muting is the host's business.
  expect(afterMute.body.result.data.status).toBe("pending");
  let board = await dashboard();
  const mine = board.prompts.filter((prompt) => prompt.author.id === authorId);
  expect(mine.map((prompt) => [prompt.prompt, prompt.held, prompt.author.muted])).toEqual([
    ["noise after the mute", true, true],
    ["noise before the mute", true, true],
  ]);
  const page = await admin.page("/admin");
  expect(page.html).toMatch(/Held apart \(2\)/);

  expect((await admin.mutate("admin.unmute", { visitorId: authorId })).status).toBe(200);
  board = await dashboard();
  expect(board.prompts.filter((prompt) => prompt.author.id === authorId).every((prompt) => !prompt.held && !prompt.author.muted)).toBe(true);
  expect((await admin.mutate("admin.mute", { visitorId: 999_999 })).status).toBe(404);
  expect((await noisy.mutate("admin.mute", { visitorId: authorId })).status).toBe(401);
});

test("prompts matching the blocklist are kept and flagged for the admin with the entry they matched", async () => {
  const visitor = await newVisitor("UA blocklist");
  const flagged = await submit(visitor, "a RED   wine party");
  const regex = await submit(visitor, "two Dragoons at dawn");
  expect(flagged.status).toBe(200);
  expect(regex.status).toBe(200);
  const board = await dashboard();
  const flagOf = (id: number) => board.prompts.find((prompt) => prompt.id === id)!.flaggedBy;
  expect(flagOf(flagged.body.result.data.id)).toBe("red wine");
  expect(flagOf(regex.body.result.data.id)).toBe("/drag(on|oon)s?/i");
  expect((await admin.page("/admin")).html).toContain("Matches the blocklist: red wine");

  // Whole words only: "redwine" is someone's username, not the phrase. (One approval first, to stay under the pending limit.)
  expect((await admin.mutate("admin.approve", { id: flagged.body.result.data.id })).status).toBe(200);
  const clean = await submit(visitor, "redwine's cat");
  expect(clean.status).toBe(200);
  // A phrase is looked for in each field, never across the two.
  const across = await (await newVisitor("UA blocklist, second")).mutate("prompt.submit", { prompt: "a glass of red", negativePrompt: "wine stains", width: 512, height: 512 });
  expect(across.status).toBe(200);
  expect((await dashboard()).prompts.find((prompt) => prompt.id === across.body.result.data.id)!.flaggedBy).toBeNull();
  expect((await dashboard()).prompts.find((prompt) => prompt.id === clean.body.result.data.id)!.flaggedBy).toBeNull();
});

test("a blocklist with a broken regular expression stops start-up naming the line", async () => {
  const dataDir = makeDataDir();
  const file = path.join(dataDir, "blocklist.txt");
  writeFileSync(file, "fine\n/unclosed(/\n");
  await expect(startTestServer({ DATA_DIR: dataDir, LOCAL_GENERATOR: "false", BLOCKLIST_FILE: file })).rejects.toThrow(/BLOCKLIST_FILE .*blocklist\.txt line 2: Invalid regular expression/);
  await expect(startTestServer({ DATA_DIR: dataDir, LOCAL_GENERATOR: "false", BLOCKLIST_FILE: path.join(dataDir, "missing.txt") })).rejects.toThrow(/cannot be read \(ENOENT\)/);
  removeDataDir(dataDir);
});

test("limits set to 0 are off", async () => {
  const unlimited = await startTestServer({ LOCAL_GENERATOR: "false", LIMIT_SUBMITS_PER_MINUTE: "0", LIMIT_PENDING_PROMPTS: "0", LIMIT_NEW_VISITORS_PER_HOUR: "0" });
  try {
    const visitor = new TestClient(unlimited.url, { userAgent: "UA unlimited" });
    await visitor.page("/");
    const statuses = [];
    for (let i = 0; i < 12; i++) statuses.push((await submit(visitor, `prompt ${i}`)).status);
    expect(statuses).toEqual(Array(12).fill(200));
  } finally {
    await unlimited.close();
    removeDataDir(unlimited.dataDir);
  }
});
