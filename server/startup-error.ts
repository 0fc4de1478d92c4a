/** A start-up failure with a one-line, actionable message (server/main.ts prints it without a stack trace). */
export class StartupError extends Error {
  override name = "StartupError";
}
