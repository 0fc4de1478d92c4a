/**
 * vitest's global setup: compiles the server and generator entry points (`npm run build:node`,
 * under a second) so that tests that start them as processes run today's code, compiled as
 * `npm start` runs it, even when vitest is run without `npm test`'s build first.
 */
import { execFileSync } from "node:child_process";
import { ROOT } from "./processes";

export default function compile() {
  execFileSync("npm", ["run", "--silent", "build:node"], { cwd: ROOT, stdio: "inherit" });
}
