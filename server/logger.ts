/** A levelled console logger; tests pass LOG_LEVEL=warn or collect lines with their own Logger. */
export interface Logger {
  debug(message: string): void;
  info(message: string): void;
  warn(message: string): void;
  error(message: string): void;
}

const LEVELS = ["debug", "info", "warn", "error", "silent"] as const;

export function createConsoleLogger(level: (typeof LEVELS)[number], prefix = "promptgate"): Logger {
  const threshold = LEVELS.indexOf(level);
  const at = (name: Exclude<(typeof LEVELS)[number], "silent">, write: (line: string) => void) => (message: string) => {
    if (LEVELS.indexOf(name) >= threshold) write(`${new Date().toISOString()} ${name.padEnd(5)} [${prefix}] ${message}`);
  };
  return {
    debug: at("debug", console.log),
    info: at("info", console.log),
    warn: at("warn", console.warn),
    error: at("error", console.error),
  };
}
