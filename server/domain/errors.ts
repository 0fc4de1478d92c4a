/**
 * Domain errors: thrown by services, mapped to tRPC/HTTP codes in one place
 * (server/trpc/errors.ts). `userMessage` is safe to show; `message` is for logs.
 */
export const DOMAIN_ERROR_CODES = {
  /** The prompt does not exist, or is not the caller's. */
  PROMPT_NOT_FOUND: "NOT_FOUND",
  /** The admin named a visitor that does not exist. */
  VISITOR_NOT_FOUND: "NOT_FOUND",
  /** The admin asked for a transition the prompt's state does not allow (e.g. deny a finished prompt). */
  INVALID_TRANSITION: "CONFLICT",
  /** "I'm new" without an open "are you Teal?" offer. */
  NO_SUCH_OFFER: "CONFLICT",
  /** A recovery code that does not prove the identity: says nothing about who it might be. */
  RECOVERY_FAILED: "BAD_REQUEST",
  /** A recovery link that is unknown or was replaced by a new one. */
  RECOVERY_LINK_INVALID: "NOT_FOUND",
  /** A limit for anonymous visitors (attempts, submits, pending prompts, new identities): retry after `retryAfterMs`. */
  RATE_LIMITED: "TOO_MANY_REQUESTS",
  /** Wrong admin password. */
  BAD_PASSWORD: "UNAUTHORIZED",
  /** An admin-only operation without an admin session. */
  ADMIN_REQUIRED: "UNAUTHORIZED",
  /** Too many wrong admin passwords from this browser or network: retry after `retryAfterMs`. */
  LOGIN_THROTTLED: "TOO_MANY_REQUESTS",
  /** A login link that is unknown, expired or already used. */
  LOGIN_LINK_INVALID: "UNAUTHORIZED",
  /** Changing the admin password with a wrong current one (the session stays: not a 401). */
  WRONG_CURRENT_PASSWORD: "FORBIDDEN",
  /** A generator name that breaks the contract's id rules, or is the built-in generator's. */
  INVALID_GENERATOR_NAME: "BAD_REQUEST",
  /** Adding a generator under a name that already has a credential. */
  GENERATOR_EXISTS: "CONFLICT",
  /** Revoking a generator that has no credential. */
  GENERATOR_NOT_FOUND: "NOT_FOUND",
  /** A signed-in account or API token that may not do this (a moderator managing accounts, a token without the scope). */
  NOT_ALLOWED: "FORBIDDEN",
  /** An account or token name that breaks the naming rules. */
  INVALID_NAME: "BAD_REQUEST",
  /** A new password that is too short, too long, or among the most common ones. */
  INVALID_PASSWORD: "BAD_REQUEST",
  /** Adding an account under a name that is taken. */
  ACCOUNT_EXISTS: "CONFLICT",
  /** Removing an account that does not exist. */
  ACCOUNT_NOT_FOUND: "NOT_FOUND",
  /** Ending a session that is not one of the caller's live sessions (another account's, ended, or made up). */
  SESSION_NOT_FOUND: "NOT_FOUND",
  /** Removing the first admin, or one's own account. */
  ACCOUNT_PROTECTED: "CONFLICT",
  /** Adding a person by their single sign-on identity while no trusted proxy can vouch for anyone (TRUSTED_PROXIES unset). */
  PROXY_SIGN_IN_OFF: "PRECONDITION_FAILED",
  /** Creating an API token under a name that is taken. */
  TOKEN_EXISTS: "CONFLICT",
  /** Revoking an API token that does not exist. */
  TOKEN_NOT_FOUND: "NOT_FOUND",
  /** The admin has closed the gallery: for everyone else it does not exist. */
  GALLERY_CLOSED: "NOT_FOUND",
  /** The show's audience link is closed, or this is not its current code: for its holder there is no show. */
  SHOW_NOT_FOUND: "NOT_FOUND",
  /** Moving through a show that has not been started. */
  SHOW_NOT_STARTED: "CONFLICT",
} as const;

export type DomainErrorCode = keyof typeof DOMAIN_ERROR_CODES;

export class DomainError extends Error {
  override name = "DomainError";
  constructor(
    readonly code: DomainErrorCode,
    readonly userMessage: string,
    /** For RATE_LIMITED and LOGIN_THROTTLED: when the caller may try again (sent as Retry-After). */
    readonly retryAfterMs?: number,
  ) {
    super(`${code}: ${userMessage}`);
  }
}
