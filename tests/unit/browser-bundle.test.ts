/**
 * What the browser build (`npm run build`, which `npm test` runs first) ships to the visitor
 * page, a phone's download (issue 10: at most 100 KB of JavaScript, gzipped): its form checks
 * are plain functions (server/domain/prompt-rules.ts) and its live updates the browser's own
 * EventSource (app/lib/event-stream.ts), so neither a schema library nor the tRPC client is
 * in it. The admin pages keep the tRPC client.
 */
import { readFileSync } from "node:fs";
import path from "node:path";
import { pageJavaScriptFiles, pageJavaScriptKiB } from "../bench/page-js";
import { ROOT } from "../helpers/processes";

const metafile = JSON.parse(readFileSync(path.join(ROOT, "build", "metafile.js.json"), "utf8")) as { outputs: Record<string, { inputs: Record<string, unknown> }> };
const PUBLIC = path.join(ROOT, "public");

/** Every source file that went into the visitor page's JavaScript. */
const visitorPageInputs = () => pageJavaScriptFiles(PUBLIC).flatMap(({ file }) => Object.keys(metafile.outputs[path.posix.join("public", file)]!.inputs));

test("the visitor page ships neither zod nor the tRPC client", () => {
  const inputs = visitorPageInputs();
  expect(inputs).toContain("server/domain/prompt-rules.ts");
  expect(inputs.filter((input) => /node_modules\/(zod|@trpc)\//.test(input))).toEqual([]);
});

test("the visitor page's JavaScript is within 100 KB gzipped", () => {
  expect(pageJavaScriptKiB(PUBLIC) * 1024).toBeLessThanOrEqual(100_000);
});
