/**
 * What the browser build (`npm run build`, which `npm test` runs first) ships. One route that
 * loads full zod puts all of zod's core into the chunk every page shares, the visitor page's
 * included (issue 10's JavaScript budget): pages validate with zod/mini only.
 */
import { readFileSync } from "node:fs";
import path from "node:path";
import { ROOT } from "../helpers/processes";

test("no page ships full zod to the browser: the browser's validation is zod/mini", () => {
  const metafile = JSON.parse(readFileSync(path.join(ROOT, "build", "metafile.js.json"), "utf8")) as { inputs: Record<string, { imports: Array<{ path: string }> }> };
  const inputs = Object.keys(metafile.inputs);
  expect(inputs.some((input) => input.includes("node_modules/zod/v4/mini/"))).toBe(true);
  const importersOfClassic = Object.entries(metafile.inputs)
    .filter(([, input]) => input.imports.some((imported) => imported.path.includes("node_modules/zod/v4/classic/") || /node_modules\/zod\/(index|v4\/index)\.js$/.test(imported.path)))
    .map(([file]) => file)
    .filter((file) => !file.startsWith("node_modules/zod/"));
  expect(importersOfClassic).toEqual([]);
});
