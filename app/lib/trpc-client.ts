/** The browser's tRPC client, for live data (polling) and small mutations from the UI. */
import { createTRPCClient, httpBatchLink } from "@trpc/client";
import type { AppRouter } from "../../server/trpc/root";

export function createBrowserClient(csrfToken: string) {
  return createTRPCClient<AppRouter>({
    links: [httpBatchLink({ url: "/api/trpc", maxItems: 10, headers: () => ({ "x-csrf-token": csrfToken }) })],
  });
}

/** Calls `refresh` every `ms` while the page is visible; returns the cleanup for useEffect. */
export function pollWhileVisible(refresh: () => void, ms: number): () => void {
  const timer = setInterval(() => {
    if (document.visibilityState === "visible") refresh();
  }, ms);
  return () => clearInterval(timer);
}
