/**
 * The MQTT wire contract between the promptgate server and its generators.
 *
 * This is the only module that the server and the generator share: topic names,
 * QoS levels and one zod schema per payload. A third-party generator only needs
 * docs/protocol.md and the JSON Schemas generated from these (docs/schemas/, `npm run schemas`).
 *
 * Every payload is JSON and carries `schemaVersion`, so a future contract can be
 * introduced next to this one instead of silently breaking old generators.
 */
import { z } from "zod";
import { IMAGE_DIMENSION } from "./image-dimension";

export const SCHEMA_VERSION = 2 as const;

/** Every topic of the contract lives under this prefix. */
export const TOPIC_ROOT = "promptgate/v2";

/**
 * QoS 1 (at least once) for every message: receivers de-duplicate by `jobId`,
 * never by the DUP flag (Aedes redelivers with dup=false, aedes issue 601).
 */
export const CONTRACT_QOS = 1 as const;

/**
 * QoS 0 (at most once) for progress only: each report replaces the previous one, so a lost one
 * is made good by the next within half a second, and a redelivered stale one would move the bar
 * backwards. Nothing else of the contract may be lost.
 */
export const PROGRESS_QOS = 0 as const;

/** A generator sends at most this many progress reports a second per job; the server shows no more. */
export const PROGRESS_PER_SECOND = 2;

/**
 * Everything about one generator lives under `promptgate/v2/generators/<id>/` (ADR 008): the
 * server writes `jobs` and `control`, the generator writes the rest. One subtree per generator
 * is what per-generator credentials and topic rights need.
 */
const generatorRoot = (generatorId: string) => `${TOPIC_ROOT}/generators/${generatorId}`;

export const topics = {
  /** server → one generator: a job leased to it. */
  jobs: (generatorId: string) => `${generatorRoot(generatorId)}/jobs`,
  /** server → one generator: instructions about jobs it holds (cancel, stored), and refusals of what it sent. */
  control: (generatorId: string) => `${generatorRoot(generatorId)}/control`,
  /** generator → server: "online" with capabilities after subscribing; "offline" as the MQTT will. */
  presence: (generatorId: string) => `${generatorRoot(generatorId)}/presence`,
  /** generator → server: the jobs it holds, every third of the lease; keeps their leases. */
  heartbeat: (generatorId: string) => `${generatorRoot(generatorId)}/heartbeat`,
  /** generator → server: lifecycle of one job (accepted, started, released, failed). */
  status: (generatorId: string, jobId: string) => `${generatorRoot(generatorId)}/status/${jobId}`,
  /** generator → server: the finished image of one job. */
  result: (generatorId: string, jobId: string) => `${generatorRoot(generatorId)}/results/${jobId}`,
  /** generator → server: how far the backend is with one job (optional; QoS 0, PROGRESS_QOS). */
  progress: (generatorId: string, jobId: string) => `${generatorRoot(generatorId)}/progress/${jobId}`,
  /** What the server subscribes to. */
  presenceWildcard: `${TOPIC_ROOT}/generators/+/presence`,
  heartbeatWildcard: `${TOPIC_ROOT}/generators/+/heartbeat`,
  statusWildcard: `${TOPIC_ROOT}/generators/+/status/+`,
  resultWildcard: `${TOPIC_ROOT}/generators/+/results/+`,
  progressWildcard: `${TOPIC_ROOT}/generators/+/progress/+`,
} as const;

export type GeneratorTopicKind = "presence" | "heartbeat" | "status" | "results" | "progress" | "jobs" | "control";

const GENERATOR_TOPIC = /^promptgate\/v2\/generators\/([^/]+)\/(presence|heartbeat|jobs|control|status|results|progress)(?:\/([^/]+))?$/;
const PER_JOB = new Set<GeneratorTopicKind>(["status", "results", "progress"]);

/** What a generator topic names (its generator, kind and, for status, results and progress, job), or null for any other topic. */
export function parseGeneratorTopic(topic: string): { generatorId: string; kind: GeneratorTopicKind; jobId: string | null } | null {
  const match = GENERATOR_TOPIC.exec(topic);
  if (!match) return null;
  const kind = match[2] as GeneratorTopicKind;
  const jobId = match[3] ?? null;
  // status, results and progress are per job; the others never are.
  if (PER_JOB.has(kind) !== (jobId !== null)) return null;
  return { generatorId: match[1]!, kind, jobId };
}

const jobId = z.string().uuid();
/**
 * A generator's id: one level of its topics, its MQTT username and client id, and its
 * credential's name. Letters, digits, '.', '_' and '-' only: safe in topics, logs, URLs and shells.
 */
export const GeneratorIdSchema = z.string().min(1).max(128).regex(/^[A-Za-z0-9._-]+$/, "letters, digits, '.', '_' or '-'");
const generatorId = GeneratorIdSchema;

/**
 * The generator an MQTT client id belongs to: the id itself, or what comes before its first '/'
 * (`gpu-box-1/publisher`), so one generator may hold extra connections (a shell script's
 * short-lived publishers) without closing its main one, which keeps the plain name.
 */
export const generatorOfClientId = (clientId: string) => clientId.split("/", 1)[0]!;
/**
 * Any RFC 3339 date-time: `Z` or an offset such as `+00:00`, with or without fractions of a
 * second; RFC 3339 allows `t` and `z` in lower case too.
 */
const rfc3339 = z.iso.datetime({ offset: true });
const timestamp = z
  .string()
  .refine((value) => rfc3339.safeParse(value.toUpperCase()).success, "expected an RFC 3339 date-time such as 2026-11-25T19:19:38Z or 2026-11-25T20:19:38.5+01:00")
  .meta({ format: "date-time" });
export { IMAGE_DIMENSION };
/** Width and height: what A1111's UI allows (64–2048 in steps of 8). */
export const imageDimension = z
  .number()
  .int()
  .min(IMAGE_DIMENSION.min)
  .max(IMAGE_DIMENSION.max)
  .multipleOf(IMAGE_DIMENSION.step, `must be a multiple of ${IMAGE_DIMENSION.step}`);

/** The largest seed A1111 draws or takes (its seeds are 32-bit). */
export const MAX_SEED = 2 ** 32 - 1;

/**
 * Sampling parameters that the generator sends to the SD backend (and echoes in the result), in
 * the ranges A1111 takes: steps as its UI (1–150); CFG scale 0–30, since turbo and LCM models
 * want 0 or 1 (the API takes any float; its UI slider starts at 1).
 */
export const SamplingParametersSchema = z.object({
  steps: z.number().int().min(1).max(150),
  cfgScale: z.number().min(0).max(30),
  samplerName: z.string().min(1).max(100),
  restoreFaces: z.boolean(),
  /** -1 asks the backend for a random seed; the result carries the seed actually used. */
  seed: z.number().int().min(-1).max(MAX_SEED),
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
  approvedAt: timestamp,
  /**
   * The lease: the job is this generator's while it sends a heartbeat (or a status) for it at
   * least every `leaseMs`; send one every third of it. Silence past it gives the job to another.
   */
  leaseMs: z.number().int().min(1000),
});
export type JobMessage = z.infer<typeof JobMessageSchema>;

/** The longest reason a `released` or `failed` status carries. */
export const STATUS_REASON_MAX = 2000;

export const StatusMessageSchema = z.discriminatedUnion("state", [
  z.object({
    schemaVersion: z.literal(SCHEMA_VERSION),
    jobId,
    generatorId,
    /** The job is in the generator's queue; nothing has been sent to the SD backend yet. */
    state: z.literal("accepted"),
    at: timestamp,
  }),
  z.object({
    schemaVersion: z.literal(SCHEMA_VERSION),
    jobId,
    generatorId,
    /** The SD backend is generating the image. */
    state: z.literal("started"),
    at: timestamp,
  }),
  z.object({
    schemaVersion: z.literal(SCHEMA_VERSION),
    jobId,
    generatorId,
    /** Handed back unfinished (draining, backend unreachable): the server gives it to another. */
    state: z.literal("released"),
    reason: z.string().min(1).max(STATUS_REASON_MAX),
    at: timestamp,
  }),
  z.object({
    schemaVersion: z.literal(SCHEMA_VERSION),
    jobId,
    generatorId,
    /** The job cannot be generated; `reason` is shown to the admin. */
    state: z.literal("failed"),
    reason: z.string().min(1).max(STATUS_REASON_MAX),
    at: timestamp,
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
  finishedAt: timestamp,
});
export type ResultMessage = z.infer<typeof ResultMessageSchema>;

/**
 * How far the backend is with a job: step `step` of `steps`, as a fraction, with the backend's own
 * estimate of the time left when it has one. Never an image: previews are not part of the
 * contract (guests must not see a picture before the reveal).
 */
export const ProgressMessageSchema = z
  .object({
    schemaVersion: z.literal(SCHEMA_VERSION),
    jobId,
    generatorId,
    step: z.number().int().min(0).max(10_000),
    steps: z.number().int().min(1).max(10_000),
    /** 0..1; may move faster than step/steps when the backend counts more than sampling (hires fix). */
    fraction: z.number().min(0).max(1),
    /** Seconds left, as the backend estimates them. */
    etaSeconds: z.number().nonnegative().max(86_400).optional(),
    at: timestamp,
  })
  .refine((progress) => progress.step <= progress.steps, { message: "step must not exceed steps", path: ["step"] });
export type ProgressMessage = z.infer<typeof ProgressMessageSchema>;

/**
 * One run of a generator process, drawn at random when it starts: an `offline` from another
 * session than the generator's latest `online` (an old will that a restarted broker replays)
 * says nothing about the generator running now.
 */
const session = z.string().min(8).max(64).regex(/^[A-Za-z0-9._-]+$/, "letters, digits, '.', '_' or '-'");

export const PresenceMessageSchema = z.discriminatedUnion("state", [
  z.object({
    schemaVersion: z.literal(SCHEMA_VERSION),
    generatorId,
    state: z.literal("online"),
    session,
    at: timestamp,
    /** Jobs this generator holds (queued or running, or their result not yet `stored`). */
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
    session,
    /** For the will: when the generator first connected (the broker keeps the will as given then). */
    at: timestamp,
  }),
]);
export type PresenceMessage = z.infer<typeof PresenceMessageSchema>;

export const HeartbeatMessageSchema = z.object({
  schemaVersion: z.literal(SCHEMA_VERSION),
  generatorId,
  /** Every job the generator holds: their leases are extended. */
  jobIds: z.array(jobId).max(1000),
  at: timestamp,
});
export type HeartbeatMessage = z.infer<typeof HeartbeatMessageSchema>;

/** The longest reason a refusal carries; a longer one is cut. */
export const REFUSAL_REASON_MAX = 1000;

export const ControlMessageSchema = z.discriminatedUnion("command", [
  z.object({
    schemaVersion: z.literal(SCHEMA_VERSION),
    /** Stop working on the job and forget it: its lease ended (it went elsewhere, or is gone). */
    command: z.literal("cancel"),
    jobId,
    reason: z.string().min(1).max(500),
  }),
  z.object({
    schemaVersion: z.literal(SCHEMA_VERSION),
    /**
     * The job's image and row are committed: the generator may forget the job and its result.
     * Sent again for every copy of the result it sends, so a generator that missed it (a crash,
     * a broker restart) and sends the result again hears it again.
     */
    command: z.literal("stored"),
    jobId,
  }),
  z.object({
    schemaVersion: z.literal(SCHEMA_VERSION),
    /**
     * The server did not take a message this generator sent on `topic` (malformed, or about a job
     * that is not its own), for `reason`. A refused result of a job it holds also fails that job
     * with the reason, so nothing waits for an image that will never come.
     */
    command: z.literal("refused"),
    topic: z.string().min(1).max(300),
    /** The job the refused topic names (status and results). */
    jobId: jobId.optional(),
    reason: z.string().min(1).max(REFUSAL_REASON_MAX),
  }),
]);
export type ControlMessage = z.infer<typeof ControlMessageSchema>;

/** A message that does not fit the contract, found before it was published. */
export class ContractError extends Error {
  override name = "ContractError";
}

/**
 * Serialises `message` for the wire after checking it with `schema`, the same one the receiver
 * uses: a bug in the sender becomes a clear error here rather than a refusal over there.
 */
export function encode<S extends z.ZodType>(schema: S, message: z.input<S>): Buffer {
  const parsed = schema.safeParse(message);
  if (!parsed.success) throw new ContractError(`an outgoing message breaks the contract: ${z.prettifyError(parsed.error)}`);
  return Buffer.from(JSON.stringify(parsed.data));
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
