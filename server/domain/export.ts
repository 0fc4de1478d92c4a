/**
 * The export after the show (GET /admin/export.zip): one record per finished image with what
 * made it, as JSON and as CSV, and the names its PNG gets in the zip and as a download.
 * The successor of the original's `N.txt` sidecar files.
 */
import { and, asc, eq, isNotNull } from "drizzle-orm";
import type { Db } from "../db/client";
import { auditLog, images, prompts, visitors } from "../db/schema";
import { colourFor } from "./colours";

export const EXPORT_SCOPES = ["revealed", "finished"] as const;
/**
 * `revealed`: what the room has seen and the host has not hidden since; `finished`: every image
 * made, revealed or not, hidden ones flagged.
 */
export type ExportScope = (typeof EXPORT_SCOPES)[number];

export interface ExportRecord {
  id: number;
  /** The PNG's path inside the zip; null when its file is missing from DATA_DIR/images. */
  file: string | null;
  prompt: string;
  negativePrompt: string;
  colour: string;
  colourHex: string;
  width: number;
  height: number;
  seed: number;
  sampler: string | null;
  steps: number | null;
  cfgScale: number | null;
  generator: string;
  backend: string;
  queuedMs: number;
  generationMs: number;
  submittedAt: string;
  approvedAt: string | null;
  finishedAt: string;
  revealedAt: string | null;
  /** Kept out of the show and the gallery by the host. */
  hidden: boolean;
}

/** An image row and where its PNG is, for the zip. */
export interface ExportItem {
  record: ExportRecord;
  fileName: string;
}

/** A few lowercase ASCII words of the prompt, safe in any file system and header. */
export function slugOf(prompt: string): string {
  const words = prompt
    .normalize("NFKD")
    .replace(/[\u0300-\u036f]/g, "")
    .toLowerCase()
    .replace(/[^a-z0-9]+/g, "-")
    .replace(/^-+|-+$/g, "");
  // Long prompts lose their last, cut word.
  const cut = words.length <= 40 ? words : words.slice(0, 40).replace(/-[^-]*$/, "");
  return cut || "image";
}

/** `promptgate-12-a-red-fox.png`: the name of an image's download and of its file in the zip. */
export const downloadNameOf = (promptId: number, prompt: string) => `promptgate-${promptId}-${slugOf(prompt)}.png`;

const numberOr = (value: unknown) => (typeof value === "number" && Number.isFinite(value) ? value : null);

/** Finished images of `scope` in submission order. */
export function exportItems(db: Db, scope: ExportScope): ExportItem[] {
  return db
    .select({ prompt: prompts, image: images, hex: visitors.hex })
    .from(prompts)
    .innerJoin(images, eq(images.promptId, prompts.id))
    .innerJoin(visitors, eq(visitors.id, prompts.visitorId))
    .where(and(eq(prompts.status, "done"), scope === "revealed" ? and(isNotNull(prompts.revealedAt), eq(prompts.hidden, false)) : undefined))
    .orderBy(asc(prompts.id))
    .all()
    .map(({ prompt, image, hex }) => {
      // Whatever the generator echoed (an object by the contract; older rows may lack a field).
      const parameters = (image.parameters && typeof image.parameters === "object" ? image.parameters : {}) as Record<string, unknown>;
      return {
        fileName: image.fileName,
        record: {
          id: prompt.id,
          file: `images/${downloadNameOf(prompt.id, prompt.prompt)}`,
          prompt: prompt.prompt,
          negativePrompt: prompt.negativePrompt,
          colour: colourFor(prompt.visitorId).name,
          colourHex: hex,
          width: image.width,
          height: image.height,
          seed: image.seed,
          sampler: typeof parameters.samplerName === "string" ? parameters.samplerName : null,
          steps: numberOr(parameters.steps),
          cfgScale: numberOr(parameters.cfgScale),
          generator: image.generatorId,
          backend: image.backend,
          queuedMs: image.queuedMs,
          generationMs: image.generationMs,
          submittedAt: prompt.createdAt.toISOString(),
          approvedAt: prompt.decidedAt?.toISOString() ?? null,
          finishedAt: image.createdAt.toISOString(),
          revealedAt: prompt.revealedAt?.toISOString() ?? null,
          hidden: prompt.hidden,
        },
      };
    });
}

const CSV_COLUMNS: Array<[string, keyof ExportRecord]> = [
  ["id", "id"],
  ["file", "file"],
  ["prompt", "prompt"],
  ["negative_prompt", "negativePrompt"],
  ["colour", "colour"],
  ["colour_hex", "colourHex"],
  ["width", "width"],
  ["height", "height"],
  ["seed", "seed"],
  ["sampler", "sampler"],
  ["steps", "steps"],
  ["cfg_scale", "cfgScale"],
  ["generator", "generator"],
  ["backend", "backend"],
  ["queued_ms", "queuedMs"],
  ["generation_ms", "generationMs"],
  ["submitted_at", "submittedAt"],
  ["approved_at", "approvedAt"],
  ["finished_at", "finishedAt"],
  ["revealed_at", "revealedAt"],
  ["hidden", "hidden"],
];

/**
 * One CSV cell (RFC 4180). Text a spreadsheet would run as a formula (= + - @, and tab or CR
 * that some strip first) gets a leading ' (OWASP's CSV injection advice): prompts are typed by
 * anonymous guests, the CSV is opened by the host.
 */
export function csvCell(value: string | number | boolean | null): string {
  if (value === null) return "";
  if (typeof value !== "string") return String(value);
  const text = /^[=+\-@\t\r]/.test(value) ? `'${value}` : value;
  return /[",\r\n]/.test(text) ? `"${text.replace(/"/g, '""')}"` : text;
}

/** A CSV file: a header row, CRLF line ends, and a byte-order mark so spreadsheets read UTF-8. */
function csvFile(header: string[], rows: Array<Array<string | number | boolean | null>>): string {
  const lines = [header.join(","), ...rows.map((row) => row.map(csvCell).join(","))];
  return `\uFEFF${lines.join("\r\n")}\r\n`;
}

/** The records as CSV. */
export function metadataCsv(records: ExportRecord[]): string {
  return csvFile(
    CSV_COLUMNS.map(([header]) => header),
    records.map((record) => CSV_COLUMNS.map(([, key]) => record[key])),
  );
}

/** The whole audit log (issue 9 §1), oldest first, as CSV: when, who, what, to what, and the details as JSON. */
export function auditLogCsv(db: Db): string {
  const entries = db.select().from(auditLog).orderBy(asc(auditLog.id)).all();
  return csvFile(
    ["at", "actor", "action", "target", "details"],
    entries.map((entry) => [entry.at.toISOString(), entry.actor, entry.action, entry.target, entry.details === null ? null : JSON.stringify(entry.details)]),
  );
}
