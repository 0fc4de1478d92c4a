/**
 * Server rendering. Pages are small, so each response is rendered whole (onAllReady):
 * no streaming, and no bot detection needed. Every script carries the response's CSP nonce.
 */
import { PassThrough } from "node:stream";
import type { AppLoadContext, EntryContext, HandleErrorFunction } from "@remix-run/node";
import { createReadableStreamFromReadable } from "@remix-run/node";
import { RemixServer, isRouteErrorResponse } from "@remix-run/react";
import { renderToPipeableStream } from "react-dom/server";
import { NonceContext } from "./lib/nonce";

const RENDER_TIMEOUT_MS = 5_000;
export const streamTimeout = RENDER_TIMEOUT_MS;

/** Unexpected errors in loaders, actions and rendering: logged once, under a ref. */
export const handleError: HandleErrorFunction = (error, { request, context }) => {
  // A visitor who navigated away, or a request refused as it should be (404, 405 …), is no failure of ours.
  if (request.signal.aborted || (isRouteErrorResponse(error) && error.status < 500)) return;
  context.reportError(error, `${request.method} ${new URL(request.url).pathname}`);
};

export default function handleRequest(
  request: Request,
  responseStatusCode: number,
  responseHeaders: Headers,
  remixContext: EntryContext,
  loadContext: AppLoadContext,
) {
  const nonce = loadContext.cspNonce;
  return new Promise<Response>((resolve, reject) => {
    let failed = false;
    // Cleared as soon as the render is whole: a pending timer would keep every rendered page
    // (tree, data, buffers) alive for seconds, and at hundreds of pages a second the collector
    // then copies them over and over.
    const timer = setTimeout(() => abort(), RENDER_TIMEOUT_MS + 1000);
    const { pipe, abort } = renderToPipeableStream(
      <NonceContext.Provider value={nonce}>
        <RemixServer context={remixContext} url={request.url} abortDelay={RENDER_TIMEOUT_MS} nonce={nonce} />
      </NonceContext.Provider>,
      {
        nonce,
        onAllReady() {
          clearTimeout(timer);
          const body = new PassThrough();
          responseHeaders.set("Content-Type", "text/html; charset=utf-8");
          resolve(new Response(createReadableStreamFromReadable(body), { headers: responseHeaders, status: failed ? 500 : responseStatusCode }));
          pipe(body);
        },
        onShellError(error) {
          clearTimeout(timer);
          reject(error);
        },
        onError(error) {
          failed = true;
          loadContext.reportError(error, `rendering ${new URL(request.url).pathname}`);
        },
      },
    );
  });
}
