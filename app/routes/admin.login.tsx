import type { ActionFunctionArgs, LoaderFunctionArgs } from "@remix-run/node";
import { redirect } from "@remix-run/node";
import { Form, useActionData, useLoaderData } from "@remix-run/react";
import { describeFailure, failureData } from "../lib/errors.server";
import { safeNext } from "../lib/safe-next";

export { passOnHeaders as headers } from "../lib/headers";

export async function loader({ request, context }: LoaderFunctionArgs) {
  const next = safeNext(new URL(request.url).searchParams.get("next"));
  if (await context.trpc.admin.me()) throw redirect(next);
  return { csrfToken: context.csrfToken, next };
}

export async function action({ request, context }: ActionFunctionArgs) {
  const form = await context.readForm(request);
  try {
    await context.trpc.admin.login({ name: String(form.get("name") ?? "").trim() || undefined, password: String(form.get("password") ?? "") });
  } catch (error) {
    const failure = describeFailure(error);
    return failureData(failure, { message: failure.status === 400 ? "Enter your name and password." : failure.message });
  }
  throw redirect(safeNext(form.get("next")));
}

export default function AdminLogin() {
  const { csrfToken, next } = useLoaderData<typeof loader>();
  const result = useActionData<typeof action>();
  return (
    <main className="page narrow">
      <h1>Log in</h1>
      <Form method="post" className="login-form">
        <input type="hidden" name="_csrf" value={csrfToken} />
        <input type="hidden" name="next" value={next} />
        <label>
          Name
          <input type="text" name="name" autoComplete="username" defaultValue="admin" required maxLength={64} />
        </label>
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
        The admin is <code>admin</code>, with ADMIN_PASSWORD or the password printed in the server&apos;s console on its first start;
        moderators use the name and password an admin gave them. Forgotten, or held back by someone else&apos;s guessing? On the
        server&apos;s machine, <code>npm run admin -- reset-password</code> sets a new admin password and{" "}
        <code>npm run admin -- login-link</code> prints a one-time login link.
      </p>
    </main>
  );
}
