/** The gallery of revealed images: pages for everyone while it is open, and the admin's switch. */
import { z } from "zod";
import { DomainError } from "../../domain/errors";
import { adminProcedure, publicProcedure, readProcedure, router } from "../init";
import { audit } from "./admin";

export const galleryRouter = router({
  /** A page of revealed images, newest reveal first; admins and moderators see it even while closed. */
  page: publicProcedure.input(z.object({ page: z.coerce.number().int().min(1).max(1_000_000).default(1) })).query(({ ctx, input }) => {
    const open = ctx.services.gallery.isOpen();
    const isAdmin = ctx.identity.account() !== null;
    if (!open && !isAdmin) throw new DomainError("GALLERY_CLOSED", "The gallery is closed.");
    return { ...ctx.services.gallery.page(input.page), open, isAdmin };
  }),

  isOpen: readProcedure.query(({ ctx }) => ctx.services.gallery.isOpen()),

  setOpen: adminProcedure.input(z.object({ open: z.boolean() })).mutation(({ ctx, input }) => {
    ctx.services.gallery.setOpen(input.open);
    audit(ctx, { action: input.open ? "gallery.open" : "gallery.close" });
    return { open: input.open };
  }),
});
