/**
 * New staff passwords are refused when they are among the most common ones (NIST SP 800-63B
 * §5.1.1.2 asks for a check against passwords from breaches): the list is
 * common-passwords.txt beside this file, its source and licence at its head. Read once, on the
 * first check, so a start that sets no password never pays for it.
 */
import { readFileSync } from "node:fs";
import path from "node:path";
import { PROJECT_ROOT } from "../project-root";

const LIST = path.join(PROJECT_ROOT, "server/domain/common-passwords.txt");

let common: Set<string> | undefined;

/** Whether `password`, in any case, is on the list. */
export function isCommonPassword(password: string): boolean {
  common ??= new Set(
    readFileSync(LIST, "utf8")
      .split("\n")
      .filter((line) => line && !line.startsWith("#")),
  );
  return common.has(password.toLowerCase());
}

/** What a refused password is told. */
export const COMMON_PASSWORD_MESSAGE = "This password is among the 10,000 most common ones, the first an attacker tries: choose another.";
