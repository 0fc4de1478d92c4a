/**
 * The visitor page's JavaScript as a phone downloads it: the files the Remix manifest lists for
 * the entry, the root and `routes/_index`, each gzipped. Used by the bench's web section;
 * `npx tsx tests/bench/page-js.ts` prints it (and each file's share) for the current build.
 */
import { readdirSync, readFileSync } from "node:fs";
import path from "node:path";
import { pathToFileURL } from "node:url";
import { gzipSync } from "node:zlib";

/** Each file of the visitor page's JavaScript with its gzipped size in KiB. */
export function pageJavaScriptFiles(publicDir: string): Array<{ file: string; kib: number }> {
  const buildDir = path.join(publicDir, "build");
  const manifestFile = readdirSync(buildDir).find((name) => name.startsWith("manifest-"))!;
  const source = readFileSync(path.join(buildDir, manifestFile), "utf8");
  const manifest = JSON.parse(source.slice(source.indexOf("{"), source.lastIndexOf("}") + 1)) as {
    entry: { module: string; imports: string[] };
    routes: Record<string, { module: string; imports?: string[] }>;
  };
  const files = new Set([manifest.entry.module, ...manifest.entry.imports]);
  for (const id of ["root", "routes/_index"]) for (const file of [manifest.routes[id]!.module, ...(manifest.routes[id]!.imports ?? [])]) files.add(file);
  return [...files].map((file) => ({ file, kib: gzipSync(readFileSync(path.join(publicDir, file))).length / 1024 }));
}

/** The visitor page's JavaScript, gzipped, in KiB. */
export const pageJavaScriptKiB = (publicDir: string) => pageJavaScriptFiles(publicDir).reduce((sum, { kib }) => sum + kib, 0);

if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) {
  const files = pageJavaScriptFiles(path.resolve("public")).sort((a, b) => b.kib - a.kib);
  for (const { file, kib } of files) console.log(`${kib.toFixed(1).padStart(6)} KiB  ${file}`);
  console.log(`${pageJavaScriptKiB(path.resolve("public")).toFixed(1).padStart(6)} KiB  visitor page JavaScript, gzipped`);
}
