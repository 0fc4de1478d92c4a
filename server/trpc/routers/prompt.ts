import { PromptInputSchema } from "../../domain/prompt-input";
import { router, visitorProcedure } from "../init";

export const promptRouter = router({
  submit: visitorProcedure.input(PromptInputSchema).mutation(({ ctx, input }) => ctx.services.prompts.submit(ctx.visitor.id, input)),

  /** The caller's own prompts with their status; image URLs only after the reveal. */
  mine: visitorProcedure.query(({ ctx }) => ctx.services.prompts.listOwn(ctx.visitor.id)),
});
