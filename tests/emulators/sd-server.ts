/**
 * An AUTOMATIC1111 emulator for tests and benchmarks (no GPU here). It follows the real
 * server's API shapes (../shared/notes/sd-api.md): strict pydantic-like validation with 422
 * `detail[]`, one job at a time behind a global lock, base64 PNGs and an `info` JSON string,
 * samplers from GET /sdapi/v1/samplers, optional --api-auth. Unknown fields are ignored, as
 * pydantic does by default. Like A1111 it tracks tasks by `force_task_id` (queued behind the
 * lock, active, completed) for POST /internal/progress, which reports the active task's progress
 * step by step (with a live preview unless asked for none), and POST /sdapi/v1/interrupt stops
 * whatever task is active, whoever sent it.
 *
 * Test controls: failNext (N answers with a status and body), failAlways (every answer, until
 * cleared), resetNext (N connections cut), down/up (stop listening and come back on the same
 * port), setDelay, a seeded random delay range; counters: calls,
 * interrupts (with the task that was active), progress questions, seeds sent per force_task_id.
 */
import { randomInt } from "node:crypto";
import { createServer, type IncomingMessage, type ServerResponse } from "node:http";
import { performance } from "node:perf_hooks";
import { seededRandom } from "../../generator/placeholder";
import { encodePng } from "../../generator/png";

export interface Txt2ImgCall {
  body: Record<string, unknown>;
  receivedAt: number;
}

export interface InterruptCall {
  /** The force_task_id that was active when the interrupt arrived (null: none). */
  activeTask: string | null;
}

export interface SdEmulatorOptions {
  /** Simulated generation time per image. */
  delayMs?: number;
  /** Instead of delayMs: a generation time drawn per image from [min, max] ms, repeatable by `seed`. */
  delayRangeMs?: { min: number; max: number; seed: number };
  /** "user:pass": like A1111's --api-auth, every call needs HTTP Basic auth. */
  apiAuth?: string;
  /** Default 0: an ephemeral port. */
  port?: number;
}

const SAMPLERS = ["DPM++ 2M", "DPM++ SDE", "DPM++ SDE Karras", "Euler a", "Euler", "DDIM"];

interface Txt2ImgRequest {
  prompt: string;
  negative_prompt: string;
  width: number;
  height: number;
  steps: number;
  cfg_scale: number;
  sampler_name: string;
  restore_faces: boolean;
  seed: number;
  batch_size: number;
  n_iter: number;
  send_images: boolean;
  save_images: boolean;
  force_task_id: string | null;
  override_settings: Record<string, unknown> | null;
  override_settings_restore_afterwards: boolean;
}

type FieldType = "string" | "integer" | "number" | "boolean" | "object";
/** The txt2img fields we validate, with A1111's types and defaults. */
const FIELDS: Record<string, { type: FieldType; default: unknown }> = {
  prompt: { type: "string", default: "" },
  negative_prompt: { type: "string", default: "" },
  width: { type: "integer", default: 512 },
  height: { type: "integer", default: 512 },
  steps: { type: "integer", default: 50 },
  cfg_scale: { type: "number", default: 7 },
  sampler_name: { type: "string", default: "Euler a" },
  restore_faces: { type: "boolean", default: false },
  seed: { type: "integer", default: -1 },
  batch_size: { type: "integer", default: 1 },
  n_iter: { type: "integer", default: 1 },
  send_images: { type: "boolean", default: true },
  save_images: { type: "boolean", default: false },
  force_task_id: { type: "string", default: null },
  override_settings: { type: "object", default: null },
  override_settings_restore_afterwards: { type: "boolean", default: true },
};

const MODELS = [{ title: "emulator-v1.safetensors [6ce0161689]", model_name: "emulator-v1", hash: "6ce01616", sha256: null, filename: "/models/emulator-v1.safetensors", config: null }];

function typeError(type: FieldType): { msg: string; type: string } {
  return {
    string: { msg: "str type expected", type: "type_error.str" },
    integer: { msg: "value is not a valid integer", type: "type_error.integer" },
    number: { msg: "value is not a valid float", type: "type_error.float" },
    boolean: { msg: "value could not be parsed to a boolean", type: "type_error.bool" },
    object: { msg: "value is not a valid dict", type: "type_error.dict" },
  }[type];
}

function matches(type: FieldType, value: unknown): boolean {
  if (type === "string") return typeof value === "string";
  if (type === "integer") return Number.isInteger(value);
  if (type === "number") return typeof value === "number" && Number.isFinite(value);
  if (type === "object") return typeof value === "object" && value !== null && !Array.isArray(value);
  return typeof value === "boolean";
}

/** A flat colour per seed with a stripe pattern: enough to tell images apart. */
function fakeImage(width: number, height: number, seed: number): Buffer {
  const rgb = new Uint8Array(width * height * 3);
  const base = [seed & 0xff, (seed >> 8) & 0xff, (seed >> 16) & 0xff];
  for (let i = 0; i < width * height; i++) {
    const stripe = Math.floor((i % width) / 8) % 2 === 0 ? 1 : 0.6;
    rgb[i * 3] = base[0]! * stripe;
    rgb[i * 3 + 1] = base[1]! * stripe;
    rgb[i * 3 + 2] = base[2]! * stripe;
  }
  return encodePng(width, height, rgb);
}


/** What a half-made image looks like to /internal/progress's callers: promptgate must never pass it on. */
const LIVE_PREVIEW = fakeImage(64, 64, 0xff00ff).toString("base64");

/** A1111's answer to an HTTPException (its api_middleware handler): the class, the detail, and an empty str(e). */
const httpException = (detail: string) => ({ error: "HTTPException", detail, body: "", errors: "" });

export async function startSdEmulator(options: SdEmulatorOptions = {}) {
  const calls: Txt2ImgCall[] = [];
  const interrupts: InterruptCall[] = [];
  /** Questions to /internal/progress about an active task, and whether each asked for a live preview. */
  const progressCalls: Array<{ taskId: string; livePreview: boolean }> = [];
  const seedsByTask = new Map<string, number[]>();
  const queuedFailures: Array<{ status: number; body: unknown } | "reset"> = [];
  let lock: Promise<void> = Promise.resolve();
  let delayMs = options.delayMs ?? 0;
  const range = options.delayRangeMs;
  const random = range ? seededRandom(range.seed) : null;
  const nextDelay = () => (range ? range.min + Math.floor(random!() * (range.max - range.min + 1)) : delayMs);
  let alwaysFailing: { status: number; body: unknown } | null = null;
  let current: { started: number; steps: number; delayMs: number; taskId: string | null; interrupt: () => void } | null = null;
  let jobCount = 0;
  // A1111's modules/progress.py: pending_tasks, current_task, finished_tasks (it keeps the last 16).
  const pendingTasks = new Set<string>();
  const finishedTasks: string[] = [];

  const send = (res: ServerResponse, status: number, body: unknown) => {
    res.writeHead(status, { "content-type": "application/json" });
    res.end(JSON.stringify(body));
  };

  async function readJson(req: IncomingMessage): Promise<unknown> {
    const chunks: Buffer[] = [];
    for await (const chunk of req) chunks.push(chunk as Buffer);
    return JSON.parse(Buffer.concat(chunks).toString() || "null");
  }

  async function txt2img(req: IncomingMessage, res: ServerResponse) {
    let raw: unknown;
    try {
      raw = await readJson(req);
    } catch (error) {
      return send(res, 422, { detail: [{ loc: ["body", 0], msg: `Expecting value: ${(error as Error).message}`, type: "value_error.jsondecode" }] });
    }
    if (typeof raw !== "object" || raw === null || Array.isArray(raw)) {
      return send(res, 422, { detail: [{ loc: ["body"], msg: "value is not a valid dict", type: "type_error.dict" }] });
    }
    const body = raw as Record<string, unknown>;
    const detail = Object.entries(FIELDS)
      .filter(([name, field]) => body[name] !== undefined && body[name] !== null && !matches(field.type, body[name]))
      .map(([name, field]) => ({ loc: ["body", name], ...typeError(field.type) }));
    if (detail.length) return send(res, 422, { detail });
    const request = Object.fromEntries(Object.entries(FIELDS).map(([name, field]) => [name, body[name] ?? field.default])) as unknown as Txt2ImgRequest;
    // A1111's validate_sampler_name: HTTPException(404, "Sampler not found"), before any task exists.
    if (!SAMPLERS.includes(request.sampler_name)) return send(res, 404, httpException("Sampler not found"));
    calls.push({ body, receivedAt: Date.now() });
    const taskId = request.force_task_id;
    if (taskId) seedsByTask.set(taskId, [...(seedsByTask.get(taskId) ?? []), request.seed]);

    const failure = queuedFailures.shift() ?? alwaysFailing ?? undefined;
    if (failure === "reset") return void req.socket.destroy();
    // One job at a time, like A1111's global queue lock; the task waits in pending_tasks.
    if (taskId) pendingTasks.add(taskId);
    const previous = lock;
    let release!: () => void;
    lock = new Promise((resolve) => (release = resolve));
    jobCount++;
    await previous;
    if (taskId) pendingTasks.delete(taskId);
    try {
      if (failure) return send(res, failure.status, failure.body);
      let interrupted = false;
      let cutShort = () => undefined as void;
      const thisDelayMs = nextDelay();
      current = {
        started: performance.now(),
        steps: request.steps,
        delayMs: thisDelayMs,
        taskId,
        interrupt: () => {
          interrupted = true;
          cutShort();
        },
      };
      if (thisDelayMs) {
        await new Promise<void>((resolve) => {
          const timer = setTimeout(resolve, thisDelayMs);
          cutShort = () => {
            clearTimeout(timer);
            resolve();
          };
        });
      }
      const seed = request.seed === -1 ? randomInt(0, 2 ** 32) : request.seed;
      const count = request.batch_size * request.n_iter;
      // Interrupted, A1111 still answers 200: the loop stops early and the half-denoised latent
      // is decoded, so the image is noise. Only the client knows it asked for the interrupt.
      const images = Array.from({ length: count }, (_, i) => fakeImage(request.width, request.height, interrupted ? 0 : seed + i).toString("base64"));
      const info = {
        prompt: request.prompt,
        all_prompts: Array(count).fill(request.prompt),
        negative_prompt: request.negative_prompt,
        seed,
        all_seeds: Array.from({ length: count }, (_, i) => seed + i),
        subseed: randomInt(0, 2 ** 32),
        width: request.width,
        height: request.height,
        sampler_name: request.sampler_name,
        cfg_scale: request.cfg_scale,
        steps: request.steps,
        restore_face: request.restore_faces,
        sd_model_name: "emulator-v1",
        infotexts: [`${request.prompt}\nSteps: ${request.steps}, Sampler: ${request.sampler_name}, CFG scale: ${request.cfg_scale}, Seed: ${seed}, Size: ${request.width}x${request.height}`],
        job_timestamp: new Date().toISOString().replace(/\D/g, "").slice(0, 14),
      };
      send(res, 200, { images: request.send_images ? images : [], parameters: request, info: JSON.stringify(info) });
    } finally {
      current = null;
      if (taskId) finishedTasks.splice(0, finishedTasks.push(taskId) - 16);
      jobCount--;
      release();
    }
  }

  /**
   * modules/progress.py progressapi: per task. Not active: "Waiting..." or "In queue: i/n", no
   * progress. Active: progress counted in whole sampling steps (state.sampling_step /
   * sampling_steps), eta from the time since the task started, textinfo as state.textinfo (none
   * while sampling), and a live preview unless the caller asked for none (`live_preview: false`).
   */
  async function taskProgress(req: IncomingMessage, res: ServerResponse) {
    const body = (await readJson(req).catch(() => null)) as { id_task?: unknown; id_live_preview?: unknown; live_preview?: unknown } | null;
    if (typeof body?.id_task !== "string") return send(res, 422, { detail: [{ loc: ["body", "id_task"], msg: "field required", type: "value_error.missing" }] });
    const id = body.id_task;
    const active = current?.taskId === id;
    const queued = pendingTasks.has(id);
    const completed = finishedTasks.includes(id);
    if (!active || !current) {
      const queue = [...pendingTasks];
      const textinfo = queued ? `In queue: ${queue.indexOf(id) + 1}/${queue.length}` : "Waiting...";
      return send(res, 200, { active, queued, completed, progress: null, eta: null, live_preview: null, id_live_preview: -1, textinfo });
    }
    progressCalls.push({ taskId: id, livePreview: body.live_preview !== false });
    const elapsed = (performance.now() - current.started) / 1000;
    const step = current.delayMs ? Math.min(current.steps, Math.floor(((elapsed * 1000) / current.delayMs) * current.steps)) : 0;
    const progress = step / Math.max(1, current.steps);
    const eta = progress > 0 ? elapsed / progress - elapsed : null;
    const wantsPreview = body.live_preview !== false && step > 0;
    const previewId = typeof body.id_live_preview === "number" ? body.id_live_preview : -1;
    return send(res, 200, {
      active,
      queued,
      completed,
      progress,
      eta,
      live_preview: wantsPreview ? `data:image/png;base64,${LIVE_PREVIEW}` : null,
      id_live_preview: wantsPreview ? previewId + 1 : previewId,
      textinfo: null,
    });
  }

  const server = createServer((req, res) => {
    const url = new URL(req.url ?? "/", "http://emulator");
    // --api-auth guards /sdapi/* only; /internal/* belongs to the web UI (--gradio-auth).
    const needsAuth = options.apiAuth && !url.pathname.startsWith("/internal/");
    if (needsAuth && req.headers.authorization !== `Basic ${Buffer.from(options.apiAuth!).toString("base64")}`) {
      res.writeHead(401, { "content-type": "application/json", "www-authenticate": "Basic" });
      return res.end(JSON.stringify(httpException("Incorrect username or password")));
    }
    if (req.method === "POST" && url.pathname === "/sdapi/v1/txt2img") return void txt2img(req, res);
    if (req.method === "POST" && url.pathname === "/internal/progress") return void taskProgress(req, res);
    if (req.method === "POST" && url.pathname === "/sdapi/v1/interrupt") {
      // Global, like shared.state.interrupt(); with nothing running it changes nothing.
      interrupts.push({ activeTask: current?.taskId ?? null });
      current?.interrupt();
      return send(res, 200, {});
    }
    if (req.method === "GET" && url.pathname === "/sdapi/v1/samplers") {
      return send(res, 200, SAMPLERS.map((name) => ({ name, aliases: [name.toLowerCase().replace(/\W+/g, "_")], options: {} })));
    }
    if (req.method === "GET" && url.pathname === "/sdapi/v1/progress") {
      const progress = current && current.delayMs ? Math.min(1, (performance.now() - current.started) / current.delayMs) : 0;
      return send(res, 200, {
        progress,
        eta_relative: current ? Math.max(0, (current.delayMs - (performance.now() - current.started)) / 1000) : 0,
        state: { job_count: jobCount, sampling_step: current ? Math.floor(progress * current.steps) : 0, sampling_steps: current?.steps ?? 0 },
        current_image: null,
      });
    }
    if (req.method === "GET" && url.pathname === "/sdapi/v1/sd-models") return send(res, 200, MODELS);
    send(res, 404, { detail: "Not Found" });
  });
  const listen = (port: number) => new Promise<void>((resolve) => server.listen(port, "127.0.0.1", resolve));
  const stop = () =>
    new Promise<void>((resolve) => {
      server.close(() => resolve());
      server.closeAllConnections();
    });
  await listen(options.port ?? 0);
  const address = server.address();
  const port = typeof address === "object" && address ? address.port : 0;

  return {
    url: `http://127.0.0.1:${port}`,
    calls,
    interrupts,
    progressCalls,
    /** The seed of every txt2img call, by force_task_id, in order. */
    seedsByTask,
    /** The force_task_id now holding the lock, if any. */
    activeTask: () => current?.taskId ?? null,
    /** Task ids waiting for the lock. */
    queuedTasks: () => [...pendingTasks],
    /** The next `times` txt2img calls answer with this status and body (e.g. 500 out of memory). */
    failNext(status: number, body: unknown, times = 1) {
      for (let i = 0; i < times; i++) queuedFailures.push({ status, body });
    },
    /** Every txt2img call answers with this status and body (e.g. a broken GPU box), until called with null. */
    failAlways(failure: { status: number; body: unknown } | null) {
      alwaysFailing = failure;
    },
    /** The next `times` txt2img calls have their connection cut (ECONNRESET at the client). */
    resetNext(times = 1) {
      for (let i = 0; i < times; i++) queuedFailures.push("reset");
    },
    setDelay(ms: number) {
      delayMs = ms;
    },
    /** Stops listening and cuts open connections, like a stopped server (connections are refused). */
    down: stop,
    /** Listens again on the same port. */
    up: () => listen(port),
    close: stop,
  };
}

export type SdEmulator = Awaited<ReturnType<typeof startSdEmulator>>;
