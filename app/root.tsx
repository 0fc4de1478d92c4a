import type { LinksFunction, MetaFunction } from "@remix-run/node";
import { isRouteErrorResponse, Links, Meta, Outlet, Scripts, ScrollRestoration, useRouteError } from "@remix-run/react";
import type { ReactNode } from "react";
import { useNonce } from "./lib/nonce";
import stylesHref from "./styles.css";

export { passOnHeaders as headers } from "./lib/headers";
export const links: LinksFunction = () => [{ rel: "stylesheet", href: stylesHref }];
export const meta: MetaFunction = () => [{ title: "promptgate" }, { name: "description", content: "Send an image prompt; see it at the reveal." }];

export function Layout({ children }: { children: ReactNode }) {
  const nonce = useNonce();
  return (
    <html lang="en">
      <head>
        <meta charSet="utf-8" />
        <meta name="viewport" content="width=device-width, initial-scale=1" />
        <Meta />
        <Links />
      </head>
      <body>
        {children}
        <ScrollRestoration nonce={nonce} />
        <Scripts nonce={nonce} />
      </body>
    </html>
  );
}

export default function App() {
  return <Outlet />;
}

/**
 * Error answers show their message: a deliberate one, or "Something went wrong (ref …)" for an
 * unexpected failure in a tRPC call (server/http/load-context.ts). Any other thrown error
 * reaches here as Remix's "Unexpected Server Error" and is shown only as something went wrong;
 * the log has it (entry.server's handleError).
 */
export function ErrorBoundary() {
  const error = useRouteError();
  const status = isRouteErrorResponse(error) ? error.status : 500;
  const message = isRouteErrorResponse(error) ? (typeof error.data === "string" ? error.data : error.statusText) : "Something went wrong.";
  return (
    <main className="page">
      <h1>{status === 404 ? "Not found" : `Error ${status}`}</h1>
      <p role="alert">{status === 404 ? "There is nothing at this address." : message}</p>
      <p>
        <a href="/">Back to the start</a>
      </p>
    </main>
  );
}
