/** The A1111 backend against the emulator over real HTTP: retries and seeds, health, interrupts, the start-up check. */
import { randomUUID } from "node:crypto";
import { createServer as createHttpServer } from "node:http";
import { createServer as createNetServer, type AddressInfo, type Socket } from "node:net";
import { SCHEMA_VERSION, type JobMessage, type SamplingParameters } from "../../broker/contract";
import { createA1111Backend, type A1111Options } from "../../generator/a1111";
import { BackendConfigError, BackendUnavailableError, type BackendHealth } from "../../generator/backends";
import { startSdEmulator, type SdEmulator } from "../emulators/sd-server";
import { freePort } from "../helpers/processes";
import { waitFor } from "../helpers/server";
import { useCleanups } from "../helpers/cleanups";

const cleanup = useCleanups();

const OOM = { error: "OutOfMemoryError", detail: "", body: "", errors: "CUDA out of memory. Tried to allocate 2.00 GiB" };
const parameters: SamplingParameters = { steps: 30, cfgScale: 5, samplerName: "DPM++ SDE Karras", restoreFaces: false, seed: -1 };

function job(prompt = "a lighthouse at dusk"): JobMessage {
  return { schemaVersion: SCHEMA_VERSION, jobId: randomUUID(), prompt, negativePrompt: "", width: 64, height: 64, authorColour: "#336699", approvedAt: new Date().toISOString(), leaseMs: 30_000 };
}

async function emulator(options: Parameters<typeof startSdEmulator>[0] = {}) {
  const sd = await startSdEmulator(options);
  cleanup(() => sd.close());
  return sd;
}

function backendFor(sd: Pick<SdEmulator, "url">, options: Partial<A1111Options> = {}) {
  const backend = createA1111Backend({ baseUrl: sd.url, timeoutMs: 10_000, sampler: "DPM++ SDE Karras", maxAttempts: 3, retryDelaysMs: [20], progressPollMs: 20, ...options });
  const changes: BackendHealth[] = [];
  backend.onHealthChange((health) => changes.push(health));
  return { backend, changes };
}

const never = new AbortController().signal;

describe("retries", () => {
  test("a 500 then success gives one image, and both calls used the same concrete seed", async () => {
    const sd = await emulator();
    sd.failNext(500, OOM);
    const { backend } = backendFor(sd);
    const failures: string[] = [];
    const the = job();
    const image = await backend.render(the, parameters, { signal: never, onAttemptFailed: ({ message }) => failures.push(message) });
    const seeds = sd.seedsByTask.get(the.jobId)!;
    expect(seeds).toHaveLength(2);
    expect(seeds[0]).toBeGreaterThanOrEqual(0);
    expect(seeds[1]).toBe(seeds[0]);
    expect(image.seed).toBe(seeds[0]);
    expect(failures).toEqual(["HTTP 500: OutOfMemoryError: CUDA out of memory. Tried to allocate 2.00 GiB"]);
  });

  test("a persistent 500 fails after GENERATOR_MAX_ATTEMPTS with A1111's own message, and the backend stays healthy", async () => {
    const sd = await emulator();
    sd.failNext(500, OOM, 5);
    const { backend, changes } = backendFor(sd, { maxAttempts: 3 });
    const error = await backend.render(job(), parameters, { signal: never }).catch((e: Error) => e);
    expect(error).toBeInstanceOf(Error);
    expect(error).not.toBeInstanceOf(BackendUnavailableError);
    expect((error as Error).message).toBe("HTTP 500: OutOfMemoryError: CUDA out of memory. Tried to allocate 2.00 GiB");
    expect(sd.calls).toHaveLength(3);
    expect(changes).toEqual([]);
  });

  test("reset connections and 503s are retried; health goes unhealthy, then healthy with the image", async () => {
    const sd = await emulator();
    sd.resetNext();
    sd.failNext(503, { detail: "Service Unavailable" });
    const { backend, changes } = backendFor(sd);
    const image = await backend.render(job(), parameters, { signal: never });
    expect(image.png.length).toBeGreaterThan(0);
    expect(changes.map((health) => health.healthy)).toEqual([false, true]);
    expect(changes[0]!.reason).toContain("cannot reach");
  });

  test("a server that stays down ends in BackendUnavailableError, naming it, not a job failure", async () => {
    const port = await freePort();
    const { backend } = backendFor({ url: `http://127.0.0.1:${port}` });
    const error = await backend.render(job(), parameters, { signal: never }).catch((e: Error) => e);
    expect(error).toBeInstanceOf(BackendUnavailableError);
    expect((error as Error).message).toBe(`cannot reach http://127.0.0.1:${port}: ECONNREFUSED`);
    expect(backend.health()).toEqual({ healthy: false, reason: `cannot reach http://127.0.0.1:${port}: ECONNREFUSED` });
  });

  test("a server that is down is unhealthy until it answers again; then the job succeeds", async () => {
    const sd = await emulator();
    await sd.down();
    const { backend, changes } = backendFor(sd, { maxAttempts: 2 });
    const the = job();
    await expect(backend.render(the, parameters, { signal: never })).rejects.toBeInstanceOf(BackendUnavailableError);
    expect(backend.health().healthy).toBe(false);
    const recovered = backend.whenHealthy(never);
    await sd.up();
    await recovered;
    const image = await backend.render(the, parameters, { signal: never });
    expect(sd.seedsByTask.get(the.jobId)).toEqual([image.seed]);
    expect(changes.map((health) => health.healthy)).toEqual([false, true]);
  });

  test("an unknown sampler fails at once with A1111's 'Sampler not found', without retries", async () => {
    const sd = await emulator();
    const { backend } = backendFor(sd);
    const error = await backend.render(job(), { ...parameters, samplerName: "Imaginary Sampler" }, { signal: never }).catch((e: Error) => e);
    expect((error as Error).message).toBe("HTTP 404: Sampler not found");
    expect(sd.calls).toHaveLength(0);
    expect(backend.health().healthy).toBe(true);
  });
});

describe("interrupting its own task", () => {
  test("a timeout interrupts the task exactly once while it is the active one, and the half-done image is not a result", async () => {
    const sd = await emulator({ delayMs: 5_000 });
    const { backend } = backendFor(sd, { timeoutMs: 300, maxAttempts: 1 });
    const the = job();
    const error = await backend.render(the, parameters, { signal: never }).catch((e: Error) => e);
    expect((error as Error).message).toBe("no image within 0.3 s (the SD server's task was interrupted)");
    expect(sd.interrupts).toEqual([{ activeTask: the.jobId }]);
    await waitFor("the interrupted task to end", () => sd.activeTask() === null);
  });

  test("a caller's abort (a lost lease) interrupts the active task before render settles", async () => {
    const sd = await emulator({ delayMs: 5_000 });
    const { backend } = backendFor(sd);
    const the = job();
    const lease = new AbortController();
    const rendering = backend.render(the, parameters, { signal: lease.signal }).catch((e: Error) => e);
    await waitFor("our task to be active", () => sd.activeTask() === the.jobId);
    lease.abort(new Error("lease lost"));
    expect(((await rendering) as Error).message).toBe("lease lost");
    expect(sd.interrupts).toEqual([{ activeTask: the.jobId }]);
  });

  test("another client's active task is never interrupted: ours is interrupted once it gets the lock", async () => {
    const sd = await emulator({ delayMs: 600 });
    const other = fetch(`${sd.url}/sdapi/v1/txt2img`, { method: "POST", body: JSON.stringify({ prompt: "someone else's", width: 64, height: 64, force_task_id: "other-client" }) });
    await waitFor("the other client's task to be active", () => sd.activeTask() === "other-client");
    const { backend } = backendFor(sd);
    const the = job();
    const cancel = new AbortController();
    const rendering = backend.render(the, parameters, { signal: cancel.signal }).catch((e: Error) => e);
    await waitFor("our task to queue behind it", () => sd.queuedTasks().includes(the.jobId));
    cancel.abort(new Error("cancelled"));
    expect(((await rendering) as Error).message).toBe("cancelled");
    expect(sd.interrupts).toEqual([{ activeTask: the.jobId }]);
    const otherInfo = JSON.parse(((await (await other).json()) as { info: string }).info) as { seed: number };
    expect(otherInfo.seed).toBeGreaterThanOrEqual(0);
  });

  test("a server that accepts connections but never answers counts as down, not as a slow job", async () => {
    const sockets: Socket[] = [];
    const hung = createNetServer((socket) => void sockets.push(socket));
    await new Promise<void>((resolve) => hung.listen(0, "127.0.0.1", resolve));
    cleanup(() => {
      for (const socket of sockets) socket.destroy();
      return new Promise((resolve) => hung.close(resolve));
    });
    const port = (hung.address() as AddressInfo).port;
    const { backend } = backendFor({ url: `http://127.0.0.1:${port}` }, { timeoutMs: 200, maxAttempts: 1 });
    const error = await backend.render(job(), parameters, { signal: never }).catch((e: Error) => e);
    expect(error).toBeInstanceOf(BackendUnavailableError);
    expect((error as Error).message).toBe(`cannot reach http://127.0.0.1:${port}: no answer within 0.2 s`);
    expect(backend.health().healthy).toBe(false);
  });

  test("a connection that drops halfway through an answer counts as the server being down, not as a call that never ends", async () => {
    const drops = createHttpServer((_request, response) => {
      response.writeHead(200, { "content-type": "application/json", "content-length": "1000" });
      response.write('{"images": ["iVBORw0KGgo', () => response.socket?.destroy());
    });
    await new Promise<void>((resolve) => drops.listen(0, "127.0.0.1", resolve));
    cleanup(() => new Promise((resolve) => drops.close(resolve)));
    const port = (drops.address() as AddressInfo).port;
    const { backend } = backendFor({ url: `http://127.0.0.1:${port}` }, { maxAttempts: 1 });
    const error = await backend.render(job(), parameters, { signal: never }).catch((e: Error) => e);
    expect(error).toBeInstanceOf(BackendUnavailableError);
    expect((error as Error).message).toBe(`cannot reach http://127.0.0.1:${port}: ECONNRESET`);
    expect(backend.health().healthy).toBe(false);
  });
});

describe("connections", () => {
  test("an idle connection is closed by the generator within 4 s, before A1111's server drops it unannounced at 5 s, and the next call opens a new one", async () => {
    // Like uvicorn: keeps idle connections and sends no Keep-Alive hint (node's own server, and so
    // the emulator, would send one, which the client obeys anyway).
    const opened: Socket[] = [];
    const closedByClient: Socket[] = [];
    const silent = createHttpServer((_request, response) => void response.writeHead(200, { "content-type": "application/json" }).end(JSON.stringify([{ name: "Euler a", aliases: [] }])));
    silent.keepAliveTimeout = 0;
    silent.on("connection", (socket) => {
      opened.push(socket);
      socket.on("end", () => closedByClient.push(socket));
    });
    await new Promise<void>((resolve) => silent.listen(0, "127.0.0.1", resolve));
    cleanup(() => {
      for (const socket of opened) socket.destroy();
      return new Promise((resolve) => silent.close(resolve));
    });
    const { backend } = backendFor({ url: `http://127.0.0.1:${(silent.address() as AddressInfo).port}` }, { sampler: "Euler a" });
    expect(await backend.check()).toBeNull();
    expect(opened).toHaveLength(1);
    await waitFor("the generator to close its idle connection", () => closedByClient.length === 1, 4_900);
    expect(await backend.check()).toBeNull();
    expect(opened).toHaveLength(2);
  });
});

describe("progress", () => {
  test("a running task's progress is reported step by step from /internal/progress, without ever asking for a live preview", async () => {
    const sd = await emulator({ delayMs: 600 });
    const { backend } = backendFor(sd, { progressReportMs: 50 });
    const reports: Array<{ step: number; steps: number; fraction: number; etaSeconds?: number }> = [];
    await backend.render(job(), parameters, { signal: never, onProgress: (progress) => reports.push(progress) });
    expect(reports.length).toBeGreaterThanOrEqual(3);
    for (const report of reports) {
      expect(report.steps).toBe(30);
      expect(report.step).toBe(Math.round(report.fraction * 30));
    }
    expect(reports.map((report) => report.step)).toEqual(reports.map((report) => report.step).sort((a, b) => a - b));
    expect(sd.progressCalls.every((call) => !call.livePreview)).toBe(true);
  });

  test("the emulator answers /internal/progress as A1111 does: a queued task's place, then the active one's progress and eta, and a preview only when asked", async () => {
    const sd = await emulator({ delayMs: 400 });
    const { backend } = backendFor(sd);
    const first = job("first");
    const second = job("second");
    const ask = async (body: object) => (await fetch(`${sd.url}/internal/progress`, { method: "POST", body: JSON.stringify(body) })).json();
    const running = Promise.all([backend.render(first, parameters, { signal: never }), backend.render(second, parameters, { signal: never })]);
    await waitFor("the first to be active and the second queued", () => sd.activeTask() === first.jobId && sd.queuedTasks().includes(second.jobId));
    await expect(ask({ id_task: second.jobId, id_live_preview: -1 })).resolves.toEqual({
      active: false,
      queued: true,
      completed: false,
      progress: null,
      eta: null,
      live_preview: null,
      id_live_preview: -1,
      textinfo: "In queue: 1/1",
    });
    await waitFor("a step done", async () => (await ask({ id_task: first.jobId, live_preview: false })).progress > 0);
    const withPreview = await ask({ id_task: first.jobId, id_live_preview: 3 });
    expect(withPreview).toMatchObject({ active: true, queued: false, completed: false, textinfo: null, id_live_preview: 4 });
    expect(withPreview.live_preview).toMatch(/^data:image\/png;base64,/);
    expect(withPreview.eta).toBeGreaterThan(0);
    await running;
    await expect(ask({ id_task: first.jobId })).resolves.toMatchObject({ active: false, queued: false, completed: true, textinfo: "Waiting..." });
    await expect(ask({})).resolves.toMatchObject({ detail: [{ loc: ["body", "id_task"] }] });
  });
});

describe("start-up check", () => {
  test("an unknown SD_SAMPLER is refused in one line naming it and the valid ones", async () => {
    const sd = await emulator();
    const { backend } = backendFor(sd, { sampler: "Foo" });
    const error = await backend.check().catch((e: Error) => e);
    expect(error).toBeInstanceOf(BackendConfigError);
    expect((error as Error).message).toBe(`SD_SAMPLER "Foo" is not offered by ${sd.url}: use one of DPM++ 2M, DPM++ SDE, DPM++ SDE Karras, Euler a, Euler, DDIM`);
  });

  test("an unknown SD_MODEL is refused naming the checkpoints; a known one is sent with every txt2img call", async () => {
    const sd = await emulator();
    const error = await backendFor(sd, { model: "dreamshaper" }).backend.check().catch((e: Error) => e);
    expect((error as Error).message).toBe(`SD_MODEL "dreamshaper" is not offered by ${sd.url}: use one of emulator-v1.safetensors [6ce0161689]`);

    const { backend } = backendFor(sd, { model: "emulator-v1" });
    expect(await backend.check()).toBeNull();
    await backend.render(job(), parameters, { signal: never });
    expect(sd.calls[0]!.body).toMatchObject({ override_settings: { sd_model_checkpoint: "emulator-v1" }, override_settings_restore_afterwards: false });
  });

  test("wrong credentials are refused at start, saying so", async () => {
    const sd = await emulator({ apiAuth: "artist:secret" });
    const error = await backendFor(sd, { auth: "artist:wrong" }).backend.check().catch((e: Error) => e);
    expect((error as Error).message).toBe(`SD_API_AUTH is missing or wrong: ${sd.url} answered HTTP 401: Incorrect username or password`);
  });

  test("an SD_API_URL that redirects (a proxy sending http to https) is refused at start, naming where it points", async () => {
    const redirector = createHttpServer((request, response) => void response.writeHead(308, { location: `https://sd.example${request.url}` }).end());
    await new Promise<void>((resolve) => redirector.listen(0, "127.0.0.1", resolve));
    cleanup(() => new Promise((resolve) => redirector.close(resolve)));
    const url = `http://127.0.0.1:${(redirector.address() as AddressInfo).port}`;
    const error = await backendFor({ url }).backend.check().catch((e: Error) => e);
    expect(error).toBeInstanceOf(BackendConfigError);
    expect((error as Error).message).toBe(`${url} redirects GET /sdapi/v1/samplers to https://sd.example/sdapi/v1/samplers (HTTP 308): set SD_API_URL to the address it points to; redirects are not followed`);
  });

  test("an unreachable SD server is not fatal: a warning, and the backend starts unhealthy", async () => {
    const port = await freePort();
    const { backend } = backendFor({ url: `http://127.0.0.1:${port}` });
    expect(await backend.check()).toBe(`the SD server at http://127.0.0.1:${port} cannot be reached (cannot reach http://127.0.0.1:${port}: ECONNREFUSED); starting anyway, jobs wait until it answers`);
    expect(backend.health().healthy).toBe(false);
  });
});
