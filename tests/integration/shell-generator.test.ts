/**
 * The protocol is enough to write a generator without promptgate's code (issue 7 §6): the bash
 * example in docs/examples/ (mosquitto_sub, mosquitto_pub, curl, jq) takes a job from the real
 * server over its embedded broker, makes it on the A1111 emulator and delivers the image.
 */
import { spawn } from "node:child_process";
import { existsSync } from "node:fs";
import path from "node:path";
import { startSdEmulator, type SdEmulator } from "../emulators/sd-server";
import { TestClient } from "../helpers/client";
import { ensureProgram } from "../helpers/debian";
import { ROOT } from "../helpers/processes";
import { ADMIN_PASSWORD, generatorCredential, removeDataDir, startTestServer, waitFor, type TestServer } from "../helpers/server";

const SCRIPT = path.join(ROOT, "docs/examples/shell-generator.sh");
/** With a space: the contract allows any MQTT topic level. */
const GENERATOR_ID = "shell-box";

let sd: SdEmulator;
let server: TestServer;

beforeAll(async () => {
  await ensureProgram("mosquitto_sub", ["mosquitto-clients"]);
  await ensureProgram("mosquitto_pub", ["mosquitto-clients"]);
  await ensureProgram("jq", ["jq"]);
  await ensureProgram("curl", ["curl"]);
  sd = await startSdEmulator();
  server = await startTestServer({ LOCAL_GENERATOR: "false", JOB_LEASE_SECONDS: "2" });
});
afterAll(async () => {
  await server?.close();
  await sd?.close();
  if (server) removeDataDir(server.dataDir);
});

/** How the script logs in to the broker: the one place to change when generators get their own credentials. */
const credentials = () => ({ MQTT_USERNAME: GENERATOR_ID, MQTT_PASSWORD: generatorCredential(server, GENERATOR_ID).password });

test("a generator written in bash around mosquitto_sub, mosquitto_pub and curl completes a job: one SD call, one stored image", async () => {
  // The image takes longer than the 2 s lease: only the script's heartbeats keep the job its own.
  sd.setDelay(3000);
  const script = spawn("bash", [SCRIPT], {
    // The cast: @remix-run/node declares NODE_ENV as always set (tests/helpers/processes.ts).
    env: { PATH: process.env.PATH ?? "", MQTT_HOST: "127.0.0.1", MQTT_PORT: String(server.mqttPort), GENERATOR_ID, SD_API_URL: sd.url, JOBS: "1", ...credentials() } as Record<string, string> as NodeJS.ProcessEnv,
    stdio: ["ignore", "pipe", "pipe"],
  });
  let output = "";
  script.stdout.on("data", (chunk) => (output += chunk));
  script.stderr.on("data", (chunk) => (output += chunk));
  const exited = new Promise<number | null>((resolve) => script.once("exit", (code) => resolve(code)));
  try {
    const generator = () => server.services.link.generators().find((g) => g.generatorId === GENERATOR_ID);
    await waitFor("the shell generator to be online", () => generator()?.state === "online").catch((error) => {
      throw new Error(`${error.message}; its output:\n${output}`);
    });
    expect(generator()).toMatchObject({ backend: "shell", concurrency: 1, healthy: true });

    const visitor = new TestClient(server.url, { userAgent: "shell generator test" });
    await visitor.page("/");
    const admin = new TestClient(server.url, { userAgent: "shell generator admin" });
    await admin.loginAsAdmin(ADMIN_PASSWORD);
    const { id } = (await visitor.mutate("prompt.submit", { prompt: "a lighthouse drawn in bash", width: 128, height: 64 })).body.result.data;
    expect((await admin.mutate("admin.approve", { id })).status).toBe(200);

    // It ends once the server said "stored": the image is there.
    expect(await exited, output).toBe(0);
    expect(output).toMatch(/control: stored [0-9a-f-]{36}\n/);
    const image = server.services.db.$client
      .prepare("SELECT i.file_name AS file, i.seed, i.width, i.height, i.generator_id AS generatorId, p.status FROM images i JOIN prompts p ON p.id = i.prompt_id WHERE i.prompt_id = ?")
      .get(id) as { file: string; seed: number; width: number; height: number; generatorId: string; status: string };
    expect(image).toMatchObject({ width: 128, height: 64, generatorId: GENERATOR_ID, status: "done" });
    expect(existsSync(path.join(server.dataDir, "images", image.file))).toBe(true);
    const calls = sd.calls.filter((call) => call.body.prompt === "a lighthouse drawn in bash");
    expect(calls).toHaveLength(1);
    // The seed A1111 drew (the script asks for -1) is the one stored.
    expect(calls[0]!.body.seed).toBe(-1);
    expect(image.seed).toBeGreaterThanOrEqual(0);
    await waitFor("the shell generator to say it is offline", () => generator()?.state === "offline");
    // Nothing it sent was refused, dropped or ignored, and its lease never ran out.
    expect(server.log.lines.filter((line) => /refused|dropped|ignored|rejected|ran out/.test(line))).toEqual([]);
  } finally {
    if (script.exitCode === null) script.kill();
  }
});
