/**
 * Per-generator credentials (issue 7 §4): the admin adds a generator (admin page or CLI), sees
 * its token once, lists and revokes it; revoking disconnects it at once and its jobs go to
 * another generator. The built-in generator connects with a credential nobody stores.
 */
import mqtt from "mqtt";
import { PresenceMessageSchema, SCHEMA_VERSION, encode, topics } from "../../broker/contract";
import { generatorConfigFrom, GeneratorEnvSchema, parseEnvironment } from "../../generator/env";
import { startGenerator, type RunningGenerator } from "../../generator/generator";
import { startSdEmulator, type SdEmulator } from "../emulators/sd-server";
import { TestClient } from "../helpers/client";
import { runEntry } from "../helpers/processes";
import { ADMIN_PASSWORD, collectingLogger, removeDataDir, startTestServer, waitFor, type TestServer } from "../helpers/server";
import { handSession } from "../helpers/results";
import { useCleanups } from "../helpers/cleanups";

let server: TestServer;
let sd: SdEmulator;
let admin: TestClient;
let visitor: TestClient;
const cleanup = useCleanups();

beforeAll(async () => {
  sd = await startSdEmulator();
  // The built-in generator serves while no GPU generator is online (LOCAL_GENERATOR=auto).
  server = await startTestServer({ LIMIT_SUBMITS_PER_MINUTE: "0", LIMIT_PENDING_PROMPTS: "0" });
  admin = new TestClient(server.url, { userAgent: "credentials admin" });
  await admin.loginAsAdmin(ADMIN_PASSWORD);
  visitor = new TestClient(server.url, { userAgent: "credentials visitor" });
  await visitor.page("/");
});
afterAll(async () => {
  await server?.close();
  await sd?.close();
  if (server) removeDataDir(server.dataDir);
});

const cli = (...args: string[]) => runEntry(["server/admin-cli.ts", ...args], { DATA_DIR: server.dataDir, MQTT_PORT: "1999" });
const isOnline = (name: string) => server.services.link.generators().some((g) => g.generatorId === name && g.state === "online");
const madeBy = (id: number) => (server.services.db.$client.prepare("SELECT generator_id AS g FROM images WHERE prompt_id = ?").get(id) as { g: string } | undefined)?.g;

async function gpu(name: string, token: string): Promise<RunningGenerator & { log: ReturnType<typeof collectingLogger> }> {
  const log = collectingLogger();
  const env = { MQTT_URL: `mqtt://127.0.0.1:${server.mqttPort}`, GENERATOR_ID: name, MQTT_PASSWORD: token, SD_API_URL: sd.url };
  const running = await startGenerator({ ...generatorConfigFrom(parseEnvironment(GeneratorEnvSchema, env)), reconnectMs: 100 }, log);
  cleanup(() => running.close());
  await waitFor(`${name} to be online`, () => isOnline(name));
  return { ...running, log };
}

async function approve(prompt: string): Promise<number> {
  const { id } = (await visitor.mutate("prompt.submit", { prompt, width: 64, height: 64 })).body.result.data;
  expect((await admin.mutate("admin.approve", { id })).status).toBe(200);
  return id;
}

test("the admin adds a generator on the admin page: its token is shown once with the command, and it connects with it", async () => {
  const added = await admin.postForm("/admin/generators", { intent: "add", name: "page-box" });
  expect(added.status).toBe(200);
  const token = /GENERATOR_ID=page-box MQTT_PASSWORD=([A-Za-z0-9_-]{43})/.exec(added.html)?.[1];
  expect(token).toBeDefined();
  expect(added.html).toContain(`MQTT_URL=mqtt://&lt;this host&gt;:${server.mqttPort}`);
  // Shown once: the page lists it, never its token again.
  const listed = await admin.page("/admin/generators");
  expect(listed.html).toContain('data-generator="page-box"');
  expect(listed.html).not.toContain(token);
  expect(server.services.db.$client.prepare("SELECT token_hash FROM generator_credentials WHERE name = 'page-box'").get()).not.toEqual({ token_hash: token });

  await gpu("page-box", token!);
  const view = (await admin.query("admin.generators")).body.result.data.generators.find((g: { name: string }) => g.name === "page-box");
  expect(view).toMatchObject({ name: "page-box", connected: true, online: true, lastSeenAt: expect.any(String) });
  const id = await approve("made by page-box");
  expect(await waitFor("the job to be made", () => madeBy(id))).toBe("page-box");
});

test("adding refuses a taken name, a name outside the contract's rules and the built-in generator's, each with a clear message", async () => {
  expect((await admin.mutate("admin.addGenerator", { name: "twice" })).status).toBe(200);
  const again = await admin.mutate("admin.addGenerator", { name: "twice" });
  expect(again.status).toBe(409);
  expect(again.body.error.message).toBe('A generator named "twice" already exists: revoke it first to give it a new token.');
  const spaced = await admin.mutate("admin.addGenerator", { name: "with space" });
  expect(spaced.status).toBe(400);
  expect(spaced.body.error.message).toContain("is not a generator name");
  const local = await admin.mutate("admin.addGenerator", { name: "promptgate-local" });
  expect(local.status).toBe(400);
  expect(local.body.error.message).toContain("built-in generator's name");
  const stranger = new TestClient(server.url, { userAgent: "not the admin" });
  expect((await stranger.mutate("admin.addGenerator", { name: "sneaky" })).status).toBe(401);
  expect((await stranger.query("admin.generators")).status).toBe(401);
});

test("revoking on the admin page disconnects the generator at once; its job goes to another; its token no longer connects", async () => {
  const { token } = (await admin.mutate("admin.addGenerator", { name: "doomed-box" })).body.result.data;
  // A generator that takes a job and works on it for ever, with the offline will every generator sets.
  const doomed = await mqtt.connectAsync(`mqtt://127.0.0.1:${server.mqttPort}`, {
    clientId: "doomed-box",
    username: "doomed-box",
    password: token,
    reconnectPeriod: 0,
    will: { topic: topics.presence("doomed-box"), payload: encode(PresenceMessageSchema, { schemaVersion: SCHEMA_VERSION, generatorId: "doomed-box", state: "offline", ...handSession() }), qos: 1, retain: false },
  });
  cleanup(() => doomed.endAsync(true));
  const jobs: string[] = [];
  doomed.on("message", (_topic, payload) => jobs.push(JSON.parse(payload.toString()).jobId));
  await doomed.subscribeAsync(topics.jobs("doomed-box"), { qos: 1 });
  const disconnected = new Promise<void>((resolve) => doomed.once("close", () => resolve()));
  await doomed.publishAsync(
    topics.presence("doomed-box"),
    encode(PresenceMessageSchema, { schemaVersion: SCHEMA_VERSION, generatorId: "doomed-box", state: "online", ...handSession(), inFlight: [], concurrency: 1, backend: "test", maxPixels: 64 * 64, healthy: true }),
    { qos: 1 },
  );
  await waitFor("the doomed box to be online", () => isOnline("doomed-box"));
  const id = await approve("outlives its generator's revocation");
  await waitFor("the doomed box to get the job", () => jobs.length === 1);

  const confirm = await admin.page("/admin/generators?revoke=doomed-box");
  expect(confirm.html).toContain("Revoke doomed-box? It is disconnected at once");
  const revoked = await admin.postForm("/admin/generators", { intent: "revoke", name: "doomed-box" });
  expect(revoked.html).toContain("doomed-box is revoked and disconnected.");
  await disconnected;
  expect(server.log.lines).toContain("info generator doomed-box disconnected: its credential was revoked");
  // The built-in generator takes the job over: no GPU generator is online any more.
  expect(await waitFor("the job to be made", () => madeBy(id))).toBe("promptgate-local");
  const retry = mqtt.connectAsync(`mqtt://127.0.0.1:${server.mqttPort}`, { clientId: "doomed-box", username: "doomed-box", password: token, reconnectPeriod: 0 });
  await expect(retry).rejects.toThrow(/Bad username or password/i);
  expect((await admin.mutate("admin.revokeGenerator", { name: "doomed-box" })).status).toBe(404);
});

test("npm run admin -- generator add, list and revoke work beside a running server, which disconnects the revoked one within a second", async () => {
  const added = await cli("generator", "add", "cli-box");
  expect(await added.exited).toBe(0);
  const token = /shown only this once\) is:\n(\S+)/.exec(added.output())?.[1];
  expect(added.output()).toContain(`MQTT_URL=mqtt://<this host>:1999 GENERATOR_ID=cli-box MQTT_PASSWORD=${token}`);
  const box = await gpu("cli-box", token!);

  const listed = await cli("generator", "list");
  expect(await listed.exited).toBe(0);
  expect(listed.output()).toMatch(/^cli-box\tadded \d{4}-\d\d-\d\dT[\d:.]+Z\tlast seen \d{4}-/m);
  expect(listed.output()).not.toContain(token);

  const revoked = await cli("generator", "revoke", "cli-box");
  expect(await revoked.exited).toBe(0);
  expect(revoked.output()).toContain("Generator cli-box revoked");
  await waitFor("the server to disconnect cli-box", () => server.log.lines.includes("info generator cli-box disconnected: its credential was revoked"));
  await waitFor("cli-box to be offline", () => !isOnline("cli-box"));
  // It tries to reconnect, and is refused.
  await waitFor("cli-box's reconnection to be refused", () => server.log.lines.includes("warn MQTT connection refused: wrong or revoked credential for generator cli-box"));
  // The CONNACK reaches the generator just after the server logged its refusal.
  await waitFor("cli-box to be told", () => box.log.lines.some((line) => /Bad username or password/i.test(line)));
});

test("the CLI refuses wrong generator commands with clear messages and exit codes", async () => {
  const [unknownAction, missingName, taken, badName, unknownRevoke] = await Promise.all([
    cli("generator", "rename", "x"),
    cli("generator", "add"),
    (async () => {
      server.services.generators.add("taken-box");
      return cli("generator", "add", "taken-box");
    })(),
    cli("generator", "add", "no/slashes"),
    cli("generator", "revoke", "nobody"),
  ]);
  expect(await unknownAction.exited).toBe(2);
  expect(unknownAction.output()).toContain("usage: generator add NAME | generator list | generator revoke NAME");
  expect(await missingName.exited).toBe(2);
  expect(await taken.exited).toBe(1);
  expect(taken.output()).toBe('promptgate admin: A generator named "taken-box" already exists: revoke it first to give it a new token.\n');
  expect(await badName.exited).toBe(1);
  expect(badName.output()).toContain('"no/slashes" is not a generator name');
  expect(await unknownRevoke.exited).toBe(1);
  expect(unknownRevoke.output()).toBe('promptgate admin: There is no generator named "nobody".\n');
});

test("the built-in generator connects with a credential that is never stored", async () => {
  await waitFor("the built-in generator to be online", () => isOnline("promptgate-local"));
  expect(server.services.generators.list().map((g) => g.name)).not.toContain("promptgate-local");
  expect(server.services.db.$client.prepare("SELECT count(*) AS n FROM generator_credentials WHERE name = 'promptgate-local'").get()).toEqual({ n: 0 });
  const guess = mqtt.connectAsync(`mqtt://127.0.0.1:${server.mqttPort}`, { clientId: "promptgate-local", username: "promptgate-local", password: "guess", reconnectPeriod: 0 });
  await expect(guess).rejects.toThrow(/Bad username or password/i);
  expect(isOnline("promptgate-local")).toBe(true);
});
