/**
 * Crashes and restarts of any one process lose no approved job: the server's outbox is the
 * source of truth, and generators de-duplicate by job id.
 */
import Database from "better-sqlite3";
import path from "node:path";
import { generatorConfigFrom, GeneratorEnvSchema, parseEnvironment } from "../../generator/env";
import { startGenerator } from "../../generator/generator";
import { openDb } from "../../server/db/client";
import { addGeneratorCredential } from "../../server/domain/generator-credentials";
import { startSdEmulator, type SdEmulator } from "../emulators/sd-server";
import { TestClient } from "../helpers/client";
import { freePort, runEntry, type Child } from "../helpers/processes";
import { ADMIN_PASSWORD, collectingLogger, generatorCredential, makeDataDir, removeDataDir, startTestServer, waitFor } from "../helpers/server";

let sd: SdEmulator;
const cleanups: Array<() => Promise<unknown> | unknown> = [];

beforeEach(async () => {
  sd = await startSdEmulator();
  cleanups.push(() => sd.close());
});
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});

const ownStatus = async (visitor: TestClient) => (await visitor.query("prompt.mine")).body.result.data[0]?.status;

test("an approved job that no generator received is generated exactly once after a server restart", async () => {
  const dataDir = makeDataDir();
  cleanups.push(() => removeDataDir(dataDir));
  const first = await startTestServer({ DATA_DIR: dataDir, LOCAL_GENERATOR: "false" });
  const visitor = new TestClient(first.url, { userAgent: "restart-visitor" });
  await visitor.page("/");
  const { id } = (await visitor.mutate("prompt.submit", { prompt: "survive the restart", width: 64, height: 64 })).body.result.data;
  const admin = new TestClient(first.url);
  await admin.loginAsAdmin(ADMIN_PASSWORD);
  await admin.mutate("admin.approve", { id });
  await first.close();

  const second = await startTestServer({ DATA_DIR: dataDir, SD_API_URL: sd.url });
  cleanups.push(() => second.close());
  const again = new TestClient(second.url, { userAgent: "restart-visitor" });
  for (const [name, value] of visitor.cookies) again.cookies.set(name, value);
  await waitFor("the job to be done after the restart", async () => (await ownStatus(again)) === "done");
  await new Promise((resolve) => setTimeout(resolve, 300));
  expect(sd.calls.filter((call) => call.body.prompt === "survive the restart")).toHaveLength(1);
});

test("a server killed (SIGKILL) mid-generation loses nothing and the job is generated exactly once", async () => {
  const dataDir = makeDataDir();
  cleanups.push(() => removeDataDir(dataDir));
  const [port, mqttPort] = [await freePort(), await freePort()];
  const env = { PORT: String(port), MQTT_PORT: String(mqttPort), HOST: "127.0.0.1", DATA_DIR: dataDir, ADMIN_PASSWORD, LOCAL_GENERATOR: "false", FINGERPRINT_MEMORY_KIB: "4096" };
  let server: Child = await runEntry("server/main.ts", env, /listening on/);
  cleanups.push(() => server.kill());
  // Added as `npm run admin -- generator add` does, beside the running server.
  const credentials = openDb(path.join(dataDir, "promptgate.db"));
  const { token } = addGeneratorCredential(credentials, "restart-gpu");
  credentials.$client.close();

  sd.setDelay(1500);
  const generatorLog = collectingLogger();
  const generator = await startGenerator(
    { ...generatorConfigFrom(parseEnvironment(GeneratorEnvSchema, { MQTT_URL: `mqtt://127.0.0.1:${mqttPort}`, MQTT_PASSWORD: token, SD_API_URL: sd.url, GENERATOR_ID: "restart-gpu" })), reconnectMs: 100 },
    generatorLog,
  );
  cleanups.push(() => generator.close());

  const base = `http://127.0.0.1:${port}`;
  const visitor = new TestClient(base, { userAgent: "crash-visitor" });
  await visitor.page("/");
  await visitor.mutate("prompt.submit", { prompt: "generated while the server dies", width: 64, height: 64 });
  const admin = new TestClient(base);
  await admin.loginAsAdmin(ADMIN_PASSWORD);
  const { id } = (await admin.query("admin.dashboard")).body.result.data.prompts[0];
  await admin.mutate("admin.approve", { id });
  await waitFor("the SD backend to start the job", () => sd.calls.length === 1);

  await server.kill("SIGKILL");
  server = await runEntry("server/main.ts", env, /listening on/);
  await waitFor("the job to be done after the crash", async () => (await ownStatus(visitor)) === "done", 20_000);
  await new Promise((resolve) => setTimeout(resolve, 500));
  if (sd.calls.length !== 1) console.log(generatorLog.lines.join("\n"), "\n---\n", server.output());
  expect(sd.calls).toHaveLength(1);
  const db = new Database(path.join(dataDir, "promptgate.db"), { readonly: true });
  expect(db.prepare("SELECT count(*) AS n FROM images").get()).toEqual({ n: 1 });
  db.close();
});

test("a generator killed (SIGKILL) mid-job loses nothing: its replacement generates the job", async () => {
  const server = await startTestServer({ LOCAL_GENERATOR: "false" });
  cleanups.push(() => removeDataDir(server.dataDir));
  cleanups.push(() => server.close());
  sd.setDelay(3000);
  const generatorEnv = { MQTT_URL: `mqtt://127.0.0.1:${server.mqttPort}`, MQTT_PASSWORD: generatorCredential(server, "gpu-box-1").password, SD_API_URL: sd.url, GENERATOR_ID: "gpu-box-1" };
  const doomed = await runEntry("generator/main.ts", generatorEnv, /online at/);
  cleanups.push(() => doomed.kill());

  const visitor = new TestClient(server.url, { userAgent: "generator-crash" });
  await visitor.page("/");
  const { id } = (await visitor.mutate("prompt.submit", { prompt: "outlive the generator", width: 64, height: 64 })).body.result.data;
  const admin = new TestClient(server.url);
  await admin.loginAsAdmin(ADMIN_PASSWORD);
  await admin.mutate("admin.approve", { id });
  await waitFor("the doomed generator to start the job", () => sd.calls.length === 1);
  await doomed.kill("SIGKILL");
  await waitFor("the broker to announce the generator's death", () => server.log.lines.some((line) => line.includes("generator gpu-box-1 is offline")));

  sd.setDelay(0);
  const replacement = await runEntry("generator/main.ts", generatorEnv, /online at/);
  cleanups.push(() => replacement.kill("SIGTERM"));
  await waitFor("the job to be done by the replacement", async () => (await ownStatus(visitor)) === "done", 20_000);
  expect(server.services.db.$client.prepare("SELECT count(*) AS n FROM images WHERE prompt_id = ?").get(id)).toEqual({ n: 1 });
});
