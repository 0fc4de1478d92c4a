/**
 * "End the event": the export first, then, after a typed END, every visitor's data is deleted
 * (visitors, sessions, fingerprints, prompts, jobs, images and their files). The admin account,
 * generator credentials and settings stay, and the site carries on for new guests.
 */
import type { ActionFunctionArgs, LinksFunction, LoaderFunctionArgs } from "@remix-run/node";
import { data } from "@remix-run/node";
import { Form, Link, useActionData, useLoaderData } from "@remix-run/react";
import stylesHref from "../after-show.css";
import { adminActionFailure, rethrowForAdmin } from "../lib/errors.server";

export { passOnHeaders as headers } from "../lib/headers";
export const links: LinksFunction = () => [{ rel: "stylesheet", href: stylesHref }];

export async function loader({ context }: LoaderFunctionArgs) {
  try {
    return { summary: await context.trpc.event.summary(), csrfToken: context.csrfToken };
  } catch (error) {
    rethrowForAdmin(error);
  }
}

export async function action({ request, context }: ActionFunctionArgs) {
  const form = await context.readForm(request);
  if (form.get("intent") !== "end") return data({ message: `Unknown action ${String(form.get("intent"))}.`, deleted: null }, { status: 400 });
  try {
    return { message: null, deleted: await context.trpc.event.end({ confirm: String(form.get("confirm") ?? "").trim() as "END" }) };
  } catch (error) {
    return adminActionFailure(error, { deleted: null }, (failure) => failure.fieldErrors.confirm?.[0] ?? failure.message);
  }
}

export default function EndEvent() {
  const { summary, csrfToken } = useLoaderData<typeof loader>();
  const result = useActionData<typeof action>();
  const deleted = result?.deleted;
  return (
    <main className="page">
      <header className="admin-header">
        <h1>End the event</h1>
        <nav>
          <Link to="/admin">Back to moderation</Link>
        </nav>
      </header>
      {deleted ? (
        <section role="status">
          <h2>The event is over</h2>
          <p>Deleted:</p>
          <ul className="deleted">
            <li>{`${deleted.visitors} visitors, ${deleted.sessions} sessions, ${deleted.fingerprints} fingerprints`}</li>
            <li>{`${deleted.prompts} prompts and ${deleted.jobs} jobs`}</li>
            <li>{`${deleted.images} images and their files${deleted.orphanFiles ? `, and ${deleted.orphanFiles} stray image files` : ""}`}</li>
          </ul>
          <p className="hint">The admin account, generators and settings are kept. New guests get a colour as before.</p>
        </section>
      ) : (
        <>
          <p>{`There are ${summary.visitors} visitors, ${summary.prompts} prompts and ${summary.images} images (${summary.revealed} revealed).`}</p>
          <h2>1. Export first</h2>
          <p className="hint">A zip of the PNGs with metadata.json and metadata.csv. Nothing can be exported once the event has ended.</p>
          <p>
            <a href="/admin/export.zip?scope=revealed" download className="button">
              Export revealed images
            </a>{" "}
            <a href="/admin/export.zip?scope=finished" download className="button">
              Export all finished images
            </a>
          </p>
          <h2>2. Delete every visitor&apos;s data</h2>
          <Form method="post" className="login-form">
            <input type="hidden" name="_csrf" value={csrfToken} />
            <p className="hint">
              Deletes every visitor, their sessions and fingerprints, every prompt, job and image (files too). Keeps the admin account, the generators and the settings. This
              cannot be undone.
            </p>
            <label>
              Type END to confirm
              <input name="confirm" autoComplete="off" autoCapitalize="characters" required aria-invalid={!!result?.message} />
            </label>
            {result?.message && (
              <p className="error" role="alert">
                {result.message}
              </p>
            )}
            <button type="submit" name="intent" value="end" className="danger">
              End the event and delete
            </button>
          </Form>
        </>
      )}
    </main>
  );
}
