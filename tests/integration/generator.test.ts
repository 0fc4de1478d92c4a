/** The generator against A1111 (emulated): start-up checks, waiting out a down server, errors that should not be retried, --api-auth. */
import { createServer } from "node:http";
import { GeneratorEnvSchema, generatorConfigFrom, parseEnvironment } from "../../generator/env";
import { startGenerator } from "../../generator/generator";
import { startSdEmulator } from "../emulators/sd-server";
import { TestClient } from "../helpers/client";
import { runEntry } from "../helpers/processes";
import { ADMIN_PASSWORD, collectingLogger, generatorCredential, removeDataDir, startTestServer, waitFor, type TestServer } from "../helpers/server";
import { useCleanups } from "../helpers/cleanups";

let server: TestServer;
let visitor: TestClient;
let admin: TestClient;
const cleanup = useCleanups();

beforeAll(async () => {
  server = await startTestServer({ LOCAL_GENERATOR: "false" });
  visitor = new TestClient(server.url, { userAgent: "generator tests" });
  await visitor.page("/");
  admin = new TestClient(server.url);
  await admin.loginAsAdmin(ADMIN_PASSWORD);
});
afterAll(async () => {
  await server?.close();
  removeDataDir(server.dataDir);
});

/** GENERATOR_ID and MQTT_PASSWORD of generator `name`. */
const credentialEnv = (name: string) => ({ GENERATOR_ID: name, MQTT_PASSWORD: generatorCredential(server, name).password });

const configWith = (env: Record<string, string> & { GENERATOR_ID: string }) => ({
  ...generatorConfigFrom(parseEnvironment(GeneratorEnvSchema, { MQTT_URL: `mqtt://127.0.0.1:${server.mqttPort}`, ...credentialEnv(env.GENERATOR_ID), ...env })),
  retryDelaysMs: [20],
});

async function generatorWith(env: Record<string, string> & { GENERATOR_ID: string }) {
  const log = collectingLogger();
  const generator = await startGenerator(configWith(env), log);
  cleanup(() => generator.close());
  return log;
}

async function approvedPrompt(prompt: string) {
  const { id } = (await visitor.mutate("prompt.submit", { prompt, width: 64, height: 64 })).body.result.data;
  await admin.mutate("admin.approve", { id });
  return id as number;
}

const settled = (id: number) =>
  waitFor(`prompt ${id} to finish`, () => {
    const row = server.services.db.$client.prepare("SELECT status, failure_reason AS reason FROM prompts WHERE id = ?").get(id) as { status: string; reason: string | null };
    return row.status === "done" || row.status === "failed" ? row : null;
  });

test("an SD server that is down at start: the generator starts unhealthy, gets no job, and makes it once the server answers", async () => {
  const sd = await startSdEmulator();
  cleanup(() => sd.close());
  await sd.down();
  const log = await generatorWith({ SD_API_URL: sd.url, GENERATOR_ID: "waits-for-sd" });
  expect(log.lines).toContain(`warn the SD server at ${sd.url} cannot be reached (cannot reach ${sd.url}: ECONNREFUSED); starting anyway, jobs wait until it answers`);
  const unhealthy = await waitFor("the server to see it online but unhealthy", () =>
    server.services.link.generators().find((g) => g.generatorId === "waits-for-sd" && g.state === "online" && !g.healthy),
  );
  expect(unhealthy.reason).toBe(`cannot reach ${sd.url}: ECONNREFUSED`);
  const id = await approvedPrompt("patience");
  // Nobody healthy: the job waits in line instead of failing.
  expect(server.services.db.$client.prepare("SELECT lease_generator_id AS g FROM jobs WHERE prompt_id = ?").get(id)).toEqual({ g: null });
  await sd.up();
  expect(await settled(id)).toEqual({ status: "done", reason: null });
  expect(log.lines).toContain("info the SD server answers again");
});

test("a 502 from a proxy in front of A1111 is retried and then succeeds", async () => {
  const sd = await startSdEmulator();
  cleanup(() => sd.close());
  sd.failNext(502, { detail: "Bad Gateway" });
  await generatorWith({ SD_API_URL: sd.url, GENERATOR_ID: "flaky-proxy" });
  expect((await settled(await approvedPrompt("second time lucky"))).status).toBe("done");
  expect(sd.calls).toHaveLength(2);
});

test("a sampler A1111 does not offer stops the generator's start, naming it and the valid ones", async () => {
  const sd = await startSdEmulator();
  cleanup(() => sd.close());
  const refused = await startGenerator(configWith({ SD_API_URL: sd.url, SD_SAMPLER: "Imaginary Sampler", GENERATOR_ID: "bad-sampler" }), collectingLogger()).catch((e: Error) => e);
  expect((refused as Error).message).toBe(`SD_SAMPLER "Imaginary Sampler" is not offered by ${sd.url}: use one of DPM++ 2M, DPM++ SDE, DPM++ SDE Karras, Euler a, Euler, DDIM`);
  expect(sd.calls).toEqual([]);
});

test("npm run generator with an unknown SD_SAMPLER prints one line and exits with 1", async () => {
  const sd = await startSdEmulator();
  cleanup(() => sd.close());
  const child = await runEntry("generator/main.ts", { MQTT_URL: `mqtt://127.0.0.1:${server.mqttPort}`, ...credentialEnv("child-generator"), SD_API_URL: sd.url, SD_SAMPLER: "Foo" });
  cleanup(() => child.kill());
  expect(await child.exited).toBe(1);
  expect(child.output()).toBe(`promptgate generator: SD_SAMPLER "Foo" is not offered by ${sd.url}: use one of DPM++ 2M, DPM++ SDE, DPM++ SDE Karras, Euler a, Euler, DDIM\n`);
});

test("SD_API_AUTH is sent as HTTP Basic auth (A1111's --api-auth)", async () => {
  const sd = await startSdEmulator({ apiAuth: "artist:secret" });
  cleanup(() => sd.close());
  await generatorWith({ SD_API_URL: sd.url, SD_API_AUTH: "artist:secret", GENERATOR_ID: "with-auth" });
  expect((await settled(await approvedPrompt("behind a password"))).status).toBe("done");
});

test("without the credentials A1111 answers 401 and the generator refuses to start, saying so", async () => {
  const sd = await startSdEmulator({ apiAuth: "artist:secret" });
  cleanup(() => sd.close());
  const refused = await startGenerator(configWith({ SD_API_URL: sd.url, GENERATOR_ID: "without-auth" }), collectingLogger()).catch((e: Error) => e);
  expect((refused as Error).message).toBe(`SD_API_AUTH is missing or wrong: ${sd.url} answered HTTP 401: Incorrect username or password`);
});

test("an answer that is not a txt2img response fails the job clearly", async () => {
  // It lists the sampler (so the generator starts), then answers txt2img with "{}".
  const samplers = JSON.stringify([{ name: "DPM++ SDE Karras", aliases: [], options: {} }]);
  const fake = createServer((request, response) =>
    response.writeHead(200, { "content-type": "application/json" }).end(request.url === "/sdapi/v1/samplers" ? samplers : "{}"),
  );
  await new Promise<void>((resolve) => fake.listen(0, "127.0.0.1", resolve));
  cleanup(() => {
    fake.closeAllConnections();
    return new Promise((resolve) => fake.close(resolve));
  });
  const address = fake.address();
  await generatorWith({ SD_API_URL: `http://127.0.0.1:${typeof address === "object" && address ? address.port : 0}`, GENERATOR_ID: "not-a1111" });
  const result = await settled(await approvedPrompt("talking to the wrong server"));
  expect(result).toEqual({ status: "failed", reason: "the SD server's answer is not a txt2img response (images[] and info)" });
});
