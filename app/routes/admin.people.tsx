/** People: the admin adds moderators (name + password) or people of the sign-in proxy (by identity), and removes them. */
import type { ActionFunctionArgs, LoaderFunctionArgs } from "@remix-run/node";
import { data } from "@remix-run/node";
import { Form, Link, useActionData, useLoaderData } from "@remix-run/react";
import { LocalTime } from "../components/local-time";
import { RowAction } from "../components/row-action";
import { adminActionFailure, firstFieldNamed, rethrowForAdmin } from "../lib/errors.server";

export async function loader({ context }: LoaderFunctionArgs) {
  try {
    return { ...(await context.trpc.access.accounts()), csrfToken: context.csrfToken };
  } catch (error) {
    rethrowForAdmin(error);
  }
}

export async function action({ request, context }: ActionFunctionArgs) {
  const form = await context.readForm(request);
  const intent = form.get("intent");
  const name = String(form.get("name") ?? "");
  try {
    if (intent === "add") {
      await context.trpc.access.addModerator({ name, password: String(form.get("password") ?? "") });
      return { message: `${name} can now log in as a moderator.`, done: true };
    }
    if (intent === "add-identity") {
      const role = form.get("role") === "admin" ? "admin" : "moderator";
      const kind = form.get("kind");
      if (kind !== "email" && kind !== "user") return data({ message: "Say whether it is an email or a user name.", done: false }, { status: 400 });
      const added = await context.trpc.access.addIdentity({ kind, identity: String(form.get("identity") ?? ""), role });
      return { message: `${added.name} is now ${role === "admin" ? "an admin" : "a moderator"} when signed in through your proxy.`, done: true };
    }
    if (intent === "remove") {
      await context.trpc.access.removeAccount({ name });
      return { message: `${name} is removed; their logins have ended.`, done: true };
    }
    return data({ message: `Unknown action ${String(intent)}.`, done: false }, { status: 400 });
  } catch (error) {
    return adminActionFailure(error, { done: false }, firstFieldNamed);
  }
}

const SIGNS_IN = { password: "with a password", groups: "through the proxy, by group", identity: "through the proxy, added here" } as const;

export default function AdminPeople() {
  const { accounts, proxySignIn, csrfToken } = useLoaderData<typeof loader>();
  const result = useActionData<typeof action>();
  const csrf = <input type="hidden" name="_csrf" value={csrfToken} />;
  return (
    <main className="page wide">
      <header className="admin-header">
        <h1>People</h1>
        <nav>
          <Link to="/admin">Back to moderation</Link>
        </nav>
      </header>
      <p className="hint">Moderators approve, deny, retry and reveal; only admins manage people, API tokens and generators.</p>
      {result?.message && (
        <p className={result.done ? "hint" : "error"} role={result.done ? "status" : "alert"}>
          {result.message}
        </p>
      )}
      <Form method="post" className="login-form">
        {csrf}
        <label>
          Moderator's name (letters, digits, '.', '_' or '-')
          <input type="text" name="name" required maxLength={64} autoComplete="off" />
        </label>
        <label>
          Their password (at least 8 characters)
          <input type="password" name="password" required minLength={8} autoComplete="new-password" />
        </label>
        <button type="submit" name="intent" value="add">
          Add moderator
        </button>
      </Form>
      {proxySignIn && (
        <Form method="post" className="login-form">
          {csrf}
          <label>
            Someone who signs in through your proxy: their
            <select name="kind" defaultValue="email">
              <option value="email">Email (any case)</option>
              <option value="user">User name (exactly)</option>
            </select>
          </label>
          <label>
            Email or user name, as your proxy sends it
            <input type="text" name="identity" required maxLength={200} autoComplete="off" />
          </label>
          <label>
            Role
            <select name="role" defaultValue="moderator">
              <option value="moderator">Moderator</option>
              <option value="admin">Admin</option>
            </select>
          </label>
          <button type="submit" name="intent" value="add-identity">
            Add by sign-in
          </button>
        </Form>
      )}
      <table className="moderation">
        <thead>
          <tr>
            <th>Name</th>
            <th>Role</th>
            <th>Signs in</th>
            <th>Added</th>
            <th>Actions</th>
          </tr>
        </thead>
        <tbody>
          {accounts.map((account) => (
            <tr key={account.id} data-account={account.name}>
              <td>{account.name}</td>
              <td>{account.role}</td>
              <td>{SIGNS_IN[account.source]}</td>
              <td>
                <LocalTime iso={account.createdAt} />
              </td>
              <td>
                {account.removable && (
                  <RowAction csrfToken={csrfToken} field="name" value={account.name} intent="remove" label="Remove" />
                )}
              </td>
            </tr>
          ))}
        </tbody>
      </table>
    </main>
  );
}
