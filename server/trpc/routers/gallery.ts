/** The gallery of revealed images: pages for everyone while it is open, and the admin's switch. */
import { z } from "zod";
import { DomainError } from "../../domain/errors";
import { adminProcedure, publicProcedure, router } from "../init";

export const galleryRouter = router({
  /** A page of revealed images, newest reveal first; the admin sees it even while closed. */
  page: publicProcedure.input(z.object({ page: z.coerce.number().int().min(1).max(1_000_000).default(1) })).query(({ ctx, input }) => {
    const open = ctx.services.gallery.isOpen();
    const isAdmin = ctx.identity.isAdmin();
    if (!open && !isAdmin) throw new DomainError("GALLERY_CLOSED", "The gallery is closed.");
    return { ...ctx.services.gallery.page(input.page), open, isAdmin };
  }),

  isOpen: adminProcedure.query(({ ctx }) => ctx.services.gallery.isOpen()),

  setOpen: adminProcedure.input(z.object({ open: z.boolean() })).mutation(({ ctx, input }) => {
    ctx.services.gallery.setOpen(input.open);
    return { open: input.open };
  }),
});
