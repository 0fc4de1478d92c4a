/** Results as a rogue, late or forging generator would send them: valid on the wire, a black 64×64 square. */
import { SCHEMA_VERSION, type ResultMessage } from "../../broker/contract";
import { encodePng } from "../../generator/png";

export const blackResult = (jobId: string, generatorId: string): ResultMessage => ({
  schemaVersion: SCHEMA_VERSION,
  jobId,
  generatorId,
  imagePng: encodePng(64, 64, new Uint8Array(64 * 64 * 3)).toString("base64"),
  seed: 42,
  width: 64,
  height: 64,
  parameters: { steps: 1, cfgScale: 1, samplerName: "Euler", restoreFaces: false, seed: 42 },
  backend: "test",
  timing: { queuedMs: 0, generationMs: 0 },
  finishedAt: new Date().toISOString(),
});

/**
 * The `session` and `at` of a hand-made presence: one session for every hand-made generator of
 * a test run, so that its "offline" matches its "online" as a real generator's do.
 */
export const handSession = () => ({ session: "hand-made-session", at: new Date().toISOString() });
