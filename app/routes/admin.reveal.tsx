/**
 * The reveal: a full-screen presentation of finished images. ← → and space move, F toggles
 * full screen. Each image shown is marked revealed, so its author can now see it too.
 */
import type { ActionFunctionArgs, LoaderFunctionArgs } from "@remix-run/node";
import { Link, useFetcher, useLoaderData } from "@remix-run/react";
import { useCallback, useEffect, useState } from "react";
import { ColourChip } from "../components/colour-chip";
import { adminActionFailure, rethrowForAdmin } from "../lib/errors";

export async function loader({ context }: LoaderFunctionArgs) {
  try {
    return { images: await context.trpc.admin.revealQueue(), csrfToken: context.csrfToken };
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

export default function Reveal() {
  const { images, csrfToken } = useLoaderData<typeof loader>();
  const [index, setIndex] = useState(0);
  const fetcher = useFetcher();
  const current = images[index];

  const move = useCallback((step: number) => setIndex((i) => Math.min(images.length - 1, Math.max(0, i + step))), [images.length]);

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
          <Link to="/admin" className="reveal-exit">
            Exit
          </Link>
        </figcaption>
      </figure>
    </main>
  );
}
