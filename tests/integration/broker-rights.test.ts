/**
 * Topic rights and limits on the embedded broker (issue 7 §4), over TCP and /mqtt alike: a
 * generator with a valid credential tries every forbidden act against another generator, each
 * is refused, and the other's job flow goes on untouched.
 */
import { randomUUID } from "node:crypto";
import mqtt, { type IClientOptions, type MqttClient } from "mqtt";
import {
  HeartbeatMessageSchema,
  JobMessageSchema,
  PresenceMessageSchema,
  ResultMessageSchema,
  SCHEMA_VERSION,
  StatusMessageSchema,
  TOPIC_ROOT,
  decode,
  encode,
  topics,
  type JobMessage,
  type ResultMessage,
} from "../../broker/contract";
import { startGenerator } from "../../generator/generator";
import { encodePng } from "../../generator/png";
import { startSdEmulator, type SdEmulator } from "../emulators/sd-server";
import { TestClient } from "../helpers/client";
import { ADMIN_PASSWORD, collectingLogger, generatorConfigOn, generatorCredential, removeDataDir, startTestServer, waitFor, type TestServer } from "../helpers/server";
import { handSession } from "../helpers/results";
import { useCleanups } from "../helpers/cleanups";

let server: TestServer;
let sd: SdEmulator;
let visitor: TestClient;
let admin: TestClient;
const cleanup = useCleanups("all");

beforeAll(async () => {
  sd = await startSdEmulator();
  cleanup(() => sd.close());
  server = await startTestServer({ LOCAL_GENERATOR: "false", LIMIT_SUBMITS_PER_MINUTE: "0", LIMIT_PENDING_PROMPTS: "0" });
  cleanup(() => removeDataDir(server.dataDir), () => server.close());
  visitor = new TestClient(server.url, { userAgent: "rights visitor" });
  await visitor.page("/");
  admin = new TestClient(server.url, { userAgent: "rights admin" });
  await admin.loginAsAdmin(ADMIN_PASSWORD);
  const honest = await startGenerator(
    { ...generatorConfigOn(server, "honest", { SD_API_URL: sd.url }), reconnectMs: 100 },
    collectingLogger(),
  );
  cleanup(() => honest.close());
  await waitFor("the honest generator to be online", () => server.services.link.generators().some((g) => g.generatorId === "honest" && g.state === "online"));
});

const TRANSPORTS = [
  ["TCP", () => `mqtt://127.0.0.1:${server.mqttPort}`],
  ["WebSocket", () => `ws://127.0.0.1:${server.httpPort}/mqtt`],
] as const;

async function connectAs(url: string, name: string, options: IClientOptions = {}): Promise<MqttClient> {
  const client = await mqtt.connectAsync(url, { clientId: name, ...generatorCredential(server, name), reconnectPeriod: 0, ...options });
  cleanup(() => client.endAsync(true));
  return client;
}

const closed = (client: MqttClient) => new Promise<void>((resolve) => (client.connected ? client.once("close", () => resolve()) : resolve()));
const sql = <T>(query: string, ...params: unknown[]) => server.services.db.$client.prepare(query).get(...params) as T;

async function approve(prompt: string, size = 64): Promise<{ id: number; jobId: string }> {
  const { id } = (await visitor.mutate("prompt.submit", { prompt, width: size, height: size })).body.result.data;
  expect((await admin.mutate("admin.approve", { id })).status).toBe(200);
  return { id, jobId: sql<{ jobId: string }>("SELECT job_id AS jobId FROM prompts WHERE id = ?", id).jobId };
}
const madeBy = (id: number) => sql<{ g: string } | undefined>("SELECT generator_id AS g FROM images WHERE prompt_id = ?", id)?.g;
const done = (id: number) => waitFor(`prompt ${id} to be done`, () => madeBy(id));

const result = (generatorId: string, jobId: string, png: Buffer, size = 64): ResultMessage => ({
  schemaVersion: SCHEMA_VERSION,
  jobId,
  generatorId,
  imagePng: png.toString("base64"),
  seed: 1,
  width: size,
  height: size,
  parameters: { steps: 1, cfgScale: 1, samplerName: "Euler", restoreFaces: false, seed: 1 },
  backend: "test",
  timing: { queuedMs: 0, generationMs: 1 },
  finishedAt: new Date().toISOString(),
});

describe.each(TRANSPORTS)("over %s", (transport, url) => {
  test("a generator may not subscribe to another's jobs, to results, or to wildcards: SUBACK 0x80, and it sees no job", async () => {
    const mallory = await connectAs(url(), `mallory-subscribes-${transport}`);
    const seen: string[] = [];
    mallory.on("message", (topic) => seen.push(topic));
    const refused = await mallory.subscribeAsync([topics.jobs("honest"), topics.control("honest"), topics.resultWildcard, `${TOPIC_ROOT}/#`, "#"], { qos: 1 }).catch((error: Error & { packet?: { granted: number[] } }) => error);
    expect((refused as Error & { packet: { granted: number[] } }).packet.granted).toEqual([128, 128, 128, 128, 128]);
    const { id } = await approve(`watched over ${transport}`);
    expect(await done(id)).toBe("honest");
    expect(seen).toEqual([]);
    expect(mallory.connected).toBe(true);
    expect(server.log.lines).toContain(`warn MQTT client mallory-subscribes-${transport} may not subscribe to ${topics.jobs("honest")}: refused`);
  });

  test.each([
    ["a status for another's job", (jobId: string) => [topics.status("honest", jobId), encode(StatusMessageSchema, { schemaVersion: SCHEMA_VERSION, jobId, generatorId: "honest", state: "failed", reason: "forged", at: new Date().toISOString() })]],
    ["a result for another's job", (jobId: string) => [topics.result("honest", jobId), encode(ResultMessageSchema, result("honest", jobId, encodePng(64, 64, new Uint8Array(64 * 64 * 3))))]],
    ["another's presence", () => [topics.presence("honest"), encode(PresenceMessageSchema, { schemaVersion: SCHEMA_VERSION, generatorId: "honest", state: "offline", ...handSession() })]],
    ["another's heartbeat", (jobId: string) => [topics.heartbeat("honest"), encode(HeartbeatMessageSchema, { schemaVersion: SCHEMA_VERSION, generatorId: "honest", jobIds: [jobId], at: new Date().toISOString() })]],
    ["a job", (jobId: string) => [topics.jobs("honest"), Buffer.from(JSON.stringify({ jobId }))]],
    ["a cancel", (jobId: string) => [topics.control("honest"), Buffer.from(JSON.stringify({ schemaVersion: SCHEMA_VERSION, command: "cancel", jobId, reason: "forged" }))]],
    ["a topic outside the contract", () => ["promptgate/v1/jobs", Buffer.from("{}")]],
  ] as const)(`publishing %s is refused: the client is disconnected and the job is made by its holder`, async (act, message) => {
    sd.setDelay(300);
    const { id, jobId } = await approve(`while someone forges ${act} over ${transport}`);
    await waitFor("the honest generator to take the job", () => sql<{ g: string | null }>("SELECT lease_generator_id AS g FROM jobs WHERE id = ?", jobId).g === "honest");
    const name = `mallory-${transport}`;
    const mallory = await connectAs(url(), name);
    const [topic, payload] = message(jobId) as [string, Buffer];
    mallory.publish(topic, payload, { qos: 1 });
    await closed(mallory);
    expect(await done(id)).toBe("honest");
    expect(sd.calls.filter((call) => call.body.prompt === `while someone forges ${act} over ${transport}`)).toHaveLength(1);
    expect(server.log.lines).toContain(`warn MQTT client ${name} may not publish on ${topic}: disconnected`);
    sd.setDelay(0);
  });

  test("another generator's client id cannot be used, with its own token or the other's name: the holder stays connected", async () => {
    const mallory = generatorCredential(server, `mallory-id-${transport}`);
    const asHonestId = mqtt.connectAsync(url(), { clientId: "honest", username: mallory.username, password: mallory.password, reconnectPeriod: 0 });
    await expect(asHonestId).rejects.toThrow(/Identifier rejected/i);
    const asHonestName = mqtt.connectAsync(url(), { clientId: "honest", username: "honest", password: mallory.password, reconnectPeriod: 0 });
    await expect(asHonestName).rejects.toThrow(/Bad username or password/i);
    expect(server.log.lines).toContain(`warn MQTT connection refused: client id honest is not its username ${mallory.username}`);
    const { id } = await approve(`after an attempted takeover over ${transport}`);
    expect(await done(id)).toBe("honest");
    expect(server.services.link.generators().find((g) => g.generatorId === "honest")?.state).toBe("online");
  });
});

/** A server of its own with one scripted generator `name` (no other takes its jobs), its admin and a visitor. */
async function scriptedGenerator(name: string, presence: { concurrency: number; maxPixels: number }) {
  const own = await startTestServer({ LOCAL_GENERATOR: "false", LIMIT_SUBMITS_PER_MINUTE: "0", LIMIT_PENDING_PROMPTS: "0" });
  cleanup(() => removeDataDir(own.dataDir), () => own.close());
  const client = await mqtt.connectAsync(`mqtt://127.0.0.1:${own.mqttPort}`, { clientId: name, ...generatorCredential(own, name), reconnectPeriod: 0 });
  cleanup(() => client.endAsync(true));
  const jobs: JobMessage[] = [];
  client.on("message", (_topic, payload) => {
    const job = decode(JobMessageSchema, payload);
    if (job.ok) jobs.push(job.value);
  });
  await client.subscribeAsync(topics.jobs(name), { qos: 1 });
  const online = (inFlight: string[]) => encode(PresenceMessageSchema, { schemaVersion: SCHEMA_VERSION, generatorId: name, state: "online", ...handSession(), inFlight, backend: "test", healthy: true, ...presence });
  await client.publishAsync(topics.presence(name), online([]), { qos: 1 });
  const host = new TestClient(own.url, { userAgent: "scripted admin" });
  await host.loginAsAdmin(ADMIN_PASSWORD);
  const guest = new TestClient(own.url, { userAgent: "scripted visitor" });
  const approveThere = async (prompt: string, size: number) => {
    const { id } = (await guest.mutate("prompt.submit", { prompt, width: size, height: size })).body.result.data;
    expect((await host.mutate("admin.approve", { id })).status).toBe(200);
    return id as number;
  };
  return { own, client, jobs, online, approveThere };
}

test.each([
  ["listing them", true],
  ["published before they arrived (listing none)", false],
])("a burst of 10 'online' presences %s from a generator holding 5 jobs re-sends none of them", async (_case, listing) => {
  const { own, client, jobs, online, approveThere } = await scriptedGenerator("bursty", { concurrency: 5, maxPixels: 64 * 64 });
  for (let i = 0; i < 5; i++) await approveThere(`bursty ${i}`, 64);
  await waitFor("5 jobs to reach bursty", () => jobs.length === 5);
  const held = jobs.map((job) => job.jobId);
  await Promise.all(Array.from({ length: 10 }, () => client.publishAsync(topics.presence("bursty"), online(listing ? held : []), { qos: 1 })));
  await waitFor("the burst to be handled", () => own.log.lines.filter((line) => line === "debug presence of bursty: online").length === 11);
  await own.services.link.dispatch();
  expect(jobs.map((job) => job.jobId)).toEqual(held);
  expect(own.services.jobs.leasesOf("bursty").map((lease) => lease.jobId).sort()).toEqual([...held].sort());
});

test("a 2048×2048 result of pure noise passes the default packet limit and is stored", async () => {
  const { own, client, jobs, approveThere } = await scriptedGenerator("big-results", { concurrency: 1, maxPixels: 2048 * 2048 });
  const id = await approveThere("as large as it gets", 2048);
  const job = await waitFor("the job to reach the scripted generator", () => jobs[0]);
  const noise = encodePng(2048, 2048, new Uint8Array(2048 * 2048 * 3).map(() => Math.floor(Math.random() * 256)));
  const message = encode(ResultMessageSchema, result("big-results", job.jobId, noise, 2048));
  expect(message.length).toBeGreaterThan(16 * 1024 * 1024);
  await client.publishAsync(topics.result("big-results", job.jobId), message, { qos: 1 });
  await waitFor("the image to be stored", () => own.services.db.$client.prepare("SELECT bytes FROM images WHERE prompt_id = ?").get(id));
  expect(own.services.db.$client.prepare("SELECT bytes FROM images WHERE prompt_id = ?").get(id)).toEqual({ bytes: noise.length });
});

test("every unfinished job's message is built in chunks: 40,000 ids stay under SQLite's variable limit", () => {
  expect(server.services.jobs.messagesFor(Array.from({ length: 40_000 }, () => randomUUID()))).toEqual([]);
  expect(server.services.jobs.extendLeases("honest", Array.from({ length: 40_000 }, () => randomUUID()))).toBe(0);
});

describe("with a small MQTT_MAX_PACKET_BYTES", () => {
  let small: TestServer;
  beforeAll(async () => {
    small = await startTestServer({ LOCAL_GENERATOR: "false", MQTT_MAX_PACKET_BYTES: String(64 * 1024) });
  });
  afterAll(async () => {
    await small?.close();
    if (small) removeDataDir(small.dataDir);
  });

  test.each([
    ["TCP", () => `mqtt://127.0.0.1:${small.mqttPort}`],
    ["WebSocket", () => `ws://127.0.0.1:${small.httpPort}/mqtt`],
  ])("over %s, a packet over the limit closes the connection with a log line naming the limit; smaller ones pass", async (_transport, url) => {
    const name = `oversized-${_transport}`;
    const client = await mqtt.connectAsync(url(), { clientId: name, ...generatorCredential(small, name), reconnectPeriod: 0 });
    cleanup(() => client.endAsync(true));
    await client.publishAsync(topics.heartbeat(name), Buffer.alloc(60 * 1024, "x"), { qos: 1 });
    expect(client.connected).toBe(true);
    client.publish(topics.heartbeat(name), Buffer.alloc(200 * 1024, "x"), { qos: 1 });
    await closed(client);
    await waitFor("the refusal to be logged", () => small.log.lines.find((line) => /^warn MQTT client at .* disconnected: it sent a packet of \d+ bytes, over MQTT_MAX_PACKET_BYTES \(65536\)$/.test(line)));
  });
});
