/**
 * `npm run generator`: a standalone generator for a GPU box, configured by MQTT_URL,
 * SD_API_URL and the other variables in generator/env.ts (README "Configuration").
 */
import { EnvError, GeneratorEnvSchema, generatorConfigFrom, parseEnvironment } from "./env";
import { startGenerator } from "./generator";

const log = {
  info: (message: string) => console.log(`[generator] ${message}`),
  warn: (message: string) => console.warn(`[generator] ${message}`),
  error: (message: string) => console.error(`[generator] ${message}`),
};

try {
  const config = generatorConfigFrom(parseEnvironment(GeneratorEnvSchema, process.env));
  const generator = await startGenerator(config, log);
  const stop = () => {
    log.info("stopping: finishing running jobs");
    generator.close().then(() => process.exit(0), () => process.exit(1));
  };
  process.once("SIGINT", stop);
  process.once("SIGTERM", stop);
} catch (error) {
  console.error(`promptgate generator: ${error instanceof EnvError ? error.message : (error as Error).message}`);
  process.exit(1);
}
