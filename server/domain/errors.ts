/**
 * Domain errors: thrown by services, mapped to tRPC/HTTP codes in one place
 * (server/trpc/errors.ts). `userMessage` is safe to show; `message` is for logs.
 */
export const DOMAIN_ERROR_CODES = {
  /** The prompt does not exist, or is not the caller's. */
  PROMPT_NOT_FOUND: "NOT_FOUND",
  /** The admin asked for a transition the prompt's state does not allow (e.g. deny a finished prompt). */
  INVALID_TRANSITION: "CONFLICT",
  /** "That's not me" on a session that was not recognised by fingerprint. */
  NOT_RECOGNISED: "CONFLICT",
  /** Wrong admin password. */
  BAD_PASSWORD: "UNAUTHORIZED",
  /** An admin-only operation without an admin session. */
  ADMIN_REQUIRED: "UNAUTHORIZED",
  /** Too many wrong admin passwords from this browser or network: wait (the HTTP answer carries Retry-After). */
  LOGIN_THROTTLED: "TOO_MANY_REQUESTS",
  /** A login link that is unknown, expired or already used. */
  LOGIN_LINK_INVALID: "UNAUTHORIZED",
  /** Changing the admin password with a wrong current one (the session stays: not a 401). */
  WRONG_CURRENT_PASSWORD: "FORBIDDEN",
} as const;

export type DomainErrorCode = keyof typeof DOMAIN_ERROR_CODES;

export class DomainError extends Error {
  override name = "DomainError";
  constructor(
    readonly code: DomainErrorCode,
    readonly userMessage: string,
  ) {
    super(`${code}: ${userMessage}`);
  }
}
