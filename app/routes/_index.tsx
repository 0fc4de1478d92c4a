/**
 * The visitor's page: their colour, the prompt form, and their own prompts' status.
 * Images appear here only after the admin has revealed them.
 */
import type { ActionFunctionArgs, LoaderFunctionArgs } from "@remix-run/node";
import { data } from "@remix-run/node";
import { Form, useActionData, useLoaderData, useNavigation } from "@remix-run/react";
import { useEffect, useMemo, useState, type FormEvent } from "react";
import { z } from "zod";
import { DIMENSION_DEFAULT, PROMPT_MAX_LENGTH, PromptInputSchema } from "../../server/domain/prompt-input";
import { ColourChip } from "../components/colour-chip";
import { LocalTime } from "../components/local-time";
import { StatusBadge } from "../components/status-badge";
import { describeFailure } from "../lib/errors";
import { createBrowserClient, pollWhileVisible } from "../lib/trpc-client";

export async function loader({ context }: LoaderFunctionArgs) {
  const me = await context.trpc.visitor.me();
  const prompts = await context.trpc.prompt.mine();
  return { me, prompts, csrfToken: context.csrfToken };
}

export async function action({ request, context }: ActionFunctionArgs) {
  const form = await context.readForm(request);
  if (form.get("intent") === "start-fresh") {
    try {
      const { colour } = await context.trpc.visitor.startFresh();
      return { kind: "fresh" as const, colour };
    } catch (error) {
      const failure = describeFailure(error);
      return data({ kind: "error" as const, ...failure, values: null }, { status: failure.status });
    }
  }
  const values = {
    prompt: String(form.get("prompt") ?? ""),
    negativePrompt: String(form.get("negativePrompt") ?? ""),
    width: String(form.get("width") ?? ""),
    height: String(form.get("height") ?? ""),
  };
  try {
    const prompt = await context.trpc.prompt.submit(values);
    return { kind: "submitted" as const, id: prompt.id };
  } catch (error) {
    const failure = describeFailure(error);
    return data({ kind: "error" as const, ...failure, values }, { status: failure.status });
  }
}

type FieldErrors = Record<string, string[] | undefined>;

export default function VisitorPage() {
  const { me, prompts: loaded, csrfToken } = useLoaderData<typeof loader>();
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
  useEffect(() => pollWhileVisible(() => void client.prompt.mine.query().then(setPrompts, () => undefined), 3000), [client]);

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
  // Right after "that's not me" the action already knows the new colour; the loader's copy
  // arrives with the revalidation a moment later.
  const freshStart = result?.kind === "fresh";
  const colour = freshStart ? result.colour : me.colour;
  const formKey = result?.kind === "submitted" ? `sent-${result.id}` : "form";

  return (
    <main className="page">
      <header className="identity">
        <p>
          You are <ColourChip colour={colour} large />
        </p>
        {me.recognised && !freshStart && (
          <div className="note" role="status">
            <p>
              Welcome back! Looks like you lost your cookies, but we recognised you: you&apos;re still <strong>{me.colour.name}</strong>.
            </p>
            <Form method="post">
              <input type="hidden" name="_csrf" value={csrfToken} />
              <button type="submit" name="intent" value="start-fresh" className="link-button">
                That&apos;s not me, I&apos;m new
              </button>
            </Form>
          </div>
        )}
        {freshStart && (
          <p className="note" role="status">
            Got it: you are now <strong>{colour.name}</strong>, and we won&apos;t mix you up again.
          </p>
        )}
      </header>

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
        {prompts.length === 0 ? (
          <p className="hint">Nothing yet. Your prompts and their status will show up here.</p>
        ) : (
          <ul className="own-prompts">
            {prompts.map((prompt) => (
              <li key={prompt.id} data-prompt-id={prompt.id}>
                <div>
                  <p className="prompt-text">{prompt.prompt}</p>
                  <p className="hint">
                    {prompt.width}×{prompt.height} · <LocalTime iso={prompt.createdAt} />
                  </p>
                </div>
                <StatusBadge status={prompt.imageUrl ? "revealed" : prompt.status} />
                {prompt.imageUrl && <img src={prompt.imageUrl} alt={prompt.prompt} className="own-image" />}
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
