import { PromptInputSchema } from "../../domain/prompt-input";
import { router, visitorProcedure } from "../init";

export const promptRouter = router({
  submit: visitorProcedure.input(PromptInputSchema).mutation(({ ctx, input }) => ctx.services.prompts.submit(ctx.visitor.id, input)),

  /**
   * The caller's own prompts with their status; image URLs only after the reveal. An approved,
   * unfinished one carries its place in line and estimated wait (`line`), computed on each call.
   */
  mine: visitorProcedure.query(({ ctx }) => {
    const standings = ctx.services.line.standingsOf(ctx.visitor.id, ctx.services.link.generators());
    return ctx.services.prompts.listOwn(ctx.visitor.id).map((prompt) => ({ ...prompt, line: standings.get(prompt.id) ?? null }));
  }),
});
