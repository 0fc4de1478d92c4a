import { Form } from "@remix-run/react";

/**
 * The one button at the end of a staff table's row (Remove, Revoke, End): a form of its own that
 * posts `intent` and the row's key with the CSRF token, so it works without JavaScript too.
 */
export function RowAction({ csrfToken, field, value, intent, label }: { csrfToken: string; field: string; value: string; intent: string; label: string }) {
  return (
    <Form method="post">
      <input type="hidden" name="_csrf" value={csrfToken} />
      <input type="hidden" name={field} value={value} />
      <button type="submit" name="intent" value={intent} className="secondary">
        {label}
      </button>
    </Form>
  );
}
