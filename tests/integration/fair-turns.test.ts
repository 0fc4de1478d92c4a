/**
 * Fair turns (issue 8 §3) and "where is my picture?" (§2) with the real server, broker and
 * generator against the A1111 emulator: the order images are finished in, the admin's pins,
 * aging, and each guest's place in line and estimated wait.
 */
import path from "node:path";
import { startGenerator } from "../../generator/generator";
import { openDb } from "../../server/db/client";
import { createLine } from "../../server/domain/line";
import { startSdEmulator, type SdEmulator } from "../emulators/sd-server";
import { TestClient } from "../helpers/client";
import { ADMIN_PASSWORD, collectingLogger, generatorConfigOn, removeDataDir, startTestServer, waitFor, type TestServer } from "../helpers/server";
import { useCleanups } from "../helpers/cleanups";

/** Aging must not kick in before the ten guests are served (12 turns), and must within the aging test. */
const AGING_TURNS = 16;

let sd: SdEmulator;
let server: TestServer;
let admin: TestClient;
const cleanup = useCleanups();

beforeAll(async () => {
  sd = await startSdEmulator();
  server = await startTestServer({
    LOCAL_GENERATOR: "false",
    LIMIT_SUBMITS_PER_MINUTE: "0",
    LIMIT_PENDING_PROMPTS: "0",
    FAIR_COLOUR_CAP: "2",
    FAIR_AGING_TURNS: String(AGING_TURNS),
  });
  admin = new TestClient(server.url, { userAgent: "fair admin" });
  await admin.loginAsAdmin(ADMIN_PASSWORD);
});
// Registered first, so it runs last: a test's generators stop before the delay it set is undone.
beforeEach(() => cleanup(() => sd.setDelay(0)));
afterAll(async () => {
  await server?.close();
  await sd?.close();
  removeDataDir(server.dataDir);
});

const all = <T>(query: string, ...params: unknown[]) => server.services.db.$client.prepare(query).all(...params) as T[];
const online = (generatorId: string) => server.services.link.generators().some((g) => g.generatorId === generatorId && g.state === "online" && g.healthy);

/** A real generator (concurrency 1: it holds one job running and one waiting) on the emulator. */
async function generator(generatorId: string) {
  const config = generatorConfigOn(server, generatorId, { SD_API_URL: sd.url });
  const running = await startGenerator({ ...config, reconnectMs: 100 }, collectingLogger());
  cleanup(() => running.close());
  await waitFor(`${generatorId} to be online`, () => online(generatorId));
  return running;
}

let guests = 0;
/** A new guest: its own browser, so its own colour. */
async function guest(): Promise<TestClient> {
  const client = new TestClient(server.url, { userAgent: `fair guest ${++guests}` });
  await client.page("/");
  return client;
}

async function submit(client: TestClient, prompt: string, size = 64): Promise<number> {
  const response = await client.mutate("prompt.submit", { prompt, width: size, height: size });
  expect(response.status).toBe(200);
  return response.body.result.data.id;
}

async function approve(id: number) {
  expect((await admin.mutate("admin.approve", { id })).status).toBe(200);
}

/** Prompt ids among `ids` in the order the server logged `pattern` for their jobs. */
function loggedOrder(ids: number[], pattern: RegExp): number[] {
  const promptOf = new Map(all<{ jobId: string; id: number }>(`SELECT id AS jobId, prompt_id AS id FROM jobs WHERE prompt_id IN (${ids.join(",")})`).map((row) => [row.jobId, row.id]));
  const order = server.log.lines.flatMap((line) => [...line.matchAll(pattern)].map((match) => promptOf.get(match[1]!))).filter((id) => id !== undefined);
  return [...new Set(order)];
}
/** In the order their images were stored (results are written concurrently, so neighbours may swap). */
const finishedOrder = (ids: number[]) => loggedOrder(ids, /^info job (\S+) stored /g);
/** In the order they were first leased to a generator: the order of the line. */
const leaseOrder = (ids: number[]) => loggedOrder(ids, /([0-9a-f-]{36})→/g);
const allFinished = (ids: number[]) => waitFor(`${ids.length} images`, () => finishedOrder(ids).length === ids.length, 30_000);
const leasedIds = (ids: number[]) =>
  all<{ id: number }>(`SELECT p.id FROM prompts p JOIN jobs j ON j.id = p.job_id WHERE p.id IN (${ids.join(",")}) AND j.lease_generator_id IS NOT NULL`).map((row) => row.id);
const placesForAdmin = async (): Promise<Record<string, number>> => (await admin.query("admin.dashboard")).body.result.data.line;

type Mine = Array<{ id: number; status: string; line: { place: number | null; etaSeconds: number | null } | null }>;
const mine = async (client: TestClient): Promise<Mine> => (await client.query("prompt.mine")).body.result.data;

test("one guest's 20 approved jobs, then ten guests' single jobs: all ten finish before the heavy guest's fourth", async () => {
  // Slow enough that the heavy guest's first two jobs are still with the generator while the others arrive.
  sd.setDelay(3000);
  await generator("fair-gpu");
  const heavyGuest = await guest();
  const heavy: number[] = [];
  for (let i = 0; i < 20; i++) heavy.push(await submit(heavyGuest, `heavy ${i + 1}`));
  const singles: number[] = [];
  for (let i = 0; i < 10; i++) singles.push(await submit(await guest(), `single ${i + 1}`));
  for (const id of heavy) await approve(id);
  await waitFor("the generator to hold the heavy guest's first two jobs", () => leasedIds(heavy).length === 2);
  for (const id of singles) await approve(id);
  // Longer than storing a result takes, so images finish in the order they were made.
  sd.setDelay(50);

  const everything = [...heavy, ...singles];
  await allFinished(everything);
  const order = finishedOrder(everything);
  const label = (id: number) => (heavy.includes(id) ? `H${heavy.indexOf(id) + 1}` : `G${singles.indexOf(id) + 1}`);
  const leased = leaseOrder(everything);
  console.info(`fair turns: leased ${leased.map(label).join(" ")}; finished ${order.map(label).join(" ")}`);
  const lastSingle = Math.max(...singles.map((id) => order.indexOf(id)));
  expect(lastSingle).toBeLessThan(order.indexOf(heavy[3]!));
  // The line itself: the heavy guest's two with the generator, then every single, then the rest.
  expect(leased).toEqual([heavy[0], heavy[1], ...singles, ...heavy.slice(2)]);
});

test("a job the admin pins to the front is the next to go to a generator; moving one swaps it with its neighbour", async () => {
  sd.setDelay(3000);
  await generator("fair-gpu");
  const author = await guest();
  const ids: number[] = [];
  for (let i = 0; i < 6; i++) ids.push(await submit(author, `pin ${i + 1}`));
  for (const id of ids) await approve(id);
  await waitFor("the generator to hold two jobs", () => leasedIds(ids).length === 2);
  const waiting = ids.filter((id) => !leasedIds(ids).includes(id));
  expect(await placesForAdmin()).toEqual(Object.fromEntries(waiting.map((id, index) => [id, index + 1])));

  const pinned = waiting[3]!;
  expect((await admin.mutate("admin.pinToFront", { id: pinned })).status).toBe(200);
  expect((await placesForAdmin())[pinned]).toBe(1);
  expect((await admin.mutate("admin.moveInLine", { id: waiting[2], direction: "up" })).status).toBe(200);
  const places = await placesForAdmin();
  expect([places[pinned], places[waiting[0]!], places[waiting[2]!], places[waiting[1]!]]).toEqual([1, 2, 3, 4]);
  // Only a job waiting in line can be moved.
  const moveLeased = await admin.mutate("admin.pinToFront", { id: leasedIds(ids)[0] });
  expect(moveLeased.status).toBe(409);
  expect(moveLeased.body.error.message).toMatch(/not waiting in line/);
  sd.setDelay(0);

  await allFinished(ids);
  expect(leaseOrder(ids).filter((id) => waiting.includes(id))).toEqual([pinned, waiting[0], waiting[2], waiting[1]]);
});

test("a job beyond its colour's cap still runs within the aging bound while new guests keep arriving", async () => {
  sd.setDelay(3000);
  await generator("fair-gpu");
  const busy = await guest();
  const own = [await submit(busy, "busy 1"), await submit(busy, "busy 2"), await submit(busy, "busy 3: beyond the cap")];
  const newcomers: number[] = [];
  for (let i = 0; i < AGING_TURNS + 6; i++) newcomers.push(await submit(await guest(), `newcomer ${i + 1}`));
  for (const id of own) await approve(id);
  await waitFor("the generator to hold the busy guest's first two jobs", () => leasedIds(own).length === 2);
  // Every newcomer's first job goes ahead of the busy guest's third (the cap), until it has aged.
  for (const id of newcomers) await approve(id);
  expect((await placesForAdmin())[own[2]!]).toBe(newcomers.length + 1);
  sd.setDelay(0);

  await allFinished([...own, ...newcomers]);
  const order = leaseOrder([...own, ...newcomers]);
  // It has aged once AGING_TURNS newcomers have been leased after its colour's first two: it goes next.
  expect(order.indexOf(own[2]!)).toBe(2 + AGING_TURNS);
  expect(order.indexOf(own[2]!)).toBeLessThan(order.length - 1);
});

test("a guest sees each approved prompt's place in line and wait; places fall as jobs finish; no wait without a generator", async () => {
  const author = await guest();
  const ids: number[] = [];
  for (let i = 0; i < 4; i++) ids.push(await submit(author, `standing ${i + 1}`));
  const pending = await mine(author);
  expect(pending.every((prompt) => prompt.line === null)).toBe(true);
  for (const id of ids) await approve(id);

  // No generator online: a place, but no estimate.
  const before = await mine(author);
  const lineOf = (prompts: Mine, id: number) => prompts.find((prompt) => prompt.id === id)!.line;
  expect(ids.map((id) => lineOf(before, id))).toEqual([1, 2, 3, 4].map((place) => ({ place, etaSeconds: null })));
  // A refresh or another tab renders the same from the server: nothing lives in the browser.
  const { html } = await author.page("/");
  expect(html).toContain("next in line · waiting for a generator to come online");
  expect(html).toContain("4th in line · waiting for a generator to come online");

  sd.setDelay(1500);
  await generator("fair-gpu");
  const last = ids[3]!;
  const moved = await waitFor("the last prompt to move up the line", async () => {
    const standing = lineOf(await mine(author), last);
    return standing && standing.place !== null && standing.place < 4 ? standing : null;
  });
  expect(moved.etaSeconds).toBeGreaterThan(0);
  const running = await waitFor("a prompt being generated", async () => (await mine(author)).find((prompt) => prompt.status === "generating"));
  expect(running.line).toEqual({ place: null, etaSeconds: expect.any(Number) });
  expect(running.line!.etaSeconds).toBeGreaterThan(0);
  sd.setDelay(0);
  await allFinished(ids);
  expect((await mine(author)).every((prompt) => prompt.status === "done" && prompt.line === null)).toBe(true);
});

test("the line kept in memory follows every write to a job or its prompt, whoever makes it, and none that was rolled back", async () => {
  // A second connection reads the line afresh from the database, as a restart would.
  const reader = openDb(path.join(server.dataDir, "promptgate.db"));
  cleanup(() => reader.$client.close());
  const afresh = () => createLine(reader, { colourCap: 2, agingTurns: AGING_TURNS }).order().map((job) => job.jobId);
  const kept = () => server.services.line.order().map((job) => job.jobId);
  const author = await guest();
  const ids: number[] = [];
  for (let i = 0; i < 4; i++) ids.push(await submit(author, `kept in memory ${i}`));
  for (const id of ids) await approve(id);
  const [first, second, third, fourth] = ids.map((id) => all<{ jobId: string }>("SELECT job_id AS jobId FROM prompts WHERE id = ?", id)[0]!.jobId);
  expect(kept()).toEqual(expect.arrayContaining([first, second, third, fourth]));
  expect(kept().indexOf(fourth!)).toBeGreaterThan(kept().indexOf(second!));
  expect(kept()).toEqual(afresh());

  // Plain SQL, as no service of the line's writes it: one pinned ahead, one failed out of line.
  const sqlite = server.services.db.$client;
  sqlite.prepare("UPDATE jobs SET pin_rank = -1 WHERE id = ?").run(fourth);
  sqlite.prepare("UPDATE jobs SET state = 'failed' WHERE id = ?").run(first);
  expect(kept()[0]).toBe(fourth);
  expect(kept()).not.toContain(first);
  expect(kept()).toEqual(afresh());

  // Inside a transaction the line shows what it wrote; once rolled back, what is committed.
  const rolledBack = sqlite.transaction(() => {
    sqlite.prepare("UPDATE jobs SET lease_generator_id = 'nobody' WHERE id = ?").run(second);
    expect(kept()).not.toContain(second);
    throw new Error("rolled back");
  });
  expect(rolledBack).toThrow("rolled back");
  expect(kept()).toContain(second);
  expect(kept()).toEqual(afresh());

  // The guest cancels one: it leaves the line.
  expect((await author.mutate("prompt.cancel", { id: ids[2] })).status).toBe(200);
  expect(kept()).not.toContain(third);
  expect(kept()).toEqual(afresh());
});

test("an approval starts after its colour's last finish tag, not after one whose approval was rolled back", async () => {
  const author = await guest();
  const [first, second] = [await submit(author, "tagged first"), await submit(author, "tagged second")];
  await approve(first!);
  const tagsOf = (id: number) => all<{ start: number; finish: number }>("SELECT j.fair_start AS start, j.fair_finish AS finish FROM jobs j JOIN prompts p ON p.job_id = j.id WHERE p.id = ?", id)[0]!;
  const sqlite = server.services.db.$client;
  const rolledBack = sqlite.transaction(() => {
    server.services.prompts.approve(second!);
    expect(tagsOf(second!).start).toBe(tagsOf(first!).finish);
    throw new Error("rolled back");
  });
  expect(rolledBack).toThrow("rolled back");
  expect(all("SELECT job_id FROM prompts WHERE id = ? AND job_id IS NOT NULL", second)).toEqual([]);

  // The line's virtual time is behind (jobs of earlier tests wait unfinished): the colour's tag decides.
  await approve(second!);
  expect(tagsOf(second!).start).toBe(tagsOf(first!).finish);
});

test("each generator's leases, kept in memory, follow every write, a job that is not its prompt's current one included, and no rolled-back one", async () => {
  const author = await guest();
  const ids = [await submit(author, "leased by hand 1"), await submit(author, "leased by hand 2")];
  for (const id of ids) await approve(id);
  const [first, second] = ids.map((id) => all<{ jobId: string }>("SELECT job_id AS jobId FROM prompts WHERE id = ?", id)[0]!.jobId);
  const kept = (generatorId: string) => server.services.jobs.leasesOf(generatorId);
  const stored = (generatorId: string) =>
    all<{ jobId: string; promptId: number }>(
      "SELECT id AS jobId, prompt_id AS promptId FROM jobs WHERE lease_generator_id = ? AND state IN ('queued', 'accepted', 'started') ORDER BY rowid",
      generatorId,
    );
  const sqlite = server.services.db.$client;

  sqlite.prepare("UPDATE jobs SET lease_generator_id = 'by-hand' WHERE id IN (?, ?)").run(first, second);
  // The second prompt lets go of its job: no longer in the line, but still a lease its holder works on.
  sqlite.prepare("UPDATE prompts SET job_id = NULL WHERE id = ?").run(ids[1]);
  expect(kept("by-hand")).toEqual([
    { jobId: first, promptId: ids[0] },
    { jobId: second, promptId: ids[1] },
  ]);
  expect(kept("by-hand")).toEqual(stored("by-hand"));
  expect(server.services.jobs.busyWith("by-hand")).toBe(2);

  const rolledBack = sqlite.transaction(() => {
    sqlite.prepare("UPDATE jobs SET lease_generator_id = 'elsewhere' WHERE id = ?").run(first);
    expect(kept("elsewhere")).toEqual([{ jobId: first, promptId: ids[0] }]);
    throw new Error("rolled back");
  });
  expect(rolledBack).toThrow("rolled back");
  expect(kept("elsewhere")).toEqual([]);

  sqlite.prepare("UPDATE jobs SET state = 'done' WHERE id = ?").run(second);
  expect(kept("by-hand")).toEqual([{ jobId: first, promptId: ids[0] }]);
  expect(kept("by-hand")).toEqual(stored("by-hand"));
});
