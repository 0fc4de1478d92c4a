/** Refs for unexpected errors: short, unambiguous, one log entry per error with its whole cause chain. */
import { createErrorReporter, GENERIC_ERROR_MESSAGE, messageForUnexpected, newErrorRef } from "../../server/error-ref";
import { collectingLogger } from "../helpers/server";

test("a ref is 4 characters without 0, O, 1, I or L", () => {
  for (let i = 0; i < 500; i++) expect(newErrorRef()).toMatch(/^[2-9A-HJKMNP-Z]{4}$/);
});

test("an error is logged once with its causes under the ref its message names", () => {
  const log = collectingLogger();
  const report = createErrorReporter(log);
  const error = new Error("Failed query: select * from prompts", { cause: new Error("no such table: prompts") });

  const message = report(error, "tRPC prompt.mine");
  const ref = /^Something went wrong \(ref (\w{4})\)$/.exec(message)?.[1];
  expect(ref).toBeDefined();
  expect(report(error, "again")).toBe(message);
  expect(messageForUnexpected(error)).toBe(message);

  expect(log.lines).toHaveLength(1);
  expect(log.lines[0]).toMatch(new RegExp(`^error error ref ${ref}: tRPC prompt.mine: Error: Failed query: select \\* from prompts\\n\\s+at `));
  expect(log.lines[0]).toContain("caused by: Error: no such table: prompts");
});

test("an error nobody reported shows only the generic message", () => {
  expect(messageForUnexpected(new Error("SQLITE_CORRUPT at /data/promptgate.db"))).toBe(GENERIC_ERROR_MESSAGE);
  expect(messageForUnexpected(undefined)).toBe(GENERIC_ERROR_MESSAGE);
});

test("a recovery link in the place of an error never reaches the log", () => {
  const log = collectingLogger();
  const secret = "Zx9_abcdefghijklmnopqrstuvwxyz0123456789ABC";
  createErrorReporter(log)(new Error("boom"), `POST /recover/${secret}`);
  expect(log.lines[0]).toContain("POST /recover/…: Error: boom");
  expect(log.lines[0]).not.toContain(secret);
});
