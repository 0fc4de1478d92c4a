/** The signed-in person's own account: change the password, see its sessions and end one or all of them. */
import type { ActionFunctionArgs, LoaderFunctionArgs } from "@remix-run/node";
import { data, redirect } from "@remix-run/node";
import { Form, Link, useActionData, useLoaderData } from "@remix-run/react";
import { LocalTime } from "../components/local-time";
import { RowAction } from "../components/row-action";
import { adminActionFailure } from "../lib/errors.server";

export { passOnHeaders as headers } from "../lib/headers";

export async function loader({ context }: LoaderFunctionArgs) {
  const account = await context.trpc.admin.me();
  if (!account) throw redirect("/admin/login");
  return { csrfToken: context.csrfToken, account, ...(await context.trpc.admin.sessions()) };
}

export async function action({ request, context }: ActionFunctionArgs) {
  const form = await context.readForm(request);
  const intent = form.get("intent");
  // Which form the answer belongs under: each shows its own outcome.
  const answering = intent === "end-session" ? ("sessions" as const) : ("password" as const);
  try {
    if (intent === "logout-everywhere") {
      await context.trpc.admin.logoutEverywhere();
      throw redirect("/admin/login");
    }
    if (intent === "end-session") {
      await context.trpc.admin.endSession({ id: String(form.get("session") ?? "") });
      return { message: "Session ended: that browser is signed out at its next request.", changed: true, form: answering };
    }
    if (intent !== "change-password") return data({ message: `Unknown action ${String(intent)}.`, changed: false, form: answering }, { status: 400 });
    const newPassword = String(form.get("newPassword") ?? "");
    if (newPassword !== String(form.get("confirmPassword") ?? "")) {
      return data({ message: "The new password and its confirmation differ; nothing was changed.", changed: false, form: answering }, { status: 400 });
    }
    await context.trpc.admin.changePassword({ currentPassword: String(form.get("currentPassword") ?? ""), newPassword });
    return { message: "Password changed. Every other session of this account has ended.", changed: true, form: answering };
  } catch (error) {
    return adminActionFailure(error, { changed: false, form: answering }, (failure) => {
      const newPasswordProblem = failure.fieldErrors.newPassword?.[0];
      return newPasswordProblem ? `New password: ${newPasswordProblem}` : failure.message;
    });
  }
}

export default function AdminAccount() {
  const { csrfToken, account, sessions, viaProxy } = useLoaderData<typeof loader>();
  const result = useActionData<typeof action>();
  const sessionResult = result?.form === "sessions" ? result : null;
  const passwordResult = result?.form === "password" ? result : null;
  return (
    <main className="page narrow">
      <header className="admin-header">
        <h1>{`Account: ${account.name} (${account.role})`}</h1>
        <nav>
          <Link to="/admin">Back to moderation</Link>
        </nav>
      </header>
      {viaProxy ? (
        <p className="hint">This account has no password here: your organisation's sign-in is how you log in.</p>
      ) : (
        <>
          <h2>Change the password</h2>
          <Form method="post" className="login-form">
            <input type="hidden" name="_csrf" value={csrfToken} />
            <label>
              Current password
              <input type="password" name="currentPassword" autoComplete="current-password" required />
            </label>
            <label>
              New password (at least 8 characters)
              <input type="password" name="newPassword" autoComplete="new-password" minLength={8} required />
            </label>
            <label>
              New password again
              <input type="password" name="confirmPassword" autoComplete="new-password" minLength={8} required />
            </label>
            <Outcome result={passwordResult} />
            <button type="submit" name="intent" value="change-password">
              Change password
            </button>
          </Form>
        </>
      )}
      <h2>Your sessions</h2>
      {viaProxy && <p className="hint">You are signed in through your organisation's sign-in, which keeps no session here: sign out there.</p>}
      {sessions.length === 0 ? (
        <p className="hint">No password logins of this account.</p>
      ) : (
        <table className="moderation">
          <thead>
            <tr>
              <th scope="col">Started</th>
              <th scope="col">Last used</th>
              <th scope="col">Expires</th>
              <th scope="col">Action</th>
            </tr>
          </thead>
          <tbody>
            {sessions.map((session) => (
              <tr key={session.id} data-session={session.id}>
                <th scope="row">
                  <LocalTime iso={session.createdAt} />
                </th>
                <td>
                  <LocalTime iso={session.lastSeenAt} />
                </td>
                <td>
                  <LocalTime iso={session.expiresAt} />
                </td>
                <td>
                  {session.current ? (
                    <strong>This browser</strong>
                  ) : (
                    <RowAction csrfToken={csrfToken} field="session" value={session.id} intent="end-session" label="End" />
                  )}
                </td>
              </tr>
            ))}
          </tbody>
        </table>
      )}
      <Outcome result={sessionResult} />
      <Form method="post">
        <input type="hidden" name="_csrf" value={csrfToken} />
        <p className="hint">Ends every login of this account, this one included: on a lost phone or a borrowed laptop too.</p>
        <button type="submit" name="intent" value="logout-everywhere" className="secondary">
          Log out everywhere
        </button>
      </Form>
    </main>
  );
}

function Outcome({ result }: { result: { message: string; changed: boolean } | null | undefined }) {
  if (!result?.message) return null;
  return (
    <p className={result.changed ? "hint" : "error"} role={result.changed ? "status" : "alert"}>
      {result.message}
    </p>
  );
}
