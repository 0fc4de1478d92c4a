/**
 * Hostile input over MQTT, by property-based tests: generators with valid credentials (over TCP
 * and WebSocket) publish random and malformed payloads on every topic they may write, and try
 * to publish jobs. (What they may not write is tests/integration/broker-rights.test.ts.) The server must drop what is malformed (a warning, never an
 * error), apply only what is valid, keep serving, and keep its database consistent.
 */
import fc from "fast-check";
import mqtt, { type MqttClient } from "mqtt";
import { SCHEMA_VERSION, TOPIC_ROOT, JobMessageSchema, PresenceMessageSchema, ResultMessageSchema, encode, topics } from "../../broker/contract";
import { encodePng } from "../../generator/png";
import { TestClient } from "../helpers/client";
import { assertProperty, hostileJsonText, hostileKey, hostileLeafText, notJsonText, objectText } from "../helpers/hostile";
import { ADMIN_PASSWORD, generatorCredential, removeDataDir, startTestServer, waitFor, type TestServer } from "../helpers/server";
import { errorLines, expectConsistentStore, expectHealthy, expectUnpollutedPrototypes } from "../helpers/invariants";
import { handSession } from "../helpers/results";

/** Prompts made before the properties run: APPROVED with a queued job, one denied, one pending. */
const TARGETS = 8;
const APPROVED = 6;
/** Prompts submitted by this file: what the prompts table must hold at the end. */
let submitted = 0;
let server: TestServer;
let visitor: TestClient;
let admin: TestClient;
let tcp: MqttClient;
let websocket: MqttClient;
/** The generators the hostile clients are: each writes under its own name only. */
const TCP_ID = "hostile-gen";
const WS_ID = "hostile-ws";
/** Every message the server published on the hostile generators' jobs topics while the properties ran. */
const observedJobs: Buffer[] = [];
let jobIds: string[] = [];

const sqlite = () => server.services.db.$client;

async function submit(prompt: string): Promise<number> {
  const response = await visitor.mutate("prompt.submit", { prompt, width: 64, height: 64 });
  expect(response.status).toBe(200);
  submitted++;
  return response.body.result.data.id;
}

beforeAll(async () => {
  // One visitor sends all the target prompts: the limits for anonymous visitors are off here.
  server = await startTestServer({ LOCAL_GENERATOR: "false", LIMIT_SUBMITS_PER_MINUTE: "0", LIMIT_PENDING_PROMPTS: "0" });
  visitor = new TestClient(server.url, { userAgent: "mqtt victim" });
  admin = new TestClient(server.url, { userAgent: "mqtt admin" });
  await admin.loginAsAdmin(ADMIN_PASSWORD);
  for (let i = 1; i <= TARGETS; i++) {
    const id = await submit(`target ${i}`);
    if (i <= APPROVED) expect((await admin.mutate("admin.approve", { id })).status).toBe(200);
    if (i === APPROVED + 1) expect((await admin.mutate("admin.deny", { id })).status).toBe(200);
  }
  jobIds = (sqlite().prepare("SELECT id FROM jobs").all() as Array<{ id: string }>).map((row) => row.id);
  expect(jobIds).toHaveLength(APPROVED);

  const options = (clientId: string) => ({ clientId, ...generatorCredential(server, clientId), reconnectPeriod: 0 });
  tcp = await mqtt.connectAsync(`mqtt://127.0.0.1:${server.mqttPort}`, options(TCP_ID));
  websocket = await mqtt.connectAsync(`ws://127.0.0.1:${server.httpPort}/mqtt`, options(WS_ID));
  for (const [client, id] of [[tcp, TCP_ID], [websocket, WS_ID]] as const) {
    client.on("message", (_topic, payload) => void observedJobs.push(payload));
    await client.subscribeAsync(topics.jobs(id), { qos: 1 });
  }
});
afterAll(async () => {
  await Promise.all([tcp, websocket].map((client) => client?.endAsync(true)));
  await server?.close();
  if (server) removeDataDir(server.dataDir);
});

const png = (width: number, height: number) => encodePng(width, height, new Uint8Array(width * height * 3)).toString("base64");
const IMAGES = {
  fits: png(64, 64),
  wrongSize: png(64, 72),
  truncated: png(64, 64).slice(0, 40),
  garbage: Buffer.from("definitely not a PNG").toString("base64"),
  notBase64: "!!!%%%***",
  empty: "",
  oversized: Buffer.alloc(200_000, 7).toString("base64"),
};

/** Mostly `valid` (so the valid paths run too), sometimes one of the `hostile` values. */
const mostly = <T,>(valid: T, ...hostile: T[]) => fc.oneof({ weight: 4, arbitrary: fc.constant(valid) }, fc.constantFrom(...hostile));

const knownJobId = fc.nat(APPROVED - 1).map((i) => jobIds[i]!);
const jobId = fc.oneof({ weight: 3, arbitrary: knownJobId }, fc.uuid(), fc.constantFrom("", "not-a-uuid", "..", "1", "00000000-0000-0000-0000-000000000000"));
const generatorId = fc.oneof({ weight: 3, arbitrary: fc.constant(TCP_ID) }, fc.constantFrom(WS_ID, "gpu-box-1", "", "x".repeat(200), "with space", "ünïcode"), fc.string({ maxLength: 12 }));
const dimension = mostly(64, 72, 0, -64, 1e9, 2 ** 53 + 1, 64.5, 4096);
const at = mostly(new Date().toISOString(), "yesterday", "", "2026-13-45T99:99:99Z");

const statusMessage = (gen: string, id: string) =>
  fc.record({
    schemaVersion: mostly<number>(SCHEMA_VERSION, 0, 1),
    jobId: fc.oneof({ weight: 4, arbitrary: fc.constant(id) }, jobId),
    generatorId: fc.oneof({ weight: 4, arbitrary: fc.constant(gen) }, generatorId),
    state: fc.constantFrom("accepted", "started", "failed", "failed", "released", "done", ""),
    reason: mostly("CUDA out of memory", "", "r".repeat(2_001), "r".repeat(100_000)),
    at,
  });

const resultMessage = (gen: string, id: string) =>
  fc.record({
    schemaVersion: mostly<number>(SCHEMA_VERSION, 0, 1),
    jobId: fc.oneof({ weight: 4, arbitrary: fc.constant(id) }, jobId),
    generatorId: fc.oneof({ weight: 4, arbitrary: fc.constant(gen) }, generatorId),
    // Half of them a fitting PNG, so results are stored too; the rest refused as not (this) PNG.
    imagePng: fc.oneof(fc.constant(IMAGES.fits), fc.constantFrom(...Object.values(IMAGES))),
    seed: fc.oneof({ weight: 4, arbitrary: fc.integer() }, fc.constantFrom(2 ** 53 + 1, 1e308, -0, 0.5)),
    width: dimension,
    height: dimension,
    parameters: mostly<object>({ steps: 1, cfgScale: 1, samplerName: "Euler", restoreFaces: false, seed: 1 }, { steps: 1e9 }, {}),
    backend: mostly("test", "", "b".repeat(65)),
    timing: mostly<object>({ queuedMs: 0, generationMs: 1 }, { queuedMs: -1, generationMs: 1e308 }, {}),
    finishedAt: at,
  });

const presenceMessage = (gen: string) =>
  fc.record({
    schemaVersion: mostly<number>(SCHEMA_VERSION, 1),
    generatorId: fc.oneof({ weight: 4, arbitrary: fc.constant(gen) }, generatorId),
    state: fc.constantFrom("online", "offline", "busy"),
    session: mostly("hand-made-session", "another-session", "", "no spaces allowed"),
    at,
    inFlight: fc.array(jobId, { maxLength: 4 }),
    concurrency: mostly(1, 0, -1, 1e9, 1.5),
    backend: mostly("test", ""),
    maxPixels: mostly(4096 * 4096, 0, -1, 1e308),
    healthy: mostly<unknown>(true, false, "yes"),
  });

const heartbeatMessage = (gen: string) =>
  fc.record({
    schemaVersion: mostly<number>(SCHEMA_VERSION, 1),
    generatorId: fc.oneof({ weight: 4, arbitrary: fc.constant(gen) }, generatorId),
    jobIds: fc.array(jobId, { maxLength: 4 }),
    at,
  });

/** A message as JSON text, valid or mutated: one field hostile, one missing, or keys added. */
const mutated = (message: fc.Arbitrary<Record<string, unknown>>) =>
  message.chain((value) => {
    const entries = Object.entries(value).map(([key, field]): [string, string] => [key, JSON.stringify(field)]);
    return fc.oneof(
      { weight: 3, arbitrary: fc.constant(objectText(entries)) },
      fc.tuple(fc.nat(entries.length - 1), fc.oneof(hostileLeafText, hostileJsonText)).map(([i, field]) => objectText(entries.map(([key, v], j) => [key, i === j ? field : v]))),
      fc.nat(entries.length - 1).map((i) => objectText(entries.filter((_, j) => j !== i))),
      fc.array(fc.tuple(hostileKey, hostileLeafText), { minLength: 1, maxLength: 3 }).map((extra) => objectText([...entries, ...extra])),
    );
  });

type Kind = "status" | "result" | "presence" | "heartbeat";
/** Where a generator `gen` publishes: the topics it may write. */
interface Target {
  kind: Kind;
  gen: string;
  id: string;
}
const jobLevel = jobId.filter((id) => id.length > 0 && !/[+#/]/.test(id));
const target = (gen: string): fc.Arbitrary<Target> =>
  fc.oneof(
    fc.record({ kind: fc.constant<Kind>("status"), gen: fc.constant(gen), id: jobLevel }),
    fc.record({ kind: fc.constant<Kind>("result"), gen: fc.constant(gen), id: jobLevel }),
    fc.record({ kind: fc.constant<Kind>("presence"), gen: fc.constant(gen), id: fc.constant("") }),
    fc.record({ kind: fc.constant<Kind>("heartbeat"), gen: fc.constant(gen), id: fc.constant("") }),
  );

const topicOf = ({ kind, gen, id }: Target) =>
  kind === "status" ? topics.status(gen, id) : kind === "result" ? topics.result(gen, id) : kind === "presence" ? topics.presence(gen) : topics.heartbeat(gen);

const payloadFor = ({ kind, gen, id }: Target): fc.Arbitrary<Buffer> =>
  fc.oneof(
    { weight: 1, arbitrary: fc.uint8Array({ maxLength: 512 }).map((bytes) => Buffer.from(bytes)) },
    { weight: 1, arbitrary: notJsonText.map((text) => Buffer.from(text)) },
    { weight: 1, arbitrary: hostileJsonText.map((text) => Buffer.from(text)) },
    {
      weight: 5,
      arbitrary: (kind === "status"
        ? mutated(statusMessage(gen, id))
        : kind === "result"
          ? mutated(resultMessage(gen, id))
          : kind === "presence"
            ? mutated(presenceMessage(gen))
            : mutated(heartbeatMessage(gen))
      ).map((text) => Buffer.from(text)),
    },
  );

/** Publishes on the result and presence topics: the server logs exactly one line for each. */
const published = { result: 0, presence: 0 };
const RESULT_LINE = /^(warn|info) (dropped a malformed result on |job \S+ stored|job \S+ rejected|ignored a \S+ result for job )/;
const PRESENCE_LINE = /^(warn|debug) (dropped a malformed presence on |presence of \S+: (online|offline)$)/;
const countLines = (pattern: RegExp) => server.log.lines.filter((line) => pattern.test(line)).length;

test("random and hostile payloads on every topic a generator writes are dropped or applied, never crash the server", async () => {
  const message = fc
    .constantFrom("tcp", "websocket")
    .chain((via) => target(via === "tcp" ? TCP_ID : WS_ID).chain((where) => fc.record({ via: fc.constant(via), topic: fc.constant(topicOf(where)), payload: payloadFor(where) })));
  await assertProperty(
    "MQTT topics × hostile payloads",
    fc.asyncProperty(message, fc.constantFrom(0, 1) as fc.Arbitrary<0 | 1>, async ({ via, topic, payload }, qos) => {
      const errors = errorLines(server).length;
      const client = via === "tcp" ? tcp : websocket;
      await client.publishAsync(topic, payload, { qos });
      if (/^promptgate\/v2\/generators\/[^/]+\/results\/[^/]+$/.test(topic)) published.result++;
      if (/^promptgate\/v2\/generators\/[^/]+\/presence$/.test(topic)) published.presence++;
      expect(client.connected).toBe(true);
      await expectHealthy(server, errors);
    }),
    300,
  );
  // Everything handed to the server has been handled (result files written, or refused).
  await waitFor("every result to be handled", () => countLines(RESULT_LINE) >= published.result);
  await waitFor("every presence to be handled", () => countLines(PRESENCE_LINE) >= published.presence);
  const sentinel = topics.status(TCP_ID, "sentinel");
  await tcp.publishAsync(sentinel, Buffer.from("sentinel"), { qos: 1 });
  await waitFor("the status sentinel to be dropped", () => server.log.lines.some((line) => line.startsWith(`warn dropped a malformed status on ${sentinel}`)));
  console.log(`MQTT: ${published.result} results, ${published.presence} presences published; prompts now ${JSON.stringify(server.services.prompts.counts())}`);
});

test("racing results for one job store one image at most, and only a fitting one", async () => {
  const result = (holder: string, jobId: string, imagePng: string, seed: number) =>
    encode(ResultMessageSchema, {
      schemaVersion: SCHEMA_VERSION,
      jobId,
      generatorId: holder,
      imagePng,
      seed,
      width: 64,
      height: 64,
      parameters: { steps: 1, cfgScale: 1, samplerName: "Euler", restoreFaces: false, seed },
      backend: "test",
      timing: { queuedMs: 0, generationMs: 1 },
      finishedAt: new Date().toISOString(),
    });
  // The TCP generator holds every job raced for; the WebSocket one is offline, so a refused
  // result has nowhere to move and fails the job.
  await tcp.publishAsync(
    topics.presence(TCP_ID),
    encode(PresenceMessageSchema, { schemaVersion: SCHEMA_VERSION, generatorId: TCP_ID, state: "online", ...handSession(), inFlight: [], concurrency: 64, backend: "test", maxPixels: 64 * 64, healthy: true }),
    { qos: 1 },
  );
  await websocket.publishAsync(topics.presence(WS_ID), encode(PresenceMessageSchema, { schemaVersion: SCHEMA_VERSION, generatorId: WS_ID, state: "offline", ...handSession() }), { qos: 1 });
  const racers = fc.array(fc.record({ image: fc.constantFrom(IMAGES.fits, IMAGES.wrongSize, IMAGES.truncated, IMAGES.garbage), seed: fc.nat() }), { minLength: 2, maxLength: 5 });
  let race = 0;
  await assertProperty(
    "MQTT × racing results for one job",
    fc.asyncProperty(racers, async (results) => {
      const errors = errorLines(server).length;
      const id = await submit(`race ${++race}`);
      expect((await admin.mutate("admin.approve", { id })).status).toBe(200);
      const { jobId } = sqlite().prepare("SELECT job_id AS jobId FROM prompts WHERE id = ?").get(id) as { jobId: string };
      // The results race as the job's lease holder would send them.
      const holder = await waitFor(`job ${jobId} to be leased`, () => (sqlite().prepare("SELECT lease_generator_id AS g FROM jobs WHERE id = ?").get(jobId) as { g: string | null }).g);
      expect(holder).toBe(TCP_ID);
      await Promise.all(results.map(({ image, seed }) => tcp.publishAsync(topics.result(holder, jobId), result(holder, jobId, image, seed), { qos: 1 })));
      const handled = new RegExp(`^(info|warn) (job ${jobId} (stored|rejected)|ignored a \\S+ result for job ${jobId} from |dropped a malformed result on ${topics.result(holder, jobId)}:)`);
      await waitFor(`${results.length} results for job ${jobId} to be handled`, () => countLines(handled) >= results.length);
      const images = (sqlite().prepare("SELECT count(*) AS n FROM images WHERE prompt_id = ?").get(id) as { n: number }).n;
      const prompt = sqlite().prepare("SELECT status, failure_reason AS reason FROM prompts WHERE id = ?").get(id) as { status: string; reason: string | null };
      // A refused result fails the job (its generator would only send it again): a fitting one
      // that loses the race to it is not stored.
      if (results.every(({ image }) => image === IMAGES.fits)) expect(images).toBe(1);
      else if (images === 1) expect(prompt).toEqual({ status: "done", reason: null });
      else expect(prompt).toEqual({ status: "failed", reason: expect.stringMatching(new RegExp(`^the result from ${holder} was refused: `)) });
      await expectHealthy(server, errors);
    }),
    15,
  );
});

test("a generator that publishes on its own jobs topic is disconnected and injects nothing", async () => {
  const jobsBefore = (sqlite().prepare("SELECT count(*) AS n FROM jobs").get() as { n: number }).n;
  const forged = fc.oneof(
    fc.record({ jobId, prompt: fc.constantFrom("injected", ""), width: dimension, height: dimension }).map((fields) =>
      Buffer.from(JSON.stringify({ schemaVersion: SCHEMA_VERSION, negativePrompt: "", authorColour: "#000000", approvedAt: new Date().toISOString(), ...fields })),
    ),
    hostileJsonText.map((text) => Buffer.from(text)),
    fc.uint8Array({ maxLength: 64 }).map((bytes) => Buffer.from(bytes)),
  );
  await assertProperty(
    "jobs topic × forged jobs",
    fc.asyncProperty(fc.constantFrom("tcp", "websocket"), forged, fc.constantFrom(0, 1) as fc.Arbitrary<0 | 1>, async (via, payload, qos) => {
      const errors = errorLines(server).length;
      const url = via === "tcp" ? `mqtt://127.0.0.1:${server.mqttPort}` : `ws://127.0.0.1:${server.httpPort}/mqtt`;
      const impostor = await mqtt.connectAsync(url, { clientId: "impostor", ...generatorCredential(server, "impostor"), reconnectPeriod: 0 });
      const closed = new Promise<void>((resolve) => impostor.once("close", () => resolve()));
      impostor.publish(topics.jobs("impostor"), payload, { qos });
      await closed;
      await impostor.endAsync(true);
      await expectHealthy(server, errors);
    }),
    20,
  );
  expect((sqlite().prepare("SELECT count(*) AS n FROM jobs").get() as { n: number }).n).toBe(jobsBefore);
});

test("a client without a generator's token cannot connect, whatever it presents", async () => {
  await assertProperty(
    "MQTT connect × wrong credentials",
    fc.asyncProperty(fc.string({ maxLength: 20 }), fc.option(fc.uint8Array({ maxLength: 80 }).map((bytes) => Buffer.from(bytes)), { nil: undefined }), async (username, password) => {
      const errors = errorLines(server).length;
      // The client id is the username, as a generator's is: only the password is wrong.
      const attempt = mqtt.connectAsync(`mqtt://127.0.0.1:${server.mqttPort}`, { clientId: username || "no-token", username, password, reconnectPeriod: 0, connectTimeout: 5_000 });
      await expect(attempt).rejects.toThrow();
      await expectHealthy(server, errors);
    }),
    20,
  );
});

test("afterwards the database is intact, and every job the server sent is one it stored", () => {
  expect(errorLines(server)).toEqual([]);
  expectUnpollutedPrototypes();
  expectConsistentStore(server, { prompts: submitted });
  const stored = new Map((sqlite().prepare("SELECT j.id, p.prompt FROM jobs j JOIN prompts p ON p.id = j.prompt_id").all() as Array<{ id: string; prompt: string }>).map((row) => [row.id, row.prompt]));
  for (const payload of observedJobs) {
    const job = JobMessageSchema.parse(JSON.parse(payload.toString()));
    expect(stored.get(job.jobId)).toBe(job.prompt);
  }
});
