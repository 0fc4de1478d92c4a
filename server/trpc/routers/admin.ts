import { z } from "zod";
import { findAccount, FIRST_ADMIN, PASSWORD_MAX, PASSWORD_MIN, setAccountPassword, verifyLogin, type Account } from "../../domain/accounts";
import { redeemLoginLink } from "../../domain/admin-login-link";
import { recordAudit, type AuditEntry } from "../../domain/audit";
import { DomainError, type DomainErrorCode } from "../../domain/errors";
import { describeWait, type Refusal } from "../../domain/login-throttle";
import { DENY_REASON_MAX } from "../../domain/moderation";
import type { JobProgress } from "../../domain/progress";
import { PromptInputSchema } from "../../domain/prompt-input";
import type { ModeratedPrompt, ModeratedQuery, PromptService } from "../../domain/prompts";
import { PROMPT_STATUSES } from "../../db/schema";
import type { RequestContext } from "../../http/request-context";
import type { GeneratorView } from "../../link";
import { accountProcedure, adminProcedure, moderateProcedure, publicProcedure, readProcedure, router, assertStillSignedIn } from "../init";
import { LiveInputSchema, liveStream } from "../live";
import { cancelPrompt } from "./prompt";

const PromptIdSchema = z.object({ id: z.coerce.number().int().positive() });
const VisitorIdSchema = z.object({ visitorId: z.coerce.number().int().positive() });
const PasswordSchema = z.string().min(1).max(PASSWORD_MAX);
/** Checked against the contract's rules by the domain, which names what is wrong. */
const GeneratorNameSchema = z.object({ name: z.string().trim().min(1, { message: "Give the generator a name." }).max(200) });
/** Prompts per page of the admin's list; older ones are paged in on demand. */
const PROMPT_PAGE = 50;
/** A page of the list, optionally only one status and one colour (its visitor id). */
const PageSchema = z.object({
  limit: z.coerce.number().int().min(1).max(5000).default(PROMPT_PAGE),
  status: z.enum(PROMPT_STATUSES).optional(),
  visitorId: z.coerce.number().int().positive().optional(),
});
/** A selection for a batch action; one that changed meanwhile (already decided) is skipped. */
const PromptIdsSchema = z.object({ ids: z.array(z.coerce.number().int().positive()).min(1, { message: "Select at least one prompt." }).max(1000) });
/** The reason its author reads under a denied prompt: trimmed, one line, at most 200 characters; empty means none. */
const DenyReasonSchema = z
  .string()
  .max(2000)
  .transform((value) => value.normalize("NFC").replace(/\s+/g, " ").trim())
  .pipe(z.string().max(DENY_REASON_MAX, { message: `A reason must be at most ${DENY_REASON_MAX} characters` }))
  // Control and text-direction characters would show the guest something other than what was typed.
  .refine((value) => !/[\u0000-\u001F\u007F-\u009F\u202A-\u202E\u2066-\u2069]/.test(value), { message: "A reason must be plain text" });
const ReasonSchema = z.object({ reason: DenyReasonSchema.default("") });

/** Records what `ctx.actor` did. */
export const audit = (ctx: { services: RequestContext["services"]; actor: string }, entry: Omit<AuditEntry, "actor">) => recordAudit(ctx.services.db, { actor: ctx.actor, ...entry });

function throttledMessage({ waitMs, scope }: Refusal): string {
  return scope === "device"
    ? `Too many wrong passwords from this browser. Try again in ${describeWait(waitMs)}.`
    : `Too many wrong passwords from this network. Try again in ${describeWait(waitMs)}, or log in from a browser that has logged in here before, or run \`npm run admin -- login-link\` on the server.`;
}

/**
 * Checks a name and password behind the login throttle (ADR 006): refused with Retry-After when
 * this browser or network must wait, else verified. Throws `wrong` when they do not match. Every
 * failure is in the audit log under the name tried, the throttle's refusals counted a minute at a time.
 */
async function checkPassword(ctx: RequestContext, name: string, password: string, wrong: { code: DomainErrorCode; message: string }): Promise<Account> {
  const attempt = ctx.identity.loginAttempt();
  const refusal = ctx.services.loginThrottle.admit(attempt);
  // No address: promptgate stores none (tests/integration/privacy.test.ts).
  if (refusal) {
    ctx.services.loginRefusals.refused(name);
    throw new DomainError("LOGIN_THROTTLED", throttledMessage(refusal), refusal.waitMs);
  }
  const account = await verifyLogin(ctx.services.db, name, password);
  if (!account) {
    recordAudit(ctx.services.db, { actor: name, action: "login.failed", details: { reason: wrong.code === "BAD_PASSWORD" ? "wrong name or password" : "wrong current password" } });
    throw new DomainError(wrong.code, wrong.message);
  }
  ctx.services.loginThrottle.succeeded(attempt);
  return account;
}

/**
 * What the admin's stream sends: a prompt that changed (null: deleted) with the new counts, the
 * generators view, or the places in line of the prompts waiting (prompt id → place, 1 = next).
 */
export type AdminChange =
  | { type: "prompt"; id: number; prompt: ModeratedPrompt | null; counts: ReturnType<PromptService["counts"]> }
  | { type: "progress"; id: number; progress: JobProgress | null }
  | { type: "generators"; generators: GeneratorView[] }
  | { type: "line"; places: Record<number, number> };

/** A page of prompts, newest first; `olderThan` is where the next page starts (null: there is none). */
function olderPrompts(ctx: RequestContext, { limit, ...query }: ModeratedQuery & { limit: number }) {
  const prompts = ctx.services.prompts.listAll({ ...query, limit: limit + 1 });
  const more = prompts.length > limit;
  if (more) prompts.pop();
  return { prompts, olderThan: more ? prompts.at(-1)!.id : null };
}

const generatorsOnline = (ctx: RequestContext) => ctx.services.link.generators().filter((generator) => generator.state === "online").length;

/** Applies `decide` to each selected prompt; one that cannot take it (decided meanwhile) is skipped. Returns those decided. */
function decideMany(ctx: RequestContext, ids: number[], decide: (id: number) => boolean): number[] {
  const decided: number[] = [];
  for (const id of new Set(ids)) {
    try {
      if (decide(id)) decided.push(id);
    } catch (error) {
      if (!(error instanceof DomainError && (error.code === "INVALID_TRANSITION" || error.code === "PROMPT_NOT_FOUND"))) throw error;
    }
  }
  return decided;
}

export const adminRouter = router({
  /** Logs in an admin or moderator; `name` defaults to the first admin's. */
  login: publicProcedure.input(z.object({ name: z.string().max(200).default(FIRST_ADMIN), password: PasswordSchema })).mutation(async ({ ctx, input }) => {
    const account = await checkPassword(ctx, input.name, input.password, { code: "BAD_PASSWORD", message: "Wrong name or password." });
    ctx.identity.signIn(account.id);
    recordAudit(ctx.services.db, { actor: account.name, action: "login" });
    return { ok: true as const, role: account.role };
  }),

  /** A one-time link from `npm run admin -- login-link`: logs in the first admin past the throttle, so the host always has a way in. */
  redeemLoginLink: publicProcedure.input(z.object({ token: z.string().min(1).max(200) })).mutation(({ ctx, input }) => {
    const admin = findAccount(ctx.services.db, FIRST_ADMIN);
    if (!admin || !redeemLoginLink(ctx.services.db, input.token)) {
      recordAudit(ctx.services.db, { actor: FIRST_ADMIN, action: "login.failed", details: { reason: "login link expired, used or unknown" } });
      throw new DomainError("LOGIN_LINK_INVALID", "This login link is expired or was already used. Run `npm run admin -- login-link` again.");
    }
    ctx.identity.signIn(admin.id);
    recordAudit(ctx.services.db, { actor: admin.name, action: "login", details: { via: "login link" } });
    return { ok: true as const };
  }),

  logout: publicProcedure.mutation(({ ctx }) => {
    const account = ctx.identity.account();
    ctx.identity.signOut();
    if (account) recordAudit(ctx.services.db, { actor: account.name, action: "logout" });
    return { ok: true as const };
  }),

  /** Ends every session of this account, this one included (a lost phone, a shared laptop). */
  logoutEverywhere: accountProcedure.mutation(({ ctx }) => {
    ctx.identity.signOutEverywhere();
    audit(ctx, { action: "logout.everywhere" });
    return { ok: true as const };
  }),

  /**
   * This account's live sessions (started, last used, expires; this browser's marked), and
   * whether the trusted proxy signs this browser in instead: its sign-in has no session here.
   */
  sessions: accountProcedure.query(({ ctx }) => {
    const { viaProxy, sessions } = ctx.identity.ownSessions(ctx.account.id);
    return {
      viaProxy,
      sessions: sessions.map(({ createdAt, lastSeenAt, expiresAt, ...session }) => ({
        ...session,
        createdAt: createdAt.toISOString(),
        lastSeenAt: lastSeenAt.toISOString(),
        expiresAt: expiresAt.toISOString(),
      })),
    };
  }),

  /** Ends one session of this account by its id from `sessions` (a lost phone): its next request is signed out. */
  endSession: accountProcedure.input(z.object({ id: z.string().trim().min(1, { message: "Id missing: name a session to end." }).max(100) })).mutation(({ ctx, input }) => {
    const { createdAt } = ctx.services.adminSessions.endOne(ctx.account.id, input.id);
    audit(ctx, { action: "session.end", target: ctx.account.name, details: { startedAt: createdAt.toISOString() } });
    return { ok: true as const };
  }),

  /** Needs the current password; every other session of this account ends and this one gets a new token. */
  changePassword: accountProcedure
    .input(z.object({ currentPassword: PasswordSchema, newPassword: z.string().min(PASSWORD_MIN, { message: `At least ${PASSWORD_MIN} characters.` }).max(PASSWORD_MAX) }))
    .mutation(async ({ ctx, input }) => {
      await checkPassword(ctx, ctx.account.name, input.currentPassword, { code: "WRONG_CURRENT_PASSWORD", message: "The current password is not right; nothing was changed." });
      await setAccountPassword(ctx.services.db, ctx.account.id, input.newPassword);
      ctx.identity.signIn(ctx.account.id);
      audit(ctx, { action: "password.change", target: ctx.account.name });
      return { ok: true as const };
    }),

  /** Who is logged in here (name and role), else null. */
  me: publicProcedure.query(({ ctx }) => ctx.identity.account()),

  /**
   * The newest prompts (`limit`, one page by default) and every prompt held apart, with the
   * moderation overview, and the live cursor to follow changes from (read first: ADR 012).
   */
  dashboard: readProcedure.input(PageSchema.optional()).query(({ ctx, input }) => {
    const page = olderPrompts(ctx, input ?? { limit: PROMPT_PAGE });
    const held = ctx.services.prompts.listAll({ onlyHeld: true });
    return {
      liveCursor: ctx.services.live.headId(),
      pageSize: PROMPT_PAGE,
      ...page,
      held,
      /** How far each listed prompt being made is, so a reloaded page shows the step at once (later ones come live). */
      progress: Object.fromEntries([...page.prompts, ...held].filter((prompt) => prompt.status === "generating").map((prompt) => [prompt.id, ctx.services.progress.of(prompt.id)] as const)),
      /** Every colour that has sent a prompt, for the colour filter. */
      colours: ctx.services.prompts.authors(),
      counts: ctx.services.prompts.counts(),
      generators: ctx.services.link.generators(),
      /** Place in line (1 = next) of each approved prompt no generator has yet, by prompt id. */
      line: ctx.services.line.places(),
      /** Set when generators connect to an external broker (ADR 009) rather than the embedded one. */
      externalBroker: ctx.services.brokerAccess.externalUrl,
    };
  }),

  /** The page of prompts older than `before`, newest first. */
  olderPrompts: readProcedure
    .input(PageSchema.extend({ before: z.coerce.number().int().positive() }))
    .query(({ ctx, input }) => olderPrompts(ctx, input)),

  /**
   * Changes, not the table: each prompt that changed as the admin sees it (`prompt: null` when
   * deleted) with the new counts, and the generators view when it changed. Ends when the admin
   * session does.
   */
  onChange: readProcedure.input(LiveInputSchema).subscription(({ ctx, input, signal }) =>
    liveStream(ctx.services.live, {
      lastEventId: input?.lastEventId,
      signal,
      view: (event): AdminChange | null => {
        assertStillSignedIn(ctx);
        // The show's presenter follows it on its own stream (show.onPresenter).
        if (event.kind === "show") return null;
        if (event.kind === "generators") return { type: "generators", generators: ctx.services.link.generators() };
        if (event.kind === "line") return { type: "line", places: ctx.services.line.placesAt(event.seq) };
        if (event.kind === "progress") return { type: "progress", id: event.promptId, progress: ctx.services.progress.of(event.promptId) };
        return { type: "prompt", id: event.promptId, prompt: ctx.services.prompts.moderatedById(event.promptId), counts: ctx.services.prompts.counts() };
      },
    }),
  ),

  /**
   * Approves a prompt and publishes its job; approving twice publishes once. `generatorsOnline`
   * 0 means the job waits until one connects: the page says so.
   */
  approve: moderateProcedure.input(PromptIdSchema).mutation(async ({ ctx, input }) => {
    const jobId = ctx.services.prompts.approve(input.id);
    audit(ctx, { action: "prompt.approve", target: `prompt ${input.id}`, details: jobId ? { jobId } : null });
    if (jobId) await ctx.services.link.dispatch();
    return { published: jobId !== null, generatorsOnline: generatorsOnline(ctx) };
  }),

  /** Approves the selected prompts that are pending or denied; the others are skipped. */
  approveMany: moderateProcedure.input(PromptIdsSchema).mutation(async ({ ctx, input }) => {
    const approved = decideMany(ctx, input.ids, (id) => ctx.services.prompts.approve(id) !== null);
    if (approved.length) audit(ctx, { action: "prompt.approve", target: `${approved.length} prompts`, details: { ids: approved } });
    await ctx.services.link.dispatch();
    return { approved: approved.length, generatorsOnline: generatorsOnline(ctx) };
  }),

  /** Denies the selected prompts that are pending, with one reason; the others are skipped. */
  denyMany: moderateProcedure.input(PromptIdsSchema.extend(ReasonSchema.shape)).mutation(({ ctx, input }) => {
    const denied = decideMany(ctx, input.ids, (id) => {
      ctx.services.prompts.deny(id, input.reason);
      return true;
    });
    if (denied.length) audit(ctx, { action: "prompt.deny", target: `${denied.length} prompts`, details: { ids: denied, reason: input.reason || null } });
    return { denied: denied.length };
  }),

  /** Denies the other pending prompts alike to this one (same text, any colour) as duplicates. */
  denyAlike: moderateProcedure.input(PromptIdSchema.extend({ reason: DenyReasonSchema.default("Duplicate") })).mutation(({ ctx, input }) => {
    const ids = ctx.services.prompts.denyAlike(input.id, input.reason);
    if (ids.length) audit(ctx, { action: "prompt.deny", target: `${ids.length} prompts`, details: { ids, reason: input.reason || null, alikeTo: input.id } });
    return { denied: ids.length };
  }),

  /** Rewords a pending prompt before approving it; the guest's text stays on record. */
  edit: moderateProcedure.input(PromptIdSchema.extend({ prompt: PromptInputSchema.shape.prompt, negativePrompt: PromptInputSchema.shape.negativePrompt })).mutation(({ ctx, input }) => {
    ctx.services.prompts.edit(input.id, input);
    audit(ctx, { action: "prompt.edit", target: `prompt ${input.id}`, details: { prompt: input.prompt, negativePrompt: input.negativePrompt } });
    return { ok: true as const };
  }),

  /** Takes back, within UNDO_SECONDS, a denial, or an approval whose job no generator has leased yet: the prompt is pending again. */
  undo: moderateProcedure.input(PromptIdSchema).mutation(({ ctx, input }) => {
    const undone = ctx.services.prompts.undo(input.id);
    if (undone === "approve") ctx.services.live.lineChanged();
    audit(ctx, { action: `prompt.undo-${undone}`, target: `prompt ${input.id}` });
    return { undone };
  }),

  /** Keeps a finished image out of the reveal, the show and the gallery, or lets it back in. */
  hide: moderateProcedure.input(PromptIdSchema.extend({ hidden: z.boolean() })).mutation(({ ctx, input }) => {
    ctx.services.prompts.setHidden(input.id, input.hidden);
    audit(ctx, { action: input.hidden ? "prompt.hide" : "prompt.unhide", target: `prompt ${input.id}` });
    return { ok: true as const };
  }),

  /** Puts an approved prompt that waits in line first, ahead of everything pinned before it. */
  pinToFront: moderateProcedure.input(PromptIdSchema).mutation(({ ctx, input }) => {
    ctx.services.line.pinToFront(input.id);
    ctx.services.live.lineChanged();
    audit(ctx, { action: "prompt.pin", target: `prompt ${input.id}` });
    return { ok: true as const };
  }),

  /** Swaps a waiting prompt with its neighbour in line; the jobs up to there keep the admin's order. */
  moveInLine: moderateProcedure.input(PromptIdSchema.extend({ direction: z.enum(["up", "down"]) })).mutation(({ ctx, input }) => {
    ctx.services.line.move(input.id, input.direction);
    ctx.services.live.lineChanged();
    audit(ctx, { action: "prompt.move", target: `prompt ${input.id}`, details: { direction: input.direction } });
    return { ok: true as const };
  }),

  /** Denies a pending prompt; its author reads the reason, if one is given. */
  deny: moderateProcedure.input(PromptIdSchema.extend(ReasonSchema.shape)).mutation(({ ctx, input }) => {
    ctx.services.prompts.deny(input.id, input.reason);
    audit(ctx, { action: "prompt.deny", target: `prompt ${input.id}`, details: input.reason ? { reason: input.reason } : null });
    return { ok: true as const };
  }),

  /**
   * Cancels any prompt before its image exists, a running one included: its generator is told to
   * stop that job (and interrupts only its own task). Cancelled is final.
   */
  cancel: moderateProcedure.input(PromptIdSchema).mutation(async ({ ctx, input }) => {
    const { interrupted } = await cancelPrompt(ctx.services, input.id, "host");
    audit(ctx, { action: "prompt.cancel", target: `prompt ${input.id}`, details: interrupted ? { interrupted } : null });
    return { ok: true as const };
  }),

  /** Sends a failed prompt to the generators again. */
  retry: moderateProcedure.input(PromptIdSchema).mutation(async ({ ctx, input }) => {
    ctx.services.prompts.retry(input.id);
    audit(ctx, { action: "prompt.retry", target: `prompt ${input.id}` });
    await ctx.services.link.dispatch();
    return { published: true as const };
  }),

  /** Sends failed prompts to the generators again: the ones given, or every failed one. Returns how many went. */
  retryFailed: moderateProcedure.input(z.object({ ids: z.array(z.coerce.number().int().positive()).max(10_000).optional() })).mutation(async ({ ctx, input }) => {
    const failed = ctx.services.prompts.failedIds();
    // Only failed ones: a selection that changed meanwhile (one already retried) is skipped, not an error.
    const wanted = input.ids && new Set(input.ids);
    const ids = wanted ? failed.filter((id) => wanted.has(id)) : failed;
    for (const id of ids) ctx.services.prompts.retry(id);
    if (ids.length) audit(ctx, { action: "prompt.retry", target: ids.length === 1 ? `prompt ${ids[0]}` : `${ids.length} prompts`, details: { ids } });
    await ctx.services.link.dispatch();
    return { retried: ids.length };
  }),

  /** Holds a visitor's pending and new prompts apart from the queue. */
  mute: moderateProcedure.input(VisitorIdSchema).mutation(({ ctx, input }) => {
    ctx.services.prompts.setMuted(input.visitorId, true);
    audit(ctx, { action: "visitor.mute", target: `visitor ${input.visitorId}` });
    return { ok: true as const };
  }),

  /** Puts a muted visitor's pending prompts back in the queue. */
  unmute: moderateProcedure.input(VisitorIdSchema).mutation(({ ctx, input }) => {
    ctx.services.prompts.setMuted(input.visitorId, false);
    audit(ctx, { action: "visitor.unmute", target: `visitor ${input.visitorId}` });
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
  addGenerator: adminProcedure.input(GeneratorNameSchema).mutation(({ ctx, input }) => {
    const added = ctx.services.generators.add(input.name);
    audit(ctx, { action: "generator.add", target: input.name });
    return added;
  }),

  /** Revokes a generator: it is disconnected at once and cannot connect again. */
  revokeGenerator: adminProcedure.input(GeneratorNameSchema).mutation(({ ctx, input }) => {
    ctx.services.generators.revoke(input.name);
    audit(ctx, { action: "generator.revoke", target: input.name });
    return { ok: true as const };
  }),

  /** Reveals an image outside the show (scripts, API tokens): its author may now see it. */
  markRevealed: moderateProcedure.input(PromptIdSchema).mutation(({ ctx, input }) => {
    ctx.services.prompts.markRevealed(input.id);
    audit(ctx, { action: "prompt.reveal", target: `prompt ${input.id}` });
    return { ok: true as const };
  }),
});
