/**
 * External broker mode (MQTT_URL, ADR 009) against a real Mosquitto with a password file and the
 * ACL from docs/deploy/mosquitto.acl: the server starts no broker of its own, the whole flow
 * works through Mosquitto, a Mosquitto restart loses no job, and a generator can touch only its
 * own topics.
 */
import { randomUUID } from "node:crypto";
import { request } from "node:http";
import mqtt from "mqtt";
import { ControlMessageSchema, HeartbeatMessageSchema, JobMessageSchema, PresenceMessageSchema, SCHEMA_VERSION, decode, encode, topics } from "../../broker/contract";
import { GeneratorEnvSchema, generatorConfigFrom, parseEnvironment } from "../../generator/env";
import { startGenerator } from "../../generator/generator";
import { startSdEmulator, type SdEmulator } from "../emulators/sd-server";
import { TestClient } from "../helpers/client";
import { startMosquitto, type Mosquitto } from "../helpers/mosquitto";
import { freePort } from "../helpers/processes";
import { ADMIN_PASSWORD, collectingLogger, removeDataDir, startTestServer, waitFor, type TestServer } from "../helpers/server";
import { handSession } from "../helpers/results";
import { useCleanups } from "../helpers/cleanups";

// An awkward password: the URL carries it percent-encoded.
const USERS = { promptgate: "server p@ss/word:1", "gpu-a": "gpu-a-password", "gpu-b": "gpu-b-password" };

let mosquitto: Mosquitto;
let sd: SdEmulator;
const cleanup = useCleanups();

beforeAll(async () => {
  mosquitto = await startMosquitto(USERS);
  sd = await startSdEmulator();
});
// Registered first, so it runs last: a test's generators stop before the delay it set is undone.
beforeEach(() => cleanup(() => sd.setDelay(0)));
afterAll(async () => {
  await sd?.close();
  await mosquitto?.close();
});

async function server(env: Record<string, string> = {}, broker = mosquitto): Promise<TestServer> {
  const started = await startTestServer({ MQTT_URL: broker.url("promptgate"), ...env });
  cleanup(() => removeDataDir(started.dataDir));
  cleanup(() => started.close());
  return started;
}

async function generator(running: TestServer, user: keyof typeof USERS, broker = mosquitto, reconnectMs = 100) {
  const config = generatorConfigFrom(
    parseEnvironment(GeneratorEnvSchema, { MQTT_URL: `mqtt://127.0.0.1:${broker.port}`, MQTT_PASSWORD: USERS[user], SD_API_URL: sd.url, GENERATOR_ID: user }),
  );
  const log = collectingLogger();
  const started = await startGenerator({ ...config, reconnectMs }, log);
  cleanup(() => started.close());
  await waitFor(`${user} to be online`, () => running.services.link.generators().some((g) => g.generatorId === user && g.state === "online"));
  return { generator: started, log };
}

async function people(running: TestServer) {
  const visitor = new TestClient(running.url, { userAgent: "external broker visitor" });
  await visitor.page("/");
  const admin = new TestClient(running.url, { userAgent: "external broker admin" });
  await admin.loginAsAdmin(ADMIN_PASSWORD);
  return { visitor, admin };
}

/** The status code a WebSocket upgrade to /mqtt gets. */
function upgradeStatus(url: string): Promise<number> {
  return new Promise((resolve, reject) => {
    const req = request(`${url}/mqtt`, { headers: { Connection: "Upgrade", Upgrade: "websocket", "Sec-WebSocket-Version": "13", "Sec-WebSocket-Key": "dGhlIHNhbXBsZSBub25jZQ==" } });
    req.on("response", (response) => resolve(response.statusCode!));
    req.on("upgrade", () => reject(new Error("/mqtt accepted a WebSocket")));
    req.on("error", reject);
    req.end();
  });
}

test("with MQTT_URL the server runs no broker of its own and a prompt goes through Mosquitto to a generator and back", async () => {
  const running = await server();
  expect(running.mqttPort).toBeNull();
  expect(await upgradeStatus(running.url)).toBe(404);
  // No local generator by default: it would need a broker user of its own.
  expect(running.services.link.generators()).toEqual([]);
  const logged = running.log.lines.join("\n");
  expect(logged).toContain(`MQTT through the broker at mqtt://127.0.0.1:${mosquitto.port}`);
  expect(logged).not.toContain("p@ss");

  await generator(running, "gpu-a");
  const { visitor, admin } = await people(running);
  // The admin is told where generators connect.
  const dashboard = (await admin.page("/admin")).html;
  expect(dashboard).toContain(`This server uses the broker at mqtt://127.0.0.1:${mosquitto.port}: give each generator a user of its own`);
  sd.setDelay(1500);
  const { id } = (await visitor.mutate("prompt.submit", { prompt: "a harbour seen through Mosquitto", width: 64, height: 64 })).body.result.data;
  expect((await admin.mutate("admin.approve", { id })).status).toBe(200);
  // Progress (QoS 0) passes the ACL too: the author's list shows step n of m while it is made.
  await waitFor("the prompt's progress", async () => (await visitor.query("prompt.mine")).body.result.data[0]?.progress?.steps === 30);
  await waitFor("the prompt to be done", async () => (await visitor.query("prompt.mine")).body.result.data[0]?.status === "done");
  expect(running.services.db.$client.prepare("SELECT generator_id AS g FROM images WHERE prompt_id = ?").get(id)).toEqual({ g: "gpu-a" });

  // The show, as a presenter without JavaScript runs it: the first image put on screen is revealed.
  for (const intent of ["start", "next"]) expect((await admin.postForm("/admin/reveal", { intent })).status).toBe(200);
  const [revealed] = (await visitor.query("prompt.mine")).body.result.data;
  expect(revealed.imageUrl).toBe(`/images/${id}.png`);
  expect((await visitor.fetch(revealed.imageUrl)).headers.get("content-type")).toBe("image/png");
});

test.each(["SIGTERM", "SIGKILL"] as const)("a Mosquitto restart (%s) mid-run loses no job: every approved job ends with exactly one image", async (signal) => {
  // A broker of its own: a snapshot saved by another test would replay that test's messages.
  const broker = await startMosquitto(USERS);
  cleanup(() => broker.close());
  // A short lease: some of a restart's races are only settled by a lease running out (ADR 009).
  const running = await server({ JOB_LEASE_SECONDS: "3" }, broker);
  await generator(running, "gpu-a", broker);
  await generator(running, "gpu-b", broker);
  const { visitor, admin } = await people(running);
  const approve = async (prompt: string) => {
    const { id } = (await visitor.mutate("prompt.submit", { prompt, width: 64, height: 64 })).body.result.data;
    expect((await admin.mutate("admin.approve", { id })).status).toBe(200);
    return id as number;
  };
  sd.setDelay(600);
  const ids: number[] = [];
  for (let i = 0; i < 4; i++) ids.push(await approve(`${signal}: through the restart ${i}`));
  await waitFor("the SD backend to start a job", () => sd.calls.length > 0);

  await broker.stop(signal);
  // Approved while there is no broker at all: the approval answers, the job waits.
  ids.push(await approve(`${signal}: approved while the broker is down`));
  await broker.start();
  await waitFor("the server to reconnect", () => running.log.lines.some((line) => line.includes("reconnected to the broker")));

  const images = (id: number) => running.services.db.$client.prepare("SELECT count(*) AS n FROM images WHERE prompt_id = ?").get(id) as { n: number };
  await waitFor("every job to be done", () => ids.every((id) => images(id).n > 0), 20_000);
  // One more job after everything: once it is done, any late duplicate the restart could cause has arrived.
  const last = await approve(`${signal}: after the restart`);
  await waitFor("the last job to be done", () => images(last).n > 0);
  for (const id of [...ids, last]) expect(images(id)).toEqual({ n: 1 });
  expect(sd.calls.filter((call) => String(call.body.prompt).startsWith(`${signal}:`)).length).toBe(ids.length + 1);
  expect(running.services.db.$client.prepare("SELECT count(*) AS n FROM prompts WHERE status <> 'done'").get()).toEqual({ n: 0 });
});

// Stopping, Mosquitto publishes every generator's will: "offline" for one that is still working
// and comes back a moment later. That must not hand its job to the one that is back first.
test("a Mosquitto restart while one generator works and another idles: the idle one, back first, does not take the job; one SD call", async () => {
  const signal = "SIGTERM";
  const broker = await startMosquitto(USERS);
  cleanup(() => broker.close());
  const running = await server({ JOB_LEASE_SECONDS: "10" }, broker);
  // gpu-a reconnects slowly, so gpu-b is back (and free) first.
  await generator(running, "gpu-a", broker, 1500);
  const { visitor, admin } = await people(running);
  const prefix = `${signal}: worked on through the restart`;
  const { id } = (await visitor.mutate("prompt.submit", { prompt: prefix, width: 64, height: 64 })).body.result.data;
  sd.setDelay(3000);
  expect((await admin.mutate("admin.approve", { id })).status).toBe(200);
  const jobId = (running.services.db.$client.prepare("SELECT job_id AS jobId FROM prompts WHERE id = ?").get(id) as { jobId: string }).jobId;
  await waitFor("gpu-a to be at the SD server", () => sd.activeTask() === jobId);
  await generator(running, "gpu-b", broker);

  await broker.stop(signal);
  await broker.start();
  const madeBy = () => running.services.db.$client.prepare("SELECT generator_id AS g FROM images WHERE prompt_id = ?").all(id);
  await waitFor("the job to be done", () => madeBy().length > 0, 20_000);
  await waitFor("the SD server to be idle", () => sd.activeTask() === null && sd.queuedTasks().length === 0);
  expect(madeBy()).toEqual([{ g: "gpu-a" }]);
  expect(sd.calls.filter((call) => call.body.prompt === prefix).length).toBe(1);
});

// Mosquitto lets this test be the server: nothing answers the result until the test says so.
test("a generator sends its result again when a lease passes without \"stored\", keeps listing the job meanwhile, and forgets it once stored", async () => {
  const config = generatorConfigFrom(
    parseEnvironment(GeneratorEnvSchema, { MQTT_URL: `mqtt://127.0.0.1:${mosquitto.port}`, MQTT_PASSWORD: USERS["gpu-a"], SD_API_URL: sd.url, GENERATOR_ID: "gpu-a" }),
  );
  const server = await mqtt.connectAsync(`mqtt://127.0.0.1:${mosquitto.port}`, { username: "promptgate", password: USERS.promptgate });
  cleanup(() => server.endAsync(true));
  const jobId = randomUUID();
  const seen: Array<{ kind: "presence" | "heartbeat" | "result"; jobIds: string[] }> = [];
  server.on("message", (topic, payload) => {
    if (topic === topics.result("gpu-a", jobId)) seen.push({ kind: "result", jobIds: [jobId] });
    const heartbeat = decode(HeartbeatMessageSchema, payload);
    if (topic === topics.heartbeat("gpu-a") && heartbeat.ok) seen.push({ kind: "heartbeat", jobIds: heartbeat.value.jobIds });
    const presence = decode(PresenceMessageSchema, payload);
    if (topic === topics.presence("gpu-a") && presence.ok && presence.value.state === "online") seen.push({ kind: "presence", jobIds: presence.value.inFlight });
  });
  await server.subscribeAsync([topics.result("gpu-a", "+"), topics.heartbeat("gpu-a"), topics.presence("gpu-a")], { qos: 1 });
  const log = collectingLogger();
  const generator = await startGenerator({ ...config, reconnectMs: 100 }, log);
  cleanup(() => generator.close());
  await waitFor("gpu-a to say it is online", () => seen.some((message) => message.kind === "presence"));

  const job = { schemaVersion: SCHEMA_VERSION, jobId, prompt: "never confirmed at first", negativePrompt: "", width: 64, height: 64, authorColour: "#123456", approvedAt: new Date().toISOString(), leaseMs: 1000 };
  await server.publishAsync(topics.jobs("gpu-a"), encode(JobMessageSchema, job), { qos: 1 });
  const results = () => seen.filter((message) => message.kind === "result").length;
  await waitFor("the result to be sent twice", () => results() >= 2);
  expect(log.lines).toContain(`warn job ${jobId}: the server has not confirmed its result; sending it again`);
  // Between the two, its heartbeats still listed the job: its lease would have stayed.
  const first = seen.findIndex((message) => message.kind === "result");
  expect(seen.slice(first).some((message) => message.kind === "heartbeat" && message.jobIds.includes(jobId))).toBe(true);

  await server.publishAsync(topics.control("gpu-a"), encode(ControlMessageSchema, { schemaVersion: SCHEMA_VERSION, command: "stored", jobId }), { qos: 1 });
  await waitFor("the generator to forget the job", () => log.lines.includes(`info job ${jobId} stored by the server`));
  expect(sd.calls.filter((call) => call.body.prompt === "never confirmed at first")).toHaveLength(1);
});

test("Mosquitto's ACL keeps a generator out of another generator's topics", async () => {
  const running = await server();
  const { log } = await generator(running, "gpu-b");
  const intruder = await mqtt.connectAsync(`mqtt://127.0.0.1:${mosquitto.port}`, { username: "gpu-a", password: USERS["gpu-a"], clientId: "gpu-a" });
  cleanup(() => intruder.endAsync(true));
  const received: string[] = [];
  intruder.on("message", (topic) => received.push(topic));
  // Mosquitto grants any subscription and checks the ACL on delivery.
  await intruder.subscribeAsync([topics.jobs("gpu-b"), topics.control("gpu-b"), topics.control("gpu-a")], { qos: 1 });

  // A forged "offline" for gpu-b is dropped; gpu-a's own presence, sent after it, arrives.
  await intruder.publishAsync(topics.presence("gpu-b"), encode(PresenceMessageSchema, { schemaVersion: SCHEMA_VERSION, generatorId: "gpu-b", state: "offline", ...handSession() }), { qos: 1 });
  await intruder.publishAsync(
    topics.presence("gpu-a"),
    encode(PresenceMessageSchema, { schemaVersion: SCHEMA_VERSION, generatorId: "gpu-a", state: "online", ...handSession(), inFlight: [], concurrency: 0, backend: "intruder", maxPixels: 4096, healthy: true }),
    { qos: 1 },
  );
  await waitFor("gpu-a's own presence to arrive", () => running.services.link.generators().some((g) => g.generatorId === "gpu-a"));
  expect(running.services.link.generators().find((g) => g.generatorId === "gpu-b")?.state).toBe("online");

  // gpu-b's job never reaches gpu-a. The barrier: a heartbeat naming a job gpu-a does not hold
  // makes the server cancel it on gpu-a's own control topic, after the job was published.
  const { visitor, admin } = await people(running);
  const { id } = (await visitor.mutate("prompt.submit", { prompt: "only for gpu-b", width: 64, height: 64 })).body.result.data;
  await admin.mutate("admin.approve", { id });
  await waitFor("gpu-b to make the image", () => log.lines.some((line) => /job .* done in/.test(line)));
  await intruder.publishAsync(topics.heartbeat("gpu-a"), encode(HeartbeatMessageSchema, { schemaVersion: SCHEMA_VERSION, generatorId: "gpu-a", jobIds: [randomUUID()], at: new Date().toISOString() }), { qos: 1 });
  await waitFor("the server's cancel on gpu-a's control topic", () => received.includes(topics.control("gpu-a")));
  expect(received).toEqual([topics.control("gpu-a")]);
});

test("an external broker that does not answer stops start-up with one line naming it, without its password", async () => {
  const closedPort = await freePort();
  const error = await server({ MQTT_URL: `mqtt://promptgate:hunter2-secret@127.0.0.1:${closedPort}`, MQTT_CONNECT_TIMEOUT_SECONDS: "1" }).then(
    () => null,
    (thrown: Error) => thrown,
  );
  expect(error?.message).toBe(
    `the broker at mqtt://127.0.0.1:${closedPort} (MQTT_URL) did not answer within 1 s (ECONNREFUSED); check that it runs and is reachable, or raise MQTT_CONNECT_TIMEOUT_SECONDS`,
  );
});

test("an external broker that refuses the server's password stops start-up at once", async () => {
  const error = await server({ MQTT_URL: `mqtt://promptgate:wrong-password@127.0.0.1:${mosquitto.port}` }).then(
    () => null,
    (thrown: Error) => thrown,
  );
  expect(error?.message).toMatch(new RegExp(`^the broker at mqtt://127\\.0\\.0\\.1:${mosquitto.port} \\(MQTT_URL\\) refused the server's user name or password`));
  expect(error?.message).not.toContain("wrong-password");
});
