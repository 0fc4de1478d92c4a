/** The generator against A1111 (emulated): retries, errors that should not be retried, --api-auth. */
import { createServer } from "node:http";
import { GeneratorEnvSchema, generatorConfigFrom, parseEnvironment } from "../../generator/env";
import { startGenerator } from "../../generator/generator";
import { startSdEmulator } from "../emulators/sd-server";
import { TestClient } from "../helpers/client";
import { freePort } from "../helpers/processes";
import { ADMIN_PASSWORD, collectingLogger, removeDataDir, startTestServer, waitFor, type TestServer } from "../helpers/server";

let server: TestServer;
let visitor: TestClient;
let admin: TestClient;
const cleanups: Array<() => Promise<unknown> | unknown> = [];

beforeAll(async () => {
  server = await startTestServer({ LOCAL_GENERATOR: "false" });
  visitor = new TestClient(server.url, { userAgent: "generator tests" });
  await visitor.page("/");
  admin = new TestClient(server.url);
  await admin.loginAsAdmin(ADMIN_PASSWORD);
});
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});
afterAll(async () => {
  await server?.close();
  removeDataDir(server.dataDir);
});

async function generatorWith(env: Record<string, string>) {
  const log = collectingLogger();
  const config = generatorConfigFrom(parseEnvironment(GeneratorEnvSchema, { MQTT_URL: `mqtt://127.0.0.1:${server.mqttPort}`, MQTT_PASSWORD: server.mqttToken, ...env }));
  const generator = await startGenerator({ ...config, retryDelaysMs: [20, 20] }, log);
  cleanups.push(() => generator.close());
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

test("an unreachable SD server is retried with backoff, then the prompt fails naming the server", async () => {
  const port = await freePort();
  const log = await generatorWith({ SD_API_URL: `http://127.0.0.1:${port}`, GENERATOR_ID: "unreachable" });
  const result = await settled(await approvedPrompt("nobody home"));
  expect(result.status).toBe("failed");
  expect(result.reason).toContain(`cannot reach http://127.0.0.1:${port}`);
  expect(log.lines.filter((line) => line.includes("retrying in"))).toHaveLength(2);
});

test("a 502 from a proxy in front of A1111 is retried and then succeeds", async () => {
  const sd = await startSdEmulator();
  cleanups.push(() => sd.close());
  sd.failNext(502, { detail: "Bad Gateway" });
  await generatorWith({ SD_API_URL: sd.url, GENERATOR_ID: "flaky-proxy" });
  expect((await settled(await approvedPrompt("second time lucky"))).status).toBe("done");
  expect(sd.calls).toHaveLength(2);
});

test("a sampler A1111 does not know fails at once with A1111's message, without retries", async () => {
  const sd = await startSdEmulator();
  cleanups.push(() => sd.close());
  const log = await generatorWith({ SD_API_URL: sd.url, SD_SAMPLER: "Imaginary Sampler", GENERATOR_ID: "bad-sampler" });
  const result = await settled(await approvedPrompt("wrong sampler"));
  expect(result).toEqual({ status: "failed", reason: "HTTP 404: Sampler not found: Imaginary Sampler" });
  expect(log.lines.filter((line) => line.includes("retrying"))).toEqual([]);
});

test("SD_API_AUTH is sent as HTTP Basic auth (A1111's --api-auth)", async () => {
  const sd = await startSdEmulator({ apiAuth: "artist:secret" });
  cleanups.push(() => sd.close());
  await generatorWith({ SD_API_URL: sd.url, SD_API_AUTH: "artist:secret", GENERATOR_ID: "with-auth" });
  expect((await settled(await approvedPrompt("behind a password"))).status).toBe("done");
});

test("without the credentials A1111 answers 401 and the prompt fails saying so", async () => {
  const sd = await startSdEmulator({ apiAuth: "artist:secret" });
  cleanups.push(() => sd.close());
  await generatorWith({ SD_API_URL: sd.url, GENERATOR_ID: "without-auth" });
  const result = await settled(await approvedPrompt("forgot the password"));
  expect(result).toEqual({ status: "failed", reason: "HTTP 401: Incorrect username or password" });
});

test("an answer that is not a txt2img response fails the job clearly", async () => {
  const fake = createServer((_request, response) => response.writeHead(200, { "content-type": "application/json" }).end("{}"));
  await new Promise<void>((resolve) => fake.listen(0, "127.0.0.1", resolve));
  cleanups.push(() => {
    fake.closeAllConnections();
    return new Promise((resolve) => fake.close(resolve));
  });
  const address = fake.address();
  await generatorWith({ SD_API_URL: `http://127.0.0.1:${typeof address === "object" && address ? address.port : 0}`, GENERATOR_ID: "not-a1111" });
  const result = await settled(await approvedPrompt("talking to the wrong server"));
  expect(result).toEqual({ status: "failed", reason: "the SD server's answer is not a txt2img response (images[] and info)" });
});
