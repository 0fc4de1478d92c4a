/**
 * The host's blocklist (BLOCKLIST_FILE): prompts that match an entry are flagged for the admin,
 * never dropped. One entry per line: a word or phrase, matched as whole words whatever the case
 * ("red wine" flags "Red  Wine!" but not "redwine"), or a regular expression written
 * /like this/flags. Blank lines and lines starting with # are ignored.
 */
import { readFileSync } from "node:fs";
import { StartupError } from "../startup-error";

export interface Blocklist {
  /** The entry (as written in the file) that `text` matches first, or null. */
  match(text: string): string | null;
  size: number;
}

const escapeRegExp = (text: string) => text.replace(/[.*+?^${}()|[\]\\]/g, "\\$&");

/** A word or phrase as a regular expression: whole words, any case, any run of spaces between. */
function phrasePattern(phrase: string): RegExp {
  const words = phrase.normalize("NFKC").split(/\s+/).map(escapeRegExp);
  return new RegExp(`(?<![\\p{L}\\p{N}])${words.join("\\s+")}(?![\\p{L}\\p{N}])`, "iu");
}

export function parseBlocklist(text: string, source = "blocklist"): Blocklist {
  const entries: Array<{ entry: string; pattern: RegExp }> = [];
  for (const [index, raw] of text.split(/\r?\n/).entries()) {
    const entry = raw.trim();
    if (!entry || entry.startsWith("#")) continue;
    const regex = /^\/(.+)\/([a-z]*)$/.exec(entry);
    try {
      // Stateful flags would make .test() skip matches on the next prompt.
      const flags = regex ? regex[2]!.replace(/[gy]/g, "") : "";
      entries.push({ entry, pattern: regex ? new RegExp(regex[1]!, flags) : phrasePattern(entry) });
    } catch (error) {
      throw new StartupError(`${source} line ${index + 1}: ${(error as Error).message}`);
    }
  }
  return {
    size: entries.length,
    match(text) {
      const normalised = text.normalize("NFKC");
      return entries.find(({ pattern }) => pattern.test(normalised))?.entry ?? null;
    },
  };
}

export function loadBlocklist(file: string): Blocklist {
  let text: string;
  try {
    text = readFileSync(file, "utf8");
  } catch (error) {
    throw new StartupError(`BLOCKLIST_FILE ${file} cannot be read (${(error as NodeJS.ErrnoException).code ?? (error as Error).message})`);
  }
  return parseBlocklist(text, `BLOCKLIST_FILE ${file}`);
}

export const emptyBlocklist: Blocklist = { size: 0, match: () => null };
