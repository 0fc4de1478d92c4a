/** The visitor page's shape with nothing behind it: a colour, ten prompts with their status, a form. */
import { Form, useLoaderData } from "@remix-run/react";

const PROMPTS = Array.from({ length: 10 }, (_, i) => ({
  id: i + 1,
  prompt: `a lighthouse in a storm, oil painting, number ${i + 1}`,
  width: 512,
  height: 512,
  status: i % 3 === 0 ? "done" : "pending",
  createdAt: new Date(Date.UTC(2026, 10, 26, 12, i)).toISOString(),
}));

export const loader = () => ({ colour: { name: "Teal", hex: "#008080" }, prompts: PROMPTS });

export default function Index() {
  const { colour, prompts } = useLoaderData<typeof loader>();
  return (
    <main>
      <h1 style={{ color: colour.hex }}>You are {colour.name}</h1>
      <Form method="post">
        <textarea name="prompt" required maxLength={1000} />
        <input name="width" type="number" defaultValue={512} />
        <input name="height" type="number" defaultValue={512} />
        <button type="submit">Send</button>
      </Form>
      <ul>
        {prompts.map((prompt) => (
          <li key={prompt.id}>
            {prompt.prompt} · {prompt.width}×{prompt.height} · {prompt.status} · <time dateTime={prompt.createdAt}>{prompt.createdAt}</time>
          </li>
        ))}
      </ul>
    </main>
  );
}
