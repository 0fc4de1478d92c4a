import type { ActionFunctionArgs, LoaderFunctionArgs } from "@remix-run/node";
import { redirect } from "@remix-run/node";
import { Form, useActionData, useLoaderData } from "@remix-run/react";
import { describeFailure, failureData } from "../lib/errors";

export { passOnHeaders as headers } from "../lib/headers";

export async function loader({ context }: LoaderFunctionArgs) {
  if (await context.trpc.admin.isAdmin()) throw redirect("/admin");
  return { csrfToken: context.csrfToken };
}

export async function action({ request, context }: ActionFunctionArgs) {
  const form = await context.readForm(request);
  try {
    await context.trpc.admin.login({ password: String(form.get("password") ?? "") });
  } catch (error) {
    const failure = describeFailure(error);
    return failureData(failure, { message: failure.status === 400 ? "Enter the admin password." : failure.message });
  }
  throw redirect("/admin");
}

export default function AdminLogin() {
  const { csrfToken } = useLoaderData<typeof loader>();
  const result = useActionData<typeof action>();
  return (
    <main className="page narrow">
      <h1>Admin login</h1>
      <Form method="post" className="login-form">
        <input type="hidden" name="_csrf" value={csrfToken} />
        <label>
          Password
          <input type="password" name="password" autoComplete="current-password" autoFocus required />
        </label>
        {result?.message && (
          <p className="error" role="alert">
            {result.message}
          </p>
        )}
        <button type="submit">Log in</button>
      </Form>
      <p className="hint">
        The password is ADMIN_PASSWORD, or the one printed in the server&apos;s console on its first start. Forgotten, or held
        back by someone else&apos;s guessing? On the server&apos;s machine, <code>npm run admin -- reset-password</code> sets a
        new one and <code>npm run admin -- login-link</code> prints a one-time login link.
      </p>
    </main>
  );
}
