/**
 * The contract's payloads as JSON Schema (draft 2020-12) in docs/schemas/, for generators written
 * in other languages. Generated from the zod schemas in contract.ts, never edited by hand:
 * `npm run schemas` writes them, and a unit test fails when the committed files are stale.
 */
import { mkdirSync, writeFileSync } from "node:fs";
import path from "node:path";
import { fileURLToPath, pathToFileURL } from "node:url";
import { z } from "zod";
import { ControlMessageSchema, HeartbeatMessageSchema, JobMessageSchema, PresenceMessageSchema, ProgressMessageSchema, ResultMessageSchema, StatusMessageSchema } from "./contract";

export const SCHEMA_DIR = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "../docs/schemas");

/** Every payload of the contract, by the short name its schema file and docs/protocol.md use. */
export const MESSAGES: Record<string, { schema: z.ZodType; title: string; description: string }> = {
  job: { schema: JobMessageSchema, title: "JobMessage", description: "server → generator on promptgate/v2/generators/<id>/jobs: a job leased to this generator." },
  control: {
    schema: ControlMessageSchema,
    title: "ControlMessage",
    description: "server → generator on promptgate/v2/generators/<id>/control: cancel a job it no longer holds, or a refusal of something it sent.",
  },
  presence: {
    schema: PresenceMessageSchema,
    title: "PresenceMessage",
    description: "generator → server on promptgate/v2/generators/<id>/presence: online with its capabilities and the jobs it holds; offline (also its MQTT will).",
  },
  heartbeat: { schema: HeartbeatMessageSchema, title: "HeartbeatMessage", description: "generator → server on promptgate/v2/generators/<id>/heartbeat: the jobs it holds, every third of their lease." },
  status: { schema: StatusMessageSchema, title: "StatusMessage", description: "generator → server on promptgate/v2/generators/<id>/status/<jobId>: accepted, started, released or failed." },
  progress: {
    schema: ProgressMessageSchema,
    title: "ProgressMessage",
    description: "generator → server on promptgate/v2/generators/<id>/progress/<jobId>, QoS 0, at most 2 a second: step n of m of a job being made. Optional.",
  },
  result: { schema: ResultMessageSchema, title: "ResultMessage", description: "generator → server on promptgate/v2/generators/<id>/results/<jobId>: the finished image." },
};

/**
 * File name → content of every schema. `io: "input"` describes what a receiver accepts: unknown
 * fields are ignored (zod strips them), so the schemas do not forbid them.
 */
export function jsonSchemaFiles(): Record<string, string> {
  return Object.fromEntries(
    Object.entries(MESSAGES).map(([name, { schema, title, description }]) => {
      const { $schema, ...body } = z.toJSONSchema(schema, { io: "input" });
      return [`${name}.schema.json`, `${JSON.stringify({ $schema, title, description, ...body }, null, 2)}\n`];
    }),
  );
}

if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) {
  mkdirSync(SCHEMA_DIR, { recursive: true });
  for (const [file, text] of Object.entries(jsonSchemaFiles())) writeFileSync(path.join(SCHEMA_DIR, file), text);
  console.log(`wrote ${Object.keys(MESSAGES).length} schemas to ${path.relative(process.cwd(), SCHEMA_DIR)}/`);
}
