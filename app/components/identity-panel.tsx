/**
 * The visitor's identity: their colour, the "are you Teal?" card while an offer is open, and
 * the recovery code and link that take the colour to another browser. Every form works
 * without JavaScript (Remix forms posting to the visitor page's action).
 */
import { Form } from "@remix-run/react";
import { ColourChip } from "./colour-chip";

type Colour = { name: string; hex: string; text: string };

export interface IdentityPanelProps {
  /**
   * `recovery` is null for a colour no browser holds: an API token's (a script's), or that of a
   * person the trusted proxy signs in (it follows their sign-in); then nothing here recovers.
   */
  me: { colour: Colour; offer: Colour | null; recovery: { code: string; link: string; qrVersion: string } | null };
  /** The visitor page's last action result; the panel shows what concerns identity. */
  result?: { kind: string; intent?: string; message?: string; colour?: Colour; recovery?: IdentityPanelProps["me"]["recovery"] };
  csrfToken: string;
}

export function IdentityPanel({ me, result, csrfToken }: IdentityPanelProps) {
  const errorFor = (intent: string) => (result?.kind === "identity-error" && result.intent === intent ? result.message : undefined);
  const csrf = <input type="hidden" name="_csrf" value={csrfToken} />;
  // Right after an answer the action already knows the outcome; the loader's copy follows with
  // the revalidation a moment later, and must not flash the old colour or card meanwhile.
  const answered = result?.kind === "recovered" || result?.kind === "declined";
  const colour = (result?.kind === "recovered" && result.colour) || me.colour;
  const offer = answered ? null : me.offer;
  const recovery = (result?.kind === "renewed" && result.recovery) || me.recovery;
  return (
    <header className="identity">
      <p>
        You are <ColourChip colour={colour} large />
      </p>
      {offer && (
        <section className="note offer" aria-label={`Are you ${offer.name}?`}>
          <p>
            Looks like you lost your cookies. Are you <ColourChip colour={offer} />?
          </p>
          <Form method="post" className="inline-form">
            {csrf}
            <label>
              {offer.name}&apos;s recovery code
              <RecoveryCodeInput invalid={!!errorFor("recover")} />
            </label>
            <FormMessage message={errorFor("recover")} />
            <button type="submit" name="intent" value="recover">
              Yes, I&apos;m {offer.name}
            </button>
          </Form>
          <Form method="post">
            {csrf}
            <button type="submit" name="intent" value="decline-offer" className="link-button">
              No, I&apos;m new
            </button>
          </Form>
          <FormMessage message={errorFor("decline-offer")} />
          <p className="hint">The code is on {offer.name}&apos;s page on your other device. Your &ldquo;use my colour&rdquo; link works too.</p>
        </section>
      )}
      {result?.kind === "recovered" && (
        <p className="note" role="status">
          Welcome back: you are <strong>{colour.name}</strong> again, with all your prompts.
        </p>
      )}
      {result?.kind === "declined" && (
        <p className="note" role="status">
          Got it: you are <strong>{me.colour.name}</strong>, and this browser won&apos;t ask again.
        </p>
      )}

      {recovery && (
        <>
          <p className="hint recovery-line">
            Your recovery code: <strong className="recovery-code">{recovery.code}</strong> — it brings your colour back if this browser forgets it.
          </p>
          <details className="recovery">
            <summary>Use my colour on another device</summary>
            <p className="hint">{`Open this link (or scan the code) on the other device. Anyone with it can be ${me.colour.name}: keep it to yourself.`}</p>
            <p>
              <a href={recovery.link} className="recovery-link">
                {recovery.link}
              </a>
            </p>
            <img src={`/me/recovery-qr.svg?v=${recovery.qrVersion}`} alt={`QR code of ${me.colour.name}'s link`} className="recovery-qr" width={180} height={180} loading="lazy" />
            <Form method="post">
              {csrf}
              <button type="submit" name="intent" value="renew-recovery" className="secondary">
                Make a new code and link
              </button>
            </Form>
            <FormMessage message={errorFor("renew-recovery")} />
            {result?.kind === "renewed" && (
              <p className="success" role="status">
                New code and link made; the old ones no longer work, and other browsers using your colour are signed out.
              </p>
            )}
          </details>
        </>
      )}
      {!offer && me.recovery && (
        <details className="recovery" open={!!errorFor("recover")}>
          <summary>Been here before? Get your colour back</summary>
          <Form method="post" className="inline-form">
            {csrf}
            <label>
              Your colour
              <input name="colourName" autoComplete="off" placeholder="e.g. Deep Teal" />
            </label>
            <label>
              Its recovery code
              <RecoveryCodeInput invalid={!!errorFor("recover")} />
            </label>
            <FormMessage message={errorFor("recover")} />
            <button type="submit" name="intent" value="recover">
              Get my colour back
            </button>
          </Form>
        </details>
      )}
    </header>
  );
}

function RecoveryCodeInput({ invalid }: { invalid: boolean }) {
  // Three words typed on a phone: no autocorrect or capitalisation getting in the way.
  return (
    <input
      name="code"
      autoComplete="off"
      autoCapitalize="none"
      autoCorrect="off"
      spellCheck={false}
      placeholder="e.g. otter maple 42"
      aria-invalid={invalid}
      required
    />
  );
}

function FormMessage({ message }: { message?: string }) {
  if (!message) return null;
  return (
    <p className="error" role="alert">
      {message}
    </p>
  );
}
