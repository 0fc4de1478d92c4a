/**
 * GET /me/recovery-qr.svg — the QR code of the caller's own recovery link, for another
 * device's camera. Drawn here rather than in the page so the visitor page stays cheap: the
 * browser asks for it only when the visitor opens "use my colour on another device".
 *
 * GET /join-qr.svg — the QR code of the site's front page, for guests to scan off the show.
 */
import type { Response } from "express";
import QRCode from "qrcode";
import { recoveryLinkPath } from "../domain/recovery";
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

export function serveRecoveryQr(context: RequestContext, res: Response): void {
  const visitor = context.identity.cookieVisitor();
  if (!visitor) {
    res.status(404).type("text/plain").send("No identity in this browser.");
    return;
  }
  const { linkSecret } = context.services.visitors.recoveryProof(visitor.id);
  // It is a key to the identity: never cached, never shared.
  res.set("Cache-Control", "private, no-store");
  res.type("image/svg+xml").send(qrCodeSvg(`${context.publicOrigin}${recoveryLinkPath(linkSecret)}`));
}

export function serveJoinQr(context: RequestContext, res: Response): void {
  res.type("image/svg+xml").send(qrCodeSvg(`${context.publicOrigin}/`));
}
