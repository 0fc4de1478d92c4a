/**
 * `npm run sd-emulator`: the A1111 emulator as its own process, e.g. to try promptgate's
 * SD_API_URL path without a GPU. SD_EMULATOR_PORT (default 7860) and SD_EMULATOR_DELAY_MS.
 */
import { startSdEmulator } from "./sd-server";

const emulator = await startSdEmulator({
  port: Number(process.env.SD_EMULATOR_PORT ?? 7860),
  delayMs: Number(process.env.SD_EMULATOR_DELAY_MS ?? 0),
});
console.log(`A1111 emulator listening on ${emulator.url}`);
process.once("SIGTERM", () => void emulator.close().then(() => process.exit(0)));
process.once("SIGINT", () => void emulator.close().then(() => process.exit(0)));
