/** Who may do what: moderator accounts, API tokens, and the audit log. Admins only. */
import { z } from "zod";
import { ACCOUNT_ROLES } from "../../db/schema";
import { addModerator, FIRST_ADMIN, grantProxyRole, listAccounts, PASSWORD_MAX, PROXY_IDENTITY_KINDS, removeAccount } from "../../domain/accounts";
import { ApiTokenScopesSchema, createApiToken, listApiTokens, revokeApiToken } from "../../domain/api-tokens";
import { listAudit } from "../../domain/audit";
import { DomainError } from "../../domain/errors";
import { adminProcedure, router } from "../init";
import { audit } from "./admin";

/** The domain checks a name's shape and says what is wrong; this only bounds it. */
const NameSchema = z.string().trim().min(1, { message: "Give it a name." }).max(200);

export const accessRouter = router({
  /** Every account, how it signs in, and whether people can be added by their sign-in identity (TRUSTED_PROXIES). */
  accounts: adminProcedure.query(({ ctx }) => ({
    accounts: listAccounts(ctx.services.db).map((account) => ({
      ...account,
      createdAt: account.createdAt.toISOString(),
      removable: account.name !== FIRST_ADMIN && account.name !== ctx.account.name,
    })),
    proxySignIn: ctx.services.proxySignIn,
  })),

  addModerator: adminProcedure.input(z.object({ name: NameSchema, password: z.string().max(PASSWORD_MAX) })).mutation(async ({ ctx, input }) => {
    const account = await addModerator(ctx.services.db, input.name, input.password);
    audit(ctx, { action: "account.add", target: account.name, details: { role: account.role } });
    return { name: account.name, role: account.role };
  }),

  /**
   * Gives a person a trusted proxy signs in (by user name or by email: `kind` says which header
   * it is matched against) a role without a group: it holds only on requests through a
   * TRUSTED_PROXIES proxy, until removed.
   */
  addIdentity: adminProcedure.input(z.object({ kind: z.enum(PROXY_IDENTITY_KINDS, { message: "Say whether it is a user name or an email." }), identity: z.string().max(1000), role: z.enum(ACCOUNT_ROLES) })).mutation(({ ctx, input }) => {
    if (!ctx.services.proxySignIn) {
      throw new DomainError("PROXY_SIGN_IN_OFF", "Nobody signs in through a proxy here: set TRUSTED_PROXIES to your sign-in proxy's address first.");
    }
    const account = grantProxyRole(ctx.services.db, input.kind, input.identity, input.role);
    audit(ctx, { action: "account.add", target: account.name, details: { role: account.role, by: "identity" } });
    return { name: account.name, role: account.role };
  }),

  /** Removes a moderator or a person added by identity; their sessions and live pages end at once. Never the first admin, nor oneself. */
  removeAccount: adminProcedure.input(z.object({ name: NameSchema })).mutation(({ ctx, input }) => {
    const account = removeAccount(ctx.services.db, input.name, ctx.account.name);
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
