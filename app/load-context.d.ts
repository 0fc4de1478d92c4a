/** Types the `context` of loaders and actions (see server/http/load-context.ts), and opts into Single Fetch types. */
import type { PromptgateLoadContext } from "../server/http/load-context";

declare module "@remix-run/server-runtime" {
  // eslint-disable-next-line @typescript-eslint/no-empty-object-type
  interface AppLoadContext extends PromptgateLoadContext {}
  interface Future {
    v3_singleFetch: true;
  }
}
