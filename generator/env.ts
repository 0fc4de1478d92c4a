/**
 * Configuration of a generator, from environment variables, parsed once at start.
 * The server reuses `parseEnvironment` and `GeneratorEnvSchema` for its local generator.
 */
import { hostname } from "node:os";
import { z } from "zod";
import { GeneratorIdSchema } from "../broker/contract";

/** A start-up configuration error: its message names every bad variable and what is allowed. */
export class EnvError extends Error {
  override name = "EnvError";
}

const SECRET_NAME = /PASSWORD|SECRET|AUTH|TOKEN/;

/** A URL's user:password (mqtt://user:secret@host) masked: a mistyped broker URL must not put its password in logs. */
const withoutCredentials = (value: string) => value.replace(/^([a-z][a-z0-9+.-]*:\/\/)[^/?#]*@/i, "$1***@");

/** Parses `env` with `schema`; throws an EnvError listing each bad variable. */
export function parseEnvironment<S extends z.ZodType>(
  schema: S,
  env: Record<string, string | undefined>,
): Readonly<z.infer<S>> {
  // An empty variable (FOO=) means "unset", as in most shells' config files.
  const present = Object.fromEntries(Object.entries(env).filter(([, value]) => value !== undefined && value !== ""));
  const parsed = schema.safeParse(present);
  if (parsed.success) return Object.freeze(parsed.data);
  const lines = parsed.error.issues.map((issue) => {
    const name = String(issue.path[0] ?? "environment");
    const given = present[name];
    // Echo the bad value to help, except for secrets, which must not reach logs.
    const shown = given === undefined || SECRET_NAME.test(name) ? "" : `=${JSON.stringify(withoutCredentials(given))}`;
    return `  ${name}${shown}: ${issue.message}`;
  });
  throw new EnvError(`invalid configuration:\n${lines.join("\n")}`);
}

/** "true/false", "1/0", "yes/no", "on/off" (any case). */
export const envBoolean = z
  .string()
  .trim()
  .toLowerCase()
  .refine((value) => ["true", "false", "1", "0", "yes", "no", "on", "off"].includes(value), {
    message: "expected true or false",
  })
  .transform((value) => ["true", "1", "yes", "on"].includes(value));

export const envInteger = (min: number, max: number) =>
  z.coerce
    .number({ message: "expected a whole number" })
    .int({ message: "expected a whole number" })
    .min(min, { message: `expected at least ${min}` })
    .max(max, { message: `expected at most ${max}` });

const defaultGeneratorId = `generator-${hostname().replace(/[^A-Za-z0-9._-]/g, "-")}`;

/** Variables that configure a generator (standalone, or the server's local one). */
export const GeneratorEnvSchema = z.object({
  MQTT_URL: z
    .string()
    .url({ message: "expected a URL such as mqtt://host:1883 or ws://host:3000/mqtt" })
    .refine((url) => /^(mqtts?|wss?|tcp|tls):/.test(url), { message: "expected an mqtt://, mqtts://, ws:// or wss:// URL" })
    .default("mqtt://127.0.0.1:1883"),
  MQTT_USERNAME: z.string().min(1).max(128).optional(),
  /** The server's MQTT token (shown on its admin page, kept in its DATA_DIR/secrets.json). */
  MQTT_PASSWORD: z.string().min(1).optional(),
  /** One level of its MQTT topics, as the contract allows. */
  GENERATOR_ID: GeneratorIdSchema.default(defaultGeneratorId),
  SD_API_URL: z.string().url({ message: "expected the base URL of an AUTOMATIC1111 server, e.g. http://127.0.0.1:7860" }).optional(),
  SD_API_AUTH: z
    .string()
    .regex(/^[^:]+:.*$/, { message: "expected user:password (A1111's --api-auth)" })
    .optional(),
  GENERATOR_CONCURRENCY: envInteger(1, 64).default(1),
  /** The largest image this generator takes (width × height); larger jobs go to others. */
  GENERATOR_MAX_PIXELS: envInteger(64 * 64, 2048 * 2048).default(2048 * 2048),
  SD_STEPS: envInteger(1, 150).default(30),
  SD_CFG_SCALE: z.coerce.number({ message: "expected a number" }).min(0).max(30).default(5),
  SD_SAMPLER: z.string().min(1).default("DPM++ SDE Karras"),
  SD_RESTORE_FACES: envBoolean.default(true),
  /** A checkpoint title or name from A1111's /sdapi/v1/sd-models; unset: whatever A1111 has loaded. */
  SD_MODEL: z.string().min(1).max(300).optional(),
  /** Sized for a 2048×2048 image at 30 steps on a mid-range GPU (README "Configuration"). */
  SD_TIMEOUT_SECONDS: envInteger(1, 3600).default(300),
  GENERATOR_MAX_ATTEMPTS: envInteger(1, 10).default(3),
  /** How long stopping waits, once its running jobs are done, for the server to confirm their results. */
  GENERATOR_DRAIN_SECONDS: envInteger(0, 3600).default(10),
});

export type GeneratorEnv = z.infer<typeof GeneratorEnvSchema>;

export interface GeneratorConfig {
  mqttUrl: string;
  /** Defaults to the generator id. */
  mqttUsername?: string;
  mqttPassword?: string;
  generatorId: string;
  concurrency: number;
  /** The largest image it takes, in pixels. */
  maxPixels: number;
  /** Unset: the built-in placeholder renderer. */
  sdApiUrl?: string;
  sdApiAuth?: string;
  sdModel?: string;
  sdTimeoutMs: number;
  /** Attempts per job at the SD backend, the first included. */
  maxAttempts: number;
  defaults: { steps: number; cfgScale: number; samplerName: string; restoreFaces: boolean };
  /** Delay between reconnection attempts to the broker. */
  reconnectMs: number;
  /** Longest wait on stopping, after the running jobs, for their results' `stored` (and the broker). */
  drainMs: number;
  /** Backoff before retry n of a transient backend failure (the last one repeats), and between health probes. */
  retryDelaysMs: number[];
}

export function generatorConfigFrom(env: GeneratorEnv): GeneratorConfig {
  return {
    mqttUrl: env.MQTT_URL,
    mqttUsername: env.MQTT_USERNAME,
    mqttPassword: env.MQTT_PASSWORD,
    generatorId: env.GENERATOR_ID,
    concurrency: env.GENERATOR_CONCURRENCY,
    maxPixels: env.GENERATOR_MAX_PIXELS,
    sdApiUrl: env.SD_API_URL,
    sdApiAuth: env.SD_API_AUTH,
    sdModel: env.SD_MODEL,
    sdTimeoutMs: env.SD_TIMEOUT_SECONDS * 1000,
    maxAttempts: env.GENERATOR_MAX_ATTEMPTS,
    defaults: {
      steps: env.SD_STEPS,
      cfgScale: env.SD_CFG_SCALE,
      samplerName: env.SD_SAMPLER,
      restoreFaces: env.SD_RESTORE_FACES,
    },
    reconnectMs: 1000,
    drainMs: env.GENERATOR_DRAIN_SECONDS * 1000,
    retryDelaysMs: [1_000, 3_000, 10_000],
  };
}
