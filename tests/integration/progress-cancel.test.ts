/**
 * Live progress and cancelling (issue 8 §2) with a real server, real generators and A1111
 * emulators: the author hears how far their picture is (and nobody else does), at most two
 * reports a second; only the lease holder's reports count; a guest calls off what waits, the
 * host anything, and a running job's own A1111 task is interrupted, never another's.
 */
import mqtt from "mqtt";
import { PROGRESS_PER_SECOND, ProgressMessageSchema, SCHEMA_VERSION, encode, topics } from "../../broker/contract";
import { startGenerator } from "../../generator/generator";
import { startSdEmulator, type SdEmulator } from "../emulators/sd-server";
import { TestClient } from "../helpers/client";
import { ADMIN_PASSWORD, collectingLogger, generatorConfigOn, generatorCredential, removeDataDir, startTestServer, waitFor, type TestServer } from "../helpers/server";
import { SseStream } from "../helpers/sse";
import { useCleanups } from "../helpers/cleanups";

let server: TestServer;
let sdA: SdEmulator;
let sdB: SdEmulator;
let admin: TestClient;
const cleanup = useCleanups();

beforeAll(async () => {
  [sdA, sdB] = await Promise.all([startSdEmulator(), startSdEmulator()]);
  server = await startTestServer({ LOCAL_GENERATOR: "false", LIMIT_SUBMITS_PER_MINUTE: "0", LIMIT_PENDING_PROMPTS: "0" });
  admin = new TestClient(server.url, { userAgent: "progress admin" });
  await admin.loginAsAdmin(ADMIN_PASSWORD);
});
afterAll(async () => {
  await server?.close();
  await Promise.all([sdA?.close(), sdB?.close()]);
  removeDataDir(server.dataDir);
});

const row = <T>(query: string, ...params: unknown[]) => server.services.db.$client.prepare(query).get(...params) as T;
const statusOf = (id: number) => row<{ status: string }>("SELECT status FROM prompts WHERE id = ?", id).status;
const jobOf = (id: number) => row<{ id: string; holder: string | null; state: string }>("SELECT j.id, j.lease_generator_id AS holder, j.state FROM jobs j JOIN prompts p ON p.job_id = j.id WHERE p.id = ?", id);
const online = (generatorId: string) => server.services.link.generators().some((g) => g.generatorId === generatorId && g.state === "online" && g.healthy);

async function generator(generatorId: string, sd: SdEmulator) {
  const config = generatorConfigOn(server, generatorId, { SD_API_URL: sd.url });
  const log = collectingLogger();
  const running = await startGenerator(config, log);
  cleanup(() => running.close());
  await waitFor(`${generatorId} to be online`, () => online(generatorId));
  return { ...running, log };
}

async function guest(name: string) {
  const client = new TestClient(server.url, { userAgent: `progress guest ${name}` });
  await client.page("/");
  return client;
}

async function submit(client: TestClient, prompt: string): Promise<number> {
  const answer = await client.mutate("prompt.submit", { prompt, width: 64, height: 64 });
  expect(answer.status).toBe(200);
  return answer.body.result.data.id;
}

async function approve(id: number) {
  expect((await admin.mutate("admin.approve", { id })).status).toBe(200);
}

async function stream(client: TestClient, procedure: string) {
  const opened = await SseStream.open(client, procedure, { input: { lastEventId: null } });
  cleanup(() => opened.close());
  return opened;
}

test("the author hears step n of m while their picture is made, at most two reports a second, and no other guest hears any of it; the admin's page loads with the latest step", async () => {
  sdA.setDelay(3000);
  cleanup(() => sdA.setDelay(0));
  await generator("progress-a", sdA);
  const author = await guest("author");
  const other = await guest("other");
  const authorStream = await stream(author, "prompt.onChange");
  const otherStream = await stream(other, "prompt.onChange");
  const adminStream = await stream(admin, "admin.onChange");
  const id = await submit(author, "a slow lighthouse");
  const approvedAt = Date.now();
  await approve(id);
  // A page loaded meanwhile starts from the latest step, not from nothing.
  await waitFor("the admin's snapshot to carry the step", async () => (await admin.query("admin.dashboard")).body.result.data.progress[id]?.steps === 30);
  await waitFor("the picture to be done", () => statusOf(id) === "done", 20_000);
  const runSeconds = (Date.now() - approvedAt) / 1000;

  const reports = authorStream.data.filter((data) => data.type === "progress" && data.id === id).map((data) => data.progress);
  expect(reports.length).toBeGreaterThanOrEqual(2);
  expect(reports.length).toBeLessThanOrEqual(Math.ceil(runSeconds * PROGRESS_PER_SECOND) + 1);
  for (const report of reports) {
    expect(report).toEqual({ step: expect.any(Number), steps: 30, fraction: expect.any(Number), etaSeconds: expect.any(Number) });
    expect(report.step).toBe(Math.round(report.fraction * 30));
  }
  const steps = reports.map((report) => report.step);
  expect(steps).toEqual([...steps].sort((a, b) => a - b));
  expect(steps.at(-1)).toBeGreaterThan(steps[0]);
  // The admin's queue shows it too; no preview image ever leaves the generator.
  expect(adminStream.data.some((data) => data.type === "progress" && data.id === id && data.progress.steps === 30)).toBe(true);
  expect(JSON.stringify([authorStream.messages, adminStream.messages])).not.toMatch(/live_preview|data:image/);
  expect(sdA.progressCalls.length).toBeGreaterThan(0);
  expect(sdA.progressCalls.every((call) => !call.livePreview)).toBe(true);
  expect(otherStream.data.filter((data) => data.id === id)).toEqual([]);
  // Over: the bar is gone with the job.
  expect(server.services.progress.of(id)).toBeNull();
});

test("progress from a generator that does not hold the job is ignored, and it is sent no refusal for it", async () => {
  sdA.setDelay(1500);
  cleanup(() => sdA.setDelay(0));
  await generator("progress-holder", sdA);
  const author = await guest("holder's author");
  const authorStream = await stream(author, "prompt.onChange");
  const id = await submit(author, "a held job");
  await approve(id);
  await waitFor("the job to be generating", () => statusOf(id) === "generating");
  const { id: jobId } = jobOf(id);

  const { username, password } = generatorCredential(server, "progress-intruder");
  const intruder = await mqtt.connectAsync(`mqtt://127.0.0.1:${server.mqttPort}`, { clientId: username, username, password });
  cleanup(() => intruder.endAsync(true));
  const heard: string[] = [];
  intruder.on("message", (_topic, payload) => heard.push(payload.toString()));
  await intruder.subscribeAsync(topics.control(username), { qos: 1 });
  const forged = { schemaVersion: SCHEMA_VERSION, jobId, generatorId: username, step: 999, steps: 999, fraction: 1, at: new Date().toISOString() };
  for (let i = 0; i < 5; i++) await intruder.publishAsync(topics.progress(username, jobId), encode(ProgressMessageSchema, forged), { qos: 1 });
  // A QoS 1 heartbeat after them: once the server has it (and answers with a cancel), it has seen the forgeries.
  await intruder.publishAsync(topics.heartbeat(username), JSON.stringify({ schemaVersion: SCHEMA_VERSION, generatorId: username, jobIds: [jobId], at: new Date().toISOString() }), { qos: 1 });
  await waitFor("the server's answer to the heartbeat", () => heard.length > 0);
  await waitFor("the picture to be done", () => statusOf(id) === "done", 20_000);

  expect(authorStream.data.filter((data) => data.type === "progress").every((data) => data.progress === null || data.progress.steps === 30)).toBe(true);
  expect(heard.map((text) => JSON.parse(text).command)).toEqual(["cancel"]);
});

test("a guest cancels a pending prompt and an approved one waiting with a generator: both are cancelled and neither is made", async () => {
  sdA.setDelay(1500);
  cleanup(() => sdA.setDelay(0));
  const busy = await generator("cancel-queue", sdA);
  const author = await guest("canceller");
  const running = await submit(author, "runs first");
  await approve(running);
  const queued = await submit(author, "waits in the generator's queue");
  await approve(queued);
  const pending = await submit(author, "never approved");
  await waitFor("the second job to be leased to the busy generator", () => statusOf(running) === "generating" && jobOf(queued).holder === "cancel-queue");

  // Without JavaScript: the page's own form.
  await author.page("/");
  const cancelQueued = await author.postForm("/?index", { intent: "cancel", id: String(queued) });
  expect(cancelQueued.status).toBeLessThan(400);
  expect((await author.mutate("prompt.cancel", { id: pending })).status).toBe(200);

  expect(statusOf(queued)).toBe("cancelled");
  expect(statusOf(pending)).toBe("cancelled");
  expect(jobOf(queued)).toMatchObject({ state: "cancelled", holder: null });
  await waitFor("the generator to drop the cancelled job", () => busy.log.lines.some((line) => line.includes(`job ${jobOf(queued).id} cancelled by the server: cancelled by its author`)));
  await waitFor("the first picture to be done", () => statusOf(running) === "done", 20_000);
  expect(sdA.calls.filter((call) => call.body.prompt === "waits in the generator's queue")).toEqual([]);
  // Cancelled is final: the host cannot approve it again, and a second cancel changes nothing.
  expect((await admin.mutate("admin.approve", { id: pending })).status).toBe(409);
  expect((await author.mutate("prompt.cancel", { id: pending })).status).toBe(200);
  const page = await author.page("/");
  expect(page.html).toContain("Cancelled");
});

test("the host cancels a running job: its generator interrupts that A1111 task, the other generator's job runs on, and the cancel is audited", async () => {
  sdA.setDelay(4000);
  sdB.setDelay(4000);
  cleanup(() => (sdA.setDelay(0), sdB.setDelay(0)));
  await generator("cancel-a", sdA);
  await generator("cancel-b", sdB);
  const author = await guest("host cancel");
  const stranger = await guest("stranger");
  const first = await submit(author, "to be cancelled while running");
  const second = await submit(author, "keeps running");
  await approve(first);
  await approve(second);
  await waitFor("both to be running on their emulators", () => sdA.activeTask() && sdB.activeTask());
  const victim = jobOf(first);
  const [victimSd, otherSd] = victim.holder === "cancel-a" ? [sdA, sdB] : [sdB, sdA];
  expect(victimSd.activeTask()).toBe(victim.id);

  // Guests may not: not their own prompt (404), and not once it is being made (409).
  expect((await stranger.mutate("prompt.cancel", { id: first })).status).toBe(404);
  const tooLate = await author.mutate("prompt.cancel", { id: first });
  expect(tooLate.status).toBe(409);
  expect(tooLate.body.error.message).toContain("already being made");

  expect((await admin.mutate("admin.cancel", { id: first })).status).toBe(200);
  expect(statusOf(first)).toBe("cancelled");
  await waitFor("the victim's task to be interrupted", () => victimSd.interrupts.length > 0);
  expect(victimSd.interrupts).toEqual([{ activeTask: victim.id }]);
  await waitFor("the other picture to be done", () => statusOf(second) === "done", 20_000);
  expect(otherSd.interrupts).toEqual([]);
  expect(statusOf(first)).toBe("cancelled");
  expect(victimSd.calls.filter((call) => call.body.force_task_id === victim.id)).toHaveLength(1);
  expect(row("SELECT actor, action, target, details FROM audit_log WHERE action = 'prompt.cancel'")).toEqual({
    actor: "admin",
    action: "prompt.cancel",
    target: `prompt ${first}`,
    details: JSON.stringify({ interrupted: victim.holder }),
  });
});
