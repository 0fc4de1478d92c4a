/** The browser's tRPC client: live updates over Server-Sent Events, small mutations and queries batched. */
import { createTRPCClient, httpBatchLink, httpSubscriptionLink, splitLink } from "@trpc/client";
import type { AppRouter } from "../../server/trpc/root";

export function createBrowserClient(csrfToken: string) {
  return createTRPCClient<AppRouter>({
    links: [
      splitLink({
        condition: (op) => op.type === "subscription",
        // EventSource reconnects by itself, sending the last event's id; the server resumes from it (ADR 012).
        true: httpSubscriptionLink({ url: "/api/trpc" }),
        false: httpBatchLink({ url: "/api/trpc", maxItems: 10, headers: () => ({ "x-csrf-token": csrfToken }) }),
      }),
    ],
  });
}

export type BrowserClient = ReturnType<typeof createBrowserClient>;
