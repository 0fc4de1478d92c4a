/**
 * Anonymous identity: colours, cookies, and recovery. A browser without a cookie is always a
 * new visitor; a matching fingerprint only *offers* recovery, which needs the code or the link.
 */
import { readFileSync, readdirSync } from "node:fs";
import path from "node:path";
import argon2 from "argon2";
import { TestClient, type ClientOptions } from "../helpers/client";
import { ADMIN_PASSWORD, removeDataDir, startTestServer, waitFor, type TestServer } from "../helpers/server";

let server: TestServer;
let admin: TestClient;

beforeAll(async () => {
  // TRUST_PROXY lets the tests present different client networks via X-Forwarded-For; the
  // local generator makes real images, so image routes can be checked too.
  server = await startTestServer({ TRUST_PROXY: "loopback", GENERATOR_CONCURRENCY: "4" });
  admin = new TestClient(server.url, { userAgent: "the admin" });
  await admin.loginAsAdmin(ADMIN_PASSWORD);
});
afterAll(async () => {
  await server?.close();
  removeDataDir(server.dataDir);
});

const sql = <T>(query: string, ...params: unknown[]) => server.services.db.$client.prepare(query).get(...params) as T;
const colourOf = (html: string) => /class="chip chip-large" style="background:(#[0-9a-f]{6})[^"]*"[^>]*>([^<]+)</.exec(html)?.slice(1, 3);
const nameOf = (html: string) => colourOf(html)![1]!;
const codeOf = (html: string) => /class="recovery-code">([^<]+)</.exec(html)![1]!;
const linkOf = (html: string) => /class="recovery-link" href="([^"]+)"|href="([^"]+)" class="recovery-link"/.exec(html)!.slice(1).find(Boolean)!;
const offered = (html: string) => html.includes("lost your cookies");
/** As if every identity's browser had been closed an hour ago: nothing is "in use" now. */
const everyoneIdle = () => server.services.db.$client.prepare("UPDATE visitors SET last_seen_at = last_seen_at - 3600000").run();

async function visitorWithPrompt(options: ClientOptions, prompt: string) {
  const visitor = new TestClient(server.url, options);
  const page = await visitor.page("/");
  const submitted = await visitor.mutate("prompt.submit", { prompt, width: 64, height: 64 });
  expect(submitted.status).toBe(200);
  return { visitor, page, promptId: submitted.body.result.data.id as number };
}

/** Approves, waits for the image, and reveals it: its author may now see it. */
async function generateAndReveal(promptIds: number[]) {
  for (const id of promptIds) expect((await admin.mutate("admin.approve", { id })).status).toBe(200);
  await waitFor("the images", () => promptIds.every((id) => sql<{ status: string }>("SELECT status FROM prompts WHERE id = ?", id).status === "done"), 30_000);
  for (const id of promptIds) expect((await admin.mutate("admin.markRevealed", { id })).status).toBe(200);
}

const ownPromptIds = async (visitor: TestClient) => ((await visitor.query("prompt.mine")).body.result.data as Array<{ id: number }>).map((p) => p.id);

test("a first visit gets a colour, a cookie and a recovery code; the cookie brings the same colour back", async () => {
  const visitor = new TestClient(server.url, { forwardedFor: "198.51.100.7", userAgent: "UA first-visit" });
  const first = await visitor.page("/");
  const cookieHeader = first.response.headers.getSetCookie().find((c) => c.startsWith("pg_visitor="))!;
  expect(cookieHeader).toMatch(/HttpOnly/);
  expect(cookieHeader).toMatch(/SameSite=Lax/);
  expect(codeOf(first.html)).toMatch(/^[a-z]+ [a-z]+ \d{2}$/);
  expect(linkOf(first.html)).toMatch(new RegExp(`^${server.url}/recover/[A-Za-z0-9_-]{43}$`));
  const again = await visitor.page("/");
  expect(colourOf(again.html)).toEqual(colourOf(first.html));
  expect(codeOf(again.html)).toBe(codeOf(first.html));
  expect(offered(again.html)).toBe(false);
});

test("20 simultaneous first visits with one fingerprint get 20 colours, each seeing only its own prompts and images", async () => {
  const party = { forwardedFor: "10.20.30.40", userAgent: "iPhone Safari 18.2 (party)", acceptLanguage: "en-US" };
  const guests = await Promise.all(Array.from({ length: 20 }, (_, i) => visitorWithPrompt(party, `guest ${i}'s secret wish`)));
  expect(new Set(guests.map((guest) => nameOf(guest.page.html))).size).toBe(20);
  expect(guests.filter((guest) => offered(guest.page.html))).toEqual([]);
  // The first of them was in use while the others arrived: the fingerprint is shared for good.
  const shared = sql<{ n: number }>("SELECT count(*) AS n FROM fingerprints WHERE shared = 1").n;
  expect(shared).toBeGreaterThanOrEqual(1);

  await generateAndReveal(guests.map((guest) => guest.promptId));
  for (const [i, guest] of guests.entries()) {
    const page = await guest.visitor.page("/");
    expect(page.html).toContain(`guest ${i}&#x27;s secret wish`);
    for (const [j] of guests.entries()) if (j !== i) expect(page.html).not.toContain(`guest ${j}&#x27;s`);
    expect(await ownPromptIds(guest.visitor)).toEqual([guest.promptId]);
    expect((await guest.visitor.fetch(`/images/${guest.promptId}.png`)).status).toBe(200);
    const other = guests[(i + 1) % guests.length]!;
    expect((await guest.visitor.fetch(`/images/${other.promptId}.png`)).status).toBe(404);
  }
});

describe("a look-alike browser after the owner has gone quiet", () => {
  const lookalike = { forwardedFor: "203.0.113.10", userAgent: "Pixel 9 Chrome (look-alike)", acceptLanguage: "de-DE" };
  let owner: Awaited<ReturnType<typeof visitorWithPrompt>>;

  beforeAll(async () => {
    owner = await visitorWithPrompt(lookalike, "the owner's private dragon");
    await generateAndReveal([owner.promptId]);
    everyoneIdle();
  });

  test("is a new visitor that is offered recovery but sees nothing of the owner's", async () => {
    const newcomer = new TestClient(server.url, { ...lookalike, forwardedFor: "203.0.113.99" });
    const page = await newcomer.page("/");
    expect(offered(page.html)).toBe(true);
    expect(page.html).toContain(`Are you <span class="chip"`);
    expect(nameOf(page.html)).not.toBe(nameOf(owner.page.html));
    expect(page.html).not.toContain("private dragon");
    expect(codeOf(page.html)).not.toBe(codeOf(owner.page.html));
    expect(await ownPromptIds(newcomer)).toEqual([]);
    expect((await newcomer.fetch(`/images/${owner.promptId}.png`)).status).toBe(404);

    // The card stays across reloads and a submit, until it is answered.
    expect(offered((await newcomer.page("/")).html)).toBe(true);
    expect((await newcomer.postForm("/?index", { intent: "submit", prompt: "a newcomer's own idea", width: "512", height: "512" })).status).toBe(200);
    const afterSubmit = await newcomer.page("/");
    expect(offered(afterSubmit.html)).toBe(true);
    expect(afterSubmit.html).not.toContain("private dragon");
  });

  test("with the owner's code gets the colour, the prompts and the images back; the old cookie is replaced", async () => {
    const newcomer = new TestClient(server.url, lookalike);
    await newcomer.page("/");
    const throwawayCookie = newcomer.cookies.get("pg_visitor");
    const result = await newcomer.postForm("/?index", { intent: "recover", code: codeOf(owner.page.html).toUpperCase().replace(/ /g, "-") });
    expect(result.status).toBe(200);
    expect(newcomer.cookies.get("pg_visitor")).not.toBe(throwawayCookie);
    const page = await newcomer.page("/");
    expect(nameOf(page.html)).toBe(nameOf(owner.page.html));
    expect(offered(page.html)).toBe(false);
    expect(page.html).toContain("private dragon");
    expect(await ownPromptIds(newcomer)).toEqual([owner.promptId]);
    expect((await newcomer.fetch(`/images/${owner.promptId}.png`)).status).toBe(200);
  });

  test("is not offered anything while the owner's identity is in use elsewhere, and the fingerprint becomes shared", async () => {
    const busy = { forwardedFor: "192.0.2.50", userAgent: "Galaxy S25 (busy)", acceptLanguage: "fr-FR" };
    const owner2 = new TestClient(server.url, busy);
    await owner2.page("/");
    const second = await new TestClient(server.url, busy).page("/");
    expect(offered(second.html)).toBe(false);
    everyoneIdle();
    // Shared for good: even with the owner quiet, nobody is offered that identity again.
    expect(offered((await new TestClient(server.url, busy).page("/")).html)).toBe(false);
  });
});

test("'I'm new' withdraws the offer for good, for this browser and every look-alike", async () => {
  const phone = { forwardedFor: "10.9.8.7", userAgent: "Party phone (decline)", acceptLanguage: "en-US" };
  await new TestClient(server.url, phone).page("/");
  everyoneIdle();
  const lookalike = new TestClient(server.url, phone);
  const card = await lookalike.page("/");
  expect(offered(card.html)).toBe(true);
  const answer = await lookalike.postForm("/?index", { intent: "decline-offer" });
  expect(answer.status).toBe(200);
  expect(answer.html).toContain("won&#x27;t ask again");
  const after = await lookalike.page("/");
  expect(offered(after.html)).toBe(false);
  expect(nameOf(after.html)).toBe(nameOf(card.html));
  expect(offered((await new TestClient(server.url, phone).page("/")).html)).toBe(false);
  // Nothing left to answer: a second "I'm new" is refused clearly.
  expect((await lookalike.postForm("/?index", { intent: "decline-offer" })).status).toBe(409);
});

test("a fingerprint offers only within the same /24 (IPv4) or /48 (IPv6), browser and language", async () => {
  const base = { forwardedFor: "2001:db8:aaaa:1::10", userAgent: "UA networks", acceptLanguage: "nl-NL" };
  await new TestClient(server.url, base).page("/");
  const mappedOwner = { ...base, forwardedFor: "198.51.100.20" };
  await new TestClient(server.url, mappedOwner).page("/");
  everyoneIdle();
  expect(offered((await new TestClient(server.url, { ...base, forwardedFor: "2001:db8:aaaa:ffff::99" }).page("/")).html)).toBe(true);
  expect(offered((await new TestClient(server.url, { ...mappedOwner, forwardedFor: "::ffff:198.51.100.21" }).page("/")).html)).toBe(true);
  for (const variant of [{ forwardedFor: "2001:db8:bbbb:1::10" }, { userAgent: "UA other" }, { acceptLanguage: "fr-FR" }]) {
    expect(offered((await new TestClient(server.url, { ...base, ...variant }).page("/")).html)).toBe(false);
  }
});

test("a recovery link restores the identity in any browser, after a confirmation", async () => {
  const { visitor: owner, page, promptId } = await visitorWithPrompt({ forwardedFor: "198.51.100.60", userAgent: "UA laptop" }, "a link-owner's lighthouse");
  const link = new URL(linkOf(page.html));
  const phone = new TestClient(server.url, { forwardedFor: "100.80.1.2", userAgent: "UA other device" });
  const confirm = await phone.page(link.pathname);
  expect(confirm.status).toBe(200);
  expect(confirm.html).toContain(nameOf(page.html));
  // A browser that already is someone is told which colour it leaves.
  const busy = new TestClient(server.url, { forwardedFor: "100.80.1.9", userAgent: "UA busy device" });
  const busyName = nameOf((await busy.page("/")).html);
  expect((await busy.page(link.pathname)).html).toContain(`This browser is <span class="chip"`);
  expect((await busy.page(link.pathname)).html).toContain(`Its prompts stay with ${busyName}`);
  // Looking does not switch: only the confirmation does.
  expect(phone.cookies.get("pg_visitor")).toBeUndefined();
  const used = await phone.postForm(link.pathname, {});
  expect(used.status).toBe(302);
  expect(used.location).toBe("/");
  expect(nameOf((await phone.page("/")).html)).toBe(nameOf(page.html));
  expect(await ownPromptIds(phone)).toEqual([promptId]);
  // Both browsers are that visitor now.
  expect(await ownPromptIds(owner)).toEqual([promptId]);
});

test("a new code and link replace the old ones and sign out the colour's other browsers", async () => {
  const owner = new TestClient(server.url, { forwardedFor: "198.51.100.61", userAgent: "UA renew" });
  const before = await owner.page("/");
  // Someone who had the old link is this colour too, until the renewal.
  const borrower = new TestClient(server.url, { forwardedFor: "100.80.3.3", userAgent: "UA borrower" });
  expect((await borrower.postForm(new URL(linkOf(before.html)).pathname, {})).status).toBe(302);
  expect(nameOf((await borrower.page("/")).html)).toBe(nameOf(before.html));
  expect((await owner.postForm("/?index", { intent: "renew-recovery" })).status).toBe(200);
  const after = await owner.page("/");
  expect(codeOf(after.html)).not.toBe(codeOf(before.html));
  expect(linkOf(after.html)).not.toBe(linkOf(before.html));
  expect(nameOf(after.html)).toBe(nameOf(before.html));
  expect(nameOf((await borrower.page("/")).html)).not.toBe(nameOf(before.html));
  const stranger = new TestClient(server.url, { forwardedFor: "100.80.2.2", userAgent: "UA renew stranger" });
  expect((await stranger.page(new URL(linkOf(before.html)).pathname)).status).toBe(404);
  expect((await stranger.postForm("/?index", { intent: "recover", colourName: nameOf(after.html), code: codeOf(before.html) })).status).toBe(400);
  expect((await stranger.postForm("/?index", { intent: "recover", colourName: nameOf(after.html), code: codeOf(after.html) })).status).toBe(200);
  expect(nameOf((await stranger.page("/")).html)).toBe(nameOf(after.html));
});

test("repeated wrong codes are refused with 429 and Retry-After, revealing nothing", async () => {
  const { page: ownerPage } = await visitorWithPrompt({ forwardedFor: "198.51.100.70", userAgent: "UA guessed" }, "a guarded secret");
  const guesser = new TestClient(server.url, { forwardedFor: "100.81.0.5", userAgent: "UA guesser" });
  await guesser.page("/");
  const statuses: number[] = [];
  let last: Awaited<ReturnType<TestClient["mutate"]>> | undefined;
  for (let i = 0; i < 8; i++) {
    last = await guesser.mutate("visitor.recover", { colourName: nameOf(ownerPage.html), code: `otter maple ${String(i).padStart(2, "0")}` });
    statuses.push(last.status);
    expect(JSON.stringify(last.body)).not.toContain("guarded secret");
  }
  expect(statuses.slice(0, 5)).toEqual([400, 400, 400, 400, 400]);
  expect(statuses.slice(5)).toEqual([429, 429, 429]);
  expect(last!.body.error.data.userMessage).toMatch(/Too many wrong codes\. Try again in \d+ (seconds|minutes)/);
  // Even the right code waits now: the limit is not an oracle.
  const form = await guesser.postForm("/?index", { intent: "recover", colourName: nameOf(ownerPage.html), code: codeOf(ownerPage.html) });
  expect(form.status).toBe(429);
  expect(form.html).toContain("Too many wrong codes");
  expect(await ownPromptIds(guesser)).toEqual([]);
  const response = await guesser.fetch("/api/trpc/visitor.recover", {
    method: "POST",
    body: JSON.stringify({ code: "otter maple 00", colourName: nameOf(ownerPage.html) }),
    headers: { "content-type": "application/json", "x-csrf-token": guesser.csrfToken! },
  });
  expect(response.status).toBe(429);
  expect(Number(response.headers.get("retry-after"))).toBeGreaterThan(0);
});

test("one guest typing junk codes does not lock the rest of the network out; browsers that failed themselves wait", async () => {
  const { page: ownerPage } = await visitorWithPrompt({ forwardedFor: "198.51.100.71", userAgent: "UA party owner" }, "a party owner's wish");
  // Seven junk-typing browsers on one party network: 35 wrong codes, more than the network's 30 an hour.
  for (let i = 0; i < 7; i++) {
    const junk = new TestClient(server.url, { forwardedFor: `100.83.0.${10 + i}`, userAgent: `UA junk ${i}` });
    await junk.page("/");
    for (let attempt = 0; attempt < 5; attempt++) await junk.mutate("visitor.recover", { colourName: `Vivid Cobalt ${900 + i * 5 + attempt}`, code: "otter maple 00" });
  }
  const oneMistake = new TestClient(server.url, { forwardedFor: "100.83.0.50", userAgent: "UA typo" });
  await oneMistake.page("/");
  expect((await oneMistake.mutate("visitor.recover", { colourName: "Vivid Cobalt 999", code: "otter maple 01" })).status).toBe(400);
  expect((await oneMistake.mutate("visitor.recover", { colourName: "Vivid Cobalt 999", code: "otter maple 02" })).status).toBe(429);
  // A guest on the same network who has not failed gets their colour back at once.
  const owner = new TestClient(server.url, { forwardedFor: "100.83.0.60", userAgent: "UA party owner's other phone" });
  await owner.page("/");
  expect((await owner.mutate("visitor.recover", { colourName: nameOf(ownerPage.html), code: codeOf(ownerPage.html) })).status).toBe(200);
  expect((await owner.page("/")).html).toContain("a party owner&#x27;s wish");
});

test("a wrong code for a colour that does not exist looks the same as for one that does", async () => {
  const guesser = new TestClient(server.url, { forwardedFor: "100.82.0.5", userAgent: "UA prober" });
  await guesser.page("/");
  const existing = await guesser.mutate("visitor.recover", { colourName: "Red", code: "otter maple 00" });
  const missing = await guesser.mutate("visitor.recover", { colourName: "Vivid Cobalt 999", code: "otter maple 00" });
  expect(existing.status).toBe(400);
  expect(missing.status).toBe(400);
  expect(missing.body.error.data.userMessage).toBe(existing.body.error.data.userMessage);
});

test("no raw IP address, User-Agent or recovery code is stored anywhere in DATA_DIR", async () => {
  const marker = "UA-privacy-marker-5f2c";
  const page = await new TestClient(server.url, { forwardedFor: "198.18.77.201", userAgent: marker }).page("/");
  server.services.db.$client.pragma("wal_checkpoint(TRUNCATE)");
  for (const file of readdirSync(server.dataDir)) {
    if (file === "images") continue;
    const bytes = readFileSync(path.join(server.dataDir, file)).toString("latin1");
    expect(bytes, file).not.toContain(marker);
    expect(bytes, file).not.toContain("198.18.77");
    expect(bytes, file).not.toContain(codeOf(page.html));
    expect(bytes, file).not.toContain(new URL(linkOf(page.html)).pathname.split("/").pop());
  }
});

test("a valid visitor cookie skips fingerprint hashing entirely", async () => {
  const visitor = new TestClient(server.url, { forwardedFor: "198.51.100.77", userAgent: "UA hashing-check" });
  await visitor.page("/");
  const fingerprintsBefore = sql<{ n: number }>("SELECT count(*) AS n FROM fingerprints");
  const sessionsBefore = sql<{ n: number }>("SELECT count(*) AS n FROM sessions");
  // Same cookie from a completely different network and browser: the cookie wins, nothing new is created.
  const moved = new TestClient(server.url, { forwardedFor: "203.0.113.250", userAgent: "UA elsewhere" });
  moved.cookies.set("pg_visitor", visitor.cookies.get("pg_visitor")!);
  const page = await moved.page("/");
  expect(offered(page.html)).toBe(false);
  expect(sql("SELECT count(*) AS n FROM fingerprints")).toEqual(fingerprintsBefore);
  expect(sql("SELECT count(*) AS n FROM sessions")).toEqual(sessionsBefore);
});

test("a new visitor's first page costs one argon2 hash and no more; their next pages none", async () => {
  // The server runs in this process: a spy on the argon2 module sees every hash and verification.
  const calls = [vi.spyOn(argon2, "hash"), vi.spyOn(argon2, "verify")];
  const argon2Calls = () => calls.reduce((sum, spy) => sum + spy.mock.calls.length, 0);
  try {
    const visitor = new TestClient(server.url, { forwardedFor: "198.51.100.78", userAgent: "UA counting hashes" });
    const first = await visitor.page("/");
    expect(colourOf(first.html)).toBeDefined();
    expect(argon2Calls()).toBe(1);
    await visitor.page("/");
    await visitor.mutate("prompt.submit", { prompt: "counted", width: 64, height: 64 });
    await visitor.page("/");
    expect(argon2Calls()).toBe(1);
  } finally {
    calls.forEach((spy) => spy.mockRestore());
  }
});
