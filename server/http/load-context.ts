/**
 * What Remix loaders and actions receive as `context`: a server-side tRPC caller and form
 * helpers. Routes never import server modules (the Remix compiler would bundle a second copy
 * with its own database handle); they only `import type` from here.
 */
import { data } from "@remix-run/node";
import { TRPCError } from "@trpc/server";
import type { ReportError } from "../error-ref";
import type { Caller } from "../trpc/root";
import { CSRF_FIELD } from "./csrf";
import type { RequestContext } from "./request-context";
import { createCaller } from "../trpc/root";

export type PromptgateLoadContext = {
  /**
   * The tRPC caller. Expected failures (domain, validation, UNAUTHORIZED…) throw TRPCErrors
   * for the route to handle; an unexpected one throws an error answer (500, "Something went
   * wrong (ref …)") that reaches the root ErrorBoundary as it is, already logged.
   */
  trpc: Caller;
  /** The CSRF token to put in forms as the `_csrf` field. */
  csrfToken: string;
  /** Where guests reach this site: PUBLIC_URL, else this request's origin (no trailing slash). */
  publicOrigin: string;
  /** This response's Content-Security-Policy nonce, for the scripts Remix renders (app/entry.server.tsx). */
  cspNonce: string;
  /** Logs an unexpected error under a new ref; returns "Something went wrong (ref …)". */
  reportError: ReportError;
  /** Reads an action's form and checks its CSRF token; throws a 403 Response when it is missing or wrong. */
  readForm(request: Request): Promise<FormData>;
};

/**
 * Remix replaces the message of every Error a loader throws with "Unexpected Server Error" in
 * production, so a TRPCError would lose its ref on the way to the page; an error answer
 * (`data(message, { status })`) is shown as it is. Wraps every procedure of the caller.
 */
function withErrorAnswers<T>(node: T, reportError: ReportError, path: string[]): T {
  if (typeof node !== "function" && (typeof node !== "object" || node === null)) return node;
  return new Proxy(node as T & object, {
    get: (target, key) => (typeof key === "string" ? withErrorAnswers(Reflect.get(target, key), reportError, [...path, key]) : Reflect.get(target, key)),
    async apply(target, thisArg, args) {
      try {
        return await Reflect.apply(target as (...args: unknown[]) => unknown, thisArg, args);
      } catch (error) {
        if (error instanceof TRPCError && error.code === "INTERNAL_SERVER_ERROR") {
          throw data(reportError(error, `page ${path.join(".")}`), { status: 500 });
        }
        throw error;
      }
    },
  });
}

export function createLoadContext(context: RequestContext, cspNonce: string, reportError: ReportError): PromptgateLoadContext {
  return {
    trpc: withErrorAnswers(createCaller(context), reportError, []),
    csrfToken: context.identity.csrfToken(),
    publicOrigin: context.publicOrigin,
    cspNonce,
    reportError,
    async readForm(request) {
      const form = await request.formData();
      if (!context.identity.verifyCsrf(form.get(CSRF_FIELD))) {
        throw new Response("This form has expired (CSRF check failed). Reload the page and try again.", { status: 403 });
      }
      return form;
    },
  };
}
