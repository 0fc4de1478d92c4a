/**
 * The audience view (issue 8 §5): what the projector shows, read-only, for the holder of the
 * show's current code. It follows the presenter live; the image fills the screen above a
 * caption band (the author's colour, the prompt clamped to a few lines, the join QR code).
 * A code that is closed or rotated meanwhile ends the view. F toggles full screen.
 */
import type { LinksFunction, LoaderFunctionArgs, MetaFunction } from "@remix-run/node";
import { isRouteErrorResponse, Link, useLoaderData, useRevalidator, useRouteError } from "@remix-run/react";
import { useEffect, useMemo, useState } from "react";
import type { AudienceChange } from "../../server/trpc/routers/show";
import stylesHref from "../show.css";
import { ColourChip } from "../components/colour-chip";
import { endLine } from "../components/show-end";
import { throwAsResponse } from "../lib/errors.server";
import { LiveStatus, useLive } from "../lib/live";
import { createBrowserClient } from "../lib/trpc-client";

export { passOnHeaders as headers } from "../lib/headers";
export const links: LinksFunction = () => [{ rel: "stylesheet", href: stylesHref }];
export const meta: MetaFunction = () => [{ title: "The show · promptgate" }];

export async function loader({ params, context }: LoaderFunctionArgs) {
  try {
    // As the code is read (server/trpc/routers/show.ts): the image addresses below carry it so.
    const code = (params.code ?? "").replace(/[\s-]/g, "").toUpperCase();
    const { liveCursor, show, joinUrl } = await context.trpc.show.audience({ code });
    return { liveCursor, show, code, joinAddress: joinUrl.replace(/^https?:\/\/|\/$/g, ""), csrfToken: context.csrfToken };
  } catch (error) {
    throwAsResponse(error);
  }
}

export default function Show() {
  const { liveCursor, show: loaded, code, joinAddress, csrfToken } = useLoaderData<typeof loader>();
  const [show, setShow] = useState<typeof loaded | null>(loaded);
  useEffect(() => setShow(loaded), [loaded]);
  const revalidator = useRevalidator();
  const client = useMemo(() => createBrowserClient(csrfToken), [csrfToken]);
  const live = useLive(
    liveCursor,
    (lastEventId, handlers) => client.show.onAudience.subscribe({ code, lastEventId }, handlers),
    (event: AudienceChange) => setShow(event.type === "show" ? event.show : null),
    () => revalidator.revalidate(),
  );

  useEffect(() => {
    const onKey = (event: KeyboardEvent) => {
      if (event.key !== "f" && event.key !== "F") return;
      if (document.fullscreenElement) void document.exitFullscreen();
      else void document.documentElement.requestFullscreen().catch(() => undefined);
    };
    window.addEventListener("keydown", onKey);
    return () => window.removeEventListener("keydown", onKey);
  }, []);

  if (!show) {
    return (
      <main className="show show-card">
        <p className="show-title">The show has moved to another link.</p>
        <p>Ask the host for the new code.</p>
      </main>
    );
  }
  const join = (
    <figure className="show-join">
      <img src="/join-qr.svg" alt={`QR code: join at ${joinAddress}`} />
      <figcaption>
        Join: <strong>{joinAddress}</strong>
      </figcaption>
    </figure>
  );
  if (show.phase !== "image" || !show.slide) {
    return (
      <main className="show show-card" data-phase={show.phase}>
        {show.phase === "end" ? (
          <>
            <p className="show-title">That's all!</p>
            <p className="show-subtitle">{endLine(show)}</p>
          </>
        ) : (
          <p className="show-title">{show.phase === "title" ? "The show is about to begin" : "The show starts soon"}</p>
        )}
        {join}
        <LiveStatus state={live} />
      </main>
    );
  }
  const { slide } = show;
  return (
    <main className="show" data-phase="image" style={{ ["--author" as string]: slide.author.hex }}>
      <div className="show-stage">
        <img key={slide.id} src={`/show/${code}/images/${slide.id}.png`} alt={slide.prompt} width={slide.width} height={slide.height} />
      </div>
      <div className="show-caption">
        <div className="show-words">
          <ColourChip colour={slide.author} large />
          <p className="show-prompt">{slide.prompt}</p>
          <p className="show-meta">
            {show.position} / {show.total}
            {show.autoAdvanceSeconds ? ` · next in ${show.autoAdvanceSeconds} s` : ""}
          </p>
          <LiveStatus state={live} />
        </div>
        {join}
      </div>
    </main>
  );
}

export function ErrorBoundary() {
  const error = useRouteError();
  return (
    <main className="page narrow">
      <h1>No show here</h1>
      <p>{isRouteErrorResponse(error) && error.status === 404 ? String(error.data) : "The show could not be loaded. Reload the page."}</p>
      <p>
        <Link to="/show">Type a show code</Link>
      </p>
    </main>
  );
}
