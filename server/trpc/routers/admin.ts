import { z } from "zod";
import { redeemLoginLink } from "../../domain/admin-login-link";
import { setAdminPassword, verifyAdminPassword } from "../../domain/admin-password";
import { DomainError, type DomainErrorCode } from "../../domain/errors";
import { describeWait, type Refusal } from "../../domain/login-throttle";
import type { RequestContext } from "../../http/request-context";
import { adminProcedure, publicProcedure, router } from "../init";

const PromptIdSchema = z.object({ id: z.coerce.number().int().positive() });
const VisitorIdSchema = z.object({ visitorId: z.coerce.number().int().positive() });
const PasswordSchema = z.string().min(1).max(1024);
/** Checked against the contract's rules by the domain, which names what is wrong. */
const GeneratorNameSchema = z.object({ name: z.string().trim().min(1, { message: "Give the generator a name." }).max(200) });
const NEW_PASSWORD_MIN = 8;

function throttledMessage({ waitMs, scope }: Refusal): string {
  return scope === "device"
    ? `Too many wrong passwords from this browser. Try again in ${describeWait(waitMs)}.`
    : `Too many wrong passwords from this network. Try again in ${describeWait(waitMs)}, or log in from a browser that has logged in here before, or run \`npm run admin -- login-link\` on the server.`;
}

/**
 * Checks the admin password behind the login throttle (ADR 006): refused with Retry-After when
 * this browser or network must wait, else verified. Throws `wrong` when it does not match.
 */
async function checkPassword(ctx: RequestContext, password: string, wrong: { code: DomainErrorCode; message: string }): Promise<void> {
  const attempt = ctx.identity.loginAttempt();
  const refusal = ctx.services.loginThrottle.admit(attempt);
  if (refusal) throw new DomainError("LOGIN_THROTTLED", throttledMessage(refusal), refusal.waitMs);
  if (!(await verifyAdminPassword(ctx.services.db, password))) throw new DomainError(wrong.code, wrong.message);
  ctx.services.loginThrottle.succeeded(attempt);
}

export const adminRouter = router({
  login: publicProcedure.input(z.object({ password: PasswordSchema })).mutation(async ({ ctx, input }) => {
    await checkPassword(ctx, input.password, { code: "BAD_PASSWORD", message: "That is not the admin password." });
    ctx.identity.signInAdmin();
    return { ok: true as const };
  }),

  /** A one-time link from `npm run admin -- login-link`: bypasses the throttle, so the host always has a way in. */
  redeemLoginLink: publicProcedure.input(z.object({ token: z.string().min(1).max(200) })).mutation(({ ctx, input }) => {
    if (!redeemLoginLink(ctx.services.db, input.token)) {
      throw new DomainError("LOGIN_LINK_INVALID", "This login link is expired or was already used. Run `npm run admin -- login-link` again.");
    }
    ctx.identity.signInAdmin();
    return { ok: true as const };
  }),

  logout: publicProcedure.mutation(({ ctx }) => {
    ctx.identity.signOutAdmin();
    return { ok: true as const };
  }),

  /** Ends every admin session, this one included (a lost phone, a shared laptop). */
  logoutEverywhere: adminProcedure.mutation(({ ctx }) => {
    ctx.identity.signOutEverywhere();
    return { ok: true as const };
  }),

  /** Needs the current password; every other session ends and this one gets a new token. */
  changePassword: adminProcedure
    .input(z.object({ currentPassword: PasswordSchema, newPassword: z.string().min(NEW_PASSWORD_MIN, { message: `At least ${NEW_PASSWORD_MIN} characters.` }).max(1024) }))
    .mutation(async ({ ctx, input }) => {
      await checkPassword(ctx, input.currentPassword, { code: "WRONG_CURRENT_PASSWORD", message: "The current password is not right; nothing was changed." });
      await setAdminPassword(ctx.services.db, input.newPassword);
      ctx.identity.signInAdmin();
      return { ok: true as const };
    }),

  isAdmin: publicProcedure.query(({ ctx }) => ctx.identity.isAdmin()),

  /** Every prompt, newest first, with the moderation overview. */
  dashboard: adminProcedure.query(({ ctx }) => ({
    prompts: ctx.services.prompts.listAll(),
    counts: ctx.services.prompts.counts(),
    generators: ctx.services.link.generators(),
    /** Place in line (1 = next) of each approved prompt no generator has yet, by prompt id. */
    line: ctx.services.line.places(),
    /** Set when generators connect to an external broker (ADR 009) rather than the embedded one. */
    externalBroker: ctx.services.brokerAccess.externalUrl,
  })),

  /** Approves a prompt and publishes its job; approving twice publishes once. */
  approve: adminProcedure.input(PromptIdSchema).mutation(async ({ ctx, input }) => {
    const jobId = ctx.services.prompts.approve(input.id);
    if (jobId) await ctx.services.link.dispatch();
    return { published: jobId !== null };
  }),

  /** Puts an approved prompt that waits in line first, ahead of everything pinned before it. */
  pinToFront: adminProcedure.input(PromptIdSchema).mutation(({ ctx, input }) => {
    ctx.services.line.pinToFront(input.id);
    return { ok: true as const };
  }),

  /** Swaps a waiting prompt with its neighbour in line; the jobs up to there keep the admin's order. */
  moveInLine: adminProcedure.input(PromptIdSchema.extend({ direction: z.enum(["up", "down"]) })).mutation(({ ctx, input }) => {
    ctx.services.line.move(input.id, input.direction);
    return { ok: true as const };
  }),

  deny: adminProcedure.input(PromptIdSchema).mutation(({ ctx, input }) => {
    ctx.services.prompts.deny(input.id);
    return { ok: true as const };
  }),

  /** Sends a failed prompt to the generators again. */
  retry: adminProcedure.input(PromptIdSchema).mutation(async ({ ctx, input }) => {
    ctx.services.prompts.retry(input.id);
    await ctx.services.link.dispatch();
    return { published: true as const };
  }),

  /** Sends failed prompts to the generators again: the ones given, or every failed one. Returns how many went. */
  retryFailed: adminProcedure.input(z.object({ ids: z.array(z.coerce.number().int().positive()).max(10_000).optional() })).mutation(async ({ ctx, input }) => {
    const failed = ctx.services.prompts.failedIds();
    // Only failed ones: a selection that changed meanwhile (one already retried) is skipped, not an error.
    const wanted = input.ids && new Set(input.ids);
    const ids = wanted ? failed.filter((id) => wanted.has(id)) : failed;
    for (const id of ids) ctx.services.prompts.retry(id);
    await ctx.services.link.dispatch();
    return { retried: ids.length };
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

  /** Generators with a credential, and where they connect. */
  generators: adminProcedure.query(({ ctx }) => {
    const online = new Set(ctx.services.link.generators().filter((generator) => generator.state === "online").map((generator) => generator.generatorId));
    return {
      generators: ctx.services.generators.list().map((generator) => ({
        name: generator.name,
        createdAt: generator.createdAt.toISOString(),
        lastSeenAt: generator.lastSeenAt?.toISOString() ?? null,
        connected: generator.connected,
        online: online.has(generator.name),
      })),
      brokerAccess: ctx.services.brokerAccess,
    };
  }),

  /** Adds a generator; its token is in this answer only. */
  addGenerator: adminProcedure.input(GeneratorNameSchema).mutation(({ ctx, input }) => ctx.services.generators.add(input.name)),

  /** Revokes a generator: it is disconnected at once and cannot connect again. */
  revokeGenerator: adminProcedure.input(GeneratorNameSchema).mutation(({ ctx, input }) => {
    ctx.services.generators.revoke(input.name);
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
