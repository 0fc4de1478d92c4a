/**
 * GET /me/recovery-qr.svg — the QR code of the caller's own recovery link, for another
 * device's camera. Drawn here rather than in the page so the visitor page stays cheap: the
 * browser asks for it only when the visitor opens "use my colour on another device".
 */
import type { Response } from "express";
import { recoveryLinkPath } from "../domain/recovery";
import { qrCodeSvg } from "./qr-svg";
import type { RequestContext } from "./request-context";

export function serveRecoveryQr(context: RequestContext, res: Response): void {
  const visitor = context.identity.recoverable ? context.identity.cookieVisitor() : null;
  if (!visitor) {
    res.status(404).type("text/plain").send("No identity in this browser.");
    return;
  }
  const { linkSecret } = context.services.visitors.recoveryProof(visitor.id);
  // It is a key to the identity: never cached, never shared.
  res.set("Cache-Control", "private, no-store");
  res.type("image/svg+xml").send(qrCodeSvg(`${context.publicOrigin}${recoveryLinkPath(linkSecret)}`));
}
