/**
 * `npm start`: runs in production mode whatever NODE_ENV says, parses the environment once,
 * starts promptgate, and turns start-up failures into one clear line (no stack trace) and
 * exit code 1.
 */
import { EnvError } from "../generator/env";
import { StartupError } from "./startup-error";
import { parseEnv } from "./env";
import { createConsoleLogger } from "./logger";

// React, Express and tRPC choose their development behaviour (slow checks, stack traces in
// answers) from NODE_ENV when they are loaded: set it before anything imports them.
process.env.NODE_ENV = "production";
const { startPromptgate } = await import("./app");

try {
  const config = parseEnv(process.env);
  const log = createConsoleLogger(config.logLevel);
  if (config.trustProxy === true) {
    log.warn("TRUST_PROXY=true believes any client's X-Forwarded-For; prefer the number of proxies (e.g. 1) or their addresses");
  }
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
