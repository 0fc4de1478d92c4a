import type { Standing } from "../../domain/line";
import { PromptInputSchema } from "../../domain/prompt-input";
import { router, visitorProcedure } from "../init";

export const promptRouter = router({
  submit: visitorProcedure.input(PromptInputSchema).mutation(({ ctx, input }) => ctx.services.prompts.submit(ctx.visitor.id, input)),

  /**
   * The caller's own prompts with their status; image URLs only after the reveal. An approved,
   * unfinished one carries its place in line and estimated wait (`line`), computed on each call.
   */
  mine: visitorProcedure.query(({ ctx }) => {
    const own = ctx.services.prompts.listOwn(ctx.visitor.id);
    // Working out the line reads every waiting job: only for a visitor with a prompt in it.
    const inLine = own.some((prompt) => prompt.status === "approved" || prompt.status === "generating");
    const standings = inLine ? ctx.services.line.standingsOf(ctx.visitor.id, ctx.services.link.generators()) : new Map<number, Standing>();
    return own.map((prompt) => ({ ...prompt, line: standings.get(prompt.id) ?? null }));
  }),
});
