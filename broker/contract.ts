/**
 * The MQTT wire contract between the promptgate server and its generators.
 *
 * This is the only module that the server and the generator share: topic names,
 * QoS levels and one zod schema per payload. A third-party generator only needs
 * what is documented here (and in the README's "MQTT contract" section).
 *
 * Every payload is JSON and carries `schemaVersion`, so a future contract can be
 * introduced next to this one instead of silently breaking old generators.
 */
import { z } from "zod";

export const SCHEMA_VERSION = 1 as const;

/** Every topic of the contract lives under this prefix. */
export const TOPIC_ROOT = "promptgate/v1";

/**
 * QoS 1 (at least once) for every message: receivers de-duplicate by `jobId`,
 * never by the DUP flag (Aedes redelivers with dup=false, aedes issue 601).
 */
export const CONTRACT_QOS = 1 as const;

export const topics = {
  /** server → generators: one approved job per message. */
  jobs: `${TOPIC_ROOT}/jobs`,
  /** generator → server: lifecycle of one job (accepted, started, failed). */
  status: (jobId: string) => `${TOPIC_ROOT}/status/${jobId}`,
  statusWildcard: `${TOPIC_ROOT}/status/+`,
  /** generator → server: the finished image of one job. */
  result: (jobId: string) => `${TOPIC_ROOT}/results/${jobId}`,
  resultWildcard: `${TOPIC_ROOT}/results/+`,
  /** generator → server: presence ("online" after subscribing, "offline" as the MQTT will). */
  presence: (generatorId: string) => `${TOPIC_ROOT}/generators/${generatorId}`,
  presenceWildcard: `${TOPIC_ROOT}/generators/+`,
} as const;

/** Returns the last level of a topic built by `topics.status` / `topics.result` / `topics.presence`. */
export function topicTail(topic: string): string {
  return topic.slice(topic.lastIndexOf("/") + 1);
}

const jobId = z.string().uuid();
const generatorId = z.string().min(1).max(128).regex(/^[A-Za-z0-9._-]+$/, "letters, digits, '.', '_' or '-'");
/** Width and height: what A1111's UI allows (64–2048 in steps of 8). */
export const IMAGE_DIMENSION = { min: 64, max: 2048, step: 8 } as const;
export const imageDimension = z
  .number()
  .int()
  .min(IMAGE_DIMENSION.min)
  .max(IMAGE_DIMENSION.max)
  .refine((n) => n % IMAGE_DIMENSION.step === 0, `must be a multiple of ${IMAGE_DIMENSION.step}`);

/** Sampling parameters that the generator sends to the SD backend (and echoes in the result). */
export const SamplingParametersSchema = z.object({
  steps: z.number().int().min(1).max(150),
  cfgScale: z.number().min(1).max(30),
  samplerName: z.string().min(1).max(100),
  restoreFaces: z.boolean(),
  /** -1 asks the backend for a random seed; the result carries the seed actually used. */
  seed: z.number().int().min(-1),
});
export type SamplingParameters = z.infer<typeof SamplingParametersSchema>;

export const JobMessageSchema = z.object({
  schemaVersion: z.literal(SCHEMA_VERSION),
  jobId,
  prompt: z.string().min(1).max(1000),
  negativePrompt: z.string().max(1000),
  width: imageDimension,
  height: imageDimension,
  /** The author's colour (#rrggbb): a presentation hint, e.g. for placeholder images. */
  authorColour: z.string().regex(/^#[0-9a-f]{6}$/),
  /** Overrides of the generator's own sampling defaults; absent fields use the generator's. */
  parameters: SamplingParametersSchema.partial().optional(),
  approvedAt: z.string().datetime(),
});
export type JobMessage = z.infer<typeof JobMessageSchema>;

export const StatusMessageSchema = z.discriminatedUnion("state", [
  z.object({
    schemaVersion: z.literal(SCHEMA_VERSION),
    jobId,
    generatorId,
    /** The job is in the generator's queue; nothing has been sent to the SD backend yet. */
    state: z.literal("accepted"),
    at: z.string().datetime(),
  }),
  z.object({
    schemaVersion: z.literal(SCHEMA_VERSION),
    jobId,
    generatorId,
    /** The SD backend is generating the image. */
    state: z.literal("started"),
    at: z.string().datetime(),
  }),
  z.object({
    schemaVersion: z.literal(SCHEMA_VERSION),
    jobId,
    generatorId,
    /** The job cannot be generated; `reason` is shown to the admin. */
    state: z.literal("failed"),
    reason: z.string().min(1).max(2000),
    at: z.string().datetime(),
  }),
]);
export type StatusMessage = z.infer<typeof StatusMessageSchema>;

export const ResultMessageSchema = z.object({
  schemaVersion: z.literal(SCHEMA_VERSION),
  jobId,
  generatorId,
  /** The PNG, base64-encoded. */
  imagePng: z.string().min(1),
  seed: z.number().int(),
  width: imageDimension,
  height: imageDimension,
  /** What was sent to the backend, after defaults were applied. */
  parameters: SamplingParametersSchema,
  /** "a1111" for AUTOMATIC1111, "placeholder" for the built-in renderer. */
  backend: z.string().min(1).max(64),
  timing: z.object({
    /** Time spent in the generator's queue before the backend was called. */
    queuedMs: z.number().nonnegative(),
    /** Time the backend took. */
    generationMs: z.number().nonnegative(),
  }),
  finishedAt: z.string().datetime(),
});
export type ResultMessage = z.infer<typeof ResultMessageSchema>;

export const PresenceMessageSchema = z.discriminatedUnion("state", [
  z.object({
    schemaVersion: z.literal(SCHEMA_VERSION),
    generatorId,
    state: z.literal("online"),
    /** Jobs this generator already holds (queued or running): the server does not resend them. */
    inFlight: z.array(jobId),
    concurrency: z.number().int().min(1),
    backend: z.string().min(1).max(64),
  }),
  z.object({
    schemaVersion: z.literal(SCHEMA_VERSION),
    generatorId,
    state: z.literal("offline"),
  }),
]);
export type PresenceMessage = z.infer<typeof PresenceMessageSchema>;

/** Serialises a payload for the wire. */
export function encode(message: JobMessage | StatusMessage | ResultMessage | PresenceMessage): Buffer {
  return Buffer.from(JSON.stringify(message));
}

/**
 * Parses a received payload with `schema`. Never throws: malformed JSON and
 * schema violations come back as `{ ok: false, error }`, to be logged and dropped.
 */
export function decode<T>(
  schema: z.ZodType<T>,
  payload: Buffer | string,
): { ok: true; value: T } | { ok: false; error: string } {
  let json: unknown;
  try {
    json = JSON.parse(payload.toString());
  } catch {
    return { ok: false, error: "payload is not JSON" };
  }
  const parsed = schema.safeParse(json);
  if (!parsed.success) return { ok: false, error: z.prettifyError(parsed.error) };
  return { ok: true, value: parsed.data };
}
