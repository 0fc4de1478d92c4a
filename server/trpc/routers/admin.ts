import { TRPCError } from "@trpc/server";
import { z } from "zod";
import { verifyAdminPassword } from "../../domain/admin-password";
import { adminProcedure, publicProcedure, router } from "../init";

const PromptIdSchema = z.object({ id: z.coerce.number().int().positive() });
const VisitorIdSchema = z.object({ visitorId: z.coerce.number().int().positive() });

export const adminRouter = router({
  login: publicProcedure.input(z.object({ password: z.string().min(1).max(1024) })).mutation(async ({ ctx, input }) => {
    const throttle = ctx.services.loginThrottle;
    const waitMs = throttle.retryAfterMs(ctx.clientIp);
    if (waitMs > 0) {
      throw new TRPCError({ code: "TOO_MANY_REQUESTS", message: `Too many wrong passwords. Try again in ${Math.ceil(waitMs / 60_000)} minute(s).` });
    }
    // Counted before the (slow) verification, so parallel guesses cannot all pass the check above.
    throttle.recordFailure(ctx.clientIp);
    if (!(await verifyAdminPassword(ctx.services.db, input.password))) {
      throw new TRPCError({ code: "UNAUTHORIZED", message: "That is not the admin password." });
    }
    throttle.reset(ctx.clientIp);
    ctx.identity.signInAdmin();
    return { ok: true as const };
  }),

  logout: publicProcedure.mutation(({ ctx }) => {
    ctx.identity.signOutAdmin();
    return { ok: true as const };
  }),

  isAdmin: publicProcedure.query(({ ctx }) => ctx.identity.isAdmin()),

  /** Every prompt, newest first, with the moderation overview. */
  dashboard: adminProcedure.query(({ ctx }) => ({
    prompts: ctx.services.prompts.listAll(),
    counts: ctx.services.prompts.counts(),
    generators: ctx.services.link.generators(),
    brokerAccess: ctx.services.brokerAccess,
  })),

  /** Approves a prompt and publishes its job; approving twice publishes once. */
  approve: adminProcedure.input(PromptIdSchema).mutation(async ({ ctx, input }) => {
    const jobId = ctx.services.prompts.approve(input.id);
    if (jobId) await ctx.services.link.publish([jobId]);
    return { published: jobId !== null };
  }),

  deny: adminProcedure.input(PromptIdSchema).mutation(({ ctx, input }) => {
    ctx.services.prompts.deny(input.id);
    return { ok: true as const };
  }),

  /** Sends a failed prompt to the generators again. */
  retry: adminProcedure.input(PromptIdSchema).mutation(async ({ ctx, input }) => {
    await ctx.services.link.publish([ctx.services.prompts.retry(input.id)]);
    return { published: true as const };
  }),

  /** Holds a visitor's pending and new prompts apart from the queue. */
  mute: adminProcedure.input(VisitorIdSchema).mutation(({ ctx, input }) => {
    ctx.services.prompts.setMuted(input.visitorId, true);
    return { ok: true as const };
  }),

  /** Puts a muted visitor's pending prompts back in the queue. */
  unmute: adminProcedure.input(VisitorIdSchema).mutation(({ ctx, input }) => {
    ctx.services.prompts.setMuted(input.visitorId, false);
    return { ok: true as const };
  }),

  /** Finished images in submission order, for the reveal. */
  revealQueue: adminProcedure.query(({ ctx }) => ctx.services.prompts.listAll({ onlyDone: true })),

  /** The reveal has shown this image: its author may now see it. */
  markRevealed: adminProcedure.input(PromptIdSchema).mutation(({ ctx, input }) => {
    ctx.services.prompts.markRevealed(input.id);
    return { ok: true as const };
  }),
});
