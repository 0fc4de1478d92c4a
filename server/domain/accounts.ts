/**
 * Accounts of the people who log in: the first admin ("admin", whose password comes from
 * ADMIN_PASSWORD or the first start: ./admin-password.ts) and the moderators admins add. Only
 * argon2id hashes are stored. Removing an account ends its sessions in the same transaction.
 */
import argon2 from "argon2";
import { asc, eq } from "drizzle-orm";
import { z } from "zod";
import type { Db } from "../db/client";
import { accounts, adminSessions, type AccountRole } from "../db/schema";
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

export function listAccounts(db: Db): Account[] {
  return db.select(PUBLIC_COLUMNS).from(accounts).orderBy(asc(accounts.id)).all();
}

/** Removes a moderator and ends their sessions at once. The first admin cannot be removed. */
export function removeAccount(db: Db, name: string): Account {
  const account = findAccount(db, name);
  if (!account) throw new DomainError("ACCOUNT_NOT_FOUND", `There is no account named "${name.slice(0, 80)}".`);
  if (account.name === FIRST_ADMIN) throw new DomainError("ACCOUNT_PROTECTED", `"${FIRST_ADMIN}" is the first admin and cannot be removed.`);
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

/**
 * The account of a person a trusted proxy vouches for with an admin or moderator group
 * (server/http/trusted-proxy.ts): `proxy:<subject>`, made on first sight, its role following
 * their groups. Password accounts cannot be named so (no ":"), so a proxy user called "admin"
 * never becomes the first admin. Says whether it was created or its role changed, for the audit log.
 */
export function proxyAccount(db: Db, subject: string, role: AccountRole): { account: Account; change: "created" | "role" | null } {
  const name = `proxy:${subject}`;
  // Every request of a proxy user asks: a plain read, and a write only when something changes.
  const known = findAccount(db, name);
  if (known?.role === role) return { account: known, change: null };
  return db.transaction(
    (tx) => {
      const existing = tx.select(PUBLIC_COLUMNS).from(accounts).where(eq(accounts.name, name)).get();
      if (!existing) return { account: tx.insert(accounts).values({ name, role, passwordHash: NO_PASSWORD }).returning(PUBLIC_COLUMNS).get(), change: "created" as const };
      if (existing.role === role) return { account: existing, change: null };
      tx.update(accounts).set({ role }).where(eq(accounts.id, existing.id)).run();
      return { account: { ...existing, role }, change: "role" as const };
    },
    { behavior: "immediate" },
  );
}
