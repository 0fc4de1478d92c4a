/**
 * Moderation: the newest prompts (older ones paged in on demand) and those held apart; approve,
 * deny, retry. Changes arrive live (ADR 012); without JavaScript, every form still works.
 */
import type { ActionFunctionArgs, LinksFunction, LoaderFunctionArgs } from "@remix-run/node";
import { data, redirect } from "@remix-run/node";
import type { ShouldRevalidateFunction } from "@remix-run/react";
import { Form, Link, useActionData, useLoaderData, useRevalidator } from "@remix-run/react";
import { useEffect, useMemo, useState, type FormEvent } from "react";
import type { JobProgress } from "../../server/domain/progress";
import type { AdminChange } from "../../server/trpc/routers/admin";
import stylesHref from "../after-show.css";
import { AfterShowPanel } from "../components/after-show-panel";
import { ColourChip } from "../components/colour-chip";
import { GeneratorTable } from "../components/generator-table";
import { LocalTime } from "../components/local-time";
import { ProgressBar } from "../components/progress-bar";
import { StatusBadge } from "../components/status-badge";
import { adminActionFailure, rethrowForAdmin } from "../lib/errors";
import { LiveStatus, newestFirst, upsertById, useLive } from "../lib/live";
import { createBrowserClient } from "../lib/trpc-client";

export const links: LinksFunction = () => [{ rel: "stylesheet", href: stylesHref }];

/** `?show=N` asks for the newest N prompts: "Load older" without JavaScript. */
const MAX_SHOWN = 5000;

export async function loader({ request, context }: LoaderFunctionArgs) {
  const show = Number(new URL(request.url).searchParams.get("show"));
  const limit = Number.isInteger(show) && show > 0 ? Math.min(show, MAX_SHOWN) : undefined;
  try {
    return {
      ...(await context.trpc.admin.dashboard(limit ? { limit } : undefined)),
      account: await context.trpc.admin.me(),
      galleryOpen: await context.trpc.gallery.isOpen(),
      csrfToken: context.csrfToken,
    };
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
    else if (intent === "cancel") await context.trpc.admin.cancel({ id });
    else if (intent === "pin") await context.trpc.admin.pinToFront({ id });
    else if (intent === "move-up" || intent === "move-down") await context.trpc.admin.moveInLine({ id, direction: intent === "move-up" ? "up" : "down" });
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

/**
 * With JavaScript, the effect of this page's own actions arrives on the live stream: reloading
 * the page's data would drop the older prompts paged in. Other navigations (?show=) and forms
 * posted elsewhere (the gallery's switch) load as usual.
 */
export const shouldRevalidate: ShouldRevalidateFunction = ({ formMethod, formAction, currentUrl, defaultShouldRevalidate }) =>
  defaultShouldRevalidate && (formMethod?.toUpperCase() !== "POST" || new URL(formAction ?? currentUrl.href, currentUrl).pathname !== currentUrl.pathname);

type Dashboard = ReturnType<typeof useLoaderData<typeof loader>>;

/** The snapshot the page was loaded with, kept up to date by the live stream. */
function fromSnapshot(loaded: Dashboard) {
  const known = new Map([...loaded.held, ...loaded.prompts].map((prompt) => [prompt.id, prompt]));
  return {
    prompts: [...known.values()].sort(newestFirst),
    olderThan: loaded.olderThan,
    counts: loaded.counts,
    generators: loaded.generators,
    line: loaded.line,
    progress: {} as Record<number, JobProgress | null>,
  };
}

export default function AdminPage() {
  const loaded = useLoaderData<typeof loader>();
  const { externalBroker, account, galleryOpen, csrfToken } = loaded;
  const result = useActionData<typeof action>();
  const revalidator = useRevalidator();
  const client = useMemo(() => createBrowserClient(csrfToken), [csrfToken]);
  const [view, setView] = useState(() => fromSnapshot(loaded));
  useEffect(() => setView(fromSnapshot(loaded)), [loaded]);
  const [loadingOlder, setLoadingOlder] = useState(false);

  const live = useLive(
    loaded.liveCursor,
    (lastEventId, handlers) => client.admin.onChange.subscribe({ lastEventId }, handlers),
    (event: AdminChange) =>
      setView((current) => {
        if (event.type === "generators") return { ...current, generators: event.generators };
        if (event.type === "line") return { ...current, line: event.places };
        if (event.type === "progress") return { ...current, progress: { ...current.progress, [event.id]: event.progress } };
        // A prompt older than the pages loaded stays out until they are paged in (held ones always show).
        const shown = event.prompt && (current.olderThan === null || event.id > current.olderThan || event.prompt.held);
        const known = current.prompts.some((prompt) => prompt.id === event.id);
        const prompts = shown || known ? upsertById(current.prompts, event.id, shown ? event.prompt : null, newestFirst) : current.prompts;
        return { ...current, prompts, counts: event.counts };
      }),
    () => revalidator.revalidate(),
  );

  /** "Load older" with JavaScript: the next page joins the list; without, the form asks for more (?show=). */
  function loadOlder(event: FormEvent<HTMLFormElement>) {
    const before = view.olderThan;
    if (before === null) return;
    event.preventDefault();
    setLoadingOlder(true);
    client.admin.olderPrompts
      .query({ before })
      .then((page) => setView((current) => ({ ...current, prompts: [...current.prompts, ...page.prompts.filter((prompt) => !current.prompts.some((known) => known.id === prompt.id))].sort(newestFirst), olderThan: page.olderThan })))
      .catch(() => revalidator.revalidate())
      .finally(() => setLoadingOlder(false));
  }

  const { prompts, counts, generators } = view;
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
          {account?.role === "admin" && (
            <>
              <Link to="/admin/generators">Generators</Link>
              <Link to="/admin/people">People</Link>
              <Link to="/admin/tokens">API tokens</Link>
              <Link to="/admin/audit">Audit log</Link>
            </>
          )}
          <Link to="/admin/account">{account ? `Account (${account.name})` : "Account"}</Link>
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
        {counts.cancelled} cancelled ·{" "}
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
      <LiveStatus state={live} />
      {prompts.length === 0 ? (
        <p className="hint">No prompts yet. Visitors send them from the front page.</p>
      ) : (
        <PromptTable prompts={queue} line={view.line} progress={view.progress} csrfToken={csrfToken} />
      )}
      {view.olderThan !== null && (
        <Form method="get" onSubmit={loadOlder} className="load-older">
          <input type="hidden" name="show" value={Math.min(MAX_SHOWN, prompts.filter((prompt) => prompt.id > view.olderThan!).length + loaded.pageSize)} />
          <button type="submit" className="secondary" disabled={loadingOlder}>
            {loadingOlder ? "Loading…" : "Load older"}
          </button>
        </Form>
      )}
      {held.length > 0 && (
        <section className="held">
          <h2>{`Held apart (${held.length})`}</h2>
          <p className="hint">Prompts from muted colours wait here, out of the queue. Unmute a colour to put its waiting prompts back.</p>
          <PromptTable prompts={held} line={view.line} progress={view.progress} csrfToken={csrfToken} />
        </section>
      )}
      <AfterShowPanel galleryOpen={galleryOpen} counts={view.counts} csrfToken={csrfToken} />
    </main>
  );
}

type Prompt = Dashboard["prompts"][number];

function PromptTable({ prompts, line, progress, csrfToken }: { prompts: Prompt[]; line: Record<number, number>; progress: Record<number, JobProgress | null>; csrfToken: string }) {
  const csrf = <input type="hidden" name="_csrf" value={csrfToken} />;
  const lineLength = Object.keys(line).length;
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
              {line[prompt.id] !== undefined && <p className="hint line-place">{`#${line[prompt.id]} in line`}</p>}
              {prompt.status === "generating" && progress[prompt.id] && <ProgressBar progress={progress[prompt.id]!} />}
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
                {line[prompt.id] !== undefined && (
                  <>
                    <button type="submit" name="intent" value="pin" className="secondary" disabled={line[prompt.id] === 1}>
                      Pin to front
                    </button>
                    <button type="submit" name="intent" value="move-up" className="secondary" aria-label={`Move #${prompt.id} up in line`} disabled={line[prompt.id] === 1}>
                      ↑
                    </button>
                    <button type="submit" name="intent" value="move-down" className="secondary" aria-label={`Move #${prompt.id} down in line`} disabled={line[prompt.id] === lineLength}>
                      ↓
                    </button>
                  </>
                )}
                {(prompt.status === "pending" || prompt.status === "approved" || prompt.status === "generating") && (
                  <button type="submit" name="intent" value="cancel" className="secondary" aria-label={`Cancel #${prompt.id}`}>
                    Cancel
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
