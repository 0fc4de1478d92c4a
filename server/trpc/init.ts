/**
 * tRPC setup: the request context, the error formatter, and the three kinds of procedure.
 *
 * 1. Context: services plus the request's identity (cookies), built per HTTP request by
 *    server/http/request-context.ts, for /api/trpc and for Remix loaders alike.
 * 2. Errors: DomainErrors become tRPC errors in one place (./errors.ts); the formatter adds
 *    `userMessage` and zod's flattened field errors for forms. An unexpected error answers
 *    only "Something went wrong (ref …)": the transport's onError has logged it under that ref.
 * 3. Procedures: public, visitor (an identity is resolved or created, or a `submit` API token's),
 *    account (a login), moderate and read (a login, or an API token with that scope), admin
 *    (an admin's login). Signed in without the right is 403 with a message; not signed in, 401.
 */
import { initTRPC, TRPCError } from "@trpc/server";
import { z } from "zod";
import type { RequestContext } from "../http/request-context";
import type { ApiTokenScope } from "../db/schema";
import { isApiTokenLive } from "../domain/api-tokens";
import { DomainError } from "../domain/errors";
import { messageForUnexpected } from "../error-ref";
import { toTRPCError } from "./errors";

/** "Negative prompt must …" names the field `negativePrompt`. */
const namesItsField = (message: string, field: string) => message.replace(/\s/g, "").toLowerCase().startsWith(field.toLowerCase());

/**
 * A message fit for the UI: never a stack, never zod's raw JSON. An internal error (even one
 * caused by a ZodError, e.g. a parse inside a service) shows only its ref: its own message
 * can be SQL, a file path or a schema.
 */
function userMessageOf(error: TRPCError): string {
  if (error.code === "INTERNAL_SERVER_ERROR") return messageForUnexpected(error);
  const cause = error.cause;
  if (cause instanceof DomainError) return cause.userMessage;
  if (cause instanceof z.core.$ZodError) {
    const issue = cause.issues[0];
    if (!issue) return "Invalid input.";
    const field = issue.path.join(".");
    // Schemas the UI uses name their field in each message ("Width must be …"); zod's defaults do not.
    return !field || namesItsField(issue.message, field) ? issue.message : `${field}: ${issue.message}`;
  }
  return error.message;
}

const t = initTRPC.context<RequestContext>().create({
  // Live updates (ADR 012): a ping every 10 s keeps proxies from closing a quiet stream, and a
  // client that hears nothing for 25 s (a connection dead without a reset) reconnects.
  sse: { ping: { enabled: true, intervalMs: 10_000 }, client: { reconnectAfterInactivityMs: 25_000 } },
  // tRPC's default is NODE_ENV !== "production", and then every error answer carries a stack
  // with absolute paths: never, whoever starts the server and however.
  isDev: false,
  errorFormatter({ shape, error }) {
    const cause = error.cause;
    const internal = error.code === "INTERNAL_SERVER_ERROR";
    return {
      ...shape,
      message: internal ? messageForUnexpected(error) : shape.message,
      data: {
        ...shape.data,
        userMessage: userMessageOf(error),
        domainCode: cause instanceof DomainError ? cause.code : null,
        fieldErrors: cause instanceof z.core.$ZodError && !internal ? z.flattenError(cause).fieldErrors : null,
      },
    };
  },
});

/** Turns DomainErrors thrown below into their tRPC codes. */
const domainErrors = t.middleware(async ({ next }) => {
  const result = await next();
  if (!result.ok && result.error.cause instanceof DomainError) throw toTRPCError(result.error.cause);
  return result;
});

export const router = t.router;
export const createCallerFactory = t.createCallerFactory;
export const publicProcedure = t.procedure.use(domainErrors);

export const visitorProcedure = publicProcedure.use(async ({ ctx, next }) => {
  const { visitor, offer } = await ctx.identity.visitor();
  return next({ ctx: { ...ctx, visitor, offer } });
});

const logInFirst = () => new TRPCError({ code: "UNAUTHORIZED", message: "Log in first." });

/**
 * For streams, which outlive the check their procedure made when they opened: throws once the
 * cookie session behind them has ended (logout, the account removed), or the API token they
 * were opened with was revoked.
 */
export function assertStillSignedIn(ctx: RequestContext): void {
  const token = ctx.identity.apiToken;
  if (token ? !isApiTokenLive(ctx.services.db, token.id) : !ctx.identity.account()) throw logInFirst();
}

/** Who acts, for the audit log: an account's name, or `token:<name>` for an API token. */
const tokenActor = (name: string) => `token:${name}`;

/**
 * Signed-in people only (their own password, their own sessions): an admin or moderator
 * session. API tokens are refused.
 */
export const accountProcedure = publicProcedure.use(({ ctx, next }) => {
  if (ctx.identity.apiToken) throw new DomainError("NOT_ALLOWED", "This needs a login, not an API token.");
  const account = ctx.identity.account();
  if (!account) throw logInFirst();
  return next({ ctx: { ...ctx, account, actor: account.name } });
});

/**
 * Moderation (`moderate`) and reading the moderation list and images (`read`): any admin or
 * moderator, or an API token with that scope.
 */
function staffProcedure(scope: Exclude<ApiTokenScope, "submit">) {
  return publicProcedure.use(({ ctx, next }) => {
    const token = ctx.identity.apiToken;
    if (token) {
      if (!token.scopes.includes(scope)) throw new DomainError("NOT_ALLOWED", `API token "${token.name}" has no ${scope} scope.`);
      return next({ ctx: { ...ctx, actor: tokenActor(token.name) } });
    }
    const account = ctx.identity.account();
    if (!account) throw logInFirst();
    return next({ ctx: { ...ctx, actor: account.name } });
  });
}

export const moderateProcedure = staffProcedure("moderate");
export const readProcedure = staffProcedure("read");

/** Managing accounts, API tokens and generators: admins only, never a moderator or a token. */
export const adminProcedure = accountProcedure.use(({ ctx, next }) => {
  if (ctx.account.role !== "admin") throw new DomainError("NOT_ALLOWED", "Only an admin can manage accounts, API tokens and generators.");
  return next();
});
