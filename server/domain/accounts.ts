/**
 * Accounts of the people who log in: the first admin ("admin", whose password comes from
 * ADMIN_PASSWORD or the first start: ./admin-password.ts), the moderators admins add, and
 * `proxy:` accounts of people a trusted proxy signs in, by their groups or because an admin
 * added their identity. Only argon2id hashes are stored. Removing an account ends its sessions
 * in the same transaction.
 */
import argon2 from "argon2";
import { and, asc, eq, inArray, isNull } from "drizzle-orm";
import { z } from "zod";
import type { Db } from "../db/client";
import { accounts, adminSessions, type AccountRole } from "../db/schema";
import { COMMON_PASSWORD_MESSAGE, isCommonPassword } from "./common-passwords";
import { DomainError } from "./errors";

/** The first admin's name: the account ADMIN_PASSWORD and `reset-password` apply to. */
export const FIRST_ADMIN = "admin";
export const PASSWORD_MIN = 8;
export const PASSWORD_MAX = 1024;

/** Names show up in the audit log, in headers to upstreams (X-Promptgate-User) and on the command line: keep them plain. */
export const AccountNameSchema = z
  .string()
  .max(64, { message: "A name has at most 64 characters." })
  .regex(/^[A-Za-z0-9][A-Za-z0-9._-]*$/, { message: "A name is letters, digits, '.', '_' or '-', starting with a letter or digit." });

export interface Account {
  id: number;
  name: string;
  role: AccountRole;
  createdAt: Date;
}

/** How an account signs in: its password, a trusted proxy with a staff group, or a trusted proxy for an identity an admin added. */
export type AccountSource = "password" | "groups" | "identity";

const PUBLIC_COLUMNS = { id: accounts.id, name: accounts.name, role: accounts.role, createdAt: accounts.createdAt };

export function checkAccountName(name: string): string {
  const parsed = AccountNameSchema.safeParse(name);
  if (!parsed.success) throw new DomainError("INVALID_NAME", `"${name.slice(0, 80)}" is not a valid name: ${parsed.error.issues[0]!.message}`);
  return name;
}

function checkPassword(password: string): void {
  if (password.length < PASSWORD_MIN || password.length > PASSWORD_MAX) {
    throw new DomainError("INVALID_PASSWORD", `A password has ${PASSWORD_MIN} to ${PASSWORD_MAX} characters.`);
  }
  if (isCommonPassword(password)) throw new DomainError("INVALID_PASSWORD", COMMON_PASSWORD_MESSAGE);
}

export const hashPassword = (password: string) => argon2.hash(password, { type: argon2.argon2id });

/** Adds a moderator. */
export async function addModerator(db: Db, name: string, password: string): Promise<Account> {
  checkAccountName(name);
  checkPassword(password);
  const passwordHash = await hashPassword(password);
  const row = db.insert(accounts).values({ name, role: "moderator", passwordHash }).onConflictDoNothing().returning(PUBLIC_COLUMNS).get();
  if (!row) throw new DomainError("ACCOUNT_EXISTS", `There is already an account named "${name}".`);
  return row;
}

export function findAccount(db: Db, name: string): Account | null {
  return db.select(PUBLIC_COLUMNS).from(accounts).where(eq(accounts.name, name)).get() ?? null;
}

export function listAccounts(db: Db): Array<Account & { source: AccountSource }> {
  return db
    .select({ ...PUBLIC_COLUMNS, proxyGrant: accounts.proxyGrant })
    .from(accounts)
    .orderBy(asc(accounts.id))
    .all()
    .map(({ proxyGrant, ...account }) => ({ ...account, source: proxyGrant ? "identity" : account.name.startsWith(PROXY_PREFIX) ? "groups" : "password" }));
}

/**
 * Removes a moderator or a proxy account and ends their sessions at once. The first admin cannot
 * be removed, nor the account of the admin asking (`self`): an admin never locks themselves out.
 */
export function removeAccount(db: Db, name: string, self?: string): Account {
  const account = findAccount(db, name);
  if (!account) throw new DomainError("ACCOUNT_NOT_FOUND", `There is no account named "${name.slice(0, 80)}".`);
  if (account.name === FIRST_ADMIN) throw new DomainError("ACCOUNT_PROTECTED", `"${FIRST_ADMIN}" is the first admin and cannot be removed.`);
  if (account.name === self) throw new DomainError("ACCOUNT_PROTECTED", "You cannot remove your own account: ask another admin.");
  db.transaction((tx) => {
    tx.delete(adminSessions).where(eq(adminSessions.accountId, account.id)).run();
    tx.delete(accounts).where(eq(accounts.id, account.id)).run();
  });
  return account;
}

/** Verified against when the name is unknown, so a wrong name costs what a wrong password costs (no account enumeration by timing). */
let decoyHash: Promise<string> | undefined;

/** The account whose name and password these are, else null. Always costs one argon2 verification. */
export async function verifyLogin(db: Db, name: string, password: string): Promise<Account | null> {
  const row = db.select().from(accounts).where(eq(accounts.name, name)).get();
  const hash = row?.passwordHash ?? (await (decoyHash ??= hashPassword("decoy password, never matches")));
  let matches = false;
  try {
    matches = await argon2.verify(hash, password);
  } catch {
    matches = false;
  }
  return row && matches ? { id: row.id, name: row.name, role: row.role, createdAt: row.createdAt } : null;
}

/** Sets an account's password and ends every session of that account. */
export async function setAccountPassword(db: Db, accountId: number, password: string): Promise<void> {
  checkPassword(password);
  const passwordHash = await hashPassword(password);
  db.transaction((tx) => {
    tx.update(accounts).set({ passwordHash }).where(eq(accounts.id, accountId)).run();
    tx.delete(adminSessions).where(eq(adminSessions.accountId, accountId)).run();
  });
}

/** Proxy accounts have this instead of a hash: argon2 cannot parse it, so no password ever matches. */
const NO_PASSWORD = "!signed in through a trusted proxy";
/** Password accounts cannot be named so (no ":"), so a proxy user called "admin" never becomes the first admin. */
const PROXY_PREFIX = "proxy:";
const RANK: Record<AccountRole, number> = { moderator: 1, admin: 2 };

/** Which header an admin-given identity is matched against: X-Forwarded-User or X-Forwarded-Email. */
export const PROXY_IDENTITY_KINDS = ["user", "email"] as const;
export type ProxyIdentityKind = (typeof PROXY_IDENTITY_KINDS)[number];

/**
 * An identity as a trusted proxy sends it, for an admin to give a role to. User names and emails
 * are apart (`proxy:user:…`, `proxy:email:…`): otherwise someone free to pick their user name
 * could pick another person's email and get that person's role. Emails compare without case,
 * as mail does; user names exactly, as the identity provider issues them.
 */
export const ProxyIdentitySchema = z
  .string()
  .trim()
  .min(1, { message: "Give the person's user name or email, as your sign-in proxy sends it." })
  .max(200, { message: "An identity has at most 200 characters." })
  .regex(/^[^\s,\u0000-\u001f\u007f]+$/, { message: "An identity has no spaces, commas or control characters." });

/** The account name of a proxy person by one of their headers: the same for a group's account and an admin's grant. */
const proxyAccountName = (kind: ProxyIdentityKind, value: string) => `${PROXY_PREFIX}${kind}:${kind === "email" ? value.toLowerCase() : value}`;

/**
 * Gives the person a trusted proxy signs in with `identity` as their user name or email (`kind`)
 * a role without any group: the account `proxy:<kind>:<identity>`, until an admin removes it. A
 * group may still raise the role on a request; nothing lowers it.
 */
export function grantProxyRole(db: Db, kind: ProxyIdentityKind, identity: string, role: AccountRole): Account {
  const parsed = ProxyIdentitySchema.safeParse(identity);
  if (!parsed.success) throw new DomainError("INVALID_NAME", parsed.error.issues[0]!.message);
  const name = proxyAccountName(kind, parsed.data);
  return db.transaction(
    (tx) => {
      const existing = tx.select({ id: accounts.id, proxyGrant: accounts.proxyGrant }).from(accounts).where(eq(accounts.name, name)).get();
      if (existing?.proxyGrant) throw new DomainError("ACCOUNT_EXISTS", `${name} already has a role: remove it first to give another.`);
      // Someone their groups made staff already has this account: from now on the admin's word holds.
      if (existing) return tx.update(accounts).set({ role, proxyGrant: true }).where(eq(accounts.id, existing.id)).returning(PUBLIC_COLUMNS).get()!;
      return tx.insert(accounts).values({ name, role, passwordHash: NO_PASSWORD, proxyGrant: true }).returning(PUBLIC_COLUMNS).get();
    },
    { behavior: "immediate" },
  );
}

/** What a trusted proxy says about a person (server/http/trusted-proxy.ts), as far as accounts care. */
export interface ProxyPerson {
  user: string | null;
  email: string | null;
  /** From ADMIN_GROUPS and MODERATOR_GROUPS. */
  groupRole: AccountRole | null;
}

/**
 * The staff account of a person a trusted proxy vouches for, else null. An identity an admin
 * added (their user name or their email) comes first, its role raised by a group if that gives
 * more. Otherwise an admin or moderator group makes `proxy:user:<user>` (or, with no user,
 * `proxy:email:<email>`) on first sight, its role following the groups. Says whether it was
 * created, its role changed, or (an added identity) it signed in for the first time, for the
 * audit log.
 */
export function proxyAccount(db: Db, { user, email, groupRole }: ProxyPerson): { account: Account; change: "created" | "role" | "first sign-in" | null } | null {
  const names = [user === null ? null : proxyAccountName("user", user), email === null ? null : proxyAccountName("email", email)].filter((name) => name !== null);
  if (!names.length) return null;
  // Every request of a proxy user asks: plain reads, and a write only when something changes.
  const granted = db
    .select({ ...PUBLIC_COLUMNS, signedInAt: accounts.proxySignedInAt })
    .from(accounts)
    .where(and(inArray(accounts.name, names), eq(accounts.proxyGrant, true)))
    .orderBy(asc(accounts.id))
    .get();
  if (granted) {
    const { signedInAt, ...account } = granted;
    // Said once: of two first requests at once, only the one whose update finds it unset.
    const first = signedInAt === null && db.update(accounts).set({ proxySignedInAt: new Date() }).where(and(eq(accounts.id, account.id), isNull(accounts.proxySignedInAt))).run().changes === 1;
    return { account: groupRole && RANK[groupRole] > RANK[account.role] ? { ...account, role: groupRole } : account, change: first ? "first sign-in" : null };
  }
  if (!groupRole) return null;
  const name = names[0]!;
  const known = findAccount(db, name);
  if (known?.role === groupRole) return { account: known, change: null };
  return db.transaction(
    (tx) => {
      const existing = tx.select(PUBLIC_COLUMNS).from(accounts).where(eq(accounts.name, name)).get();
      if (!existing) return { account: tx.insert(accounts).values({ name, role: groupRole, passwordHash: NO_PASSWORD, proxySignedInAt: new Date() }).returning(PUBLIC_COLUMNS).get(), change: "created" as const };
      if (existing.role === groupRole) return { account: existing, change: null };
      tx.update(accounts).set({ role: groupRole }).where(eq(accounts.id, existing.id)).run();
      return { account: { ...existing, role: groupRole }, change: "role" as const };
    },
    { behavior: "immediate" },
  );
}
