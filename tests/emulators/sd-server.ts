/**
 * An AUTOMATIC1111 emulator for tests and benchmarks (no GPU here). It follows the real
 * server's API shapes (../shared/notes/sd-api.md): strict pydantic-like validation with 422
 * `detail[]`, one job at a time behind a global lock, base64 PNGs and an `info` JSON string,
 * samplers from GET /sdapi/v1/samplers, optional --api-auth. Unknown fields are ignored, as
 * pydantic does by default.
 */
import { randomInt } from "node:crypto";
import { createServer, type IncomingMessage, type ServerResponse } from "node:http";
import { encodePng } from "../../generator/png";

export interface Txt2ImgCall {
  body: Record<string, unknown>;
  receivedAt: number;
}

export interface SdEmulatorOptions {
  /** Simulated generation time per image. */
  delayMs?: number;
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
}

type FieldType = "string" | "integer" | "number" | "boolean";
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
};

function typeError(type: FieldType): { msg: string; type: string } {
  return {
    string: { msg: "str type expected", type: "type_error.str" },
    integer: { msg: "value is not a valid integer", type: "type_error.integer" },
    number: { msg: "value is not a valid float", type: "type_error.float" },
    boolean: { msg: "value could not be parsed to a boolean", type: "type_error.bool" },
  }[type];
}

function matches(type: FieldType, value: unknown): boolean {
  if (type === "string") return typeof value === "string";
  if (type === "integer") return Number.isInteger(value);
  if (type === "number") return typeof value === "number" && Number.isFinite(value);
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

export async function startSdEmulator(options: SdEmulatorOptions = {}) {
  const calls: Txt2ImgCall[] = [];
  const queuedFailures: Array<{ status: number; body: unknown }> = [];
  let lock: Promise<void> = Promise.resolve();
  let delayMs = options.delayMs ?? 0;
  let current: { started: number; steps: number; taskId: string | null } | null = null;
  let jobCount = 0;

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
    if (!SAMPLERS.includes(request.sampler_name)) {
      // A1111 answers an unknown sampler with a 404 from its own validation.
      return send(res, 404, { detail: `Sampler not found: ${request.sampler_name}` });
    }
    calls.push({ body, receivedAt: Date.now() });

    const failure = queuedFailures.shift();
    // One job at a time, like A1111's global queue lock.
    const previous = lock;
    let release!: () => void;
    lock = new Promise((resolve) => (release = resolve));
    jobCount++;
    await previous;
    try {
      if (failure) return send(res, failure.status, failure.body);
      current = { started: Date.now(), steps: request.steps, taskId: request.force_task_id };
      if (delayMs) await new Promise((resolve) => setTimeout(resolve, delayMs));
      const seed = request.seed === -1 ? randomInt(0, 2 ** 32) : request.seed;
      const count = request.batch_size * request.n_iter;
      const images = Array.from({ length: count }, (_, i) => fakeImage(request.width, request.height, seed + i).toString("base64"));
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
      jobCount--;
      release();
    }
  }

  const server = createServer((req, res) => {
    if (options.apiAuth && req.headers.authorization !== `Basic ${Buffer.from(options.apiAuth).toString("base64")}`) {
      res.writeHead(401, { "content-type": "application/json", "www-authenticate": "Basic" });
      return res.end(JSON.stringify({ detail: "Incorrect username or password" }));
    }
    const url = new URL(req.url ?? "/", "http://emulator");
    if (req.method === "POST" && url.pathname === "/sdapi/v1/txt2img") return void txt2img(req, res);
    if (req.method === "GET" && url.pathname === "/sdapi/v1/samplers") {
      return send(res, 200, SAMPLERS.map((name) => ({ name, aliases: [name.toLowerCase().replace(/\W+/g, "_")], options: {} })));
    }
    if (req.method === "GET" && url.pathname === "/sdapi/v1/progress") {
      const progress = current && delayMs ? Math.min(1, (Date.now() - current.started) / delayMs) : 0;
      return send(res, 200, {
        progress,
        eta_relative: current ? Math.max(0, (delayMs - (Date.now() - current.started)) / 1000) : 0,
        state: { job_count: jobCount, sampling_step: current ? Math.floor(progress * current.steps) : 0, sampling_steps: current?.steps ?? 0 },
        current_image: null,
      });
    }
    if (req.method === "GET" && url.pathname === "/sdapi/v1/sd-models") {
      return send(res, 200, [{ title: "emulator-v1.safetensors", model_name: "emulator-v1", hash: null, filename: "/models/emulator-v1.safetensors" }]);
    }
    send(res, 404, { detail: "Not Found" });
  });
  await new Promise<void>((resolve) => server.listen(options.port ?? 0, "127.0.0.1", resolve));
  const address = server.address();
  const port = typeof address === "object" && address ? address.port : 0;

  return {
    url: `http://127.0.0.1:${port}`,
    calls,
    /** The next txt2img call answers with this status and body (e.g. 500 out of memory). */
    failNext(status: number, body: unknown) {
      queuedFailures.push({ status, body });
    },
    setDelay(ms: number) {
      delayMs = ms;
    },
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      }),
  };
}

export type SdEmulator = Awaited<ReturnType<typeof startSdEmulator>>;
