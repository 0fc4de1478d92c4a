import { TRPCError } from "@trpc/server";
import { PromptInputSchema } from "../../domain/prompt-input";
import type { OwnPrompt } from "../../domain/prompts";
import { publicProcedure, router, visitorProcedure } from "../init";
import { LiveInputSchema, liveStream } from "../live";

/** A change to one of the visitor's prompts; `prompt: null` when it was deleted. */
export type OwnPromptChange = { type: "prompt"; id: number; prompt: OwnPrompt | null };

export const promptRouter = router({
  submit: visitorProcedure.input(PromptInputSchema).mutation(({ ctx, input }) => ctx.services.prompts.submit(ctx.visitor.id, input)),

  /** The caller's own prompts with their status; image URLs only after the reveal. */
  mine: visitorProcedure.query(({ ctx }) => ctx.services.prompts.listOwn(ctx.visitor.id)),

  /** Where live updates start: read it before a snapshot (`mine`, the admin's dashboard), subscribe from it after. */
  liveCursor: publicProcedure.query(({ ctx }) => ctx.services.live.headId()),

  /**
   * Changes to the caller's own prompts, as they see them (never an image before the reveal);
   * `prompt: null` when one was deleted. Needs the visitor's cookie: a stream never creates a visitor.
   */
  onChange: publicProcedure.input(LiveInputSchema).subscription(({ ctx, input, signal }) => {
    const visitor = ctx.identity.cookieVisitor();
    if (!visitor) throw new TRPCError({ code: "UNAUTHORIZED", message: "Open the front page first: live updates follow your own prompts." });
    return liveStream(ctx.services.live, {
      lastEventId: input?.lastEventId,
      signal,
      view: (event): OwnPromptChange | null => {
        if (event.kind !== "prompt" || event.visitorId !== visitor.id) return null;
        // A browser signed out meanwhile ("make a new code and link" elsewhere) hears no more.
        if (ctx.identity.cookieVisitor()?.id !== visitor.id) throw new TRPCError({ code: "UNAUTHORIZED", message: "This browser no longer uses this colour: reload the page." });
        return { type: "prompt", id: event.promptId, prompt: ctx.services.prompts.ownById(visitor.id, event.promptId) };
      },
    });
  }),
});
