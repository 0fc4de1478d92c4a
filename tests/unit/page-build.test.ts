import path from "node:path";
import { pathToFileURL } from "node:url";
import type { ServerBuild } from "@remix-run/node";
import { describe, expect, it } from "vitest";
import { buildFor } from "../../server/http/page-build";
import { ROOT } from "../helpers/processes";

// The real Remix build (npm test builds it first): the view must follow its routes as they are.
const build = (await import(pathToFileURL(path.join(ROOT, "build", "index.js")).href)) as ServerBuild;

describe("a view of the Remix build for one address", () => {
  it("holds the root and the visitor page for /, in the routes and in the browser's manifest alike", () => {
    const view = buildFor(build, "/");
    expect(Object.keys(view.routes).sort()).toEqual(["root", "routes/_index"]);
    expect(Object.keys(view.assets.routes).sort()).toEqual(["root", "routes/_index"]);
    expect(view.routes["routes/_index"]).toBe(build.routes["routes/_index"]);
    expect(view.entry).toBe(build.entry);
  });

  it("holds what the whole build matches at the address, a nested route with its parents", () => {
    expect(Object.keys(buildFor(build, "/admin/tokens").routes).sort()).toEqual(["root", "routes/admin.tokens"]);
    expect(Object.keys(buildFor(build, "/no/such/page").routes).sort()).toEqual(["root", "routes/$"]);
  });

  it("leaves the whole build as it was", () => {
    const routes = Object.keys(build.routes).length;
    buildFor(build, "/");
    expect(Object.keys(build.routes)).toHaveLength(routes);
    expect(routes).toBeGreaterThan(2);
  });
});
