/**
 * What Remix loaders and actions receive as `context`: a server-side tRPC caller and form
 * helpers. Routes never import server modules (the Remix compiler would bundle a second copy
 * with its own database handle); they only `import type` from here.
 */
import type { Caller } from "../trpc/root";
import { CSRF_FIELD } from "./csrf";
import type { RequestContext } from "./request-context";
import { createCaller } from "../trpc/root";

export type PromptgateLoadContext = {
  trpc: Caller;
  /** The CSRF token to put in forms as the `_csrf` field. */
  csrfToken: string;
  /** Reads an action's form and checks its CSRF token; throws a 403 Response when it is missing or wrong. */
  readForm(request: Request): Promise<FormData>;
};

export function createLoadContext(context: RequestContext): PromptgateLoadContext {
  return {
    trpc: createCaller(context),
    csrfToken: context.identity.csrfToken(),
    async readForm(request) {
      const form = await request.formData();
      if (!context.identity.verifyCsrf(form.get(CSRF_FIELD))) {
        throw new Response("This form has expired (CSRF check failed). Reload the page and try again.", { status: 403 });
      }
      return form;
    },
  };
}
