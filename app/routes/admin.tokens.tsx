/** API tokens for scripts: create one with scopes (its secret is shown once), see when each was last used, revoke. */
import type { ActionFunctionArgs, LoaderFunctionArgs } from "@remix-run/node";
import { data } from "@remix-run/node";
import { Form, Link, useActionData, useLoaderData } from "@remix-run/react";
import { LocalTime } from "../components/local-time";
import { RowAction } from "../components/row-action";
import { adminActionFailure, firstFieldNamed, rethrowForAdmin } from "../lib/errors.server";

const SCOPES = [
  { scope: "submit", meaning: "send prompts, as a colour of its own" },
  { scope: "moderate", meaning: "approve, deny, retry, mute, reveal" },
  { scope: "read", meaning: "read every prompt and image" },
] as const;

export async function loader({ context }: LoaderFunctionArgs) {
  try {
    return { tokens: await context.trpc.access.tokens(), csrfToken: context.csrfToken };
  } catch (error) {
    rethrowForAdmin(error);
  }
}

export async function action({ request, context }: ActionFunctionArgs) {
  const form = await context.readForm(request);
  const intent = form.get("intent");
  const name = String(form.get("name") ?? "");
  try {
    if (intent === "create") {
      const created = await context.trpc.access.createToken({ name, scopes: form.getAll("scope").map(String) as Array<(typeof SCOPES)[number]["scope"]> });
      return { message: null, done: true, created };
    }
    if (intent === "revoke") {
      await context.trpc.access.revokeToken({ name });
      return { message: `${name} is revoked.`, done: true, created: null };
    }
    return data({ message: `Unknown action ${String(intent)}.`, done: false, created: null }, { status: 400 });
  } catch (error) {
    return adminActionFailure(error, { done: false, created: null }, firstFieldNamed);
  }
}

export default function AdminTokens() {
  const { tokens, csrfToken } = useLoaderData<typeof loader>();
  const result = useActionData<typeof action>();
  const csrf = <input type="hidden" name="_csrf" value={csrfToken} />;
  return (
    <main className="page wide">
      <header className="admin-header">
        <h1>API tokens</h1>
        <nav>
          <Link to="/admin">Back to moderation</Link>
        </nav>
      </header>
      <p className="hint">
        Scripts send a token as <code>Authorization: Bearer …</code> to <code>/api/trpc</code>, <code>/images</code> and <code>/auth/verify</code> (see the README).
      </p>
      {result?.created && (
        <section className="connect" role="status">
          <h2>{`${result.created.name} is created`}</h2>
          <p>Its token is shown only now; only its hash is kept:</p>
          <pre data-token>{result.created.token}</pre>
        </section>
      )}
      {result?.message && (
        <p className={result.done ? "hint" : "error"} role={result.done ? "status" : "alert"}>
          {result.message}
        </p>
      )}
      <Form method="post" className="login-form">
        {csrf}
        <label>
          Token name (letters, digits, '.', '_' or '-')
          <input type="text" name="name" required maxLength={64} autoComplete="off" placeholder="ci-script" />
        </label>
        <fieldset className="scopes">
          <legend>Scopes</legend>
          {SCOPES.map(({ scope, meaning }) => (
            <label key={scope}>
              <input type="checkbox" name="scope" value={scope} />
              {`${scope}: ${meaning}`}
            </label>
          ))}
        </fieldset>
        <button type="submit" name="intent" value="create">
          Create token
        </button>
      </Form>
      {tokens.length === 0 ? (
        <p className="hint">No API tokens yet.</p>
      ) : (
        <table className="moderation">
          <thead>
            <tr>
              <th>Name</th>
              <th>Scopes</th>
              <th>Created</th>
              <th>Last used</th>
              <th>Actions</th>
            </tr>
          </thead>
          <tbody>
            {tokens.map((token) => (
              <tr key={token.name} data-token-name={token.name}>
                <td>{token.name}</td>
                <td>{token.scopes.join(", ")}</td>
                <td>
                  <LocalTime iso={token.createdAt} /> by {token.createdBy}
                </td>
                <td>{token.lastUsedAt ? <LocalTime iso={token.lastUsedAt} /> : "never"}</td>
                <td>
                  <RowAction csrfToken={csrfToken} field="name" value={token.name} intent="revoke" label="Revoke" />
                </td>
              </tr>
            ))}
          </tbody>
        </table>
      )}
    </main>
  );
}
