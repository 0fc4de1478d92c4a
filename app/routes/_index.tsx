/**
 * The visitor's page: their colour, the prompt form, and their own prompts' status.
 * Images appear here only after the admin has revealed them.
 */
import type { ActionFunctionArgs, LoaderFunctionArgs } from "@remix-run/node";
import { data } from "@remix-run/node";
import { Form, useActionData, useLoaderData, useNavigation } from "@remix-run/react";
import { useEffect, useMemo, useRef, useState, type FormEvent } from "react";
import { z } from "zod";
import type { OwnPromptChange } from "../../server/trpc/routers/prompt";
import { DIMENSION_DEFAULT, PROMPT_MAX_LENGTH, PromptInputSchema } from "../../server/domain/prompt-input";
import { ColourChip } from "../components/colour-chip";
import { IdentityPanel } from "../components/identity-panel";
import { LineStanding } from "../components/line-standing";
import { LocalTime } from "../components/local-time";
import { ProgressBar } from "../components/progress-bar";
import { RevealedBanner } from "../components/revealed-banner";
import { StatusBadge } from "../components/status-badge";
import { describeFailure, failureData, throwAsResponse } from "../lib/errors";
import { LiveStatus, newestFirst, upsertById, useLive } from "../lib/live";
import { createBrowserClient } from "../lib/trpc-client";

export { passOnHeaders as headers } from "../lib/headers";

export async function loader({ context }: LoaderFunctionArgs) {
  try {
    const me = await context.trpc.visitor.me();
    // Before the snapshot: the live stream resumes from here (ADR 012).
    const liveCursor = await context.trpc.prompt.liveCursor();
    const prompts = await context.trpc.prompt.mine();
    return { me, prompts, liveCursor, csrfToken: context.csrfToken };
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

  const values = { prompt: text("prompt"), negativePrompt: text("negativePrompt"), width: text("width"), height: text("height") };
  try {
    const prompt = await context.trpc.prompt.submit(values);
    return { kind: "submitted" as const, id: prompt.id };
  } catch (error) {
    const failure = describeFailure(error);
    return failureData(failure, { kind: "error" as const, ...failure, values });
  }
}

type IdentityResult =
  | { kind: "declined" }
  | { kind: "recovered"; colour: { name: string; hex: string; text: string } }
  | { kind: "renewed"; recovery: { code: string; link: string; qrVersion: string } };
type FieldErrors = Record<string, string[] | undefined>;

export default function VisitorPage() {
  const { me, prompts: loaded, liveCursor, csrfToken } = useLoaderData<typeof loader>();
  const result = useActionData<typeof action>();
  const navigation = useNavigation();
  const [prompts, setPrompts] = useState(loaded);
  const [clientErrors, setClientErrors] = useState<FieldErrors>({});
  const client = useMemo(() => createBrowserClient(csrfToken), [csrfToken]);

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
    (lastEventId, handlers) => client.prompt.onChange.subscribe({ lastEventId }, handlers),
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
    () => void client.prompt.mine.query().then(setPrompts, () => undefined),
  );

  const serverErrors: FieldErrors = result?.kind === "error" ? result.fieldErrors : {};
  const errors = { ...serverErrors, ...clientErrors };
  const submitting = navigation.state === "submitting" && navigation.formData?.get("intent") === "submit";

  // The same schema as the server's: obvious mistakes are caught before a round trip.
  function validate(event: FormEvent<HTMLFormElement>) {
    const form = new FormData(event.currentTarget);
    const parsed = PromptInputSchema.safeParse(Object.fromEntries(form));
    if (parsed.success) {
      setClientErrors({});
    } else {
      event.preventDefault();
      setClientErrors(z.flattenError(parsed.error).fieldErrors);
    }
  }

  const values = result?.kind === "error" ? result.values : null;
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
          <label>
            Prompt
            <textarea name="prompt" rows={3} maxLength={PROMPT_MAX_LENGTH * 2} defaultValue={values?.prompt} aria-invalid={!!errors.prompt} required />
          </label>
          <FieldError messages={errors.prompt} id="prompt" />
          <label>
            Negative prompt <span className="hint">(optional: what to avoid)</span>
            <textarea name="negativePrompt" rows={2} defaultValue={values?.negativePrompt} aria-invalid={!!errors.negativePrompt} />
          </label>
          <FieldError messages={errors.negativePrompt} id="negativePrompt" />
          <div className="dimensions">
            <label>
              Width
              <input name="width" inputMode="numeric" defaultValue={values?.width ?? DIMENSION_DEFAULT} aria-invalid={!!errors.width} />
            </label>
            <label>
              Height
              <input name="height" inputMode="numeric" defaultValue={values?.height ?? DIMENSION_DEFAULT} aria-invalid={!!errors.height} />
            </label>
          </div>
          <FieldError messages={errors.width} id="width" />
          <FieldError messages={errors.height} id="height" />
          {result?.kind === "error" && !Object.keys(result.fieldErrors).length && (
            <p className="error" role="alert">
              {result.message}
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
        {prompts.length === 0 ? (
          <p className="hint">Nothing yet. Your prompts and their status will show up here.</p>
        ) : (
          <ul className="own-prompts">
            {prompts.map((prompt) => (
              <li key={prompt.id} id={`prompt-${prompt.id}`} data-prompt-id={prompt.id}>
                <div>
                  <p className="prompt-text">{prompt.prompt}</p>
                  <p className="hint">
                    {prompt.width}×{prompt.height} · <LocalTime iso={prompt.createdAt} />
                  </p>
                  {prompt.notice && <p className="flag">{prompt.notice}</p>}
                  {prompt.line && <LineStanding standing={prompt.line} />}
                  {prompt.status === "generating" && prompt.progress && <ProgressBar progress={prompt.progress} />}
                </div>
                <StatusBadge status={prompt.imageUrl ? "revealed" : prompt.status} />
                {(prompt.status === "pending" || prompt.status === "approved") && (
                  <Form method="post" className="cancel">
                    <input type="hidden" name="_csrf" value={csrfToken} />
                    <input type="hidden" name="id" value={prompt.id} />
                    <button type="submit" name="intent" value="cancel" className="secondary" aria-label={`Cancel “${prompt.prompt.slice(0, 40)}”`}>
                      Cancel
                    </button>
                  </Form>
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
