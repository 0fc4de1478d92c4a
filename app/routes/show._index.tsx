/** /show: where the projector's operator types the code the host gives out; it leads to /show/<code>. */
import type { LoaderFunctionArgs, MetaFunction } from "@remix-run/node";
import { redirect } from "@remix-run/node";
import { Form } from "@remix-run/react";

export const meta: MetaFunction = () => [{ title: "Watch the show · promptgate" }];

export function loader({ request }: LoaderFunctionArgs) {
  const code = new URL(request.url).searchParams.get("code")?.replace(/[\s-]/g, "").toUpperCase();
  if (code && /^[A-Z0-9]{1,40}$/.test(code)) throw redirect(`/show/${code}`);
  return null;
}

export default function ShowCode() {
  return (
    <main className="page narrow">
      <h1>Watch the show</h1>
      <p>The show is open only to those with its code: ask the host for it.</p>
      <Form method="get">
        <label>
          Show code
          <input name="code" required maxLength={40} autoComplete="off" autoCapitalize="characters" spellCheck={false} />
        </label>
        <button type="submit">Watch</button>
      </Form>
    </main>
  );
}
