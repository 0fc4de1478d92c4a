/** The audit log, newest first, a page at a time (?page=N). */
import type { LoaderFunctionArgs } from "@remix-run/node";
import { Link, useLoaderData } from "@remix-run/react";
import { LocalTime } from "../components/local-time";
import { rethrowForAdmin } from "../lib/errors.server";

export async function loader({ request, context }: LoaderFunctionArgs) {
  const page = new URL(request.url).searchParams.get("page") ?? "1";
  try {
    return await context.trpc.access.audit({ page: Number(page) });
  } catch (error) {
    rethrowForAdmin(error);
  }
}

export default function AdminAudit() {
  const { entries, page, pages, total } = useLoaderData<typeof loader>();
  return (
    <main className="page wide">
      <header className="admin-header">
        <h1>Audit log</h1>
        <nav>
          <Link to="/admin">Back to moderation</Link>
        </nav>
      </header>
      <p className="summary">{`${total} entries · page ${page} of ${pages}`}</p>
      <table className="moderation">
        <thead>
          <tr>
            <th>When</th>
            <th>Who</th>
            <th>What</th>
            <th>Target</th>
            <th>Details</th>
          </tr>
        </thead>
        <tbody>
          {entries.map((entry) => (
            <tr key={entry.id} data-audit={entry.action}>
              <td>
                <LocalTime iso={entry.at} />
              </td>
              <td>{entry.actor}</td>
              <td>{entry.action}</td>
              <td>{entry.target ?? ""}</td>
              <td>{entry.details ? JSON.stringify(entry.details) : ""}</td>
            </tr>
          ))}
        </tbody>
      </table>
      <nav className="pager">
        {page > 1 && <Link to={`/admin/audit?page=${page - 1}`}>Newer</Link>}
        {page < pages && <Link to={`/admin/audit?page=${page + 1}`}>Older</Link>}
      </nav>
    </main>
  );
}
