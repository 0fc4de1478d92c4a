import { publicProcedure, router, visitorProcedure } from "../init";

export const visitorRouter = router({
  /** Who am I: resolves (or creates) the caller's anonymous identity. */
  me: visitorProcedure.query(({ ctx }) => ({
    colour: ctx.visitor.colour,
    /** True on the request where a cookie-less visitor was recognised by fingerprint. */
    recognised: ctx.visitorOrigin === "recognised",
  })),

  /** "That's not me, I'm new": a new colour, and the matched fingerprint is never used again. */
  startFresh: publicProcedure.mutation(({ ctx }) => ({ colour: ctx.identity.startFresh().colour })),
});
