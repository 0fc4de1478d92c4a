/**
 * GET /images/:promptId.png — image bytes, only for those allowed to see them: admins,
 * moderators and `read` API tokens always, the author (or a `submit` token's colour) after the reveal. Everyone else gets the same 404 as for a missing
 * image, so a guessed URL reveals nothing.
 */
import type { Response } from "express";
import type { RequestContext } from "./request-context";

export function serveImage(context: RequestContext, promptId: number, res: Response): void {
  const { identity, services } = context;
  const staff = identity.apiToken ? identity.apiToken.scopes.includes("read") : identity.account() !== null;
  const viewer = staff ? ({ admin: true } as const) : { visitorId: identity.cookieVisitor()?.id ?? null };
  const fileName = Number.isSafeInteger(promptId) && promptId > 0 ? services.prompts.imageFileFor(promptId, viewer) : null;
  if (!fileName) {
    res.status(404).type("text/plain").send("No such image.");
    return;
  }
  // Private: images are secret until revealed, and stay per-viewer after.
  res.set("Cache-Control", "private, no-store");
  res.sendFile(services.jobs.imagePath(fileName), (error) => {
    if (error && !res.headersSent) res.status(404).type("text/plain").send("No such image.");
  });
}
