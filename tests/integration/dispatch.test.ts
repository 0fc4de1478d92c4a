/**
 * Leased dispatch (ADR 008) with real generators, a real broker and the A1111 emulator: one SD
 * call per approved job, whoever is online, whatever drops out. Each test ends by counting the
 * SD calls and images of its own prompts.
 */
import mqtt from "mqtt";
import {
  ControlMessageSchema,
  JobMessageSchema,
  PresenceMessageSchema,
  ResultMessageSchema,
  SCHEMA_VERSION,
  StatusMessageSchema,
  decode,
  encode,
  topics,
  type JobMessage,
} from "../../broker/contract";
import { startGenerator, type RunningGenerator } from "../../generator/generator";
import { startSdEmulator, type SdEmulator } from "../emulators/sd-server";
import { TestClient } from "../helpers/client";
import { blackResult, handSession } from "../helpers/results";
import { encodePng } from "../../generator/png";
import { ADMIN_PASSWORD, collectingLogger, generatorConfigOn, generatorCredential, removeDataDir, startTestServer, waitFor, type TestServer } from "../helpers/server";
import { useCleanups } from "../helpers/cleanups";

let sd: SdEmulator;
let server: TestServer;
let visitor: TestClient;
let admin: TestClient;
const cleanup = useCleanups();

beforeAll(async () => {
  sd = await startSdEmulator();
  // Short leases, so that a silent generator is noticed within the test's patience.
  server = await startTestServer({ LOCAL_GENERATOR: "false", JOB_LEASE_SECONDS: "2", LIMIT_SUBMITS_PER_MINUTE: "0", LIMIT_PENDING_PROMPTS: "0" });
  visitor = new TestClient(server.url, { userAgent: "dispatch tests" });
  await visitor.page("/");
  admin = new TestClient(server.url, { userAgent: "dispatch admin" });
  await admin.loginAsAdmin(ADMIN_PASSWORD);
});
// Registered first, so it runs last: a test's generators stop before the delay it set is undone.
beforeEach(() => cleanup(() => sd.setDelay(0)));
afterAll(async () => {
  await server?.close();
  await sd?.close();
  removeDataDir(server.dataDir);
});

const sql = <T>(query: string, ...params: unknown[]) => server.services.db.$client.prepare(query).get(...params) as T;
const online = (generatorId: string) => server.services.link.generators().some((g) => g.generatorId === generatorId && g.state === "online" && g.healthy);

async function generator(generatorId: string, env: Record<string, string> = {}): Promise<RunningGenerator> {
  const config = generatorConfigOn(server, generatorId, { SD_API_URL: sd.url, ...env });
  const running = await startGenerator({ ...config, reconnectMs: 100 }, collectingLogger());
  let closed = false;
  cleanup(() => closed || running.close());
  await waitFor(`${generatorId} to be online`, () => online(generatorId));
  return { ...running, close: () => ((closed = true), running.close()) };
}

async function approve(prompt: string, size = 64): Promise<number> {
  const { id } = (await visitor.mutate("prompt.submit", { prompt, width: size, height: size })).body.result.data;
  expect((await admin.mutate("admin.approve", { id })).status).toBe(200);
  return id;
}

const madeBy = (id: number) => sql<{ g: string } | undefined>("SELECT generator_id AS g FROM images WHERE prompt_id = ?", id)?.g;
const allDone = (ids: number[]) => waitFor(`${ids.length} prompt(s) to be done`, () => ids.every((id) => madeBy(id) !== undefined), 20_000);
const sdCallsFor = (prefix: string) => sd.calls.filter((call) => String(call.body.prompt).startsWith(prefix)).length;

test("two generators share 12 jobs: 12 SD calls, 12 images, both used", async () => {
  sd.setDelay(40);
  await generator("share-a");
  await generator("share-b");
  const ids = [];
  for (let i = 0; i < 12; i++) ids.push(await approve(`shared job ${i}`));
  await allDone(ids);
  expect(sdCallsFor("shared job")).toBe(12);
  expect(sql("SELECT count(*) AS n FROM images WHERE prompt_id IN (" + ids.join(",") + ")")).toEqual({ n: 12 });
  expect(new Set(ids.map(madeBy))).toEqual(new Set(["share-a", "share-b"]));
});

test("a generator that was offline while 20 jobs were done elsewhere renders none of them when it comes back", async () => {
  const away = await generator("comes-back");
  await generator("stays");
  await away.close();
  await waitFor("comes-back to be offline", () => !online("comes-back"));
  const ids = [];
  for (let i = 0; i < 20; i++) ids.push(await approve(`while away ${i}`));
  await allDone(ids);
  await generator("comes-back");
  // One more job after its return: once it is done, everything the return could trigger has run.
  const after = await approve("while away, after the return");
  await allDone([after]);
  expect(sdCallsFor("while away")).toBe(21);
  expect(ids.every((id) => madeBy(id) === "stays")).toBe(true);
});

/** A generator that takes jobs and then says nothing: no heartbeat, no status, no result. */
async function silentGenerator(generatorId: string) {
  const client = await mqtt.connectAsync(`mqtt://127.0.0.1:${server.mqttPort}`, { clientId: generatorId, ...generatorCredential(server, generatorId) });
  cleanup(() => client.endAsync(true));
  const jobs: string[] = [];
  const messages: JobMessage[] = [];
  const cancels: string[] = [];
  client.on("message", (topic, payload) => {
    if (topic === topics.jobs(generatorId)) {
      const job = (decode(JobMessageSchema, payload) as { ok: true; value: JobMessage }).value;
      jobs.push(job.jobId);
      messages.push(job);
    }
    if (topic !== topics.control(generatorId)) return;
    const control = decode(ControlMessageSchema, payload);
    if (control.ok && control.value.command === "cancel") cancels.push(control.value.jobId);
  });
  await client.subscribeAsync([topics.jobs(generatorId), topics.control(generatorId)], { qos: 1 });
  await client.publishAsync(
    topics.presence(generatorId),
    encode(PresenceMessageSchema, { schemaVersion: SCHEMA_VERSION, generatorId, state: "online", ...handSession(), inFlight: [], concurrency: 1, backend: "silent", maxPixels: 2048 * 2048, healthy: true }),
    { qos: 1 },
  );
  await waitFor(`${generatorId} to be online`, () => online(generatorId));
  return { client, jobs, messages, cancels };
}

test("a generator that falls silent loses its job after the lease; another makes it, once", async () => {
  const silent = await silentGenerator("falls-silent");
  const id = await approve("held by a silent generator");
  const { jobId } = sql<{ jobId: string }>("SELECT job_id AS jobId FROM prompts WHERE id = ?", id);
  await waitFor("the silent generator to get the job", () => silent.jobs.includes(jobId));
  await generator("takes-over");
  await allDone([id]);
  expect(madeBy(id)).toBe("takes-over");
  expect(silent.cancels).toContain(jobId);
  expect(sdCallsFor("held by a silent generator")).toBe(1);
  // Silent since: it gets nothing more until it speaks again.
  const next = await approve("after the silence");
  await allDone([next]);
  expect(madeBy(next)).toBe("takes-over");
  expect(silent.jobs).toEqual([jobId]);
});

test("status and results from a generator that does not hold the lease are ignored", async () => {
  sd.setDelay(600);
  await generator("rightful");
  const id = await approve("someone else's job");
  const { jobId } = sql<{ jobId: string }>("SELECT job_id AS jobId FROM prompts WHERE id = ?", id);
  await waitFor("the rightful generator to start", () => sdCallsFor("someone else's job") === 1);
  const forger = await mqtt.connectAsync(`mqtt://127.0.0.1:${server.mqttPort}`, { clientId: "forger", ...generatorCredential(server, "forger") });
  cleanup(() => forger.endAsync(true));
  await forger.publishAsync(topics.status("forger", jobId), encode(StatusMessageSchema, { schemaVersion: SCHEMA_VERSION, jobId, generatorId: "forger", state: "failed", reason: "forged failure", at: new Date().toISOString() }), { qos: 1 });
  await forger.publishAsync(topics.result("forger", jobId), encode(ResultMessageSchema, blackResult(jobId, "forger")), { qos: 1 });
  await waitFor("the forgeries to be ignored", () => server.log.lines.some((line) => line.includes(`ignored a not-holder result for job ${jobId} from forger`)));
  await allDone([id]);
  expect(madeBy(id)).toBe("rightful");
  expect(sql("SELECT status, failure_reason AS reason FROM prompts WHERE id = ?", id)).toEqual({ status: "done", reason: null });
  await waitFor("the forged failure to be ignored", () => server.log.lines.some((line) => line.includes(`ignored "failed" for job ${jobId} from forger`)));
});

test("a job too large for every online generator is flagged to the admin and its author, then made once one can", async () => {
  await generator("small-box", { GENERATOR_MAX_PIXELS: String(512 * 512) });
  const id = await approve("a very large picture", 1024);
  const reason = "No generator can make this: 1024×1024 is larger than any online generator takes (262,144 pixels at most).";
  await waitFor("the author to be told", async () => (await visitor.query("prompt.mine")).body.result.data.find((p: { id: number }) => p.id === id)?.notice === reason);
  const dashboard = (await admin.query("admin.dashboard")).body.result.data;
  expect(dashboard.prompts.find((p: { id: number }) => p.id === id).notice).toBe(reason);
  await generator("big-box");
  await allDone([id]);
  expect(madeBy(id)).toBe("big-box");
  expect((await visitor.query("prompt.mine")).body.result.data.find((p: { id: number }) => p.id === id).notice).toBeNull();
});

test("closing a generator drains it: the running job is finished, the waiting one goes to another, nothing twice", async () => {
  sd.setDelay(500);
  const draining = await generator("drains");
  const first = await approve("drain: running");
  const second = await approve("drain: waiting");
  // Its slots are one running and one waiting job.
  await waitFor("both jobs to be with the draining generator", () => server.services.jobs.leasesOf("drains").length === 2);
  await waitFor("the first to be at the backend", () => sdCallsFor("drain:") === 1);
  const closed = draining.close();
  await generator("after-drain");
  await closed;
  await allDone([first, second]);
  expect(madeBy(first)).toBe("drains");
  expect(madeBy(second)).toBe("after-drain");
  expect(sdCallsFor("drain:")).toBe(2);
  expect(online("drains")).toBe(false);
});

test("the built-in generator steps aside while a GPU box is online, and takes over again when it leaves (LOCAL_GENERATOR=auto)", async () => {
  const party = await startTestServer({ LIMIT_SUBMITS_PER_MINUTE: "0", LIMIT_PENDING_PROMPTS: "0" });
  cleanup(() => removeDataDir(party.dataDir));
  cleanup(() => party.close());
  const guest = new TestClient(party.url, { userAgent: "auto guest" });
  await guest.page("/");
  const host = new TestClient(party.url, { userAgent: "auto host" });
  await host.loginAsAdmin(ADMIN_PASSWORD);
  const approveHere = async (prompt: string) => {
    const { id } = (await guest.mutate("prompt.submit", { prompt, width: 64, height: 64 })).body.result.data;
    expect((await host.mutate("admin.approve", { id })).status).toBe(200);
    return id;
  };
  const maker = (id: number) => waitFor(`prompt ${id} to be made`, () => (party.services.db.$client.prepare("SELECT generator_id AS g FROM images WHERE prompt_id = ?").get(id) as { g: string } | undefined)?.g, 20_000);

  expect(await maker(await approveHere("before the GPU box"))).toBe("promptgate-local");
  const box = await startGenerator(
    generatorConfigOn(party, "gpu-box", { SD_API_URL: sd.url }),
    collectingLogger(),
  );
  await waitFor("the GPU box to be online", () => party.services.link.generators().some((g) => g.generatorId === "gpu-box" && g.state === "online"));
  const during = [await approveHere("with the GPU box 1"), await approveHere("with the GPU box 2"), await approveHere("with the GPU box 3")];
  for (const id of during) expect(await maker(id)).toBe("gpu-box");
  await box.close();
  expect(await maker(await approveHere("after the GPU box"))).toBe("promptgate-local");
});

test("a generator whose backend always fails cannot fail a job that a healthy one can make; with nobody else, the job fails with the reason", async () => {
  const broken = await startSdEmulator();
  cleanup(() => broken.close());
  broken.failNext(500, { error: "OutOfMemoryError", detail: "", body: "", errors: "CUDA out of memory" }, 1000);
  await generator("broken-box", { SD_API_URL: broken.url, GENERATOR_MAX_ATTEMPTS: "1" });
  const alone = await approve("only the broken box is here");
  await waitFor("the job to fail", () => sql<{ status: string }>("SELECT status FROM prompts WHERE id = ?", alone).status === "failed");
  expect(sql("SELECT failure_reason AS reason FROM prompts WHERE id = ?", alone)).toEqual({ reason: "HTTP 500: OutOfMemoryError: CUDA out of memory" });

  await generator("healthy-box");
  const ids = [];
  for (let i = 0; i < 6; i++) ids.push(await approve(`broken or healthy ${i}`));
  await allDone(ids);
  expect(ids.every((id) => madeBy(id) === "healthy-box")).toBe(true);
  expect(sql("SELECT count(*) AS n FROM prompts WHERE status = 'failed' AND prompt LIKE 'broken or healthy%'")).toEqual({ n: 0 });
  expect(sdCallsFor("broken or healthy")).toBe(6);
  // After two failures in a row the broken box gets nothing a sound one can make: the waste stays bounded.
  expect(broken.calls.filter((call) => String(call.body.prompt).startsWith("broken or healthy")).length).toBeLessThanOrEqual(2);
  expect(server.services.link.generators().find((g) => g.generatorId === "broken-box")).toMatchObject({ lastError: "HTTP 500: OutOfMemoryError: CUDA out of memory" });
});

test("the admin sees each generator's state and retries failed prompts in one click, selected or all", async () => {
  const broken = await startSdEmulator();
  cleanup(() => broken.close());
  broken.failNext(500, { error: "RuntimeError", detail: "", body: "", errors: "model not loaded" }, 1000);
  const failing = await generator("fails-all", { SD_API_URL: broken.url, GENERATOR_MAX_ATTEMPTS: "1" });
  const ids = [await approve("retry me a"), await approve("retry me b"), await approve("retry me c")];
  await waitFor("the three to fail", () => ids.every((id) => sql<{ status: string }>("SELECT status FROM prompts WHERE id = ?", id).status === "failed"));
  const view = (await admin.query("admin.dashboard")).body.result.data.generators.find((g: { generatorId: string }) => g.generatorId === "fails-all");
  expect(view).toMatchObject({ state: "online", healthy: true, jobsDone: 0, lastError: "HTTP 500: RuntimeError: model not loaded", workingOn: [] });
  const page = await admin.page("/admin");
  expect(page.html.includes("HTTP 500: RuntimeError: model not loaded"), "the last error on the admin page").toBe(true);
  expect(new RegExp(`<input[^>]*name="ids"[^>]*form="batch"[^>]*value="${ids[0]}"`).test(page.html), "a checkbox to select the failed prompt").toBe(true);

  await failing.close();
  await generator("fixes-all");
  // Without JavaScript: the checkbox of one failed prompt, then "Retry selected".
  expect((await admin.postForm("/admin?index", { intent: "retry-selected", ids: String(ids[0]) })).status).toBe(200);
  await allDone([ids[0]!]);
  expect(sql("SELECT status FROM prompts WHERE id = ?", ids[1])).toEqual({ status: "failed" });
  const all = await admin.mutate("admin.retryFailed", {});
  expect(all.body.result.data.retried).toBeGreaterThanOrEqual(2);
  await allDone(ids);
  expect(ids.map(madeBy)).toEqual(["fixes-all", "fixes-all", "fixes-all"]);
  expect((await admin.mutate("admin.retryFailed", { ids: [ids[0]] })).body.result.data).toEqual({ retried: 0 });
});

test("a result refused from the holder (the wrong size) moves the job to a generator that has not failed it", async () => {
  const sloppy = await silentGenerator("sends-wrong-sizes");
  const id = await approve("made at the wrong size first");
  const { jobId } = sql<{ jobId: string }>("SELECT job_id AS jobId FROM prompts WHERE id = ?", id);
  await waitFor("the sloppy generator to get the job", () => sloppy.jobs.includes(jobId));
  await generator("gets-it-right");
  const wrongSize = { ...blackResult(jobId, "sends-wrong-sizes"), imagePng: encodePng(64, 72, new Uint8Array(64 * 72 * 3)).toString("base64") };
  await sloppy.client.publishAsync(topics.result("sends-wrong-sizes", jobId), encode(ResultMessageSchema, wrongSize), { qos: 1 });
  await allDone([id]);
  expect(madeBy(id)).toBe("gets-it-right");
  expect(sql("SELECT status, failure_reason AS reason FROM prompts WHERE id = ?", id)).toEqual({ status: "done", reason: null });
  expect(sql<{ failedOn: string }>("SELECT failed_on AS failedOn FROM jobs WHERE id = ?", jobId).failedOn).toBe('["sends-wrong-sizes"]');
});

test("a generator whose re-announcement crosses the server's cancel does not get that job's lease back", async () => {
  const crossing = await silentGenerator("crossing");
  const id = await approve("cancelled while re-announced");
  const { jobId } = sql<{ jobId: string }>("SELECT job_id AS jobId FROM prompts WHERE id = ?", id);
  await waitFor("crossing to get the job", () => crossing.jobs.includes(jobId));
  const announce = (inFlight: string[]) =>
    crossing.client.publishAsync(
      topics.presence("crossing"),
      // Draining (concurrency 0): nothing is dispatched to it afresh.
      encode(PresenceMessageSchema, { schemaVersion: SCHEMA_VERSION, generatorId: "crossing", state: "online", ...handSession(), inFlight, concurrency: 0, backend: "silent", maxPixels: 2048 * 2048, healthy: true }),
      { qos: 1 },
    );
  // As through a broker restart: its will puts the job back in line...
  await crossing.client.publishAsync(topics.presence("crossing"), encode(PresenceMessageSchema, { schemaVersion: SCHEMA_VERSION, generatorId: "crossing", state: "offline", ...handSession() }), { qos: 1 });
  await waitFor("the job to be back in line", () => server.services.jobs.holderOf(jobId) === null);
  // ...its late "accepted" earns a cancel, and it re-announces the job before that cancel reaches it.
  await crossing.client.publishAsync(topics.status("crossing", jobId), encode(StatusMessageSchema, { schemaVersion: SCHEMA_VERSION, jobId, generatorId: "crossing", state: "accepted", at: new Date().toISOString() }), { qos: 1 });
  await announce([jobId]);
  await waitFor("the re-announcement to be handled", () => server.services.link.generators().some((g) => g.generatorId === "crossing" && g.state === "online" && g.concurrency === 0));
  expect(server.services.jobs.holderOf(jobId)).toBeNull();
  await generator("takes-the-dropped");
  await allDone([id]);
  expect(madeBy(id)).toBe("takes-the-dropped");
  expect(crossing.cancels).toContain(jobId);
});

test("an \"offline\" from an earlier session of a generator, as a restarted broker may replay, leaves the leases of the one running now alone", async () => {
  sd.setDelay(1500);
  await generator("keeps-working");
  const id = await approve("worked on through an old will");
  const { jobId } = sql<{ jobId: string }>("SELECT job_id AS jobId FROM prompts WHERE id = ?", id);
  await waitFor("the generator to be at the SD server", () => sd.activeTask() === jobId);
  // Sent with the generator's own credential, on an extra connection of its (`<name>/<suffix>`).
  const replay = await mqtt.connectAsync(`mqtt://127.0.0.1:${server.mqttPort}`, { clientId: "keeps-working/replay", ...generatorCredential(server, "keeps-working") });
  cleanup(() => replay.endAsync(true));
  const anHourAgo = new Date(Date.now() - 3_600_000).toISOString();
  await replay.publishAsync(
    topics.presence("keeps-working"),
    encode(PresenceMessageSchema, { schemaVersion: SCHEMA_VERSION, generatorId: "keeps-working", state: "offline", session: "an-earlier-run", at: anHourAgo }),
    { qos: 1 },
  );
  await waitFor("the server to ignore it", () => server.log.lines.some((line) => line.includes(`ignored an "offline" of keeps-working from session an-earlier-run (sent ${anHourAgo})`)));
  expect(server.services.jobs.holderOf(jobId)).toBe("keeps-working");
  expect(online("keeps-working")).toBe(true);
  await allDone([id]);
  expect(madeBy(id)).toBe("keeps-working");
  expect(sdCallsFor("worked on through an old will")).toBe(1);
});

test("a result from the generator that last worked on a job is taken even after its lease ended, instead of rendering it again", async () => {
  const late = await silentGenerator("finishes-late");
  const id = await approve("finished after the lease ended");
  const { jobId } = sql<{ jobId: string }>("SELECT job_id AS jobId FROM prompts WHERE id = ?", id);
  await waitFor("the job to reach it", () => late.jobs.includes(jobId));
  await late.client.publishAsync(topics.status("finishes-late", jobId), encode(StatusMessageSchema, { schemaVersion: SCHEMA_VERSION, jobId, generatorId: "finishes-late", state: "started", at: new Date().toISOString() }), { qos: 1 });
  await waitFor("it to be working on the job", () => sql<{ status: string }>("SELECT status FROM prompts WHERE id = ?", id).status === "generating");
  // Its "offline" arrives (a broker restart publishes every client's will) while it still works.
  await late.client.publishAsync(topics.presence("finishes-late"), encode(PresenceMessageSchema, { schemaVersion: SCHEMA_VERSION, generatorId: "finishes-late", state: "offline", ...handSession() }), { qos: 1 });
  await waitFor("the job to be back in line", () => server.services.jobs.holderOf(jobId) === null);
  await late.client.publishAsync(topics.result("finishes-late", jobId), encode(ResultMessageSchema, blackResult(jobId, "finishes-late")), { qos: 1 });
  await allDone([id]);
  expect(madeBy(id)).toBe("finishes-late");
  expect(server.services.jobs.holderOf(jobId)).toBeUndefined();
});

test("a leased job reaches its generator with the prompt, its size, its author's colour and when it was approved", async () => {
  const reader = await silentGenerator("reads-its-jobs");
  const { id } = (await visitor.mutate("prompt.submit", { prompt: "a lighthouse at dusk", negativePrompt: "fog", width: 128, height: 64 })).body.result.data;
  expect((await admin.mutate("admin.approve", { id })).status).toBe(200);
  const row = sql<{ jobId: string; decidedAt: number; hex: string }>(
    "SELECT p.job_id AS jobId, p.decided_at AS decidedAt, v.hex FROM prompts p JOIN visitors v ON v.id = p.visitor_id WHERE p.id = ?",
    id,
  );
  const message = await waitFor("the job message", () => reader.messages.find((job) => job.jobId === row.jobId));
  expect(message).toEqual({
    schemaVersion: SCHEMA_VERSION,
    jobId: row.jobId,
    prompt: "a lighthouse at dusk",
    negativePrompt: "fog",
    width: 128,
    height: 64,
    authorColour: row.hex,
    approvedAt: new Date(row.decidedAt).toISOString(),
    leaseMs: 2000,
  });
  // Out of the line, so that no later test's generator makes it.
  expect((await visitor.mutate("prompt.cancel", { id })).status).toBe(200);
});
