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

export const SCHEMA_VERSION = 2 as const;

/** Every topic of the contract lives under this prefix. */
export const TOPIC_ROOT = "promptgate/v2";

/**
 * QoS 1 (at least once) for every message: receivers de-duplicate by `jobId`,
 * never by the DUP flag (Aedes redelivers with dup=false, aedes issue 601).
 */
export const CONTRACT_QOS = 1 as const;

/**
 * Everything about one generator lives under `promptgate/v2/generators/<id>/` (ADR 008): the
 * server writes `jobs` and `control`, the generator writes the rest. One subtree per generator
 * is what per-generator credentials and topic rights need.
 */
const generatorRoot = (generatorId: string) => `${TOPIC_ROOT}/generators/${generatorId}`;

export const topics = {
  /** server → one generator: a job leased to it. */
  jobs: (generatorId: string) => `${generatorRoot(generatorId)}/jobs`,
  /** server → one generator: instructions about jobs it holds (cancel). */
  control: (generatorId: string) => `${generatorRoot(generatorId)}/control`,
  /** generator → server: "online" with capabilities after subscribing; "offline" as the MQTT will. */
  presence: (generatorId: string) => `${generatorRoot(generatorId)}/presence`,
  /** generator → server: the jobs it holds, every third of the lease; keeps their leases. */
  heartbeat: (generatorId: string) => `${generatorRoot(generatorId)}/heartbeat`,
  /** generator → server: lifecycle of one job (accepted, started, released, failed). */
  status: (generatorId: string, jobId: string) => `${generatorRoot(generatorId)}/status/${jobId}`,
  /** generator → server: the finished image of one job. */
  result: (generatorId: string, jobId: string) => `${generatorRoot(generatorId)}/results/${jobId}`,
  /** What the server subscribes to. */
  presenceWildcard: `${TOPIC_ROOT}/generators/+/presence`,
  heartbeatWildcard: `${TOPIC_ROOT}/generators/+/heartbeat`,
  statusWildcard: `${TOPIC_ROOT}/generators/+/status/+`,
  resultWildcard: `${TOPIC_ROOT}/generators/+/results/+`,
} as const;

export type GeneratorTopicKind = "presence" | "heartbeat" | "status" | "results" | "jobs" | "control";

const GENERATOR_TOPIC = /^promptgate\/v2\/generators\/([^/]+)\/(presence|heartbeat|jobs|control|status|results)(?:\/([^/]+))?$/;

/** What a generator topic names (its generator, kind and, for status and results, job), or null for any other topic. */
export function parseGeneratorTopic(topic: string): { generatorId: string; kind: GeneratorTopicKind; jobId: string | null } | null {
  const match = GENERATOR_TOPIC.exec(topic);
  if (!match) return null;
  const kind = match[2] as GeneratorTopicKind;
  const jobId = match[3] ?? null;
  // status and results are per job; the others never are.
  if ((kind === "status" || kind === "results") !== (jobId !== null)) return null;
  return { generatorId: match[1]!, kind, jobId };
}

const jobId = z.string().uuid();
/** A generator's id: also its MQTT username and client id, and its credential's name. */
export const GeneratorIdSchema = z.string().min(1).max(128).regex(/^[A-Za-z0-9._-]+$/, "letters, digits, '.', '_' or '-'");
const generatorId = GeneratorIdSchema;
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
  /**
   * The lease: the job is this generator's while it sends a heartbeat (or a status) for it at
   * least every `leaseMs`; send one every third of it. Silence past it gives the job to another.
   */
  leaseMs: z.number().int().min(1000),
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
    /** Handed back unfinished (draining, backend unreachable): the server gives it to another. */
    state: z.literal("released"),
    reason: z.string().min(1).max(2000),
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
    /** Jobs this generator holds (queued or running, or their result not yet acknowledged). */
    inFlight: z.array(jobId).max(1000),
    /** Jobs it may hold at once (running and waiting); 0 while draining. */
    concurrency: z.number().int().min(0).max(64),
    backend: z.string().min(1).max(64),
    /** The largest image it makes, in pixels (width × height). */
    maxPixels: z.number().int().min(IMAGE_DIMENSION.min ** 2),
    /** False while its SD backend is unreachable: it gets no jobs until it says true again. */
    healthy: z.boolean(),
    /** The backend's reason when not healthy, for the admin. */
    reason: z.string().max(500).optional(),
  }),
  z.object({
    schemaVersion: z.literal(SCHEMA_VERSION),
    generatorId,
    state: z.literal("offline"),
  }),
]);
export type PresenceMessage = z.infer<typeof PresenceMessageSchema>;

export const HeartbeatMessageSchema = z.object({
  schemaVersion: z.literal(SCHEMA_VERSION),
  generatorId,
  /** Every job the generator holds: their leases are extended. */
  jobIds: z.array(jobId).max(1000),
  at: z.string().datetime(),
});
export type HeartbeatMessage = z.infer<typeof HeartbeatMessageSchema>;

export const ControlMessageSchema = z.object({
  schemaVersion: z.literal(SCHEMA_VERSION),
  /** Stop working on the job and forget it: its lease ended (it went elsewhere, or is gone). */
  command: z.literal("cancel"),
  jobId,
  reason: z.string().min(1).max(500),
});
export type ControlMessage = z.infer<typeof ControlMessageSchema>;

/** Serialises a payload for the wire. */
export function encode(message: JobMessage | StatusMessage | ResultMessage | PresenceMessage | HeartbeatMessage | ControlMessage): Buffer {
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
