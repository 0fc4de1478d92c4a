/**
 * QR codes as SVG, drawn on the server so pages stay cheap: the recovery link's
 * (GET /me/recovery-qr.svg) and the site's own address for guests (GET /join-qr.svg).
 */
import type { Response } from "express";
import QRCode from "qrcode";
import type { RequestContext } from "./request-context";

/** One SVG path of the dark modules, each row's runs merged: a few KB for a link. */
export function qrCodeSvg(text: string): string {
  const { modules } = QRCode.create(text, { errorCorrectionLevel: "M" });
  const quiet = 4; // the quiet zone scanners need around the code
  const size = modules.size + quiet * 2;
  let path = "";
  for (let y = 0; y < modules.size; y++) {
    for (let x = 0; x < modules.size; ) {
      if (!modules.get(y, x)) {
        x++;
        continue;
      }
      let run = 1;
      while (x + run < modules.size && modules.get(y, x + run)) run++;
      path += `M${x + quiet} ${y + quiet}h${run}v1h-${run}z`;
      x += run;
    }
  }
  return `<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 ${size} ${size}" shape-rendering="crispEdges"><rect width="${size}" height="${size}" fill="#fff"/><path d="${path}" fill="#000"/></svg>`;
}

/**
 * GET /join-qr.svg — the address guests open (PUBLIC_URL, else this request's origin), for the
 * host to put in front of the room. Public: it says nothing the front page does not.
 */
export function serveJoinQr(context: RequestContext, res: Response): void {
  // The address follows PUBLIC_URL or the Host header: revalidated, never served stale.
  res.set("Cache-Control", "no-cache");
  res.type("image/svg+xml").send(qrCodeSvg(`${context.publicOrigin}/`));
}
