/**
 * Moderation, phone first: the newest prompts as cards (older ones paged in on demand) and those
 * held apart; approve, deny with a reason, edit, undo, batch, hide, filter; keys on a laptop.
 * Changes arrive live (ADR 012); without JavaScript, every form still works.
 */
import type { ActionFunctionArgs, LinksFunction, LoaderFunctionArgs } from "@remix-run/node";
import { data, redirect } from "@remix-run/node";
import type { ShouldRevalidateFunction } from "@remix-run/react";
import { Form, Link, useActionData, useLoaderData, useRevalidator } from "@remix-run/react";
import { useEffect, useMemo, useState, type FormEvent, type ReactNode } from "react";
import { alikeKey, DENY_REASON_MAX, DENY_TEMPLATES, PROMPT_STATUSES, UNDO_SECONDS, type PromptStatus } from "../../server/domain/moderation";
import type { JobProgress } from "../../server/domain/progress";
import type { AdminChange } from "../../server/trpc/routers/admin";
import stylesHref from "../after-show.css";
import { AfterShowPanel } from "../components/after-show-panel";
import { ColourChip } from "../components/colour-chip";
import { GeneratorTable } from "../components/generator-table";
import { JoinCard } from "../components/join-card";
import { LocalTime } from "../components/local-time";
import { ProgressBar } from "../components/progress-bar";
import { StatusBadge } from "../components/status-badge";
import { adminActionFailure, rethrowForAdmin } from "../lib/errors.server";
import { LiveStatus, newestFirst, upsertById, useLive } from "../lib/live";
import { createBrowserClient } from "../lib/trpc-client";

export const links: LinksFunction = () => [{ rel: "stylesheet", href: stylesHref }];

/** `?show=N` asks for the newest N prompts: "Load older" without JavaScript. */
const MAX_SHOWN = 5000;

/** The list's filters, from the query string: `?status=pending&colour=12` (a colour is its visitor id). */
function filtersOf(url: URL) {
  const status = url.searchParams.get("status");
  const colour = Number(url.searchParams.get("colour"));
  return {
    status: (PROMPT_STATUSES as readonly string[]).includes(status ?? "") ? (status as PromptStatus) : undefined,
    visitorId: Number.isInteger(colour) && colour > 0 ? colour : undefined,
  };
}

export async function loader({ request, context }: LoaderFunctionArgs) {
  const url = new URL(request.url);
  const show = Number(url.searchParams.get("show"));
  const limit = Number.isInteger(show) && show > 0 ? Math.min(show, MAX_SHOWN) : undefined;
  const filters = filtersOf(url);
  try {
    return {
      ...(await context.trpc.admin.dashboard({
        ...filters,
        ...(limit ? { limit } : {}),
      })),
      filters,
      account: await context.trpc.admin.me(),
      galleryOpen: await context.trpc.gallery.isOpen(),
      csrfToken: context.csrfToken,
      joinUrl: `${context.publicOrigin}/`,
    };
  } catch (error) {
    rethrowForAdmin(error);
  }
}

const NO_GENERATOR = "No generator is online: approved prompts will wait.";

/** What an action answers: a failure or warning to show, and a decision that may be undone. */
interface ActionResult {
  message: string | null;
  warning?: string;
  undo?: { id: number; decision: "approve" | "deny" };
}

export async function action({ request, context }: ActionFunctionArgs) {
  const form = await context.readForm(request);
  const intent = form.get("intent");
  const id = Number(form.get("id"));
  const ids = form.getAll("ids").map(Number);
  // A template's button, else the moderator's own words.
  const reason = String(form.get("template") ?? form.get("reason") ?? "");
  const warnIfNoGenerator = ({ generatorsOnline }: { generatorsOnline: number }) => (generatorsOnline === 0 ? { warning: NO_GENERATOR } : {});
  try {
    if (intent === "logout") {
      await context.trpc.admin.logout();
      throw redirect("/admin/login");
    }
    let result: ActionResult = { message: null };
    if (intent === "approve")
      result = {
        ...result,
        ...warnIfNoGenerator(await context.trpc.admin.approve({ id })),
        undo: { id, decision: "approve" },
      };
    else if (intent === "deny") {
      await context.trpc.admin.deny({ id, reason });
      result.undo = { id, decision: "deny" };
    } else if (intent === "undo") await context.trpc.admin.undo({ id });
    else if (intent === "edit")
      await context.trpc.admin.edit({
        id,
        prompt: String(form.get("prompt") ?? ""),
        negativePrompt: String(form.get("negativePrompt") ?? ""),
      });
    else if (intent === "deny-alike") await context.trpc.admin.denyAlike({ id });
    else if (intent === "approve-selected")
      result = {
        ...result,
        ...warnIfNoGenerator(await context.trpc.admin.approveMany({ ids })),
      };
    else if (intent === "deny-selected") await context.trpc.admin.denyMany({ ids, reason });
    else if (intent === "hide" || intent === "unhide") await context.trpc.admin.hide({ id, hidden: intent === "hide" });
    else if (intent === "retry") await context.trpc.admin.retry({ id });
    else if (intent === "cancel") await context.trpc.admin.cancel({ id });
    else if (intent === "pin") await context.trpc.admin.pinToFront({ id });
    else if (intent === "move-up" || intent === "move-down")
      await context.trpc.admin.moveInLine({
        id,
        direction: intent === "move-up" ? "up" : "down",
      });
    else if (intent === "retry-failed") await context.trpc.admin.retryFailed({});
    else if (intent === "retry-selected") await context.trpc.admin.retryFailed({ ids });
    else if (intent === "mute")
      await context.trpc.admin.mute({
        visitorId: Number(form.get("visitorId")),
      });
    else if (intent === "unmute")
      await context.trpc.admin.unmute({
        visitorId: Number(form.get("visitorId")),
      });
    else return data({ message: `Unknown action ${String(intent)}.` } as ActionResult, { status: 400 });
    return result;
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
    progress: loaded.progress as Record<number, JobProgress | null>,
  };
}

/** How long the Undo toast stays, with JavaScript: gone before the server's window closes, so a last-moment tap still counts. */
const UNDO_MS = (UNDO_SECONDS - 5) * 1000;

export default function AdminPage() {
  const loaded = useLoaderData<typeof loader>();
  const { externalBroker, account, galleryOpen, csrfToken, filters, joinUrl } = loaded;
  const result = useActionData<typeof action>() as ActionResult | undefined;
  const revalidator = useRevalidator();
  const client = useMemo(() => createBrowserClient(csrfToken), [csrfToken]);
  const [view, setView] = useState(() => fromSnapshot(loaded));
  useEffect(() => setView(fromSnapshot(loaded)), [loaded]);
  const [loadingOlder, setLoadingOlder] = useState(false);
  const [selected, setSelected] = useState<ReadonlySet<number>>(new Set());
  useModerationKeys();

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
      .query({ before, ...filters })
      .then((page) =>
        setView((current) => ({
          ...current,
          prompts: [...current.prompts, ...page.prompts.filter((prompt) => !current.prompts.some((known) => known.id === prompt.id))].sort(newestFirst),
          olderThan: page.olderThan,
        })),
      )
      .catch(() => revalidator.revalidate())
      .finally(() => setLoadingOlder(false));
  }

  const { prompts, counts, generators } = view;
  const online = generators.filter((generator) => generator.state === "online");
  // The stream brings every change; the filter applies to what it brings too.
  const matches = (prompt: Prompt) => (!filters.status || prompt.status === filters.status) && (!filters.visitorId || prompt.author.id === filters.visitorId);
  const shown = prompts.filter(matches);
  const queue = shown.filter((prompt) => !prompt.held);
  const held = shown.filter((prompt) => prompt.held);
  const alike = groupAlike(prompts);
  // Every colour with a prompt when the page loaded, and those that arrived live since.
  const colours = [...new Map([...loaded.colours, ...prompts.map((prompt) => prompt.author)].map((author) => [author.id, author])).values()].sort((a, b) => a.name.localeCompare(b.name));
  const cardProps = {
    line: view.line,
    progress: view.progress,
    csrfToken,
    alike,
    selected,
    onSelect: (id: number, on: boolean) =>
      setSelected((current) => {
        const next = new Set(current);
        if (on) next.add(id);
        else next.delete(id);
        return next;
      }),
  };

  return (
    <main className="page wide admin">
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
      {online.length === 0 && <p className="warning no-generator">{NO_GENERATOR}</p>}
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
      {/* Folded away on a phone so the first card is on screen; open while it is in use. */}
      <details className="tools" open={Boolean(filters.status || filters.visitorId || selected.size)}>
        <summary>{`Filter and batch actions${selected.size ? ` (${selected.size} selected)` : ""}${filters.status || filters.visitorId ? " · filtered" : ""}`}</summary>
        <Form method="get" className="filters">
          <label>
            Status
            <select name="status" defaultValue={filters.status ?? ""}>
              <option value="">All</option>
              {PROMPT_STATUSES.map((status) => (
                <option key={status} value={status}>
                  {status}
                </option>
              ))}
            </select>
          </label>
          <label>
            Colour
            <select name="colour" defaultValue={filters.visitorId ?? ""}>
              <option value="">All</option>
              {colours.map((colour) => (
                <option key={colour.id} value={colour.id}>
                  {colour.name}
                </option>
              ))}
            </select>
          </label>
          <button type="submit" className="secondary">
            Filter
          </button>
          {(filters.status || filters.visitorId) && <Link to="/admin">Show all</Link>}
        </Form>
        <Form method="post" id="batch" className="batch" onSubmit={() => setTimeout(() => setSelected(new Set()))}>
          <input type="hidden" name="_csrf" value={csrfToken} />
          <span>{selected.size ? `${selected.size} selected:` : "Selected:"}</span>
          <button type="submit" name="intent" value="approve-selected">
            Approve selected
          </button>
          <select name="reason" aria-label="Reason for denying the selected prompts" defaultValue="">
            <option value="">No reason</option>
            {DENY_TEMPLATES.map((template) => (
              <option key={template}>{template}</option>
            ))}
          </select>
          <button type="submit" name="intent" value="deny-selected" className="secondary">
            Deny selected
          </button>
          {counts.failed > 0 && (
            <>
              <button type="submit" name="intent" value="retry-selected" className="secondary">
                Retry selected
              </button>
              <button type="submit" name="intent" value="retry-failed" className="secondary">
                {`Retry all ${counts.failed} failed`}
              </button>
            </>
          )}
        </Form>
      </details>
      <p className="hint keys">Keys: j / k move · a approve · d deny · e edit · x select · shift+a approve selected</p>
      {result?.message && (
        <p className="error" role="alert">
          {result.message}
        </p>
      )}
      {result?.undo && <UndoToast undo={result.undo} warning={result.warning} csrfToken={csrfToken} />}
      {!result?.undo && result?.warning && (
        <p className="warning" role="alert">
          {result.warning}
        </p>
      )}
      <LiveStatus state={live} />
      {shown.length === 0 ? (
        <p className="hint">{prompts.length === 0 ? "No prompts yet. Visitors send them from the front page." : "No prompt matches this filter."}</p>
      ) : (
        <PromptCards prompts={queue} {...cardProps} />
      )}
      {view.olderThan !== null && (
        <Form method="get" onSubmit={loadOlder} className="load-older">
          <input type="hidden" name="show" value={Math.min(MAX_SHOWN, prompts.filter((prompt) => prompt.id > view.olderThan!).length + loaded.pageSize)} />
          {filters.status && <input type="hidden" name="status" value={filters.status} />}
          {filters.visitorId && <input type="hidden" name="colour" value={filters.visitorId} />}
          <button type="submit" className="secondary" disabled={loadingOlder}>
            {loadingOlder ? "Loading…" : "Load older"}
          </button>
        </Form>
      )}
      {held.length > 0 && (
        <section className="held">
          <h2>{`Held apart (${held.length})`}</h2>
          <p className="hint">Prompts from muted colours wait here, out of the queue. Unmute a colour to put its waiting prompts back.</p>
          <PromptCards prompts={held} {...cardProps} />
        </section>
      )}
      <JoinCard url={joinUrl} />
      <AfterShowPanel galleryOpen={galleryOpen} counts={view.counts} csrfToken={csrfToken} />
    </main>
  );
}

type Prompt = Dashboard["prompts"][number];

/** Pending prompts by alikeKey, for "3 alike": only groups of two or more. */
function groupAlike(prompts: Prompt[]): Map<string, number[]> {
  const groups = new Map<string, number[]>();
  for (const prompt of prompts) {
    if (prompt.status !== "pending") continue;
    const key = alikeKey(prompt.prompt);
    groups.set(key, [...(groups.get(key) ?? []), prompt.id]);
  }
  for (const [key, ids] of groups) if (ids.length < 2) groups.delete(key);
  return groups;
}

/**
 * Moderation from the keyboard: j / k move between cards, a approves, d opens the deny reasons,
 * e the editor, x selects, shift+a approves the selection. Each key presses the card's own
 * button, so it does exactly what a tap would.
 */
function useModerationKeys() {
  useEffect(() => {
    function onKey(event: KeyboardEvent) {
      if (event.ctrlKey || event.metaKey || event.altKey) return;
      const target = event.target as HTMLElement;
      if (target.closest("input, textarea, select, [contenteditable]")) return;
      const cards = [...document.querySelectorAll<HTMLElement>(".prompt-card")];
      const card = target.closest<HTMLElement>(".prompt-card");
      const press = (element: HTMLElement | null | undefined) => {
        if (!element) return;
        event.preventDefault();
        element.click();
      };
      const open = (selector: string) => {
        const details = card?.querySelector<HTMLDetailsElement>(selector);
        if (!details) return;
        event.preventDefault();
        details.open = true;
        details.querySelector<HTMLElement>("input:not([type=hidden]), textarea, button")?.focus();
      };
      if (event.key === "j" || event.key === "k") {
        const next = cards[card ? cards.indexOf(card) + (event.key === "j" ? 1 : -1) : 0];
        if (!next) return;
        event.preventDefault();
        next.focus();
        next.scrollIntoView({ block: "nearest" });
      } else if (event.key === "A") press(document.querySelector<HTMLElement>('#batch button[value="approve-selected"]'));
      else if (event.key === "a") press(card?.querySelector<HTMLElement>('button[value="approve"]'));
      else if (event.key === "d") open("details.deny");
      else if (event.key === "e") open("details.edit");
      else if (event.key === "x") press(card?.querySelector<HTMLElement>('input[name="ids"]'));
    }
    document.addEventListener("keydown", onKey);
    return () => document.removeEventListener("keydown", onKey);
  }, []);
}

/** "Approved #12 · Undo": for a few seconds with JavaScript; without, until the next action. */
function UndoToast({ undo, warning, csrfToken }: { undo: NonNullable<ActionResult["undo"]>; warning?: string; csrfToken: string }) {
  const [open, setOpen] = useState(true);
  useEffect(() => {
    setOpen(true);
    const timer = setTimeout(() => setOpen(false), UNDO_MS);
    return () => clearTimeout(timer);
  }, [undo]);
  if (!open) return null;
  return (
    <div className="toast" role="status">
      <Form method="post">
        <input type="hidden" name="_csrf" value={csrfToken} />
        <input type="hidden" name="id" value={undo.id} />
        <span>{`${undo.decision === "approve" ? "Approved" : "Denied"} #${undo.id}.`}</span>
        {warning && <strong>{` ${warning}`}</strong>}
        <button type="submit" name="intent" value="undo">
          Undo
        </button>
        {undo.decision === "approve" && <span className="hint">Only until a generator takes it.</span>}
      </Form>
    </div>
  );
}

/** A reason or an edit sent: its panel closes and focus returns to the card, so j / k carry on from there. */
function backToCard(event: FormEvent<HTMLFormElement>) {
  const form = event.currentTarget;
  form.closest<HTMLElement>(".prompt-card")?.focus();
  const details = form.closest("details");
  if (details) details.open = false;
}

/** A card's fold-out form (Deny with a reason, Edit): a button that opens it, and sent, it folds back (backToCard). */
function FoldOutForm({ className, label, formClassName, children }: { className: string; label: string; formClassName: string; children: ReactNode }) {
  return (
    <details className={className}>
      <summary role="button" className="button secondary">
        {label}
      </summary>
      <Form method="post" className={formClassName} onSubmit={backToCard}>
        {children}
      </Form>
    </details>
  );
}

/** What the host may still call off: anything before its image exists. */
const CANCELLABLE: PromptStatus[] = ["pending", "approved", "generating"];

interface CardsProps {
  prompts: Prompt[];
  line: Record<number, number>;
  /** The latest progress of each prompt being made (live, never stored). */
  progress: Record<number, JobProgress | null>;
  csrfToken: string;
  alike: Map<string, number[]>;
  selected: ReadonlySet<number>;
  onSelect: (id: number, on: boolean) => void;
}

/**
 * The list with alike pending prompts side by side: each group where its newest member would be,
 * so the host compares them at a glance, keeps the best and denies the others in one tap.
 */
function alikeTogether(prompts: Prompt[], alike: Map<string, number[]>): Array<Prompt | Prompt[]> {
  const groups = new Map<string, Prompt[]>();
  const entries: Array<Prompt | Prompt[]> = [];
  for (const prompt of prompts) {
    const key = prompt.status === "pending" ? alikeKey(prompt.prompt) : null;
    if (key === null || !alike.has(key)) {
      entries.push(prompt);
      continue;
    }
    const group = groups.get(key);
    if (group) group.push(prompt);
    else {
      groups.set(key, [prompt]);
      entries.push(groups.get(key)!);
    }
  }
  return entries.map((entry) => (Array.isArray(entry) && entry.length === 1 ? entry[0]! : entry));
}

function PromptCards({ prompts, ...props }: CardsProps) {
  return (
    <ol className="prompt-cards">
      {alikeTogether(prompts, props.alike).map((entry) =>
        Array.isArray(entry) ? (
          <li key={`alike-${entry[0]!.id}`} className="alike-group" aria-label={`${entry.length} alike prompts`}>
            <p className="alike-head">
              <span className="badge">{`${entry.length} alike`}</span> Keep the best one; deny the others as duplicates.
            </p>
            <ol className="prompt-cards">
              {entry.map((prompt) => (
                <PromptCard key={prompt.id} prompt={prompt} {...props} />
              ))}
            </ol>
          </li>
        ) : (
          <PromptCard key={entry.id} prompt={entry} {...props} />
        ),
      )}
    </ol>
  );
}

function PromptCard({ prompt, line, progress, csrfToken, alike, selected, onSelect }: Omit<CardsProps, "prompts"> & { prompt: Prompt }) {
  const csrf = <input type="hidden" name="_csrf" value={csrfToken} />;
  const lineLength = Object.keys(line).length;
  const idField = <input type="hidden" name="id" value={prompt.id} />;
  const twins = prompt.status === "pending" ? alike.get(alikeKey(prompt.prompt)) : undefined;
  return (
    <li
      key={prompt.id}
      data-prompt-id={prompt.id}
      tabIndex={0}
      aria-label={`Prompt #${prompt.id} by ${prompt.author.name}`}
      className={["prompt-card", prompt.flaggedBy && "flagged", selected.has(prompt.id) && "selected"].filter(Boolean).join(" ")}
    >
      <div className="card-head">
        <label className="select">
          <input
            type="checkbox"
            name="ids"
            value={prompt.id}
            form="batch"
            checked={selected.has(prompt.id)}
            onChange={(event) => onSelect(prompt.id, event.target.checked)}
            aria-label={`Select #${prompt.id}`}
          />
          {`#${prompt.id}`}
        </label>
        <ColourChip colour={prompt.author} />
        <Form method="post" className="mute">
          {csrf}
          <input type="hidden" name="visitorId" value={prompt.author.id} />
          <button type="submit" name="intent" value={prompt.author.muted ? "unmute" : "mute"} className="link-button">
            {prompt.author.muted ? "Unmute" : "Mute"}
          </button>
        </Form>
        <StatusBadge status={prompt.revealedAt && !prompt.hidden ? "revealed" : prompt.status} />
        {prompt.hidden && <span className="badge badge-hidden">Hidden from the show</span>}
      </div>
      {prompt.status === "generating" && <ProgressBar progress={progress[prompt.id] ?? null} />}
      {prompt.flaggedBy && <p className="flag">{`Matches the blocklist: ${prompt.flaggedBy}`}</p>}
      <p className="prompt-text">{prompt.prompt}</p>
      {prompt.negativePrompt && <p className="hint prompt-text">Not: {prompt.negativePrompt}</p>}
      {prompt.original && (
        <p className="hint prompt-text original">
          {`Edited. The guest wrote: ${prompt.original.prompt}`}
          {prompt.original.negativePrompt && ` (not: ${prompt.original.negativePrompt})`}
        </p>
      )}
      <p className="hint">
        {prompt.width}×{prompt.height} · <LocalTime iso={prompt.createdAt} withSeconds />
        {line[prompt.id] !== undefined && (
          <>
            {" · "}
            <span className="line-place">{`#${line[prompt.id]} in line`}</span>
          </>
        )}
      </p>
      {prompt.denyReason && <p className="hint prompt-text">{`Reason given: ${prompt.denyReason}`}</p>}
      {prompt.failureReason && <p className="error">{prompt.failureReason}</p>}
      {prompt.notice && <p className="flag">{prompt.notice}</p>}
      {twins && (
        <Form method="post" className="alike">
          {csrf}
          {idField}
          <button type="submit" name="intent" value="deny-alike" className="secondary">
            {`Deny the other ${twins.length - 1} as duplicates`}
          </button>
        </Form>
      )}
      <div className="card-actions">
        {(prompt.status === "pending" || prompt.status === "denied") && (
          <Form method="post">
            {csrf}
            {idField}
            <button type="submit" name="intent" value="approve">
              Approve
            </button>
          </Form>
        )}
        {prompt.status === "pending" && (
          <FoldOutForm className="deny" label="Deny" formClassName="reasons">
            {csrf}
            {idField}
            <input type="hidden" name="intent" value="deny" />
            <label>
              Reason the guest will read
              <input name="reason" maxLength={DENY_REASON_MAX} placeholder="Your own words (optional)" />
            </label>
            <button type="submit">Deny with this reason</button>
            {DENY_TEMPLATES.map((template) => (
              <button key={template} type="submit" name="template" value={template} className="secondary">
                {template}
              </button>
            ))}
          </FoldOutForm>
        )}
        {prompt.status === "pending" && (
          <FoldOutForm className="edit" label="Edit" formClassName="editor">
            {csrf}
            {idField}
            <label>
              Prompt
              <textarea name="prompt" defaultValue={prompt.prompt} rows={3} required />
            </label>
            <label>
              Negative prompt
              <textarea name="negativePrompt" defaultValue={prompt.negativePrompt} rows={2} />
            </label>
            <button type="submit" name="intent" value="edit">
              Save the edit
            </button>
          </FoldOutForm>
        )}
        {(prompt.status === "failed" || line[prompt.id] !== undefined || prompt.status === "done" || CANCELLABLE.includes(prompt.status)) && (
          <Form method="post" className="more">
            {csrf}
            {idField}
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
            {prompt.status === "done" && (
              <button type="submit" name="intent" value={prompt.hidden ? "unhide" : "hide"} className="secondary">
                {prompt.hidden ? "Show in the reveal" : "Hide from the show"}
              </button>
            )}
            {CANCELLABLE.includes(prompt.status) && (
              <button type="submit" name="intent" value="cancel" className="secondary" aria-label={`Cancel #${prompt.id}`}>
                Cancel
              </button>
            )}
          </Form>
        )}
        {prompt.imageUrl && (
          <a href={prompt.imageUrl} target="_blank" rel="noreferrer" className="peek">
            Peek
          </a>
        )}
      </div>
    </li>
  );
}
