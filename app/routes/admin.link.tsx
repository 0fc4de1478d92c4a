/**
 * A one-time login link from `npm run admin -- login-link`. Opening it only shows a button:
 * link previews and prefetchers must not use the link up, so the login is a POST.
 */
import type { ActionFunctionArgs, LoaderFunctionArgs } from "@remix-run/node";
import { data, redirect } from "@remix-run/node";
import { Form, useActionData, useLoaderData } from "@remix-run/react";
import { describeFailure } from "../lib/errors.server";

export function loader({ request, context }: LoaderFunctionArgs) {
  return { csrfToken: context.csrfToken, token: new URL(request.url).searchParams.get("token") ?? "" };
}

export async function action({ request, context }: ActionFunctionArgs) {
  const form = await context.readForm(request);
  try {
    await context.trpc.admin.redeemLoginLink({ token: String(form.get("token") ?? "") });
  } catch (error) {
    const failure = describeFailure(error);
    return data({ message: failure.status === 400 ? "This link has no token: copy the whole line the command printed." : failure.message }, { status: failure.status });
  }
  throw redirect("/admin");
}

export default function AdminLoginLink() {
  const { csrfToken, token } = useLoaderData<typeof loader>();
  const result = useActionData<typeof action>();
  return (
    <main className="page narrow">
      <h1>Admin login link</h1>
      <Form method="post" className="login-form">
        <input type="hidden" name="_csrf" value={csrfToken} />
        <input type="hidden" name="token" value={token} />
        {result?.message && (
          <p className="error" role="alert">
            {result.message}
          </p>
        )}
        <button type="submit">Log in as the admin</button>
      </Form>
      <p className="hint">The link works once, for 15 minutes. This browser is remembered as yours.</p>
    </main>
  );
}
