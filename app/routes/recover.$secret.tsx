/**
 * A recovery link ("use my colour on another device"): shows whose colour it brings and asks
 * before using it, so a link opened by a chat app's preview or planted by someone else never
 * switches a browser's identity on its own.
 */
import type { ActionFunctionArgs, LoaderFunctionArgs, MetaFunction } from "@remix-run/node";
import { redirect } from "@remix-run/node";
import { Form, Link, useActionData, useLoaderData } from "@remix-run/react";
import { ColourChip } from "../components/colour-chip";
import { describeFailure, failureData } from "../lib/errors.server";

export const meta: MetaFunction = () => [{ title: "Use your colour here · promptgate" }, { name: "robots", content: "noindex" }];

export async function loader({ params, context }: LoaderFunctionArgs) {
  try {
    const { colour, current } = await context.trpc.visitor.linkTarget({ secret: params.secret ?? "" });
    return { colour, current, csrfToken: context.csrfToken };
  } catch (error) {
    const failure = describeFailure(error);
    throw new Response(failure.status === 400 ? "This is not a recovery link." : failure.message, { status: failure.status === 400 ? 404 : failure.status });
  }
}

export async function action({ request, params, context }: ActionFunctionArgs) {
  await context.readForm(request);
  try {
    await context.trpc.visitor.useLink({ secret: params.secret ?? "" });
  } catch (error) {
    const failure = describeFailure(error);
    return failureData(failure, { message: failure.message });
  }
  throw redirect("/");
}

export default function Recover() {
  const { colour, current, csrfToken } = useLoaderData<typeof loader>();
  const result = useActionData<typeof action>();
  return (
    <main className="page narrow">
      <h1>Use your colour here?</h1>
      <p>
        This link brings back <ColourChip colour={colour} large /> with all of its prompts, in this browser.
      </p>
      {current && current.name !== colour.name && (
        <p className="note" role="note">
          This browser is <ColourChip colour={current} /> now.{" "}
          {`Its prompts stay with ${current.name}: to come back to it later you will need ${current.name}'s recovery code or link, so note them first if they are yours.`}
        </p>
      )}
      <Form method="post">
        <input type="hidden" name="_csrf" value={csrfToken} />
        <button type="submit">Yes, I&apos;m {colour.name}</button>
      </Form>
      {result?.message && (
        <p className="error" role="alert">
          {result.message}
        </p>
      )}
      <p className="hint">
        Not yours? <Link to="/">Go to the start page</Link> instead.
      </p>
    </main>
  );
}
