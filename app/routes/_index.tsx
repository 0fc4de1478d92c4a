/**
 * The visitor's page: their colour, the prompt form, and their own prompts' status.
 * Images appear here only after the admin has revealed them.
 */
import type { ActionFunctionArgs, LoaderFunctionArgs } from "@remix-run/node";
import { data } from "@remix-run/node";
import { Form, isRouteErrorResponse, useActionData, useLoaderData, useNavigation, type ClientActionFunctionArgs, type ShouldRevalidateFunction } from "@remix-run/react";
import { useEffect, useRef, useState, type FormEvent } from "react";
import type { OwnPromptChange, OwnPromptInLine } from "../../server/trpc/routers/prompt";
import { checkPromptInput, DIMENSION_DEFAULT, PROMPT_MAX_LENGTH } from "../../server/domain/prompt-rules";
import { ColourChip } from "../components/colour-chip";
import { IdentityPanel } from "../components/identity-panel";
import { LineStanding } from "../components/line-standing";
import { LocalTime } from "../components/local-time";
import { ProgressBar } from "../components/progress-bar";
import { RevealedBanner } from "../components/revealed-banner";
import { StatusBadge } from "../components/status-badge";
import { describeFailure, failureData, throwAsResponse } from "../lib/errors.server";
import { chosenSize, CUSTOM_SIZE, DEFAULT_SIZE, SIZE_PRESETS } from "../lib/image-sizes";
import { followStream } from "../lib/event-stream";
import { LiveStatus, newestFirst, upsertById, useLive } from "../lib/live";

export { passOnHeaders as headers } from "../lib/headers";

export async function loader({ context }: LoaderFunctionArgs) {
  try {
    return { ...(await context.trpc.visitor.page()), csrfToken: context.csrfToken };
  } catch (error) {
    throwAsResponse(error);
  }
}

export async function action({ request, context }: ActionFunctionArgs) {
  const form = await context.readForm(request);
  const intent = String(form.get("intent") ?? "submit");
  const text = (name: string) => String(form.get(name) ?? "");
  /** Runs an identity call; a refusal becomes a message beside the form that asked. */
  const identityAction = async (call: () => Promise<IdentityResult>) => {
    try {
      return await call();
    } catch (error) {
      const failure = describeFailure(error);
      return failureData(failure, { kind: "identity-error" as const, intent, message: failure.fieldErrors.code?.[0] ?? failure.message });
    }
  };
  if (intent === "decline-offer") return identityAction(async () => (await context.trpc.visitor.declineOffer(), { kind: "declined" as const }));
  if (intent === "recover") {
    return identityAction(async () => {
      const { colour } = await context.trpc.visitor.recover({ code: text("code"), colourName: text("colourName") || undefined });
      return { kind: "recovered" as const, colour };
    });
  }
  if (intent === "renew-recovery") return identityAction(async () => ({ kind: "renewed" as const, ...(await context.trpc.visitor.renewRecovery()) }));
  if (intent === "cancel") {
    try {
      await context.trpc.prompt.cancel({ id: Number(form.get("id")) });
      return { kind: "cancelled" as const };
    } catch (error) {
      const failure = describeFailure(error);
      return failureData(failure, { kind: "cancel-error" as const, message: failure.message });
    }
  }
  if (intent !== "submit") throw new Response(`Unknown action ${intent}.`, { status: 400 });

  const values = formValues(form);
  const size = chosenSize(form.get("size") === null ? null : values.size, values.width, values.height);
  if ("error" in size) {
    const failure = { status: 400, message: "Please fix the highlighted fields.", fieldErrors: { size: [size.error] }, retryAfterSeconds: null };
    return failureData(failure, { kind: "error" as const, ...failure, values });
  }
  try {
    const prompt = await context.trpc.prompt.submit({ prompt: values.prompt, negativePrompt: values.negativePrompt, ...size });
    return { kind: "submitted" as const, id: prompt.id };
  } catch (error) {
    const failure = describeFailure(error);
    return failureData(failure, { kind: "error" as const, ...failure, values });
  }
}

/** What the guest typed and chose, to put back in the form whenever it comes back unsent. */
function formValues(form: FormData) {
  const text = (name: string) => String(form.get(name) ?? "");
  return { prompt: text("prompt"), negativePrompt: text("negativePrompt"), size: text("size"), width: text("width"), height: text("height") };
}

/**
 * A submit that never reached the action (offline, the server restarting, a proxy's 502) would
 * replace the page with an error and lose the typed prompt: it comes back as an answer instead,
 * with the form's values. Refusals (4xx) are the server's to explain, as before. Without
 * JavaScript the browser shows its own error, and Back returns to the filled-in form.
 */
export async function clientAction({ request, serverAction }: ClientActionFunctionArgs) {
  const form = await request.clone().formData();
  if (form.get("intent") !== "submit") return serverAction<typeof action>();
  try {
    return await serverAction<typeof action>();
  } catch (error) {
    if (isRouteErrorResponse(error) && error.status < 500) throw error;
    return { kind: "unreachable" as const, values: formValues(form) };
  }
}

/** After an unreachable submit the loaders would fail too: the page stays as it is. */
export const shouldRevalidate: ShouldRevalidateFunction = ({ actionResult, defaultShouldRevalidate }) =>
  (actionResult as { kind?: string } | undefined)?.kind === "unreachable" ? false : defaultShouldRevalidate;

/** The visitor's prompts anew, after a `resync`: `prompt.mine` as a plain GET (this page has no tRPC client). */
async function fetchOwnPrompts(): Promise<OwnPromptInLine[]> {
  const response = await fetch("/api/trpc/prompt.mine");
  if (!response.ok) throw new Error(`prompt.mine answered ${response.status}`);
  return ((await response.json()) as { result: { data: OwnPromptInLine[] } }).result.data;
}

type IdentityResult =
  | { kind: "declined" }
  | { kind: "recovered"; colour: { name: string; hex: string; text: string } }
  | { kind: "renewed"; recovery: { code: string; link: string; qrVersion: string } };
type FieldErrors = Record<string, string[] | undefined>;

export default function VisitorPage() {
  const { me, prompts: loaded, liveCursor, csrfToken } = useLoaderData<typeof loader>();
  const result = useActionData<typeof clientAction>();
  const navigation = useNavigation();
  const [prompts, setPrompts] = useState(loaded);
  const [clientErrors, setClientErrors] = useState<FieldErrors>({});

  useEffect(() => setPrompts(loaded), [loaded]);
  // "Sent!" is a confirmation, not a state: it fades once read.
  const [sentVisible, setSentVisible] = useState(result?.kind === "submitted");
  useEffect(() => {
    setSentVisible(result?.kind === "submitted");
    const timer = setTimeout(() => setSentVisible(false), 8000);
    return () => clearTimeout(timer);
  }, [result]);
  // The prompts as last rendered: a reveal is an image that was not there before.
  const shown = useRef(prompts);
  shown.current = prompts;
  const [revealed, setRevealed] = useState<{ id: number; imageUrl: string } | null>(null);
  const live = useLive(
    liveCursor,
    (lastEventId, handlers) => followStream("prompt.onChange", lastEventId, handlers),
    (event: OwnPromptChange) => {
      if (event.type === "prompt" && event.prompt?.imageUrl && !shown.current.find((prompt) => prompt.id === event.id)?.imageUrl) {
        setRevealed({ id: event.id, imageUrl: event.prompt.imageUrl });
      }
      setPrompts((list) =>
        event.type === "line"
          ? list.map((prompt) => ({ ...prompt, line: event.standings[prompt.id] ?? null }))
          : event.type === "progress"
            ? list.map((prompt) => (prompt.id === event.id ? { ...prompt, progress: event.progress } : prompt))
            : upsertById(list, event.id, event.prompt, newestFirst),
      );
    },
    () => void fetchOwnPrompts().then(setPrompts, () => undefined),
  );

  const serverErrors: FieldErrors = result?.kind === "error" ? result.fieldErrors : {};
  const errors = { ...serverErrors, ...clientErrors };
  const submitting = navigation.state === "submitting" && navigation.formData?.get("intent") === "submit";

  // The same rules as the server's: obvious mistakes are caught before a round trip.
  function validate(event: FormEvent<HTMLFormElement>) {
    const values = formValues(new FormData(event.currentTarget));
    const size = chosenSize(values.size, values.width, values.height);
    const checked = "error" in size ? { fieldErrors: { size: [size.error] } } : checkPromptInput({ ...values, ...size });
    if ("data" in checked) {
      setClientErrors({});
    } else {
      event.preventDefault();
      setClientErrors(checked.fieldErrors);
    }
  }

  const values = result?.kind === "error" || result?.kind === "unreachable" ? result.values : null;
  const size = values?.size || (values ? CUSTOM_SIZE : DEFAULT_SIZE);
  const formKey = result?.kind === "submitted" ? `sent-${result.id}` : "form";

  return (
    <main className="page">
      {revealed && <RevealedBanner promptId={revealed.id} onDismiss={() => setRevealed(null)} />}
      <IdentityPanel me={me} result={result} csrfToken={csrfToken} />

      <section>
        <h1>Send an image prompt</h1>
        <p className="hint">The host approves prompts; the images stay secret until the big reveal.</p>
        <Form method="post" noValidate onSubmit={validate} key={formKey} className="prompt-form">
          <input type="hidden" name="_csrf" value={csrfToken} />
          {/* Labels beside, not around, the textareas: a label's name would take in the text kept in them. */}
          <label htmlFor="prompt">Prompt</label>
          <textarea id="prompt" name="prompt" rows={3} maxLength={PROMPT_MAX_LENGTH * 2} defaultValue={values?.prompt} aria-invalid={!!errors.prompt} required />
          <FieldError messages={errors.prompt} id="prompt" />
          <fieldset className="sizes">
            <legend>Size</legend>
            <div className="size-choices">
              {SIZE_PRESETS.map((preset) => (
                <label key={preset.id}>
                  <input type="radio" name="size" value={preset.id} defaultChecked={size === preset.id} />
                  {`${preset.label} `}
                  <span className="hint">{`${preset.width}×${preset.height}`}</span>
                </label>
              ))}
              <label>
                <input type="radio" name="size" value={CUSTOM_SIZE} defaultChecked={size === CUSTOM_SIZE} />
                Custom
              </label>
            </div>
            {/* Shown while "Custom" is checked (CSS :has); a browser without :has shows them always. */}
            <div className="dimensions custom-size">
              <label>
                Width
                <input name="width" inputMode="numeric" defaultValue={values?.width ?? DIMENSION_DEFAULT} aria-invalid={!!errors.width} />
              </label>
              <label>
                Height
                <input name="height" inputMode="numeric" defaultValue={values?.height ?? DIMENSION_DEFAULT} aria-invalid={!!errors.height} />
              </label>
            </div>
            <FieldError messages={errors.size} id="size" />
            <FieldError messages={errors.width} id="width" />
            <FieldError messages={errors.height} id="height" />
          </fieldset>
          <details className="more-options" open={!!values?.negativePrompt || !!errors.negativePrompt}>
            <summary>More options</summary>
            <label htmlFor="negativePrompt">Leave out</label>
            <p className="hint" id="negativePrompt-hint">
              The &ldquo;negative prompt&rdquo;: what the image should not have, e.g. &ldquo;blurry, text&rdquo;.
            </p>
            <textarea id="negativePrompt" name="negativePrompt" rows={2} defaultValue={values?.negativePrompt} aria-invalid={!!errors.negativePrompt} aria-describedby="negativePrompt-hint" />
            <FieldError messages={errors.negativePrompt} id="negativePrompt" />
          </details>
          {result?.kind === "error" && !Object.keys(result.fieldErrors).length && (
            <p className="error" role="alert">
              {result.message}
            </p>
          )}
          {result?.kind === "unreachable" && (
            <p className="error" role="alert">
              Could not reach the server — your prompt is kept; try again in a moment.
            </p>
          )}
          {result?.kind === "submitted" && sentVisible && (
            <p className="success" role="status">
              Sent! It is waiting for the host&apos;s approval.
            </p>
          )}
          <button type="submit" name="intent" value="submit" disabled={submitting}>
            {submitting ? "Sending…" : "Send prompt"}
          </button>
        </Form>
      </section>

      <section>
        <h2>Your prompts</h2>
        <LiveStatus state={live} />
        {result?.kind === "cancel-error" && (
          <p className="error" role="alert">
            {result.message}
          </p>
        )}
        {/* Every card's Cancel submits this one form (form=): one CSRF field per page, not one per card. */}
        <Form method="post" id="cancel-form">
          <input type="hidden" name="_csrf" value={csrfToken} />
          <input type="hidden" name="intent" value="cancel" />
        </Form>
        {prompts.length === 0 ? (
          <p className="hint">Nothing yet. Your prompts and their status will show up here.</p>
        ) : (
          <ul className="own-prompts">
            {prompts.map((prompt) => (
              <li key={prompt.id} id={`prompt-${prompt.id}`} data-prompt-id={prompt.id}>
                <div>
                  <p className="prompt-text">{prompt.prompt}</p>
                  <p className="hint">
                    {`${prompt.width}×${prompt.height} · `}
                    <LocalTime iso={prompt.createdAt} />
                  </p>
                  {prompt.notice && <p className="flag">{prompt.notice}</p>}
                  {prompt.denyReason && <p className="deny-reason">{`Why: ${prompt.denyReason}`}</p>}
                  {prompt.line && <LineStanding standing={prompt.line} />}
                  {prompt.status === "generating" && prompt.progress && <ProgressBar progress={prompt.progress} />}
                </div>
                <StatusBadge status={prompt.imageUrl ? "revealed" : prompt.status} />
                {(prompt.status === "pending" || prompt.status === "approved") && (
                  <button type="submit" form="cancel-form" name="id" value={prompt.id} className="secondary cancel" aria-label={`Cancel “${prompt.prompt.slice(0, 40)}”`}>
                    Cancel
                  </button>
                )}
                {prompt.imageUrl && <img src={prompt.imageUrl} alt={prompt.prompt} className="own-image" />}
                {prompt.imageUrl && (
                  <a href={`${prompt.imageUrl}?download=1`} download className="download">
                    Download
                  </a>
                )}
              </li>
            ))}
          </ul>
        )}
      </section>
    </main>
  );
}

function FieldError({ messages, id }: { messages?: string[]; id: string }) {
  if (!messages?.length) return null;
  return (
    <p className="error" role="alert" data-field={id}>
      {messages.join(" · ")}
    </p>
  );
}
