/** The MQTT link: contract enforcement, de-duplication, failures and retries, transports. */
import mqtt from "mqtt";
import { ResultMessageSchema, SCHEMA_VERSION, encode, topics } from "../../broker/contract";
import { GeneratorEnvSchema, generatorConfigFrom, parseEnvironment } from "../../generator/env";
import { startGenerator } from "../../generator/generator";
import { startSdEmulator, type SdEmulator } from "../emulators/sd-server";
import { TestClient } from "../helpers/client";
import { blackResult } from "../helpers/results";
import { ADMIN_PASSWORD, generatorCredential, removeDataDir, startTestServer, waitFor, type TestServer } from "../helpers/server";

let sd: SdEmulator;
let server: TestServer;
let visitor: TestClient;
let admin: TestClient;

beforeAll(async () => {
  sd = await startSdEmulator();
  // One attempt per job: a single 500 must fail the prompt here (retries: sd-backend.test.ts).
  server = await startTestServer({ SD_API_URL: sd.url, GENERATOR_MAX_ATTEMPTS: "1", LIMIT_SUBMITS_PER_MINUTE: "0" });
  visitor = new TestClient(server.url, { userAgent: "link tests" });
  await visitor.page("/");
  admin = new TestClient(server.url, { userAgent: "link admin" });
  await admin.loginAsAdmin(ADMIN_PASSWORD);
});
afterAll(async () => {
  await server?.close();
  await sd?.close();
  removeDataDir(server.dataDir);
});


const quietLog = { info: () => undefined, warn: () => undefined, error: () => undefined };

/** Connection options of generator `name`: its own credential and client id. */
const as = (name: string) => ({ clientId: name, ...generatorCredential(server, name) });

async function submitAndApprove(prompt: string, size = 64): Promise<number> {
  const { id } = (await visitor.mutate("prompt.submit", { prompt, width: size, height: size })).body.result.data;
  expect((await admin.mutate("admin.approve", { id })).status).toBe(200);
  return id;
}

const promptRow = (id: number) => server.services.db.$client.prepare("SELECT p.status, p.failure_reason AS reason, p.job_id AS jobId FROM prompts p WHERE id = ?").get(id) as { status: string; reason: string | null; jobId: string };

const untilStatus = (id: number, status: string) =>
  waitFor(`prompt ${id} to be ${status}`, () => {
    const row = promptRow(id);
    return row.status === status ? row : null;
  });

test.each([
  ["TCP", () => `mqtt://127.0.0.1:${server.mqttPort}`],
  ["WebSocket", () => `ws://127.0.0.1:${server.httpPort}/mqtt`],
])("the broker refuses %s clients without a generator's token", async (_transport, url) => {
  for (const password of [undefined, "wrong token"]) {
    const attempt = mqtt.connectAsync(url(), { clientId: "someone", username: "someone", password, reconnectPeriod: 0 });
    await expect(attempt).rejects.toThrow(/Bad username or password/i);
  }
});

test("malformed payloads on every topic are logged and dropped; both server and generator keep working", async () => {
  const rogue = await mqtt.connectAsync(`mqtt://127.0.0.1:${server.mqttPort}`, as("rogue"));
  try {
    const garbage = [Buffer.from("not json"), Buffer.from("{}"), Buffer.from(JSON.stringify({ schemaVersion: 99 })), Buffer.alloc(0)];
    const someJob = "00000000-0000-4000-8000-000000000000";
    for (const payload of garbage) {
      await rogue.publishAsync(topics.status("rogue", someJob), payload, { qos: 1 });
      await rogue.publishAsync(topics.result("rogue", someJob), payload, { qos: 1 });
      await rogue.publishAsync(topics.presence("rogue"), payload, { qos: 1 });
      await rogue.publishAsync(topics.heartbeat("rogue"), payload, { qos: 1 });
    }
    await waitFor("malformed messages to be logged", () => server.log.lines.filter((line) => line.includes("dropped a malformed")).length >= garbage.length * 4);
  } finally {
    await rogue.endAsync();
  }
  const id = await submitAndApprove("still works after garbage");
  await untilStatus(id, "done");
});

test.each(["jobs", "control"] as const)("a network client may not publish on a generator's %s topic: the broker disconnects it and nothing is generated", async (kind) => {
  const impostor = await mqtt.connectAsync(`mqtt://127.0.0.1:${server.mqttPort}`, { ...as(`impostor-${kind}`), reconnectPeriod: 0 });
  const closed = new Promise((resolve) => impostor.once("close", () => resolve(undefined)));
  const callsBefore = sd.calls.length;
  const target = server.services.link.generators().find((generator) => generator.state === "online")!.generatorId;
  const forged = { schemaVersion: SCHEMA_VERSION, jobId: "11111111-1111-4111-8111-111111111111", prompt: "injected", negativePrompt: "", width: 64, height: 64, authorColour: "#000000", approvedAt: new Date().toISOString(), leaseMs: 30_000 };
  impostor.publish(kind === "jobs" ? topics.jobs(target) : topics.control(target), Buffer.from(JSON.stringify(forged)), { qos: 1 });
  await closed;
  // The generator still works, and never saw the forged job: the next real job is the next SD call.
  const id = await submitAndApprove(`after a forged ${kind} message`);
  await untilStatus(id, "done");
  expect(sd.calls.slice(callsBefore).map((call) => call.body.prompt)).toEqual([`after a forged ${kind} message`]);
  await impostor.endAsync(true);
});

test("a stored image keeps the sampling parameters the SD server was called with, as a JSON object", async () => {
  const id = await submitAndApprove("remember how I was made");
  await untilStatus(id, "done");
  const call = sd.calls.findLast((candidate) => candidate.body.prompt === "remember how I was made")!;
  const row = server.services.db.$client.prepare("SELECT json_type(parameters) AS type, parameters FROM images WHERE prompt_id = ?").get(id) as { type: string; parameters: string };
  expect(row.type).toBe("object");
  expect(JSON.parse(row.parameters)).toMatchObject({ steps: call.body.steps, cfgScale: call.body.cfg_scale, samplerName: call.body.sampler_name, seed: expect.any(Number) });
});

test("a second result for the same job is ignored, and results for unknown jobs are dropped", async () => {
  const id = await submitAndApprove("only one image please");
  const { jobId } = await untilStatus(id, "done");
  const fileBefore = server.services.db.$client.prepare("SELECT file_name, seed FROM images WHERE prompt_id = ?").get(id);

  const late = await mqtt.connectAsync(`mqtt://127.0.0.1:${server.mqttPort}`, as("late-generator"));
  const duplicate = blackResult(jobId, "late-generator");
  await late.publishAsync(topics.result("late-generator", jobId), encode(ResultMessageSchema, duplicate), { qos: 1 });
  const unknownJob = "22222222-2222-4222-8222-222222222222";
  await late.publishAsync(topics.result("late-generator", unknownJob), encode(ResultMessageSchema, { ...duplicate, jobId: unknownJob }), { qos: 1 });
  await late.endAsync();
  await waitFor("the duplicate to be ignored", () => server.log.lines.some((line) => line.includes(`ignored a duplicate result for job ${jobId}`)));
  await waitFor("the unknown job to be ignored", () => server.log.lines.some((line) => line.includes(`ignored a unknown-job result for job ${unknownJob}`)));
  expect(server.services.db.$client.prepare("SELECT file_name, seed FROM images WHERE prompt_id = ?").get(id)).toEqual(fileBefore);
});

test("an SD error fails the prompt with the reason; retry generates it", async () => {
  sd.failNext(500, { error: "OutOfMemoryError", detail: "", body: "", errors: "CUDA out of memory. Tried to allocate 2.00 GiB" });
  const id = await submitAndApprove("too big for the GPU");
  const failed = await untilStatus(id, "failed");
  expect(failed.reason).toContain("CUDA out of memory");
  const adminView = (await admin.query("admin.dashboard")).body.result.data.prompts.find((p: { id: number }) => p.id === id);
  expect(adminView.failureReason).toContain("CUDA out of memory");

  expect((await admin.mutate("admin.retry", { id })).status).toBe(200);
  const done = await untilStatus(id, "done");
  expect(done.jobId).not.toBe(failed.jobId);

  // A late result of the replaced job never overwrites the current image.
  const imageBefore = server.services.db.$client.prepare("SELECT job_id, file_name FROM images WHERE prompt_id = ?").get(id);
  const late = await mqtt.connectAsync(`mqtt://127.0.0.1:${server.mqttPort}`, as("stale-generator"));
  await late.publishAsync(topics.result("stale-generator", failed.jobId), encode(ResultMessageSchema, blackResult(failed.jobId, "stale-generator")), { qos: 1 });
  await late.endAsync();
  await waitFor("the stale result to be ignored", () => server.log.lines.some((line) => line.includes(`ignored a stale result for job ${failed.jobId}`)));
  expect(server.services.db.$client.prepare("SELECT job_id, file_name FROM images WHERE prompt_id = ?").get(id)).toEqual(imageBefore);
});

test("a generator connected by MQTT over WebSocket at /mqtt gets jobs like any other", async () => {
  // The local generator steps aside while another is online (LOCAL_GENERATOR=auto).
  const viaWebSocket = await startGenerator({ ...generatorConfigFrom(parseEnvironment(GeneratorEnvSchema, { MQTT_URL: `ws://127.0.0.1:${server.httpPort}/mqtt`, MQTT_PASSWORD: generatorCredential(server, "ws-generator").password, GENERATOR_ID: "ws-generator" })) }, quietLog);
  try {
    await waitFor("the WebSocket generator to be online", () => server.services.link.generators().some((g) => g.generatorId === "ws-generator" && g.state === "online"));
    const id = await submitAndApprove("made over websocket");
    await untilStatus(id, "done");
    expect(server.services.db.$client.prepare("SELECT generator_id AS g FROM images WHERE prompt_id = ?").get(id)).toEqual({ g: "ws-generator" });
  } finally {
    await viaWebSocket.close();
  }
});
