/** Who may do what: moderator accounts, API tokens, and the audit log. Admins only. */
import { z } from "zod";
import { addModerator, listAccounts, PASSWORD_MAX, removeAccount } from "../../domain/accounts";
import { ApiTokenScopesSchema, createApiToken, listApiTokens, revokeApiToken } from "../../domain/api-tokens";
import { listAudit } from "../../domain/audit";
import { adminProcedure, router } from "../init";
import { audit } from "./admin";

/** The domain checks a name's shape and says what is wrong; this only bounds it. */
const NameSchema = z.string().trim().min(1, { message: "Give it a name." }).max(200);

export const accessRouter = router({
  accounts: adminProcedure.query(({ ctx }) => listAccounts(ctx.services.db).map((account) => ({ ...account, createdAt: account.createdAt.toISOString() }))),

  addModerator: adminProcedure.input(z.object({ name: NameSchema, password: z.string().max(PASSWORD_MAX) })).mutation(async ({ ctx, input }) => {
    const account = await addModerator(ctx.services.db, input.name, input.password);
    audit(ctx, { action: "account.add", target: account.name, details: { role: account.role } });
    return { name: account.name, role: account.role };
  }),

  /** Removes a moderator; their sessions end at once. */
  removeAccount: adminProcedure.input(z.object({ name: NameSchema })).mutation(({ ctx, input }) => {
    const account = removeAccount(ctx.services.db, input.name);
    audit(ctx, { action: "account.remove", target: account.name, details: { role: account.role } });
    return { ok: true as const };
  }),

  tokens: adminProcedure.query(({ ctx }) =>
    listApiTokens(ctx.services.db).map(({ name, scopes, createdBy, createdAt, lastUsedAt }) => ({
      name,
      scopes,
      createdBy,
      createdAt: createdAt.toISOString(),
      lastUsedAt: lastUsedAt?.toISOString() ?? null,
    })),
  ),

  /** Creates an API token; its secret is in this answer only. A `submit` token gets a colour of its own. */
  createToken: adminProcedure.input(z.object({ name: NameSchema, scopes: ApiTokenScopesSchema })).mutation(({ ctx, input }) => {
    const visitorId = input.scopes.includes("submit") ? ctx.services.visitors.createDetached().id : null;
    const created = createApiToken(ctx.services.db, { name: input.name, scopes: input.scopes, createdBy: ctx.actor, visitorId });
    audit(ctx, { action: "token.create", target: created.name, details: { scopes: created.scopes } });
    return created;
  }),

  /** Revokes an API token: the next request with it is refused. */
  revokeToken: adminProcedure.input(z.object({ name: NameSchema })).mutation(({ ctx, input }) => {
    revokeApiToken(ctx.services.db, input.name);
    audit(ctx, { action: "token.revoke", target: input.name });
    return { ok: true as const };
  }),

  /** One page of the audit log, newest first. */
  audit: adminProcedure.input(z.object({ page: z.coerce.number().int().min(1).max(1_000_000).default(1) })).query(({ ctx, input }) => {
    const page = listAudit(ctx.services.db, input.page);
    return { ...page, entries: page.entries.map((entry) => ({ ...entry, at: entry.at.toISOString() })) };
  }),
});
