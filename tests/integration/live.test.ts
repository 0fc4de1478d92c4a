/**
 * Live updates over real HTTP Server-Sent Events (ADR 012): who hears what, and resuming a
 * stream after a cut, a restart, or past the kept log.
 */
import { TestClient } from "../helpers/client";
import { ADMIN_PASSWORD, removeDataDir, startTestServer, waitFor, type TestServer } from "../helpers/server";
import { SseStream } from "../helpers/sse";

const servers: TestServer[] = [];
const streams: SseStream[] = [];
afterEach(async () => {
  streams.splice(0).forEach((stream) => stream.close());
  for (const server of servers.splice(0)) await server.close();
});
afterAll(() => servers.forEach((server) => removeDataDir(server.dataDir)));

/** Visitors here send many prompts quickly. */
const UNLIMITED = { LIMIT_SUBMITS_PER_MINUTE: "0", LIMIT_PENDING_PROMPTS: "0" };

async function start(env: Record<string, string> = {}) {
  const server = await startTestServer({ ...UNLIMITED, ...env });
  servers.push(server);
  return server;
}

async function open(client: TestClient, procedure: string, options: Parameters<typeof SseStream.open>[2] = {}) {
  const stream = await SseStream.open(client, procedure, options);
  streams.push(stream);
  return stream;
}

async function adminOf(server: TestServer) {
  const admin = new TestClient(server.url, { userAgent: "live admin" });
  await admin.loginAsAdmin(ADMIN_PASSWORD);
  return admin;
}

async function submit(visitor: TestClient, prompt: string): Promise<number> {
  const sent = await visitor.mutate("prompt.submit", { prompt, width: 64, height: 64 });
  expect(sent.status).toBe(200);
  return sent.body.result.data.id;
}

const cursorOf = async (client: TestClient): Promise<string> => (await client.query("prompt.liveCursor")).body.result.data;
const promptEvents = (stream: SseStream, id: number) => stream.data.filter((data) => data.type === "prompt" && data.id === id);

test("a visitor's stream carries changes to their own prompts only, and their image only once revealed", async () => {
  const server = await start();
  const admin = await adminOf(server);
  const alice = new TestClient(server.url, { userAgent: "alice" });
  const bob = new TestClient(server.url, { userAgent: "bob" });
  await alice.page("/");
  await bob.page("/");
  const aliceLive = await open(alice, "prompt.onChange", { input: { lastEventId: await cursorOf(alice) } });
  const bobLive = await open(bob, "prompt.onChange", { input: { lastEventId: await cursorOf(bob) } });
  expect(aliceLive.response.headers.get("content-type")).toBe("text/event-stream");
  expect(aliceLive.response.headers.get("cache-control")).toBe("no-store, no-transform");

  const mine = await submit(alice, "alice's owl");
  const theirs = await submit(bob, "bob's fox");
  await aliceLive.waitForData("alice's new prompt", (data) => data.id === mine && data.prompt?.status === "pending");
  expect((await admin.mutate("admin.approve", { id: mine })).status).toBe(200);
  const done = await aliceLive.waitForData("alice's prompt done", (data) => data.id === mine && data.prompt?.status === "done");
  expect(done.prompt.imageUrl).toBeNull();
  await bobLive.waitForData("bob's new prompt", (data) => data.id === theirs);

  expect((await admin.mutate("admin.markRevealed", { id: mine })).status).toBe(200);
  await aliceLive.waitForData("alice's image revealed", (data) => data.id === mine && data.prompt?.imageUrl === `/images/${mine}.png`);
  // Every event before the reveal hid the image; nobody heard of another's prompt.
  const beforeReveal = promptEvents(aliceLive, mine).filter((data) => !data.prompt.revealedAt && !data.prompt.imageUrl);
  expect(beforeReveal.map((data) => data.prompt.status)).toEqual(expect.arrayContaining(["pending", "approved", "done"]));
  expect(aliceLive.data.every((data) => ((data.type === "prompt" || data.type === "progress") && data.id === mine) || (data.type === "line" && Object.keys(data.standings).every((id) => Number(id) === mine)))).toBe(true);
  expect(bobLive.data.every((data) => data.type === "prompt" && data.id === theirs)).toBe(true);
  // While alice's prompt was in line she heard where it stood; bob, with nothing in line, heard no line.
  expect(aliceLive.data.some((data) => data.type === "line" && data.standings[mine]?.etaSeconds > 0)).toBe(true);
});

test("the admin's stream carries each prompt as it is sent, approved and done, with the counts, and the generators view", async () => {
  const server = await start();
  const admin = await adminOf(server);
  const live = await open(admin, "admin.onChange", { input: { lastEventId: await cursorOf(admin) } });
  const visitor = new TestClient(server.url, { userAgent: "sender" });
  const id = await submit(visitor, "a kite over the sea");
  const sent = await live.waitForData("the submission", (data) => data.id === id && data.prompt?.status === "pending");
  expect(sent.prompt).toMatchObject({ prompt: "a kite over the sea", author: { id: expect.any(Number) } });
  expect(sent.counts.pending).toBe(1);
  await admin.mutate("admin.approve", { id });
  await live.waitForData("the approval", (data) => data.id === id && data.prompt?.status === "approved");
  const done = await live.waitForData("the image", (data) => data.id === id && data.prompt?.status === "done");
  // The admin sees the image before the reveal.
  expect(done.prompt.imageUrl).toBe(`/images/${id}.png`);
  expect(done.counts).toMatchObject({ pending: 0, done: 1 });
  const generators = await live.waitForData("the generators view", (data) => data.type === "generators");
  expect(generators.generators.map((generator: { generatorId: string }) => generator.generatorId)).toContain("promptgate-local");
});

test("only the admin, and only from this site, can open the admin's stream", async () => {
  const server = await start();
  const visitor = new TestClient(server.url, { userAgent: "curious" });
  await visitor.page("/");
  const refused = await open(visitor, "admin.onChange");
  await refused.waitForData("the refusal", () => false, 5000).catch(() => undefined);
  expect(refused.messages).toEqual([expect.objectContaining({ event: "serialized-error", data: expect.objectContaining({ data: expect.objectContaining({ code: "UNAUTHORIZED" }) }) })]);

  const admin = await adminOf(server);
  const crossSite = await open(admin, "admin.onChange", { headers: { "sec-fetch-site": "cross-site", origin: "https://evil.example" } });
  expect(crossSite.response.status).toBe(403);
  const crossOrigin = await open(admin, "admin.onChange", { headers: { origin: "https://evil.example" } });
  expect(crossOrigin.response.status).toBe(403);
});

test("a stream cut mid-way and resumed with Last-Event-ID misses nothing and repeats nothing", async () => {
  const server = await start();
  const admin = await adminOf(server);
  const visitor = new TestClient(server.url, { userAgent: "steady sender" });
  const cursor = await cursorOf(admin);
  // The reference: a stream that stays connected throughout.
  const whole = await open(admin, "admin.onChange", { input: { lastEventId: cursor } });
  const cut = await open(admin, "admin.onChange", { input: { lastEventId: cursor } });

  const first = [await submit(visitor, "one"), await submit(visitor, "two"), await submit(visitor, "three")];
  await cut.waitForData("the first three", (data) => data.id === first[2]);
  cut.close();
  const later = [await submit(visitor, "four"), await submit(visitor, "five")];
  await admin.mutate("admin.deny", { id: first[0] });
  await whole.waitForData("the denial", (data) => data.id === first[0] && data.prompt.status === "denied");

  const resumed = await open(admin, "admin.onChange", { lastEventId: cut.lastId });
  await resumed.waitForData("the denial, resumed", (data) => data.id === first[0] && data.prompt.status === "denied");
  // Up to the denial: whatever comes after it may have reached one stream and not yet the other.
  const upToDenial = (stream: SseStream) => {
    const messages = stream.messages.filter((message) => message.id);
    const denial = messages.findIndex((message) => message.data.id === first[0] && message.data.prompt?.status === "denied");
    return messages.slice(0, denial < 0 ? undefined : denial + 1);
  };
  const ids = (stream: SseStream) => upToDenial(stream).map((message) => message.id);
  expect([...ids(cut), ...ids(resumed)]).toEqual(ids(whole));
  const promptChanges = upToDenial(resumed).filter((message) => message.data.type === "prompt").map((message) => `${message.data.id}:${message.data.prompt.status}`);
  expect(promptChanges).toEqual([`${later[0]}:pending`, `${later[1]}:pending`, `${first[0]}:denied`]);
});

test("a resume from before a restart, or from before the kept events, is told to resync", async () => {
  const server = await start({ LIVE_EVENTS_KEPT: "10" });
  const admin = await adminOf(server);
  const visitor = new TestClient(server.url, { userAgent: "prolific" });
  const live = await open(admin, "admin.onChange", { input: { lastEventId: await cursorOf(admin) } });
  const first = await submit(visitor, "the first");
  await live.waitForData("the first prompt", (data) => data.id === first);
  const early = live.lastId;
  let last = first;
  for (let i = 0; i < 11; i++) last = await submit(visitor, `prompt ${i}`);
  await live.waitForData("the last prompt", (data) => data.id === last);

  // Past the kept events: a resync, then what comes next.
  const tooOld = await open(admin, "admin.onChange", { lastEventId: early });
  await tooOld.waitForData("a resync", (data) => data.type === "resync");
  const next = await submit(visitor, "after the resync");
  await tooOld.waitForData("the next prompt", (data) => data.id === next);
  expect(tooOld.data.map((data) => data.type).filter((type) => type !== "generators" && type !== "line")).toEqual(["resync", "prompt"]);

  // After a restart the ids start again under another boot id: a resync, never a wrong replay.
  const latest = live.lastId;
  await server.close();
  servers.splice(servers.indexOf(server), 1);
  const restarted = await start({ DATA_DIR: server.dataDir });
  const again = await adminOf(restarted);
  const afterRestart = await open(again, "admin.onChange", { lastEventId: latest });
  const resync = await afterRestart.waitForData("a resync", (data) => data.type === "resync");
  expect(resync).toEqual({ type: "resync" });
  expect(afterRestart.data.filter((data) => data.type !== "generators")).toEqual([{ type: "resync" }]);
  expect(afterRestart.lastId).not.toBe(latest);
});

test("the admin's list comes a page at a time: older pages by tRPC, or by ?show= without JavaScript", async () => {
  const server = await start();
  const admin = await adminOf(server);
  const visitor = new TestClient(server.url, { userAgent: "backlog" });
  const ids: number[] = [];
  for (let i = 1; i <= 60; i++) ids.push(await submit(visitor, `backlog ${i}`));
  const newestFirst = [...ids].reverse();

  const first = (await admin.query("admin.dashboard")).body.result.data;
  expect(first.prompts.map((prompt: { id: number }) => prompt.id)).toEqual(newestFirst.slice(0, 50));
  expect(first.olderThan).toBe(newestFirst[49]);
  const older = (await admin.query("admin.olderPrompts", { before: first.olderThan })).body.result.data;
  expect(older).toEqual({ prompts: expect.any(Array), olderThan: null });
  expect(older.prompts.map((prompt: { id: number }) => prompt.id)).toEqual(newestFirst.slice(50));

  const page = await admin.page("/admin");
  expect(page.html).toContain("Load older");
  expect(page.html).not.toContain(">backlog 1<");
  const more = await admin.page("/admin?show=100");
  expect(more.html).toContain(">backlog 1<");
  expect(more.html).not.toContain("Load older");
  // Nonsense asks for the first page, never an error.
  expect((await admin.page("/admin?show=-3")).status).toBe(200);
});

test("a browser signed out of its colour hears nothing more about that colour's prompts", async () => {
  const server = await start();
  const admin = await adminOf(server);
  const phone = new TestClient(server.url, { userAgent: "phone" });
  const home = await phone.page("/");
  const colourName = /class="chip chip-large"[^>]*>([^<]+)</.exec(home.html)![1]!;
  const code = /class="recovery-code">([^<]+)</.exec(home.html)![1]!;
  const laptop = new TestClient(server.url, { userAgent: "laptop" });
  await laptop.page("/");
  expect((await laptop.mutate("visitor.recover", { colourName, code })).status).toBe(200);

  const phoneLive = await open(phone, "prompt.onChange", { input: { lastEventId: await cursorOf(phone) } });
  const id = await submit(laptop, "one colour, two browsers");
  await phoneLive.waitForData("the laptop's prompt on the phone", (data) => data.id === id);
  // "Make a new code and link" on the laptop signs the phone out.
  expect((await laptop.mutate("visitor.renewRecovery")).status).toBe(200);
  await admin.mutate("admin.approve", { id });
  await waitFor("the phone's stream to end", () => phoneLive.messages.some((message) => message.event === "serialized-error"));
  expect(phoneLive.messages.at(-1)!.data.data.code).toBe("UNAUTHORIZED");
  expect(phoneLive.data.filter((data) => data.id === id).map((data) => data.prompt.status)).toEqual(["pending"]);
});
