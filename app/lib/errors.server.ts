/**
 * Turning tRPC errors from `context.trpc` calls into HTTP answers for loaders and actions.
 * Server-only (`.server`): Remix leaves it out of the browser build, so a page that imports it
 * for its action downloads none of @trpc/server (issue 10).
 */
import { data, redirect } from "@remix-run/node";
import { TRPCError } from "@trpc/server";
import { getHTTPStatusCodeFromError } from "@trpc/server/http";
import { flattenError } from "zod/mini";
import { $ZodError } from "zod/v4/core";

export interface ActionFailure {
  status: number;
  message: string;
  fieldErrors: Record<string, string[] | undefined>;
  /** For 429: seconds until the caller may try again (sent as Retry-After). */
  retryAfterSeconds: number | null;
}

/**
 * Status, a message fit for the UI, and per-field messages (from zod) of a failed call. Every
 * TRPCError that gets here is a deliberate refusal with a message meant for people: an
 * unexpected failure leaves `context.trpc` as an error answer (server/http/load-context.ts),
 * which is rethrown to the root ErrorBoundary like anything else that is not a TRPCError.
 */
export function describeFailure(error: unknown): ActionFailure {
  if (!(error instanceof TRPCError)) throw error;
  const cause = error.cause;
  // $ZodError: what every zod schema throws, `zod/mini`'s (server/domain/prompt-input.ts) included.
  if (cause instanceof $ZodError) {
    return { status: 400, message: "Please fix the highlighted fields.", fieldErrors: flattenError(cause).fieldErrors as Record<string, string[]>, retryAfterSeconds: null };
  }
  // Domain errors carry the wait of a limit (server/domain/errors.ts); read by shape, not by import.
  const retryAfterMs = (cause as { retryAfterMs?: unknown } | undefined)?.retryAfterMs;
  return {
    status: getHTTPStatusCodeFromError(error),
    message: error.message,
    fieldErrors: {},
    retryAfterSeconds: typeof retryAfterMs === "number" ? Math.ceil(retryAfterMs / 1000) : null,
  };
}

const retryAfterHeader = (failure: ActionFailure): Record<string, string> =>
  failure.retryAfterSeconds ? { "Retry-After": String(failure.retryAfterSeconds) } : {};

/** For loaders: a refused call becomes an HTTP error page with its status and message (and Retry-After). */
export function throwAsResponse(error: unknown): never {
  const failure = describeFailure(error);
  throw new Response(failure.message, { status: failure.status, headers: retryAfterHeader(failure) });
}

/** An action's answer to a failed call: `body` with the failure's status (and Retry-After). */
export function failureData<T>(failure: ActionFailure, body: T) {
  return data(body, { status: failure.status, headers: retryAfterHeader(failure) });
}

export const isUnauthorized = (error: unknown) => error instanceof TRPCError && error.code === "UNAUTHORIZED";

/**
 * For admin loaders: a lapsed session goes to the login page; a refusal (a moderator on an
 * admin's page: 403) becomes an error page with its status and message; anything else is rethrown.
 */
export function rethrowForAdmin(error: unknown): never {
  if (isUnauthorized(error)) throw redirect("/admin/login");
  if (error instanceof TRPCError) throwAsResponse(error);
  throw error;
}

/** Admin forms highlight no fields: every field's message, else the failure's own. */
const allFieldMessages = (failure: ActionFailure) => {
  const fieldMessages = Object.values(failure.fieldErrors).flat();
  return fieldMessages.length ? fieldMessages.join(" ") : failure.message;
};

/** The first field's message prefixed by the field's name, for forms with several fields; else the failure's own. */
export const firstFieldNamed = (failure: ActionFailure) => {
  const field = Object.entries(failure.fieldErrors).find(([, messages]) => messages?.length);
  return field ? `${field[0]}: ${field[1]![0]}` : failure.message;
};

/**
 * For admin actions: a lapsed session goes to the login page, anything unexpected is rethrown,
 * and a refused operation becomes `{ message, ...rest }` with its HTTP status (and Retry-After).
 * `messageOf` says what the form shows; by default every field's message.
 */
export function adminActionFailure<T extends object = Record<never, never>>(error: unknown, rest?: T, messageOf: (failure: ActionFailure) => string = allFieldMessages) {
  if (error instanceof Response || isUnauthorized(error)) rethrowForAdmin(error);
  const failure = describeFailure(error);
  return failureData(failure, { message: messageOf(failure), ...(rest as T) });
}
