/**
 * Moderation vocabulary shared by the admin page and the server: the page offers the same
 * reasons and groups duplicates with the same key the server uses. No zod here: a route that
 * loads full zod makes every page's shared chunk carry it (the visitor page's budget, issue 10).
 */

/** "cancelled": its author (while it waited) or the host (at any time before its image) called it off; final. */
export const PROMPT_STATUSES = ["pending", "approved", "generating", "done", "denied", "failed", "cancelled"] as const;
export type PromptStatus = (typeof PROMPT_STATUSES)[number];

/** One-tap reasons for a denial; a moderator may write their own instead. */
export const DENY_TEMPLATES = ["Not suitable for this event", "Please describe an image", "Duplicate"] as const;

export const DENY_REASON_MAX = 200;

/**
 * How long a decision may be taken back (the server's rule; the page's toast leaves sooner, so
 * a tap on Undo as it goes still arrives in time). After that an approval may already be an
 * image on its way, and a denial has been read: the host decides afresh instead.
 */
export const UNDO_SECONDS = 15;

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
