import { z } from "zod";
import { recoveryLinkHash, recoveryLinkPath, type RecoveryProof } from "../../domain/recovery";
import type { VisitorState } from "../../domain/visitors";
import type { RequestContext } from "../../http/request-context";
import { publicProcedure, router, visitorProcedure } from "../init";
import { ownPromptsInLine } from "./prompt";

/** A recovery link's secret: 32 bytes in base64url. */
const LinkSecretSchema = z.object({ secret: z.string().regex(/^[A-Za-z0-9_-]{43}$/, { message: "This is not a recovery link." }) });

/** What the owner's page shows of a recovery proof. */
function recoveryView(publicOrigin: string, proof: RecoveryProof) {
  return {
    code: proof.code,
    link: `${publicOrigin}${recoveryLinkPath(proof.linkSecret)}`,
    // Changes with the link, so the page asks for the new QR code after a renewal or recovery.
    qrVersion: recoveryLinkHash(proof.linkSecret).slice(0, 8),
  };
}

/** Who the caller is, the colour they were offered, and their recovery code and link. */
function meOf(ctx: RequestContext & VisitorState) {
  return {
    colour: ctx.visitor.colour,
    offer: ctx.offer?.colour ?? null,
    recovery: ctx.identity.recoverable ? recoveryView(ctx.publicOrigin, ctx.services.visitors.recoveryProof(ctx.visitor.id)) : null,
  };
}

export const visitorRouter = router({
  /**
   * Who am I: the caller's identity (created on a first visit), an open "are you Teal?" offer,
   * and the code and link that let them take their colour to another browser. An API token's
   * colour is a script's: no browser may become it, so it has no code or link; nor has the colour
   * of a person a trusted proxy signs in, which follows their sign-in.
   */
  me: visitorProcedure.query(({ ctx }) => meOf(ctx)),

  /**
   * The visitor's own page in one call (one pass through the middleware, one visitor lookup):
   * `me`, where live updates start, and `prompt.mine`.
   */
  page: visitorProcedure.query(({ ctx }) => {
    const me = meOf(ctx);
    // Before the snapshot: the live stream resumes from here (ADR 012).
    const liveCursor = ctx.services.live.headId();
    return { me, liveCursor, prompts: ownPromptsInLine(ctx.services, ctx.visitor.id) };
  }),

  /** "I'm new": the offer is withdrawn and its fingerprint never offers anyone again. */
  declineOffer: publicProcedure.mutation(({ ctx }) => {
    ctx.identity.declineOffer();
    return { ok: true as const };
  }),

  /** Proves an identity with its recovery code: the offered one, or the one named by `colourName`. */
  recover: publicProcedure
    .input(
      z.object({
        code: z.string().trim().min(1, { message: "Enter the recovery code" }).max(100, { message: "A recovery code is three short words" }),
        colourName: z.string().trim().max(60).optional(),
      }),
    )
    .mutation(({ ctx, input }) => ({ colour: ctx.identity.recoverWithCode({ code: input.code, colourName: input.colourName || undefined }).colour })),

  /**
   * The colour a recovery link restores, and the one this browser has now (if any), so the
   * confirmation says what is being left behind.
   */
  linkTarget: publicProcedure.input(LinkSecretSchema).query(({ ctx, input }) => ({
    colour: ctx.services.visitors.linkTarget(input.secret).colour,
    current: ctx.identity.cookieVisitor()?.colour ?? null,
  })),

  /** Uses a recovery link: this browser becomes its visitor. */
  useLink: publicProcedure.input(LinkSecretSchema).mutation(({ ctx, input }) => ({ colour: ctx.identity.recoverWithLink(input.secret).colour })),

  /** A new code and link; the old ones stop working and every other browser using this colour is signed out. */
  renewRecovery: visitorProcedure.mutation(({ ctx }) => {
    ctx.identity.replaceRecovery(ctx.visitor.id);
    return { recovery: recoveryView(ctx.publicOrigin, ctx.services.visitors.recoveryProof(ctx.visitor.id)) };
  }),
});
