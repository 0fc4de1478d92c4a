// Worker-thread entry for thread.ts: registers tsx's loader (resolved from this file, not from
// the working directory), then runs the TypeScript entry.
import { register } from "tsx/esm/api";

register();
await import("./thread-entry.ts");
