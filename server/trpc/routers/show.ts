/**
 * The show (server/domain/show.ts): the presenter's moves and settings, and two live streams,
 * the presenter's and the audience's. The audience's needs the current code; closing or
 * rotating the link ends every stream opened with the old one.
 */
import { z } from "zod";
import { AUTO_ADVANCE_MAX_SECONDS, SHOW_MODES, type PresenterView, type ShowView } from "../../domain/show";
import { DomainError } from "../../domain/errors";
import { moderateProcedure, publicProcedure, readProcedure, router, assertStillSignedIn } from "../init";
import { LiveInputSchema, liveStream } from "../live";
import { audit } from "./admin";
import type { LiveEvent } from "../../domain/live-events";
import type { RequestContext } from "../../http/request-context";

/** Typed from a screen: spaces, dashes and lower case are forgiven. */
const CodeSchema = z
  .string()
  .max(40)
  .transform((code) => code.replace(/[\s-]/g, "").toUpperCase());
const AudienceInputSchema = z.object({ code: CodeSchema, lastEventId: z.string().max(100).nullish() });

export type PresenterChange = { type: "show"; show: PresenterView };
/** `closed`: the link was closed or rotated; this audience sees no more. */
export type AudienceChange = { type: "show"; show: ShowView } | { type: "closed" };

/** The show as seen after `event`, or null when it cannot have changed or is what was last sent. */
function changedView<T>(read: () => T): (event: LiveEvent) => T | null {
  let last = "";
  return (event) => {
    if (event.kind !== "show" && event.kind !== "prompt") return null;
    const view = read();
    const json = JSON.stringify(view);
    if (json === last) return null;
    last = json;
    return view;
  };
}

/** Each presenter action: a move or setting, recorded in the audit log. */
function presenterAction<I>(action: string, run: (ctx: RequestContext, input: I) => PresenterView) {
  return ({ ctx, input }: { ctx: RequestContext & { actor: string }; input: I }) => {
    const view = run(ctx, input);
    audit(ctx, { action: `show.${action}`, details: input && typeof input === "object" ? (input as Record<string, unknown>) : null });
    return view;
  };
}

export const showRouter = router({
  /**
   * The presenter's view, with the live cursor to follow it from (read first: ADR 012) and
   * where guests reach the site (PUBLIC_URL, else this request's origin) for the audience link.
   */
  presenter: readProcedure.query(({ ctx }) => ({ liveCursor: ctx.services.live.headId(), show: ctx.services.show.presenterView(), origin: ctx.publicOrigin })),

  onPresenter: readProcedure.input(LiveInputSchema).subscription(({ ctx, input, signal }) => {
    const view = changedView(() => ctx.services.show.presenterView());
    return liveStream(ctx.services.live, {
      lastEventId: input?.lastEventId,
      signal,
      view: (event): PresenterChange | null => {
        assertStillSignedIn(ctx);
        const show = view(event);
        return show && { type: "show", show };
      },
    });
  }),

  /** The audience's view, for the current code only (else 404), with the address its join QR code holds. */
  audience: publicProcedure.input(z.object({ code: CodeSchema })).query(({ ctx, input }) => ({
    liveCursor: ctx.services.live.headId(),
    show: ctx.services.show.audienceView(input.code),
    joinUrl: `${ctx.publicOrigin}/`,
  })),

  onAudience: publicProcedure.input(AudienceInputSchema).subscription(({ ctx, input, signal }) => {
    ctx.services.show.audienceView(input.code);
    let closed = false;
    const view = changedView(() => ctx.services.show.audienceView(input.code));
    return liveStream(ctx.services.live, {
      lastEventId: input.lastEventId,
      signal,
      view: (event): AudienceChange | null => {
        if (closed) return null;
        try {
          const show = view(event);
          return show && { type: "show", show };
        } catch (error) {
          if (!(error instanceof DomainError && error.code === "SHOW_NOT_FOUND")) throw error;
          closed = true;
          return { type: "closed" };
        }
      },
    });
  }),

  start: moderateProcedure.mutation(presenterAction("start", (ctx) => ctx.services.show.start())),
  next: moderateProcedure.mutation(presenterAction("next", (ctx) => ctx.services.show.next())),
  previous: moderateProcedure.mutation(presenterAction("previous", (ctx) => ctx.services.show.previous())),
  end: moderateProcedure.mutation(presenterAction("end", (ctx) => ctx.services.show.end())),
  setMode: moderateProcedure
    .input(z.object({ mode: z.enum(SHOW_MODES, { message: `The mode is one of ${SHOW_MODES.join(", ")}.` }) }))
    .mutation(presenterAction("mode", (ctx, input) => ctx.services.show.setMode(input.mode))),
  setAutoAdvance: moderateProcedure
    .input(z.object({ seconds: z.coerce.number({ error: (issue) => (issue.code === "invalid_type" ? "Give the seconds per image as a number." : undefined) }).int().min(0, { message: "Zero or more seconds per image." }).max(AUTO_ADVANCE_MAX_SECONDS, { message: `At most ${AUTO_ADVANCE_MAX_SECONDS} seconds per image.` }) }))
    .mutation(presenterAction("auto-advance", (ctx, input) => ctx.services.show.setAutoAdvance(input.seconds))),
  /** A new code for the audience's link (the old one stops working). */
  openLink: moderateProcedure.mutation(presenterAction("link.open", (ctx) => ctx.services.show.openLink())),
  closeLink: moderateProcedure.mutation(presenterAction("link.close", (ctx) => ctx.services.show.closeLink())),
});
