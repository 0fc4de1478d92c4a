/**
 * What a visitor may submit. Browser-safe: the visitor page validates its form with this same
 * schema before sending, and the server validates again. Written with `zod/mini`, whose parts
 * tree-shake: full zod would be most of the visitor page's download (issue 10). Every message
 * names its field, so it reads the same under the form field and in an API client's error.
 */
import * as z from "zod/mini";
import { IMAGE_DIMENSION } from "../../broker/image-dimension";

export const PROMPT_MAX_LENGTH = 1000;
export const DIMENSION_DEFAULT = 512;

const { min, max, step } = IMAGE_DIMENSION;

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
function text(label: string) {
  return z.string({ error: (issue) => (issue.input === undefined ? `${label} is missing` : `${label} must be text`) }).check(
    z.overwrite((value) => value.replace(/\r\n/g, "\n")),
    z.normalize("NFC"),
    z.trim(),
    z.superRefine((value, ctx) => {
      const reason = FORBIDDEN.find(([pattern]) => pattern.test(value))?.[1];
      // One clear message: a length complaint about text that is refused anyway would only confuse.
      if (reason) ctx.addIssue({ code: "custom", message: `${label} must not contain ${reason}`, continue: false });
    }),
    z.maxLength(PROMPT_MAX_LENGTH, { message: `${label} must be at most ${PROMPT_MAX_LENGTH} characters` }),
  );
}

/** Form fields arrive as strings: "512" is read as 512; "abc", "5.5" and "" are refused. */
function dimension(label: string) {
  return z.pipe(
    z.transform((value: unknown) => (typeof value === "string" && /^\s*-?\d+\s*$/.test(value) ? Number(value) : value)),
    z.int({ message: `${label} must be a whole number of pixels` }).check(
      z.minimum(min, { message: `${label} must be at least ${min} pixels`, abort: true }),
      z.maximum(max, { message: `${label} must be at most ${max} pixels`, abort: true }),
      z.refine((n) => n % step === 0, { message: `${label} must be a multiple of ${step} (e.g. ${min}, 512, 768)` }),
    ),
  );
}

export const PromptInputSchema = z.object({
  prompt: text("Prompt").check(z.minLength(1, { message: "Prompt is empty: describe the image you want" })),
  negativePrompt: z._default(text("Negative prompt"), ""),
  width: z._default(dimension("Width"), DIMENSION_DEFAULT),
  height: z._default(dimension("Height"), DIMENSION_DEFAULT),
});

export type PromptInput = z.infer<typeof PromptInputSchema>;
