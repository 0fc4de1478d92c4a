/**
 * What a visitor may submit, as plain functions: the visitor page checks its form with these
 * before sending, and the server's schema (./prompt-input.ts) is made of them, so both give the
 * same messages. No zod here: a schema library would be most of the visitor page's download
 * (issue 10). Every message names its field, so it reads the same under the form field and in
 * an API client's error.
 */
import { IMAGE_DIMENSION } from "../../broker/image-dimension";

export const PROMPT_MAX_LENGTH = 1000;
export const DIMENSION_DEFAULT = 512;

const { min, max, step } = IMAGE_DIMENSION;

/** A field's value as stored, or why it is refused. */
export type RuleResult<T> = { value: T } | { error: string };

/**
 * Characters a prompt may not hold, each with the reason given to the visitor:
 * - C0 controls except tab and line feed, DEL and C1 controls: invisible, and nothing a
 *   keyboard types (a lone carriage return included; a textarea's CRLF is turned into \n first).
 * - Bidi embeddings, overrides and isolates (U+202A–U+202E, U+2066–U+2069): they make the admin
 *   read text in another order than the one stored and sent to the generator ("Trojan Source").
 *   The plain direction marks (U+200E, U+200F, U+061C) stay allowed: right-to-left writing needs them.
 * - Lone surrogates: not text at all (no UTF-8 form); SQLite would store U+FFFD in their place.
 */
const FORBIDDEN: Array<[RegExp, string]> = [
  [/[\u0000-\u0008\u000B-\u001F\u007F-\u009F]/, "control characters (only line breaks and tabs)"],
  [/[\u202A-\u202E\u2066-\u2069]/, "text-direction override characters"],
  [/\p{Cs}/u, "broken characters (a lone half of a surrogate pair)"],
];

/** A text field: CRLF → LF, NFC, trimmed, checked for forbidden characters, then measured. */
function text(label: string, value: unknown): RuleResult<string> {
  if (typeof value !== "string") return { error: value === undefined ? `${label} is missing` : `${label} must be text` };
  const normalised = value.replace(/\r\n/g, "\n").normalize("NFC").trim();
  // One clear message: a length complaint about text that is refused anyway would only confuse.
  const reason = FORBIDDEN.find(([pattern]) => pattern.test(normalised))?.[1];
  if (reason) return { error: `${label} must not contain ${reason}` };
  if (normalised.length > PROMPT_MAX_LENGTH) return { error: `${label} must be at most ${PROMPT_MAX_LENGTH} characters` };
  return { value: normalised };
}

/** Form fields arrive as strings: "512" is read as 512; "abc", "5.5" and "" are refused. */
function dimension(label: string, value: unknown): RuleResult<number> {
  if (value === undefined) return { value: DIMENSION_DEFAULT };
  const n = typeof value === "string" && /^\s*-?\d+\s*$/.test(value) ? Number(value) : value;
  if (typeof n !== "number" || !Number.isSafeInteger(n)) return { error: `${label} must be a whole number of pixels` };
  if (n < min) return { error: `${label} must be at least ${min} pixels` };
  if (n > max) return { error: `${label} must be at most ${max} pixels` };
  if (n % step !== 0) return { error: `${label} must be a multiple of ${step} (e.g. ${min}, 512, 768)` };
  return { value: n };
}

/** One rule per field of a prompt; a missing negative prompt is empty, a missing size 512. */
export const PROMPT_RULES = {
  prompt: (value: unknown): RuleResult<string> => {
    const checked = text("Prompt", value);
    return "value" in checked && !checked.value ? { error: "Prompt is empty: describe the image you want" } : checked;
  },
  negativePrompt: (value: unknown): RuleResult<string> => (value === undefined ? { value: "" } : text("Negative prompt", value)),
  width: (value: unknown) => dimension("Width", value),
  height: (value: unknown) => dimension("Height", value),
};

export type PromptInput = { [Field in keyof typeof PROMPT_RULES]: Extract<ReturnType<(typeof PROMPT_RULES)[Field]>, { value: unknown }>["value"] };

/** Every field's rule at once: the input as stored, or each refused field's message. */
export function checkPromptInput(input: Record<string, unknown>): { data: PromptInput } | { fieldErrors: Partial<Record<keyof PromptInput, string[]>> } {
  const data: Record<string, unknown> = {};
  const fieldErrors: Record<string, string[]> = {};
  for (const [field, rule] of Object.entries(PROMPT_RULES)) {
    const checked = rule(input[field]);
    if ("error" in checked) fieldErrors[field] = [checked.error];
    else data[field] = checked.value;
  }
  return Object.keys(fieldErrors).length ? { fieldErrors } : { data: data as PromptInput };
}
