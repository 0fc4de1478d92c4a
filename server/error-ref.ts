/**
 * Unexpected errors: the log gets the whole error under a short reference, the person in front
 * of the page or API gets only "Something went wrong (ref 7F3K)" — enough to find the log line,
 * nothing about the inside (no stack, path, SQL or internal message).
 */
import { randomInt } from "node:crypto";
import type { Logger } from "./logger";

/** No 0/O or 1/I/L: a ref read aloud or copied from a phone screen survives. */
const ALPHABET = "23456789ABCDEFGHJKMNPQRSTUVWXYZ";
const REF_LENGTH = 4;

/** The one message an unexpected error shows, in pages and API answers alike. */
export const GENERIC_ERROR_MESSAGE = "Something went wrong.";

/** 4 characters, 31^4 ≈ 920,000 values: unique enough among the errors of one log. */
export function newErrorRef(): string {
  let ref = "";
  for (let i = 0; i < REF_LENGTH; i++) ref += ALPHABET[randomInt(ALPHABET.length)];
  return ref;
}

/** Logs `error` with a new ref and returns the message for the user. */
export type ReportError = (error: unknown, where: string) => string;

const reported = new WeakMap<object, string>();

/** The stack of `error` and of every cause below it (drizzle wraps SQLite's error, tRPC wraps both). */
function describe(error: unknown): string {
  const parts: string[] = [];
  for (let current = error, depth = 0; current !== undefined && depth < 5; current = (current as { cause?: unknown }).cause, depth++) {
    const text = current instanceof Error ? (current.stack ?? `${current.name}: ${current.message}`) : String(current);
    if (parts.at(-1) !== text) parts.push(text);
    if (!(current instanceof Error)) break;
  }
  return parts.join("\ncaused by: ");
}

/**
 * Each error object is logged once: reporting it again (tRPC's onError, then its error
 * formatter) returns the same message without a second log line.
 */
export function createErrorReporter(log: Logger): ReportError {
  return (error, where) => {
    const key = typeof error === "object" && error !== null ? error : null;
    const known = key && reported.get(key);
    if (known) return known;
    const ref = newErrorRef();
    const message = `Something went wrong (ref ${ref})`;
    // A recovery link's path is a key to an identity: it never reaches the log.
    log.error(`error ref ${ref}: ${where.replace(/\/recover\/[^/?#\s]+/g, "/recover/…")}: ${describe(error)}`);
    if (key) reported.set(key, message);
    return message;
  };
}

/** The message a reported error was given, or the generic one for an error nobody reported. */
export const messageForUnexpected = (error: unknown): string =>
  (typeof error === "object" && error !== null && reported.get(error)) || GENERIC_ERROR_MESSAGE;
