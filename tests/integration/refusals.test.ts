/**
 * Every refusal is answered (issue 7 §3): what the server does not take from a generator comes
 * back as a `refused` on that generator's control topic, and a result it cannot take fails its
 * job with the reason instead of leaving it waiting. A hand-written MQTT client plays the
 * generator, sending JSON as a third-party generator would.
 */
import mqtt, { type MqttClient } from "mqtt";
import { ControlMessageSchema, JobMessageSchema, SCHEMA_VERSION, decode, topics, type ControlMessage, type JobMessage } from "../../broker/contract";
import { startGenerator } from "../../generator/generator";
import { encodePng } from "../../generator/png";
import { startSdEmulator, type SdEmulator } from "../emulators/sd-server";
import { TestClient } from "../helpers/client";
import { ADMIN_PASSWORD, collectingLogger, generatorConfigOn, generatorCredential, removeDataDir, startTestServer, waitFor, type TestServer } from "../helpers/server";
import { handSession } from "../helpers/results";
import { useCleanups } from "../helpers/cleanups";

let sd: SdEmulator;
let server: TestServer;
let visitor: TestClient;
let admin: TestClient;
const cleanup = useCleanups();

beforeAll(async () => {
  sd = await startSdEmulator();
  server = await startTestServer({ LOCAL_GENERATOR: "false", LIMIT_SUBMITS_PER_MINUTE: "0", LIMIT_PENDING_PROMPTS: "0" });
  visitor = new TestClient(server.url, { userAgent: "refusal tests" });
  await visitor.page("/");
  admin = new TestClient(server.url, { userAgent: "refusal admin" });
  await admin.loginAsAdmin(ADMIN_PASSWORD);
});
afterAll(async () => {
  await server?.close();
  await sd?.close();
  if (server) removeDataDir(server.dataDir);
});

interface HandGenerator {
  client: MqttClient;
  jobs: JobMessage[];
  controls: ControlMessage[];
  /** Publishes `payload` (a value to serialise, or raw text) on one of its own topics. */
  send(topic: string, payload: unknown): Promise<unknown>;
}

/** A generator by hand: subscribes to its topics and announces itself online, concurrency 1. */
async function handGenerator(generatorId: string): Promise<HandGenerator> {
  const client = await mqtt.connectAsync(`mqtt://127.0.0.1:${server.mqttPort}`, { clientId: generatorId, ...generatorCredential(server, generatorId) });
  cleanup(async () => {
    await client.publishAsync(topics.presence(generatorId), JSON.stringify({ schemaVersion: SCHEMA_VERSION, generatorId, state: "offline", ...handSession() }), { qos: 1 });
    await client.endAsync();
  });
  const jobs: JobMessage[] = [];
  const controls: ControlMessage[] = [];
  client.on("message", (topic, payload) => {
    if (topic === topics.jobs(generatorId)) jobs.push((decode(JobMessageSchema, payload) as { ok: true; value: JobMessage }).value);
    if (topic === topics.control(generatorId)) controls.push((decode(ControlMessageSchema, payload) as { ok: true; value: ControlMessage }).value);
  });
  await client.subscribeAsync([topics.jobs(generatorId), topics.control(generatorId)], { qos: 1 });
  const send = (topic: string, payload: unknown) => client.publishAsync(topic, typeof payload === "string" ? payload : JSON.stringify(payload), { qos: 1 });
  await send(topics.presence(generatorId), { schemaVersion: SCHEMA_VERSION, generatorId, state: "online", ...handSession(), inFlight: [], concurrency: 1, backend: "by-hand", maxPixels: 64 * 64, healthy: true });
  await waitFor(`${generatorId} to be online`, () => server.services.link.generators().some((g) => g.generatorId === generatorId && g.state === "online"));
  return { client, jobs, controls, send };
}

async function approve(prompt: string): Promise<number> {
  const { id } = (await visitor.mutate("prompt.submit", { prompt, width: 64, height: 64 })).body.result.data;
  expect((await admin.mutate("admin.approve", { id })).status).toBe(200);
  return id;
}

const promptRow = (id: number) => server.services.db.$client.prepare("SELECT status, failure_reason AS reason FROM prompts WHERE id = ?").get(id) as { status: string; reason: string | null };
const untilStatus = (id: number, status: string) => waitFor(`prompt ${id} to be ${status}`, () => (promptRow(id).status === status ? promptRow(id) : null));
const refusals = (generator: HandGenerator) => generator.controls.filter((control) => control.command === "refused");

/** A result for `job` as a third-party generator might write it: an offset timestamp, CFG scale 0. */
const resultFor = (job: JobMessage, generatorId: string, image = encodePng(64, 64, new Uint8Array(64 * 64 * 3))) => ({
  schemaVersion: SCHEMA_VERSION,
  jobId: job.jobId,
  generatorId,
  imagePng: image.toString("base64"),
  seed: 1234,
  width: 64,
  height: 64,
  parameters: { steps: 1, cfgScale: 0, samplerName: "Euler a", restoreFaces: false, seed: 1234 },
  backend: "by-hand",
  timing: { queuedMs: 0, generationMs: 5 },
  finishedAt: "2026-11-25T20:19:38.5+01:00",
});

test("a result with an offset timestamp and CFG scale 0 is stored without a refusal", async () => {
  const generatorId = "gpu-box-2";
  const generator = await handGenerator(generatorId);
  const id = await approve("turbo model, offset clock");
  const job = await waitFor("the job", () => generator.jobs[0]);
  await generator.send(topics.status(generatorId, job.jobId), { schemaVersion: SCHEMA_VERSION, jobId: job.jobId, generatorId, state: "started", at: "2026-11-25T19:19:38+00:00" });
  await generator.send(topics.result(generatorId, job.jobId), resultFor(job, generatorId));
  await untilStatus(id, "done");
  expect(server.services.db.$client.prepare("SELECT generator_id AS g, seed FROM images WHERE prompt_id = ?").get(id)).toEqual({ g: generatorId, seed: 1234 });
  expect(refusals(generator)).toEqual([]);
});

test("a malformed result is refused on the generator's control topic with the reason, and its job fails instead of waiting forever", async () => {
  const generator = await handGenerator("forgets-the-seed");
  const id = await approve("a result without a seed");
  const job = await waitFor("the job", () => generator.jobs[0]);
  const { seed: _seed, ...withoutSeed } = resultFor(job, "forgets-the-seed");
  const topic = topics.result("forgets-the-seed", job.jobId);
  await generator.send(topic, withoutSeed);
  const [refusal] = await waitFor("the refusal", () => (refusals(generator).length ? refusals(generator) : null));
  expect(refusal).toEqual({ schemaVersion: SCHEMA_VERSION, command: "refused", topic, jobId: job.jobId, reason: expect.stringMatching(/^malformed result: .*seed/s) });
  const failed = await untilStatus(id, "failed");
  expect(failed.reason).toMatch(/^the result from forgets-the-seed was refused: malformed result: .*seed/s);
});

test("a result with the wrong image is refused and fails its job with the reason", async () => {
  const generator = await handGenerator("wrong-size");
  const id = await approve("a result of the wrong size");
  const job = await waitFor("the job", () => generator.jobs[0]);
  await generator.send(topics.result("wrong-size", job.jobId), resultFor(job, "wrong-size", encodePng(64, 72, new Uint8Array(64 * 72 * 3))));
  const [refusal] = await waitFor("the refusal", () => (refusals(generator).length ? refusals(generator) : null));
  expect(refusal!.reason).toBe("the generator sent a 64×72 image for a 64×64 prompt");
  expect((await untilStatus(id, "failed")).reason).toBe("the result from wrong-size was refused: the generator sent a 64×72 image for a 64×64 prompt");
});

test("malformed heartbeats, statuses and presences, and results and statuses for jobs that are not the sender's, are each answered with the reason", async () => {
  const generatorId = "sloppy";
  const generator = await handGenerator(generatorId);
  const unknownJob = "3f1c2b7a-5d4e-4f60-8a9b-0c1d2e3f4a5b";
  const job = { jobId: unknownJob } as JobMessage;
  const sent: Array<[string, unknown, RegExp]> = [
    [topics.heartbeat(generatorId), "not json", /^malformed heartbeat: payload is not JSON$/],
    [topics.presence(generatorId), { schemaVersion: SCHEMA_VERSION, generatorId, state: "busy" }, /^malformed presence: /],
    [topics.status(generatorId, unknownJob), { schemaVersion: SCHEMA_VERSION, jobId: unknownJob, generatorId: "someone-else", state: "started", at: new Date().toISOString() }, /^malformed status: generatorId does not match the topic$/],
    [topics.status(generatorId, unknownJob), { schemaVersion: SCHEMA_VERSION, jobId: unknownJob, generatorId, state: "failed", reason: "oops", at: new Date().toISOString() }, /^the job is finished or unknown$/],
    [topics.result(generatorId, unknownJob), resultFor(job, generatorId), /^no such job$/],
  ];
  for (const [topic, payload] of sent) await generator.send(topic, payload);
  await waitFor("every refusal", () => refusals(generator).length >= sent.length);
  expect(refusals(generator).map(({ topic, reason }) => [topic, reason])).toEqual(sent.map(([topic, , reason]) => [topic, expect.stringMatching(reason)]));
});

test("a flood of garbage gets a burst of 5 refusals and then at most 5 a second; topics outside the contract get none", async () => {
  const generatorId = "flooder";
  const generator = await handGenerator(generatorId);
  // Not a job id: outside the contract, logged and never answered.
  await generator.send(`${topics.status(generatorId, "x")}-not-a-job`, "garbage");
  const startedAt = Date.now();
  const flood = 60;
  for (let i = 0; i < flood; i++) void generator.send(topics.heartbeat(generatorId), `garbage ${i}`);
  const dropped = `dropped a malformed heartbeat on ${topics.heartbeat(generatorId)}`;
  await waitFor("the whole flood to be logged", () => server.log.lines.filter((line) => line.includes(dropped)).length >= flood);
  await waitFor("a refusal", () => refusals(generator).length > 0);
  // Every refusal was sent by now: a burst of 5, then 5 for each second since the flood began.
  const seconds = (Date.now() - startedAt) / 1000;
  expect(refusals(generator).length).toBeLessThanOrEqual(5 + Math.floor(5 * seconds));
  expect(refusals(generator).every(({ topic }) => topic === topics.heartbeat(generatorId))).toBe(true);
  await waitFor("the malformed status to be logged", () => server.log.lines.some((line) => line.includes(`dropped a malformed status on ${topics.status(generatorId, "x")}-not-a-job`)));
});

test("promptgate's own generator logs a refusal it is sent, naming the topic and the reason, and stops waiting for that result", async () => {
  // Time for the lease to end while the image is made.
  sd.setDelay(2000);
  const log = collectingLogger();
  const config = generatorConfigOn(server, "told-off", { SD_API_URL: sd.url, GENERATOR_DRAIN_SECONDS: "1" });
  const generator = await startGenerator(config, log);
  let closed = false;
  cleanup(() => (closed ? Promise.resolve() : generator.close()));
  await waitFor("told-off to be online", () => server.services.link.generators().some((g) => g.generatorId === "told-off" && g.state === "online"));
  const id = await approve("its lease ends while the image is made");
  await untilStatus(id, "generating");
  // The lease ends under it and the job goes to another generator (as when it expires while the
  // result is on its way, crossing the cancel); the next heartbeat, 10 s away, would cancel it.
  const { jobId } = server.services.db.$client.prepare("SELECT job_id AS jobId FROM prompts WHERE id = ?").get(id) as { jobId: string };
  expect(server.services.jobs.release(jobId, "told-off")).toBe(true);
  expect(server.services.jobs.grantLeases([{ jobId, generatorId: "another-generator" }])).toHaveLength(1);
  await waitFor("the generator to log the refusal of its result", () =>
    log.lines.includes(`warn the server refused what this generator sent on ${topics.result("told-off", jobId)}: ${"the lease on this job is not yours (it ran out, or the job went to another generator)"}`),
  );
  // The refusal ended its wait for "stored": the job is forgotten, so draining it neither lists
  // the job (which the server would answer with a cancel) nor waits for its confirmation.
  closed = true;
  await generator.close();
  expect(log.lines.filter((line) => line.includes(`job ${jobId} cancelled`) || line.includes("without the server's confirmation"))).toEqual([]);
});
