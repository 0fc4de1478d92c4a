/**
 * Image backends: AUTOMATIC1111's txt2img API, or the built-in placeholder renderer.
 * Both take a job plus resolved sampling parameters and return a PNG and the seed used.
 */
import { randomInt } from "node:crypto";
import { z } from "zod";
import type { JobMessage, SamplingParameters } from "../broker/contract";
import { renderPlaceholder } from "./placeholder";

export interface RenderedImage {
  png: Buffer;
  seed: number;
}

export interface Backend {
  /** Reported in results and presence: "a1111" or "placeholder". */
  readonly name: string;
  render(job: JobMessage, parameters: SamplingParameters, signal: AbortSignal): Promise<RenderedImage>;
}

/**
 * A failure worth another try (the backend is unreachable or overloaded), as opposed
 * to one that will fail the same way again (422, out of memory, a bad response).
 */
export class TransientBackendError extends Error {
  override name = "TransientBackendError";
}

export function createPlaceholderBackend(): Backend {
  return {
    name: "placeholder",
    async render(job, parameters) {
      const seed = parameters.seed >= 0 ? parameters.seed : randomInt(0, 2 ** 32);
      return {
        png: renderPlaceholder({ prompt: job.prompt, width: job.width, height: job.height, colour: job.authorColour, seed }),
        seed,
      };
    },
  };
}

/** The part of A1111's 200 response that we use; `info` is a JSON *string*. */
const Txt2ImgResponseSchema = z.object({
  images: z.array(z.string()).min(1),
  info: z.string(),
});
const Txt2ImgInfoSchema = z.object({ seed: z.number().int() });

/** Turns A1111's error bodies (422 `detail[]`, 500 `error`/`errors`) into one readable line. */
function describeErrorBody(status: number, body: string): string {
  try {
    const json = JSON.parse(body) as { detail?: unknown; error?: unknown; errors?: unknown };
    if (Array.isArray(json.detail)) {
      const details = json.detail.map((d: { loc?: unknown[]; msg?: string }) => `${(d.loc ?? []).join(".")}: ${d.msg ?? "invalid"}`);
      return `HTTP ${status}: ${details.join("; ")}`;
    }
    const text = [json.error, json.errors ?? json.detail].filter((part) => typeof part === "string" && part).join(": ");
    if (text) return `HTTP ${status}: ${text}`;
  } catch {
    // not JSON: fall through to the raw text
  }
  return `HTTP ${status}: ${body.slice(0, 300) || "no body"}`;
}

export function createA1111Backend(options: { baseUrl: string; auth?: string; timeoutMs: number }): Backend {
  const endpoint = new URL("sdapi/v1/txt2img", options.baseUrl.endsWith("/") ? options.baseUrl : `${options.baseUrl}/`);
  const headers: Record<string, string> = { "content-type": "application/json" };
  if (options.auth) headers.authorization = `Basic ${Buffer.from(options.auth).toString("base64")}`;

  return {
    name: "a1111",
    async render(job, parameters, signal) {
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
        // Lets A1111's /internal/progress be matched to this job.
        force_task_id: job.jobId,
      };
      let response: Response;
      try {
        response = await fetch(endpoint, {
          method: "POST",
          headers,
          body: JSON.stringify(body),
          signal: AbortSignal.any([signal, AbortSignal.timeout(options.timeoutMs)]),
        });
      } catch (error) {
        if (signal.aborted) throw error;
        const reason = error instanceof Error && error.name === "TimeoutError" ? `no answer within ${options.timeoutMs / 1000} s` : String((error as Error).cause ?? error);
        throw new TransientBackendError(`cannot reach ${endpoint.origin}: ${reason}`);
      }
      const text = await response.text();
      if (!response.ok) {
        const message = describeErrorBody(response.status, text);
        if (response.status === 502 || response.status === 503 || response.status === 504) throw new TransientBackendError(message);
        throw new Error(message);
      }
      let parsed: z.infer<typeof Txt2ImgResponseSchema>;
      let info: z.infer<typeof Txt2ImgInfoSchema>;
      try {
        parsed = Txt2ImgResponseSchema.parse(JSON.parse(text));
        info = Txt2ImgInfoSchema.parse(JSON.parse(parsed.info));
      } catch {
        throw new Error("the SD server's answer is not a txt2img response (images[] and info)");
      }
      return { png: Buffer.from(parsed.images[0]!, "base64"), seed: info.seed };
    },
  };
}
