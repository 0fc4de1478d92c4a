import { TRPCError } from "@trpc/server";
import type { Standing } from "../../domain/line";
import { PromptInputSchema } from "../../domain/prompt-input";
import type { OwnPrompt } from "../../domain/prompts";
import { publicProcedure, router, visitorProcedure } from "../init";
import { LiveInputSchema, liveStream } from "../live";

/** One of the visitor's prompts, with where it stands if it is in line. */
export type OwnPromptInLine = OwnPrompt & { line: Standing | null };

/**
 * A change to one of the visitor's prompts (`prompt: null` when it was deleted), or new places
 * in line and estimates for the visitor's prompts in line (any not listed has left the line).
 */
export type OwnPromptChange = { type: "prompt"; id: number; prompt: OwnPromptInLine | null } | { type: "line"; standings: Record<number, Standing> };

const isInLine = (prompt: OwnPrompt) => prompt.status === "approved" || prompt.status === "generating";

export const promptRouter = router({
  submit: visitorProcedure.input(PromptInputSchema).mutation(({ ctx, input }) => ctx.services.prompts.submit(ctx.visitor.id, input)),

  /**
   * The caller's own prompts with their status; image URLs only after the reveal. An approved,
   * unfinished one carries its place in line and estimated wait (`line`).
   */
  mine: visitorProcedure.query(({ ctx }): OwnPromptInLine[] => {
    const own = ctx.services.prompts.listOwn(ctx.visitor.id);
    // Working out the line reads every waiting job: only for a visitor with a prompt in it.
    const standings = own.some(isInLine) ? ctx.services.line.standingsOf(ctx.visitor.id, ctx.services.link.generators()) : new Map<number, Standing>();
    return own.map((prompt) => ({ ...prompt, line: standings.get(prompt.id) ?? null }));
  }),

  /** Where live updates start: read it before a snapshot (`mine`, the admin's dashboard), subscribe from it after. */
  liveCursor: publicProcedure.query(({ ctx }) => ctx.services.live.headId()),

  /**
   * Changes to the caller's own prompts, as they see them (never an image before the reveal);
   * `prompt: null` when one was deleted; and their places in line as the line moves. Needs the
   * visitor's cookie: a stream never creates a visitor.
   */
  onChange: publicProcedure.input(LiveInputSchema).subscription(({ ctx, input, signal }) => {
    const visitor = ctx.identity.cookieVisitor();
    if (!visitor) throw new TRPCError({ code: "UNAUTHORIZED", message: "Open the front page first: live updates follow your own prompts." });
    /** Whether the visitor had a prompt in line at the last line event: then they hear that it left. */
    let hadPlaces = false;
    return liveStream(ctx.services.live, {
      lastEventId: input?.lastEventId,
      signal,
      view: (event): OwnPromptChange | null => {
        if (event.kind === "generators" || event.kind === "show") return null;
        if (event.kind === "prompt" && event.visitorId !== visitor.id) return null;
        const standings = () => ctx.services.line.standingsAt(event.seq, visitor.id, () => ctx.services.link.generators());
        if (event.kind === "line") {
          const own = standings();
          if (!own.size && !hadPlaces) return null;
          hadPlaces = own.size > 0;
          return { type: "line", standings: Object.fromEntries(own) };
        }
        // A browser signed out meanwhile ("make a new code and link" elsewhere) hears no more.
        if (ctx.identity.cookieVisitor()?.id !== visitor.id) throw new TRPCError({ code: "UNAUTHORIZED", message: "This browser no longer uses this colour: reload the page." });
        const prompt = ctx.services.prompts.ownById(visitor.id, event.promptId);
        return { type: "prompt", id: event.promptId, prompt: prompt && { ...prompt, line: isInLine(prompt) ? (standings().get(prompt.id) ?? null) : null } };
      },
    });
  }),
});
