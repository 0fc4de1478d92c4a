/**
 * `npm start`: parses the environment once, starts promptgate, and turns start-up failures
 * into one clear line (no stack trace) and exit code 1.
 */
import { EnvError } from "../generator/env";
import { StartupError, startPromptgate } from "./app";
import { parseEnv } from "./env";
import { createConsoleLogger } from "./logger";

try {
  const config = parseEnv(process.env);
  const log = createConsoleLogger(config.logLevel);
  const running = await startPromptgate(config, log);
  let stopping = false;
  const stop = (signal: string) => {
    if (stopping) return;
    stopping = true;
    log.info(`${signal}: shutting down`);
    running.close().then(
      () => process.exit(0),
      (error) => {
        log.error(`shutdown failed: ${error}`);
        process.exit(1);
      },
    );
  };
  process.once("SIGINT", () => stop("SIGINT"));
  process.once("SIGTERM", () => stop("SIGTERM"));
} catch (error) {
  if (error instanceof EnvError || error instanceof StartupError) {
    console.error(`promptgate: ${error.message}`);
    process.exit(1);
  }
  throw error;
}
