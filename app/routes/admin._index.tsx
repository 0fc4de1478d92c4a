/** Moderation: every prompt, newest first; approve, deny, retry. */
import type { ActionFunctionArgs, LinksFunction, LoaderFunctionArgs } from "@remix-run/node";
import { data, redirect } from "@remix-run/node";
import { Form, Link, useActionData, useLoaderData, useRevalidator } from "@remix-run/react";
import { useEffect } from "react";
import stylesHref from "../after-show.css";
import { AfterShowPanel } from "../components/after-show-panel";
import { ColourChip } from "../components/colour-chip";
import { GeneratorTable } from "../components/generator-table";
import { LocalTime } from "../components/local-time";
import { StatusBadge } from "../components/status-badge";
import { adminActionFailure, rethrowForAdmin } from "../lib/errors";
import { pollWhileVisible } from "../lib/trpc-client";

export const links: LinksFunction = () => [{ rel: "stylesheet", href: stylesHref }];

export async function loader({ context }: LoaderFunctionArgs) {
  try {
    return { ...(await context.trpc.admin.dashboard()), galleryOpen: await context.trpc.gallery.isOpen(), csrfToken: context.csrfToken };
  } catch (error) {
    rethrowForAdmin(error);
  }
}

export async function action({ request, context }: ActionFunctionArgs) {
  const form = await context.readForm(request);
  const intent = form.get("intent");
  const id = Number(form.get("id"));
  try {
    if (intent === "logout") {
      await context.trpc.admin.logout();
      throw redirect("/admin/login");
    }
    if (intent === "approve") await context.trpc.admin.approve({ id });
    else if (intent === "deny") await context.trpc.admin.deny({ id });
    else if (intent === "retry") await context.trpc.admin.retry({ id });
    else if (intent === "retry-failed") await context.trpc.admin.retryFailed({});
    else if (intent === "retry-selected") await context.trpc.admin.retryFailed({ ids: form.getAll("retryId").map(Number) });
    else if (intent === "mute") await context.trpc.admin.mute({ visitorId: Number(form.get("visitorId")) });
    else if (intent === "unmute") await context.trpc.admin.unmute({ visitorId: Number(form.get("visitorId")) });
    else return data({ message: `Unknown action ${String(intent)}.` }, { status: 400 });
    return { message: null };
  } catch (error) {
    return adminActionFailure(error);
  }
}

export default function AdminPage() {
  const { prompts, counts, generators, externalBroker, galleryOpen, csrfToken } = useLoaderData<typeof loader>();
  const result = useActionData<typeof action>();
  const revalidator = useRevalidator();
  useEffect(() => pollWhileVisible(() => revalidator.state === "idle" && revalidator.revalidate(), 3000), [revalidator]);
  const online = generators.filter((generator) => generator.state === "online");
  const queue = prompts.filter((prompt) => !prompt.held);
  const held = prompts.filter((prompt) => prompt.held);

  return (
    <main className="page wide">
      <header className="admin-header">
        <h1>Moderation</h1>
        <nav>
          <Link to="/admin/reveal" className="button">
            Start the reveal ({counts.done})
          </Link>
          <Link to="/admin/generators">Generators</Link>
          <Link to="/admin/account">Account</Link>
          <Form method="post">
            <input type="hidden" name="_csrf" value={csrfToken} />
            <button type="submit" name="intent" value="logout" className="secondary">
              Log out
            </button>
          </Form>
        </nav>
      </header>
      <p className="summary">
        {counts.pending} pending · {counts.approved + counts.generating} in the works · {counts.done} done ({counts.revealed} revealed) · {counts.denied} denied · {counts.failed} failed ·{" "}
        <span title={online.map((g) => `${g.generatorId} (${g.backend})`).join(", ")}>
          {online.length} generator{online.length === 1 ? "" : "s"} online
        </span>
      </p>
      <details className="generators-panel" open={online.length > 0 && online.some((generator) => !generator.healthy)}>
        <summary>{`Generators (${online.length} online)`}</summary>
        <GeneratorTable generators={generators} />
        <p className="hint">
          <Link to="/admin/generators">Add or revoke generators</Link>
        </p>
        {externalBroker && (
          <p className="hint">{`This server uses the broker at ${externalBroker}: give each generator a user of its own there, named like its GENERATOR_ID, with the rights in docs/deploy/mosquitto.acl.`}</p>
        )}
      </details>
      {counts.failed > 0 && (
        <Form method="post" id="retry-selected" className="bulk-retry">
          <input type="hidden" name="_csrf" value={csrfToken} />
          <span>{`${counts.failed} failed:`}</span>
          <button type="submit" name="intent" value="retry-failed">
            Retry all failed
          </button>
          <button type="submit" name="intent" value="retry-selected" className="secondary">
            Retry selected
          </button>
        </Form>
      )}
      {result?.message && (
        <p className="error" role="alert">
          {result.message}
        </p>
      )}
      {prompts.length === 0 ? (
        <p className="hint">No prompts yet. Visitors send them from the front page.</p>
      ) : (
        <PromptTable prompts={queue} csrfToken={csrfToken} />
      )}
      {held.length > 0 && (
        <section className="held">
          <h2>{`Held apart (${held.length})`}</h2>
          <p className="hint">Prompts from muted colours wait here, out of the queue. Unmute a colour to put its waiting prompts back.</p>
          <PromptTable prompts={held} csrfToken={csrfToken} />
        </section>
      )}
      <AfterShowPanel galleryOpen={galleryOpen} counts={counts} csrfToken={csrfToken} />
    </main>
  );
}

type Prompt = ReturnType<typeof useLoaderData<typeof loader>>["prompts"][number];

function PromptTable({ prompts, csrfToken }: { prompts: Prompt[]; csrfToken: string }) {
  const csrf = <input type="hidden" name="_csrf" value={csrfToken} />;
  return (
    <table className="moderation">
      <thead>
        <tr>
          <th>#</th>
          <th>Author</th>
          <th>Prompt</th>
          <th>Size</th>
          <th>Sent</th>
          <th>Status</th>
          <th>Actions</th>
        </tr>
      </thead>
      <tbody>
        {prompts.map((prompt) => (
          <tr key={prompt.id} data-prompt-id={prompt.id}>
            <td>
              {prompt.status === "failed" ? (
                <label className="select-failed">
                  <input type="checkbox" name="retryId" value={prompt.id} form="retry-selected" aria-label={`Select #${prompt.id} to retry`} />
                  {prompt.id}
                </label>
              ) : (
                prompt.id
              )}
            </td>
            <td>
              <ColourChip colour={prompt.author} />
              <Form method="post" className="mute">
                {csrf}
                <input type="hidden" name="visitorId" value={prompt.author.id} />
                <button type="submit" name="intent" value={prompt.author.muted ? "unmute" : "mute"} className="link-button">
                  {prompt.author.muted ? "Unmute" : "Mute"}
                </button>
              </Form>
            </td>
            <td className="prompt-cell">
              <p className="prompt-text">{prompt.prompt}</p>
              {prompt.negativePrompt && <p className="hint">Not: {prompt.negativePrompt}</p>}
              {prompt.flaggedBy && <p className="flag">{`Matches the blocklist: ${prompt.flaggedBy}`}</p>}
              {prompt.failureReason && <p className="error">{prompt.failureReason}</p>}
              {prompt.notice && <p className="flag">{prompt.notice}</p>}
            </td>
            <td>
              {prompt.width}×{prompt.height}
            </td>
            <td>
              <LocalTime iso={prompt.createdAt} withSeconds />
            </td>
            <td>
              <StatusBadge status={prompt.revealedAt ? "revealed" : prompt.status} />
            </td>
            <td>
              <Form method="post" className="actions">
                {csrf}
                <input type="hidden" name="id" value={prompt.id} />
                {(prompt.status === "pending" || prompt.status === "denied") && (
                  <button type="submit" name="intent" value="approve">
                    Approve
                  </button>
                )}
                {prompt.status === "pending" && (
                  <button type="submit" name="intent" value="deny" className="secondary">
                    Deny
                  </button>
                )}
                {prompt.status === "failed" && (
                  <button type="submit" name="intent" value="retry">
                    Retry
                  </button>
                )}
                {prompt.imageUrl && (
                  <a href={prompt.imageUrl} target="_blank" rel="noreferrer">
                    Peek
                  </a>
                )}
              </Form>
            </td>
          </tr>
        ))}
      </tbody>
    </table>
  );
}
