/** The signed-in person's own account: change the password, or end every session of it. */
import type { ActionFunctionArgs, LoaderFunctionArgs } from "@remix-run/node";
import { data, redirect } from "@remix-run/node";
import { Form, Link, useActionData, useLoaderData } from "@remix-run/react";
import { adminActionFailure } from "../lib/errors.server";

export { passOnHeaders as headers } from "../lib/headers";

export async function loader({ context }: LoaderFunctionArgs) {
  const account = await context.trpc.admin.me();
  if (!account) throw redirect("/admin/login");
  return { csrfToken: context.csrfToken, account };
}

export async function action({ request, context }: ActionFunctionArgs) {
  const form = await context.readForm(request);
  const intent = form.get("intent");
  try {
    if (intent === "logout-everywhere") {
      await context.trpc.admin.logoutEverywhere();
      throw redirect("/admin/login");
    }
    if (intent !== "change-password") return data({ message: `Unknown action ${String(intent)}.`, changed: false }, { status: 400 });
    const newPassword = String(form.get("newPassword") ?? "");
    if (newPassword !== String(form.get("confirmPassword") ?? "")) {
      return data({ message: "The new password and its confirmation differ; nothing was changed.", changed: false }, { status: 400 });
    }
    await context.trpc.admin.changePassword({ currentPassword: String(form.get("currentPassword") ?? ""), newPassword });
    return { message: "Password changed. Every other session of this account has ended.", changed: true };
  } catch (error) {
    return adminActionFailure(error, { changed: false }, (failure) => {
      const newPasswordProblem = failure.fieldErrors.newPassword?.[0];
      return newPasswordProblem ? `New password: ${newPasswordProblem}` : failure.message;
    });
  }
}

export default function AdminAccount() {
  const { csrfToken, account } = useLoaderData<typeof loader>();
  const result = useActionData<typeof action>();
  return (
    <main className="page narrow">
      <header className="admin-header">
        <h1>{`Account: ${account.name} (${account.role})`}</h1>
        <nav>
          <Link to="/admin">Back to moderation</Link>
        </nav>
      </header>
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
        {result?.message && (
          <p className={result.changed ? "hint" : "error"} role={result.changed ? "status" : "alert"}>
            {result.message}
          </p>
        )}
        <button type="submit" name="intent" value="change-password">
          Change password
        </button>
      </Form>
      <h2>Sessions</h2>
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
