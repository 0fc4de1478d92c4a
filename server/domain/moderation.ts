/**
 * Moderation vocabulary shared by the admin page and the server. Browser-safe (zod only): the
 * page offers the same reasons and groups duplicates with the same key the server uses.
 */
import { z } from "zod";

export const PROMPT_STATUSES = ["pending", "approved", "generating", "done", "denied", "failed"] as const;
export type PromptStatus = (typeof PROMPT_STATUSES)[number];

/** One-tap reasons for a denial; a moderator may write their own instead. */
export const DENY_TEMPLATES = ["Not suitable for this event", "Please describe an image", "Duplicate"] as const;

export const DENY_REASON_MAX = 200;

/** The reason its author reads under a denied prompt: trimmed, one line, at most 200 characters; empty means none. */
export const DenyReasonSchema = z
  .string()
  .max(2000)
  .transform((value) => value.normalize("NFC").replace(/\s+/g, " ").trim())
  .pipe(z.string().max(DENY_REASON_MAX, { message: `A reason must be at most ${DENY_REASON_MAX} characters` }))
  // Control and text-direction characters would show the guest something other than what was typed.
  .refine((value) => !/[\u0000-\u001F\u007F-\u009F\u202A-\u202E\u2066-\u2069]/.test(value), { message: "A reason must be plain text" });

/**
 * Prompts that mean the same for a generator read as one: case, accents' composition,
 * punctuation and spacing ignored. "A Cat!" and "a  cat" are alike; "a cat" and "cats" are not.
 */
export const alikeKey = (prompt: string): string =>
  prompt
    .normalize("NFKC")
    .toLocaleLowerCase("en")
    .replace(/[\p{P}\p{S}\s]+/gu, " ")
    .trim();
