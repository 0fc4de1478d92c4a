/**
 * The gallery: every revealed image, newest reveal first, a page at a time, for everyone while
 * the admin keeps it open. Images load lazily as they scroll into view.
 */
import type { ActionFunctionArgs, LinksFunction, LoaderFunctionArgs, MetaFunction } from "@remix-run/node";
import { data, redirect } from "@remix-run/node";
import { Form, Link, isRouteErrorResponse, useLoaderData, useRouteError } from "@remix-run/react";
import stylesHref from "../after-show.css";
import { ColourChip } from "../components/colour-chip";
import { adminActionFailure, throwAsResponse } from "../lib/errors.server";

export { passOnHeaders as headers } from "../lib/headers";
export const links: LinksFunction = () => [{ rel: "stylesheet", href: stylesHref }];
export const meta: MetaFunction = () => [{ title: "Gallery · promptgate" }];

export async function loader({ request, context }: LoaderFunctionArgs) {
  const page = new URL(request.url).searchParams.get("page") ?? "1";
  if (!/^[1-9]\d{0,5}$/.test(page)) throw new Response("No such page.", { status: 400 });
  try {
    return { ...(await context.trpc.gallery.page({ page: Number(page) })), csrfToken: context.csrfToken };
  } catch (error) {
    throwAsResponse(error);
  }
}

/** The admin opens or closes the gallery (from here or from the admin page's "After the show"). */
export async function action({ request, context }: ActionFunctionArgs) {
  const form = await context.readForm(request);
  const intent = form.get("intent");
  if (intent !== "open" && intent !== "close") return data({ message: `Unknown action ${String(intent)}.` }, { status: 400 });
  try {
    await context.trpc.gallery.setOpen({ open: intent === "open" });
  } catch (error) {
    return adminActionFailure(error);
  }
  return redirect(form.get("from") === "admin" ? "/admin" : "/gallery");
}

export default function Gallery() {
  const { items, page, pages, total, open, isAdmin, csrfToken } = useLoaderData<typeof loader>();
  return (
    <main className="page wide">
      <header className="admin-header">
        <h1>Gallery</h1>
        {isAdmin && (
          <nav>
            <Link to="/admin">Back to moderation</Link>
          </nav>
        )}
      </header>
      {isAdmin && (
        <Form method="post" className="note">
          <input type="hidden" name="_csrf" value={csrfToken} />
          <span>{open ? "The gallery is open to everyone. " : "The gallery is closed: only you can see it. "}</span>
          <button type="submit" name="intent" value={open ? "close" : "open"} className="secondary">
            {open ? "Close the gallery" : "Open the gallery"}
          </button>
        </Form>
      )}
      <p className="hint">{total === 0 ? "Nothing revealed yet: the images appear here after the reveal." : `${total} image${total === 1 ? "" : "s"} revealed, newest first.`}</p>
      <ul className="gallery-grid">
        {items.map((item) => (
          <li key={item.id} data-prompt-id={item.id}>
            <img src={item.imageUrl} alt={item.prompt} width={item.width} height={item.height} loading="lazy" decoding="async" />
            <div className="caption">
              <ColourChip colour={item.author} />
              <p className="prompt-text">{item.prompt}</p>
            </div>
          </li>
        ))}
      </ul>
      {pages > 1 && (
        <nav className="pager" aria-label="Pages">
          {page > 1 ? <Link to={`/gallery?page=${page - 1}`}>← Newer</Link> : <span />}
          <span className="hint">{`Page ${page} of ${pages}`}</span>
          {page < pages ? <Link to={`/gallery?page=${page + 1}`}>Older →</Link> : <span />}
        </nav>
      )}
    </main>
  );
}

/** Says why there is no gallery ("The gallery is closed."), which the root's generic 404 would not. */
export function ErrorBoundary() {
  const error = useRouteError();
  const message = isRouteErrorResponse(error) && typeof error.data === "string" ? error.data : "Something went wrong.";
  return (
    <main className="page">
      <h1>Gallery</h1>
      <p role="alert">{message}</p>
      <p>
        <a href="/">Back to the start</a>
      </p>
    </main>
  );
}
