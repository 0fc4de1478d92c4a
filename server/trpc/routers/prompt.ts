import { TRPCError } from "@trpc/server";
import { z } from "zod";
import type { Standing } from "../../domain/line";
import type { JobProgress } from "../../domain/progress";
import { PromptInputSchema } from "../../domain/prompt-input";
import type { OwnPrompt } from "../../domain/prompts";
import type { Services } from "../../http/request-context";
import { publicProcedure, router, visitorProcedure } from "../init";
import { LiveInputSchema, liveStream } from "../live";

/** One of the visitor's prompts, with where it stands if it is in line, and how far it is while being made. */
export type OwnPromptInLine = OwnPrompt & { line: Standing | null; progress: JobProgress | null };

/**
 * A change to one of the visitor's prompts (`prompt: null` when it was deleted), new places in
 * line and estimates for the visitor's prompts in line (any not listed has left the line), or how
 * far one being made is (never a preview image).
 */
export type OwnPromptChange =
  | { type: "prompt"; id: number; prompt: OwnPromptInLine | null }
  | { type: "line"; standings: Record<number, Standing> }
  | { type: "progress"; id: number; progress: JobProgress | null };

const isInLine = (prompt: OwnPrompt) => prompt.status === "approved" || prompt.status === "generating";
const progressOf = (services: Services, prompt: OwnPrompt) => (prompt.status === "generating" ? services.progress.of(prompt.id) : null);

/**
 * Cancels a prompt for its author or the host, and tells the generator holding its job (if one
 * does) to stop that job, and only that one.
 */
export async function cancelPrompt(services: Services, id: number, by: { visitorId: number } | "host"): Promise<{ interrupted: string | null }> {
  const { jobId, holder } = services.prompts.cancel(id, by);
  if (jobId) services.progress.clear(jobId);
  if (jobId && holder) await services.link.cancel(holder, jobId, by === "host" ? "cancelled by the host" : "cancelled by its author");
  // A slot is free: the next job in line need not wait for the generator's next presence.
  if (holder) void services.link.dispatch();
  return { interrupted: holder };
}

/** A visitor's own prompts, newest first, each with its place in line and progress. */
export function ownPromptsInLine(services: Services, visitorId: number): OwnPromptInLine[] {
  const own = services.prompts.listOwn(visitorId);
  // Working out the line reads every waiting job: only for a visitor with a prompt in it.
  const standings = own.some(isInLine) ? services.line.standingsOf(visitorId, services.link.generators()) : new Map<number, Standing>();
  return own.map((prompt) => ({ ...prompt, line: standings.get(prompt.id) ?? null, progress: progressOf(services, prompt) }));
}

export const promptRouter = router({
  submit: visitorProcedure.input(PromptInputSchema).mutation(({ ctx, input }) => ctx.services.prompts.submit(ctx.visitor.id, input)),

  /**
   * The caller's own prompts with their status; image URLs only after the reveal. An approved,
   * unfinished one carries its place in line and estimated wait (`line`).
   */
  mine: visitorProcedure.query(({ ctx }) => ownPromptsInLine(ctx.services, ctx.visitor.id)),

  /** Calls off one of the caller's own prompts while it waits for the host or in line (not once it is being made). */
  cancel: visitorProcedure.input(z.object({ id: z.coerce.number().int().positive() })).mutation(async ({ ctx, input }) => {
    await cancelPrompt(ctx.services, input.id, { visitorId: ctx.visitor.id });
    return { ok: true as const };
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
    // Before anything of theirs is sent: a browser signed out meanwhile ("make a new code and
    // link" elsewhere), or a script whose token was revoked, hears no more.
    const assertStillTheirs = () => {
      if (ctx.identity.cookieVisitor()?.id === visitor.id) return;
      throw new TRPCError({ code: "UNAUTHORIZED", message: ctx.identity.apiToken ? "This API token was revoked." : "This browser no longer uses this colour: reload the page." });
    };
    return liveStream(ctx.services.live, {
      lastEventId: input?.lastEventId,
      signal,
      view: (event): OwnPromptChange | null => {
        if (event.kind === "generators" || event.kind === "show") return null;
        if ((event.kind === "prompt" || event.kind === "progress") && event.visitorId !== visitor.id) return null;
        const standings = () => ctx.services.line.standingsAt(event.seq, visitor.id, () => ctx.services.link.generators());
        if (event.kind === "line") {
          const own = standings();
          if (!own.size && !hadPlaces) return null;
          assertStillTheirs();
          hadPlaces = own.size > 0;
          return { type: "line", standings: Object.fromEntries(own) };
        }
        assertStillTheirs();
        if (event.kind === "progress") return { type: "progress", id: event.promptId, progress: ctx.services.progress.of(event.promptId) };
        const prompt = ctx.services.prompts.ownById(visitor.id, event.promptId);
        return {
          type: "prompt",
          id: event.promptId,
          prompt: prompt && { ...prompt, line: isInLine(prompt) ? (standings().get(prompt.id) ?? null) : null, progress: progressOf(ctx.services, prompt) },
        };
      },
    });
  }),
});
