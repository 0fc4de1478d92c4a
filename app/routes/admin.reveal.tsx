/**
 * The presenter (issue 8 §5): runs the show from a phone or a laptop while the projector shows
 * /show/<code>. Every button is a form (it works without JavaScript); with it, ← → and space
 * move, and the page follows the show live, whoever moved it. Only the image put on screen is
 * revealed (server/domain/show.ts); the one on screen can be hidden from here at once.
 */
import type { ActionFunctionArgs, LinksFunction, LoaderFunctionArgs, MetaFunction } from "@remix-run/node";
import { data } from "@remix-run/node";
import type { ShouldRevalidateFunction } from "@remix-run/react";
import { Form, Link, useActionData, useFetcher, useLoaderData, useRevalidator } from "@remix-run/react";
import { useEffect, useMemo, useState } from "react";
import type { PresenterChange } from "../../server/trpc/routers/show";
import stylesHref from "../show.css";
import { ColourChip } from "../components/colour-chip";
import { endLine } from "../components/show-end";
import { adminActionFailure, rethrowForAdmin } from "../lib/errors.server";
import { LiveStatus, useLive } from "../lib/live";
import { createBrowserClient } from "../lib/trpc-client";

export const links: LinksFunction = () => [{ rel: "stylesheet", href: stylesHref }];
export const meta: MetaFunction = () => [{ title: "Reveal · promptgate" }];

export async function loader({ context }: LoaderFunctionArgs) {
  try {
    return { ...(await context.trpc.show.presenter()), csrfToken: context.csrfToken };
  } catch (error) {
    rethrowForAdmin(error);
  }
}

const MOVES = { start: "start", next: "next", previous: "previous", end: "end", "link-open": "openLink", "link-close": "closeLink" } as const;

export async function action({ request, context }: ActionFunctionArgs) {
  const form = await context.readForm(request);
  const intent = String(form.get("intent"));
  try {
    if (intent in MOVES) await context.trpc.show[MOVES[intent as keyof typeof MOVES]]();
    else if (intent === "mode") await context.trpc.show.setMode({ mode: String(form.get("mode")) as "order" }); // any text: the procedure refuses what is not a mode
    else if (intent === "auto") await context.trpc.show.setAutoAdvance({ seconds: Number(form.get("seconds") || 0) });
    else if (intent === "hide") await context.trpc.admin.hide({ id: Number(form.get("id")), hidden: true });
    else return data({ message: `Unknown action ${intent}.` }, { status: 400 });
    return { message: null };
  } catch (error) {
    // One field per form here: its message says what to fix.
    return adminActionFailure(error, {}, (failure) => Object.values(failure.fieldErrors).flat()[0] ?? failure.message);
  }
}

/** The stream brings every change: a move does not reload the page. */
export const shouldRevalidate: ShouldRevalidateFunction = ({ formMethod, defaultShouldRevalidate }) => formMethod?.toUpperCase() !== "POST" && defaultShouldRevalidate;

const MODE_LABELS = { order: "In order", colour: "By colour (each guest's round)", shuffle: "Shuffle" } as const;

export default function Presenter() {
  const { liveCursor, show: loaded, origin, csrfToken } = useLoaderData<typeof loader>();
  const failed = useActionData<typeof action>();
  const [show, setShow] = useState(loaded);
  useEffect(() => setShow(loaded), [loaded]);
  const fetcher = useFetcher<typeof action>();
  const revalidator = useRevalidator();
  const client = useMemo(() => createBrowserClient(csrfToken), [csrfToken]);
  const live = useLive(
    liveCursor,
    (lastEventId, handlers) => client.show.onPresenter.subscribe({ lastEventId }, handlers),
    (event: PresenterChange) => setShow(event.show),
    () => revalidator.revalidate(),
  );
  const message = (fetcher.data ?? failed)?.message;

  useEffect(() => {
    const onKey = (event: KeyboardEvent) => {
      if (event.target instanceof HTMLInputElement || event.target instanceof HTMLSelectElement) return;
      const intent = event.key === "ArrowRight" || event.key === " " || event.key === "PageDown" ? "next" : event.key === "ArrowLeft" || event.key === "PageUp" ? "previous" : null;
      if (!intent) return;
      event.preventDefault();
      fetcher.submit({ intent, _csrf: csrfToken }, { method: "post" });
    };
    window.addEventListener("keydown", onKey);
    return () => window.removeEventListener("keydown", onKey);
  }, [fetcher, csrfToken]);

  const move = (intent: string, label: string, className = "", id?: number) => (
    <fetcher.Form method="post" className="presenter-move">
      <input type="hidden" name="_csrf" value={csrfToken} />
      {id !== undefined && <input type="hidden" name="id" value={id} />}
      <button type="submit" name="intent" value={intent} className={className}>
        {label}
      </button>
    </fetcher.Form>
  );
  const showUrl = show.code && `${origin}/show/${show.code}`;

  return (
    <main className="page presenter">
      <header className="presenter-header">
        <h1>Reveal</h1>
        <Link to="/admin">Back to moderation</Link>
      </header>
      <LiveStatus state={live} />
      <section className="presenter-stage" aria-label="On screen">
        {show.phase === "image" && show.slide ? (
          <>
            <img src={`/images/${show.slide.id}.png`} alt={show.slide.prompt} width={show.slide.width} height={show.slide.height} />
            <p className="presenter-caption">
              <ColourChip colour={show.slide.author} /> <span className="show-prompt">{show.slide.prompt}</span>
            </p>
          </>
        ) : (
          <p className="presenter-card">
            {show.phase === "waiting" ? "Not started: the audience sees the join code." : show.phase === "title" ? "Title card: press Next for the first image." : `End card: That's all! ${endLine(show)}`}
          </p>
        )}
        <p className="presenter-position" data-testid="position">
          {show.phase === "image" ? `${show.position} / ${show.total}` : `${show.unseen} image${show.unseen === 1 ? "" : "s"} not yet shown`}
        </p>
        {show.upNext && <p className="hint presenter-next">Next: {show.upNext.prompt}</p>}
      </section>
      <div className="presenter-moves">
        {show.phase === "waiting" ? (
          move("start", "Start the show")
        ) : (
          <>
            {move("previous", "← Previous", "secondary")}
            {move("next", "Next →")}
          </>
        )}
      </div>
      {/* Something on the projector that should not be: off the screen at once, and out of the gallery. Below the moves, away from a thumb reaching for Next. */}
      {show.phase === "image" && show.slide && <div className="presenter-row presenter-hide">{move("hide", "Hide this image from the show", "secondary", show.slide.id)}</div>}
      {message && (
        <p className="error" role="alert">
          {message}
        </p>
      )}
      <p className="hint">← → or space move. The projector follows.</p>

      <h2>Audience link</h2>
      {showUrl ? (
        <p>
          Open <a href={showUrl}>{showUrl}</a> on the projector, or type the code <strong className="show-code">{show.code}</strong> at {origin}/show.
        </p>
      ) : (
        <p>Closed: nobody can watch the show until you open the link.</p>
      )}
      <div className="presenter-row">
        {move("link-open", show.code ? "New code (the old one stops working)" : "Open the audience link", "secondary")}
        {show.code && move("link-close", "Close the link", "secondary")}
      </div>

      <h2>Settings</h2>
      <Form method="post" className="presenter-row">
        <input type="hidden" name="_csrf" value={csrfToken} />
        <input type="hidden" name="intent" value="mode" />
        <label>
          Order of the images not yet shown
          <select name="mode" defaultValue={show.mode} key={show.mode}>
            {Object.entries(MODE_LABELS).map(([mode, label]) => (
              <option key={mode} value={mode}>
                {label}
              </option>
            ))}
          </select>
        </label>
        <button type="submit" className="secondary">
          Set order
        </button>
      </Form>
      <Form method="post" className="presenter-row">
        <input type="hidden" name="_csrf" value={csrfToken} />
        <input type="hidden" name="intent" value="auto" />
        <label>
          Auto-advance, seconds per image (0: by hand)
          <input name="seconds" type="number" min={0} max={600} inputMode="numeric" defaultValue={show.autoAdvanceSeconds} key={show.autoAdvanceSeconds} />
        </label>
        <button type="submit" className="secondary">
          Set
        </button>
      </Form>
      {show.phase !== "waiting" && (
        <div className="presenter-row">
          {move("end", "Show the end card", "secondary")}
          {move("start", "Restart (a new show of the images not yet revealed)", "secondary")}
        </div>
      )}
    </main>
  );
}

