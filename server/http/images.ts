/**
 * GET /images/:promptId.png — image bytes, only for those allowed to see them: admins,
 * moderators and `read` API tokens always, the author (or a `submit` token's colour) after the
 * reveal, anyone after the reveal while the gallery is open. Everyone else gets the same 404 as
 * for a missing image, so a guessed URL reveals nothing. `?download=1` asks the browser to save
 * it as `promptgate-<id>-<slug>.png`.
 *
 * GET /show/:code/images/:promptId.png — the same bytes for the show's audience (a projector
 * that is nobody's browser): the images shown in the current show, while its code is the link's.
 */
import type { Request, Response } from "express";
import { downloadNameOf } from "../domain/export";
import type { RequestContext } from "./request-context";
import { isGuest } from "./site-password";

export function serveImage(context: RequestContext, promptId: number, req: Request, res: Response): void {
  const { identity, services } = context;
  const staff = identity.apiToken ? identity.apiToken.scopes.includes("read") : identity.account() !== null;
  const viewer = staff ? ({ admin: true } as const) : { visitorId: identity.cookieVisitor()?.id ?? null, galleryOpen: !isGuest(res) && services.gallery.isOpen() };
  sendImage(context, Number.isSafeInteger(promptId) && promptId > 0 ? services.prompts.imageFileFor(promptId, viewer) : null, promptId, req, res);
}

export function serveShowImage(context: RequestContext, code: string, promptId: number, req: Request, res: Response): void {
  const { services } = context;
  const allowed = Number.isSafeInteger(promptId) && services.show.mayShowImage(code, promptId);
  sendImage(context, allowed ? services.prompts.imageFileFor(promptId, { admin: true }) : null, promptId, req, res);
}

function sendImage({ services }: RequestContext, file: { fileName: string; prompt: string } | null, promptId: number, req: Request, res: Response): void {
  if (!file) {
    res.status(404).type("text/plain").send("No such image.");
    return;
  }
  // Private: images are secret until revealed, and stay per-viewer after.
  res.set("Cache-Control", "private, no-store");
  // The name is ASCII letters, digits and dashes by construction: no quoting or filename* needed.
  if (req.query.download === "1") res.set("Content-Disposition", `attachment; filename="${downloadNameOf(promptId, file.prompt)}"`);
  res.sendFile(services.jobs.imagePath(file.fileName), (error) => {
    if (error && !res.headersSent) res.status(404).type("text/plain").send("No such image.");
  });
}
