/**
 * Cleanup registered where a fixture is made (the Aedes tests' habit, see the style guide):
 * `const cleanup = useCleanups()` at the top of a test file, then `cleanup(() => sd.close())`
 * beside the line that starts it.
 */

/** One step of a cleanup; awaited before the next runs. */
export type Cleanup = () => unknown;

/** Registers `steps` to run, newest first, when the test (or the file) ends. */
export type RegisterCleanup = (...steps: Cleanup[]) => void;

/**
 * Registers the hook that runs what `cleanup(...)` was given, last registered first, so a
 * server closes before its data directory is removed: after each test, or with `"all"` once
 * after the last test of the file or describe block (for fixtures that `beforeAll` makes).
 * A hook registered before this one runs after it (vitest runs after-hooks as a stack).
 */
export function useCleanups(after: "each" | "all" = "each"): RegisterCleanup {
  const steps: Cleanup[] = [];
  (after === "each" ? afterEach : afterAll)(async () => {
    for (const step of steps.splice(0).reverse()) await step();
  });
  return (...more) => void steps.push(...more);
}
