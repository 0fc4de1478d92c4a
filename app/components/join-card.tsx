/**
 * "Guests join here": the site's address and its QR code (GET /join-qr.svg, drawn by the
 * server), for the host to hold up or put on a screen.
 */
export function JoinCard({ url }: { url: string }) {
  return (
    <section className="join-card" aria-labelledby="join-card-title">
      <img src="/join-qr.svg" alt={`QR code of ${url}`} width={144} height={144} />
      <div>
        <h2 id="join-card-title">Guests join here</h2>
        <p>
          <a href={url}>{url}</a>
        </p>
        <p className="hint">Point a phone camera at the code, or type the address.</p>
      </div>
    </section>
  );
}
