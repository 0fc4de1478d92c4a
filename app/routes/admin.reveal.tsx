/**
 * The reveal: a full-screen presentation of finished images. ← → and space move, F toggles
 * full screen. Each image shown is marked revealed, so its author can now see it too. Images
 * that finish while it is open join the list (ADR 012).
 */
import type { ActionFunctionArgs, LoaderFunctionArgs } from "@remix-run/node";
import type { ShouldRevalidateFunction } from "@remix-run/react";
import { Link, useFetcher, useLoaderData, useRevalidator } from "@remix-run/react";
import { useCallback, useEffect, useMemo, useState } from "react";
import type { AdminChange } from "../../server/trpc/routers/admin";
import { ColourChip } from "../components/colour-chip";
import { adminActionFailure, rethrowForAdmin } from "../lib/errors";
import { LiveStatus, upsertById, useLive } from "../lib/live";
import { createBrowserClient } from "../lib/trpc-client";

export async function loader({ context }: LoaderFunctionArgs) {
  try {
    const liveCursor = await context.trpc.prompt.liveCursor();
    return { images: await context.trpc.admin.revealQueue(), liveCursor, csrfToken: context.csrfToken };
  } catch (error) {
    rethrowForAdmin(error);
  }
}

export async function action({ request, context }: ActionFunctionArgs) {
  const form = await context.readForm(request);
  try {
    await context.trpc.admin.markRevealed({ id: Number(form.get("id")) });
    return { message: null };
  } catch (error) {
    return adminActionFailure(error);
  }
}

/** Marking an image revealed changes nothing on screen: the list is not reloaded (the stream brings what changed). */
export const shouldRevalidate: ShouldRevalidateFunction = ({ formMethod, defaultShouldRevalidate }) => formMethod?.toUpperCase() !== "POST" && defaultShouldRevalidate;

const inOrder = (a: { id: number }, b: { id: number }) => a.id - b.id;

export default function Reveal() {
  const { images: loaded, liveCursor, csrfToken } = useLoaderData<typeof loader>();
  const [images, setImages] = useState(loaded);
  useEffect(() => setImages(loaded), [loaded]);
  // By id, not position: an image that finishes late joins in order, before the one on screen.
  const [currentId, setCurrentId] = useState(loaded[0]?.id);
  const fetcher = useFetcher();
  const revalidator = useRevalidator();
  const client = useMemo(() => createBrowserClient(csrfToken), [csrfToken]);
  const live = useLive(
    liveCursor,
    (lastEventId, handlers) => client.admin.onChange.subscribe({ lastEventId }, handlers),
    (event: AdminChange) => {
      if (event.type !== "prompt") return;
      // A hidden image leaves the reveal, even one open already.
      const finished = event.prompt?.status === "done" && !event.prompt.hidden ? event.prompt : null;
      setImages((list) => (finished || list.some((image) => image.id === event.id) ? upsertById(list, event.id, finished, inOrder) : list));
    },
    () => revalidator.revalidate(),
  );
  const index = Math.max(0, images.findIndex((image) => image.id === currentId));
  const current = images[index];

  const move = useCallback((step: number) => setCurrentId(images[Math.min(images.length - 1, Math.max(0, index + step))]?.id), [images, index]);

  useEffect(() => {
    if (current && !current.revealedAt) fetcher.submit({ id: current.id, _csrf: csrfToken }, { method: "post" });
    // Only when the image on screen changes.
    // eslint-disable-next-line react-hooks/exhaustive-deps
  }, [current?.id]);

  useEffect(() => {
    const onKey = (event: KeyboardEvent) => {
      if (event.key === "ArrowRight" || event.key === " " || event.key === "PageDown") {
        event.preventDefault();
        move(1);
      } else if (event.key === "ArrowLeft" || event.key === "PageUp") {
        event.preventDefault();
        move(-1);
      } else if (event.key === "f" || event.key === "F") {
        if (document.fullscreenElement) void document.exitFullscreen();
        else void document.documentElement.requestFullscreen().catch(() => undefined);
      }
    };
    window.addEventListener("keydown", onKey);
    return () => window.removeEventListener("keydown", onKey);
  }, [move]);

  if (!current) {
    return (
      <main className="reveal empty">
        <p>No finished images yet.</p>
        <LiveStatus state={live} />
        <Link to="/admin">Back to moderation</Link>
      </main>
    );
  }

  return (
    <main className="reveal" style={{ ["--author" as string]: current.author.hex }}>
      <figure>
        <img key={current.id} src={current.imageUrl ?? ""} alt={current.prompt} width={current.width} height={current.height} />
        <figcaption>
          <ColourChip colour={current.author} large />
          <blockquote className="reveal-prompt">{current.prompt}</blockquote>
          <p className="reveal-meta">
            {index + 1} / {images.length} · {current.width}×{current.height}
            {current.image ? ` · seed ${current.image.seed}` : ""}
          </p>
          <p className="reveal-help">← → or space to move · F for full screen</p>
          <LiveStatus state={live} />
          <Link to="/admin" className="reveal-exit">
            Exit
          </Link>
        </figcaption>
      </figure>
    </main>
  );
}
