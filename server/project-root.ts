/**
 * The checkout's root, where package.json is: the Remix build, public files and migrations are
 * found from here. Looked up rather than counted in `..`s, because this module runs from source
 * (server/) under tsx and from the compiled bundle (dist/chunks/) under `npm start` alike.
 */
import { existsSync } from "node:fs";
import path from "node:path";
import { fileURLToPath } from "node:url";

function findRoot(from: string): string {
  for (let dir = from; ; dir = path.dirname(dir)) {
    if (existsSync(path.join(dir, "package.json"))) return dir;
    if (path.dirname(dir) === dir) throw new Error(`no package.json above ${from}`);
  }
}

export const PROJECT_ROOT = findRoot(path.dirname(fileURLToPath(import.meta.url)));
