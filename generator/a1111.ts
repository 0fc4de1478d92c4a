/**
 * The AUTOMATIC1111 backend (stable-diffusion-webui started with --api): txt2img with
 * retries, health, interrupting its own task, and the start-up check of sampler and model.
 * See backends.ts for the contract and ../shared/notes/sd-api.md for the API shapes.
 */
import http from "node:http";
import https from "node:https";
import { performance } from "node:perf_hooks";
import { z } from "zod";
import type { JobMessage, SamplingParameters } from "../broker/contract";
import { BackendConfigError, BackendUnavailableError, healthTracker, randomSeed, sleep, type Backend, type RenderOptions } from "./backends";

const safeJson = (text: string): unknown => {
  try {
    return JSON.parse(text);
  } catch {
    return null;
  }
};

/**
 * Kept-alive connections, closed by us after 4 s idle: A1111's server (uvicorn) closes them after
 * 5 s without saying so in a Keep-Alive header, and a call sent on a connection it has just closed
 * fails with ECONNRESET (nodejs/node#47130). fetch's client closed them after 4 s too.
 */
const IDLE_CLOSE_MS = 4_000;
const agents = { "http:": new http.Agent({ keepAlive: true, timeout: IDLE_CLOSE_MS }), "https:": new https.Agent({ keepAlive: true, timeout: IDLE_CLOSE_MS }) };

/**
 * One HTTP exchange, with node's own client: fetch cost about three times its CPU per call
 * (~550 vs ~150 µs here), and every job makes a txt2img call, in the server's own process for
 * the built-in generator. Rejects with the system error (its `code`) or, aborted, an AbortError
 * whose `cause` is the signal's reason.
 */
function exchange(target: URL, method: "GET" | "POST", headers: Record<string, string>, body: string | undefined, signal: AbortSignal): Promise<Answer> {
  return new Promise((resolve, reject) => {
    const sent = body === undefined ? headers : { ...headers, "content-length": String(Buffer.byteLength(body)) };
    const secure = target.protocol === "https:";
    const request = (secure ? https : http).request(target, { method, headers: sent, signal, agent: agents[secure ? "https:" : "http:"] }, (response) => {
      response.setEncoding("utf8");
      let text = "";
      response.on("data", (chunk: string) => (text += chunk));
      response.on("end", () => resolve({ status: response.statusCode!, text, location: response.headers.location }));
      // The connection dropped (or the call was aborted) after the headers: the answer never ends.
      response.on("error", reject);
      response.on("close", () => response.complete || reject(new Error("the connection closed before the answer was whole")));
    });
    request.on("error", reject);
    request.end(body);
  });
}

/** An answer read whole; `location` is where a redirect points (redirects are not followed). */
interface Answer {
  status: number;
  text: string;
  location?: string;
}

export interface A1111Options {
  baseUrl: string;
  /** "user:password", A1111's --api-auth. */
  auth?: string;
  /** One txt2img call; on expiry the call is interrupted on the server. */
  timeoutMs: number;
  /** The sampler jobs use unless they say otherwise; checked at start. */
  sampler: string;
  maxAttempts: number;
  /** Backoff before retry n is retryDelaysMs[n-1], the last one repeated. */
  retryDelaysMs: number[];
  /** A checkpoint title or name; sent as override_settings.sd_model_checkpoint. */
  model?: string;
  /** How often to ask /internal/progress while waiting for an aborted task to become active. */
  progressPollMs?: number;
  /** How often to ask /internal/progress how far a running task is, for `onProgress` (default 500 ms). */
  progressReportMs?: number;
}

/** The part of A1111's 200 response that we use; `info` is a JSON *string*. */
const Txt2ImgResponseSchema = z.object({
  images: z.array(z.string()).min(1),
  info: z.string(),
});
const Txt2ImgInfoSchema = z.object({ seed: z.number().int() });
const SamplersSchema = z.array(z.object({ name: z.string(), aliases: z.array(z.string()).default([]) }));
const ModelsSchema = z.array(z.object({ title: z.string(), model_name: z.string() }));
/** POST /internal/progress; `queued` means waiting for A1111's global lock. */
const TaskProgressSchema = z.object({
  active: z.boolean(),
  queued: z.boolean(),
  completed: z.boolean(),
  /** 0..1 while active (null otherwise), and the seconds A1111 expects the task still needs. */
  progress: z.number().min(0).max(1).nullish(),
  eta: z.number().nullish(),
});
/**
 * What we ask /internal/progress: our task, and no live preview (A1111 would otherwise encode the
 * half-made image on every call; nobody may see it before the reveal).
 */
const progressRequest = (taskId: string) => ({ id_task: taskId, id_live_preview: -1, live_preview: false });

/** Short calls (progress, interrupt, lists) must not hang for a whole generation. */
const CONTROL_TIMEOUT_MS = 5_000;

/**
 * Turns A1111's error bodies into one line. Its handler answers every exception with
 * `{ error: <class>, detail, body, errors: str(e) }`; for an HTTPException the class name
 * says nothing and `errors` is often empty, so the `detail` ("Sampler not found") is the message.
 * 422s carry pydantic's `detail[]`.
 */
export function describeErrorBody(status: number, body: string): string {
  try {
    const json = JSON.parse(body) as { detail?: unknown; error?: unknown; errors?: unknown };
    if (Array.isArray(json.detail)) {
      const details = json.detail.map((d: { loc?: unknown[]; msg?: string }) => `${(d.loc ?? []).join(".")}: ${d.msg ?? "invalid"}`);
      return `HTTP ${status}: ${details.join("; ")}`;
    }
    const text = (value: unknown) => (typeof value === "string" && value ? value : undefined);
    const kind = json.error === "HTTPException" ? undefined : text(json.error);
    const parts = [kind, text(json.errors) ?? text(json.detail)].filter(Boolean);
    if (parts.length) return `HTTP ${status}: ${parts.join(": ")}`;
  } catch {
    // not JSON: fall through to the raw text
  }
  return `HTTP ${status}: ${body.slice(0, 300) || "no body"}`;
}

/**
 * One failed attempt. `down`: the server (or what is in front of it) did not do the work at
 * all: refused, reset, 502/503/504. A 500 is the server's own answer (out of memory…) and a
 * timeout means it was working on our task: both may succeed on retry, but are the job's.
 */
class AttemptFailure extends Error {
  constructor(
    message: string,
    readonly retry: boolean,
    readonly down: boolean,
  ) {
    super(message);
  }
}

const RETRIED_STATUSES = new Set([500, 502, 503, 504]);
const DOWN_STATUSES = new Set([502, 503, 504]);

export function createA1111Backend(options: A1111Options): Backend {
  const base = options.baseUrl.endsWith("/") ? options.baseUrl : `${options.baseUrl}/`;
  const origin = new URL(base).origin;
  const url = (path: string) => new URL(path, base);
  const headers: Record<string, string> = { "content-type": "application/json" };
  if (options.auth) headers.authorization = `Basic ${Buffer.from(options.auth).toString("base64")}`;
  const tracker = healthTracker();
  const pollMs = options.progressPollMs ?? 250;
  const controlTimeoutMs = Math.min(CONTROL_TIMEOUT_MS, options.timeoutMs);

  const unreachable = (error: unknown) => {
    const { code, message, cause } = error as Error & { code?: string; cause?: { name?: string } };
    const reason = cause?.name === "TimeoutError" ? "no answer" : (code ?? message);
    return `cannot reach ${origin}: ${reason}`;
  };

  /** A short JSON call; throws AttemptFailure(down) when the server cannot be reached. */
  async function call(method: "GET" | "POST", path: string, body?: unknown): Promise<Answer> {
    try {
      return await exchange(url(path), method, headers, body === undefined ? undefined : JSON.stringify(body), AbortSignal.timeout(controlTimeoutMs));
    } catch (error) {
      throw new AttemptFailure(unreachable(error), true, true);
    }
  }

  /**
   * Stops the GPU work of an attempt we gave up on, before the next job can queue behind it.
   * A1111's interrupt is global, so it is sent only while /internal/progress shows our own
   * task active. A1111 cannot drop a queued request (the abandoned HTTP call stays in its
   * queue), so a queued task is watched until it becomes active and then interrupted, for
   * at most one timeout: the task ahead of it should not need longer. A server that cannot
   * be asked has nothing of ours to stop, and is reported: false.
   */
  async function stopTask(taskId: string): Promise<boolean> {
    const deadline = performance.now() + options.timeoutMs;
    for (;;) {
      let progress: z.infer<typeof TaskProgressSchema>;
      try {
        const { text } = await call("POST", "internal/progress", progressRequest(taskId));
        progress = TaskProgressSchema.parse(JSON.parse(text));
      } catch {
        return false;
      }
      // The gap between these two calls is A1111's: its API has no "interrupt task X".
      if (progress.active) return Boolean(await call("POST", "sdapi/v1/interrupt").catch(() => false));
      if (!progress.queued || performance.now() > deadline) return true;
      await new Promise((resolve) => setTimeout(resolve, pollMs));
    }
  }

  /**
   * Asks A1111 how far our task is, every `progressReportMs` until `done` aborts, and reports it
   * while the task is active. One question at a time; an unanswered one is skipped: progress is
   * a courtesy, the txt2img call decides the outcome.
   */
  async function watchProgress(taskId: string, steps: number, done: AbortSignal, report: NonNullable<RenderOptions["onProgress"]>) {
    const everyMs = options.progressReportMs ?? 500;
    while (!done.aborted) {
      await sleep(everyMs, done).catch(() => undefined);
      if (done.aborted) return;
      const answer = await call("POST", "internal/progress", progressRequest(taskId)).catch(() => null);
      if (done.aborted || answer?.status !== 200) continue;
      const parsed = TaskProgressSchema.safeParse(safeJson(answer.text));
      if (!parsed.success || !parsed.data.active || parsed.data.progress == null) continue;
      const { progress: fraction, eta } = parsed.data;
      // A1111 counts whole sampling steps: rounding undoes the division (floor could land one below).
      report({ step: Math.min(steps, Math.round(fraction * steps)), steps, fraction, ...(eta != null && eta >= 0 ? { etaSeconds: eta } : {}) });
    }
  }

  async function attempt(job: JobMessage, parameters: SamplingParameters, signal: AbortSignal, onProgress?: RenderOptions["onProgress"]) {
    const body = {
      prompt: job.prompt,
      negative_prompt: job.negativePrompt,
      width: job.width,
      height: job.height,
      steps: parameters.steps,
      cfg_scale: parameters.cfgScale,
      sampler_name: parameters.samplerName,
      restore_faces: parameters.restoreFaces,
      seed: parameters.seed,
      batch_size: 1,
      n_iter: 1,
      send_images: true,
      // Images must not pile up on the GPU box: promptgate keeps the only copy.
      save_images: false,
      // Lets A1111's /internal/progress be matched to this job (and its task interrupted).
      force_task_id: job.jobId,
      // Kept loaded afterwards: restoring the previous checkpoint would reload weights every job.
      ...(options.model ? { override_settings: { sd_model_checkpoint: options.model }, override_settings_restore_afterwards: false } : {}),
    };
    const timeout = AbortSignal.timeout(options.timeoutMs);
    const both = AbortSignal.any([signal, timeout]);
    let status: number;
    let text: string;
    const answered = new AbortController();
    if (onProgress) void watchProgress(job.jobId, parameters.steps, answered.signal, onProgress);
    try {
      ({ status, text } = await exchange(url("sdapi/v1/txt2img"), "POST", headers, JSON.stringify(body), both));
    } catch (error) {
      if (!both.aborted) throw new AttemptFailure(unreachable(error), true, true);
      // An interrupted txt2img still answers 200 with a half-done image: never a result.
      const stopped = await stopTask(job.jobId);
      if (signal.aborted) throw signal.reason;
      // A server that does not even answer /internal/progress hangs: it is down, not slow.
      if (!stopped) throw new AttemptFailure(`cannot reach ${origin}: no answer within ${options.timeoutMs / 1000} s`, true, true);
      throw new AttemptFailure(`no image within ${options.timeoutMs / 1000} s (the SD server's task was interrupted)`, true, false);
    } finally {
      answered.abort();
    }
    if (status < 200 || status > 299) {
      throw new AttemptFailure(describeErrorBody(status, text), RETRIED_STATUSES.has(status), DOWN_STATUSES.has(status));
    }
    try {
      const parsed = Txt2ImgResponseSchema.parse(JSON.parse(text));
      const info = Txt2ImgInfoSchema.parse(JSON.parse(parsed.info));
      return { png: Buffer.from(parsed.images[0]!, "base64"), seed: info.seed };
    } catch {
      throw new AttemptFailure("the SD server's answer is not a txt2img response (images[] and info)", false, false);
    }
  }

  /** GET a list at start; unreachable → null (not fatal), any other failure → BackendConfigError. */
  async function list<T>(path: string, schema: z.ZodType<T>): Promise<T | null> {
    let answer: Answer;
    try {
      answer = await call("GET", path);
    } catch (error) {
      tracker.down((error as Error).message);
      return null;
    }
    if (answer.status === 401) throw new BackendConfigError(`SD_API_AUTH is missing or wrong: ${origin} answered ${describeErrorBody(answer.status, answer.text)}`);
    // A proxy in front of A1111 (http → https, a moved path): its address is the one to configure.
    if (answer.location && answer.status >= 300 && answer.status < 400) {
      throw new BackendConfigError(`${origin} redirects GET /${path} to ${answer.location} (HTTP ${answer.status}): set SD_API_URL to the address it points to; redirects are not followed`);
    }
    if (DOWN_STATUSES.has(answer.status)) {
      tracker.down(describeErrorBody(answer.status, answer.text));
      return null;
    }
    try {
      if (answer.status !== 200) throw new Error(describeErrorBody(answer.status, answer.text));
      return schema.parse(JSON.parse(answer.text));
    } catch (error) {
      throw new BackendConfigError(`${origin} is not an AUTOMATIC1111 API (started with --api?): GET /${path} gave ${(error as Error).message.split("\n")[0]}`);
    }
  }

  return {
    name: "a1111",
    health: tracker.health,
    onHealthChange: tracker.onHealthChange,

    async check() {
      const samplers = await list("sdapi/v1/samplers", SamplersSchema);
      if (!samplers) return `the SD server at ${origin} cannot be reached (${tracker.health().reason}); starting anyway, jobs wait until it answers`;
      tracker.up();
      if (!samplers.some((sampler) => sampler.name === options.sampler || sampler.aliases.includes(options.sampler))) {
        throw new BackendConfigError(`SD_SAMPLER "${options.sampler}" is not offered by ${origin}: use one of ${samplers.map((sampler) => sampler.name).join(", ")}`);
      }
      if (!options.model) return null;
      const models = await list("sdapi/v1/sd-models", ModelsSchema);
      if (!models) return `the SD server at ${origin} stopped answering while its models were listed; SD_MODEL "${options.model}" is unchecked`;
      if (!models.some((model) => model.title === options.model || model.model_name === options.model)) {
        throw new BackendConfigError(`SD_MODEL "${options.model}" is not offered by ${origin}: use one of ${models.map((model) => model.title).join(", ")}`);
      }
      return null;
    },

    async render(job, parameters, { signal, onAttemptFailed, onProgress }) {
      const fixed = { ...parameters, seed: parameters.seed >= 0 ? parameters.seed : randomSeed() };
      for (let attemptNumber = 1; ; attemptNumber++) {
        try {
          const image = await attempt(job, fixed, signal, onProgress);
          tracker.up();
          return image;
        } catch (error) {
          if (signal.aborted) throw signal.reason;
          if (!(error instanceof AttemptFailure)) throw error;
          if (error.down) tracker.down(error.message);
          else tracker.up();
          if (!error.retry || attemptNumber >= options.maxAttempts) {
            throw error.down ? new BackendUnavailableError(error.message) : new Error(error.message);
          }
          const retryInMs = options.retryDelaysMs[Math.min(attemptNumber, options.retryDelaysMs.length) - 1] ?? 0;
          onAttemptFailed?.({ attempt: attemptNumber, message: error.message, retryInMs });
          await sleep(retryInMs, signal);
        }
      }
    },

    async whenHealthy(signal) {
      for (let probe = 0; !tracker.health().healthy; probe++) {
        if (signal.aborted) throw signal.reason;
        try {
          const { status, text } = await call("GET", "sdapi/v1/samplers");
          if (!DOWN_STATUSES.has(status)) tracker.up();
          else tracker.down(describeErrorBody(status, text));
        } catch (error) {
          tracker.down((error as Error).message);
        }
        if (tracker.health().healthy) return;
        await sleep(options.retryDelaysMs[Math.min(probe, options.retryDelaysMs.length - 1)] ?? 1_000, signal);
      }
    },
  };
}
