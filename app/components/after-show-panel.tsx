/** The admin page's "After the show": export links, the gallery's switch, and the way to end the event. */
import { Form, Link } from "@remix-run/react";

export function AfterShowPanel({ galleryOpen, counts, csrfToken }: { galleryOpen: boolean; counts: { done: number; revealed: number }; csrfToken: string }) {
  return (
    <section className="after-show-panel" aria-labelledby="after-show">
      <h2 id="after-show">After the show</h2>
      <div className="row">
        <span>Export (zip of PNGs with metadata.json and metadata.csv):</span>
        <a href="/admin/export.zip?scope=revealed" download>{`Revealed images (${counts.revealed})`}</a>
        <a href="/admin/export.zip?scope=finished" download>{`All finished images (${counts.done})`}</a>
      </div>
      <Form method="post" action="/gallery" className="row">
        <input type="hidden" name="_csrf" value={csrfToken} />
        <input type="hidden" name="from" value="admin" />
        <span>
          <Link to="/gallery">The gallery</Link>
          {galleryOpen ? " is open to everyone." : " is closed."}
        </span>
        <button type="submit" name="intent" value={galleryOpen ? "close" : "open"} className="secondary">
          {galleryOpen ? "Close the gallery" : "Open the gallery"}
        </button>
      </Form>
      <div className="row">
        <Link to="/admin/end-event">End the event…</Link>
        <span className="hint">Export first, then delete every visitor&apos;s data.</span>
      </div>
    </section>
  );
}
