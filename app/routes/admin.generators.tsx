/**
 * Generators: add one (its token is shown once, with the command that starts it), list, revoke.
 * Who is online follows live: a change in the generators view reloads the list.
 */
import type { ActionFunctionArgs, LoaderFunctionArgs } from "@remix-run/node";
import { data } from "@remix-run/node";
import { Form, Link, useActionData, useLoaderData, useRevalidator, useSearchParams } from "@remix-run/react";
import { useMemo, useState } from "react";
import type { AdminChange } from "../../server/trpc/routers/admin";
import { LocalTime } from "../components/local-time";
import { adminActionFailure, rethrowForAdmin } from "../lib/errors.server";
import { LiveStatus, useLive } from "../lib/live";
import { createBrowserClient } from "../lib/trpc-client";

export async function loader({ context }: LoaderFunctionArgs) {
  try {
    const liveCursor = await context.trpc.prompt.liveCursor();
    return { ...(await context.trpc.admin.generators()), liveCursor, csrfToken: context.csrfToken };
  } catch (error) {
    rethrowForAdmin(error);
  }
}

export async function action({ request, context }: ActionFunctionArgs) {
  const form = await context.readForm(request);
  const intent = form.get("intent");
  const name = String(form.get("name") ?? "");
  try {
    if (intent === "add") return { message: null, done: true, added: await context.trpc.admin.addGenerator({ name }) };
    if (intent === "revoke") {
      await context.trpc.admin.revokeGenerator({ name });
      return { message: `${name} is revoked and disconnected.`, done: true, added: null };
    }
    return data({ message: `Unknown action ${String(intent)}.`, done: false, added: null }, { status: 400 });
  } catch (error) {
    return adminActionFailure(error, { done: false, added: null }, (failure) => failure.message);
  }
}

export default function AdminGenerators() {
  const { generators, brokerAccess, liveCursor, csrfToken } = useLoaderData<typeof loader>();
  const result = useActionData<typeof action>();
  const revalidator = useRevalidator();
  const client = useMemo(() => createBrowserClient(csrfToken), [csrfToken]);
  // The list is reloaded on each change; the stream goes on from where it started, never missing one.
  const [cursor] = useState(liveCursor);
  const live = useLive(
    cursor,
    (lastEventId, handlers) => client.admin.onChange.subscribe({ lastEventId }, handlers),
    (event: AdminChange) => event.type === "generators" && revalidator.state === "idle" && revalidator.revalidate(),
    () => revalidator.revalidate(),
  );
  const added = result?.added ?? null;
  // Revoking asks first: a link to ?revoke=NAME shows the confirmation (no script needed).
  const [search] = useSearchParams();
  const revoking = generators.find((generator) => generator.name === search.get("revoke"));
  const csrf = <input type="hidden" name="_csrf" value={csrfToken} />;

  return (
    <main className="page wide">
      <header className="admin-header">
        <h1>Generators</h1>
        <nav>
          <Link to="/admin">Back to moderation</Link>
        </nav>
      </header>
      <p className="hint">
        Each GPU box connects with its own name and token. The built-in generator needs none and steps aside while a GPU generator is online; each job goes to one generator.
      </p>
      {added && (
        <section className="connect" role="status">
          <h2>{`${added.name} is added`}</h2>
          <p>Its token is shown only now. On the machine next to AUTOMATIC1111 (started with --api), in a checkout of promptgate:</p>
          <pre>
            {`npm install\nMQTT_URL=mqtt://<this host>:${brokerAccess.port} GENERATOR_ID=${added.name} MQTT_PASSWORD=${added.token} \\\n  SD_API_URL=http://127.0.0.1:7860 npm run generator`}
          </pre>
        </section>
      )}
      {result?.message && (
        <p className={result.done ? "hint" : "error"} role={result.done ? "status" : "alert"}>
          {result.message}
        </p>
      )}
      {revoking && (
        <Form method="post" action="/admin/generators" className="connect">
          {csrf}
          <input type="hidden" name="name" value={revoking.name} />
          <p>{`Revoke ${revoking.name}? It is disconnected at once, its jobs go to other generators, and its token stops working for good.`}</p>
          <button type="submit" name="intent" value="revoke">
            Yes, revoke {revoking.name}
          </button>{" "}
          <Link to="/admin/generators">Cancel</Link>
        </Form>
      )}
      <Form method="post" action="/admin/generators" className="login-form">
        {csrf}
        <label>
          New generator's name (letters, digits, '.', '_' or '-')
          <input type="text" name="name" required maxLength={128} pattern="[A-Za-z0-9._\-]+" placeholder="gpu-box-1" />
        </label>
        <button type="submit" name="intent" value="add">
          Add generator
        </button>
      </Form>
      <LiveStatus state={live} />
      {generators.length === 0 ? (
        <p className="hint">No generators added yet.</p>
      ) : (
        <table className="moderation">
          <thead>
            <tr>
              <th>Name</th>
              <th>Added</th>
              <th>Last seen</th>
              <th>Online</th>
              <th>Actions</th>
            </tr>
          </thead>
          <tbody>
            {generators.map((generator) => (
              <tr key={generator.name} data-generator={generator.name}>
                <td>{generator.name}</td>
                <td>
                  <LocalTime iso={generator.createdAt} />
                </td>
                <td>{generator.connected ? "connected now" : generator.lastSeenAt ? <LocalTime iso={generator.lastSeenAt} /> : "never"}</td>
                <td>{generator.online ? "yes" : "no"}</td>
                <td>
                  <Link to={`/admin/generators?revoke=${encodeURIComponent(generator.name)}`}>Revoke</Link>
                </td>
              </tr>
            ))}
          </tbody>
        </table>
      )}
    </main>
  );
}
