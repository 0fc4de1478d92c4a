/**
 * A view of the Remix build for one hot address. Remix 2 matches each request's path four times
 * (the request handler, the data router, the entry's router and the partial manifest it inlines),
 * and each time flattens, ranks and compiles every route of the build into regular expressions:
 * with our 16 routes that was a fifth of the CPU of `GET /` and a quarter of what it allocated
 * (issue 10, ADR 016). The visitor page, which every guest keeps reloading, is served from a view
 * that holds only the routes its address matches; the page, its data and its HTML are the same.
 */
import type { ServerBuild } from "@remix-run/node";
import { matchRoutes } from "@remix-run/react";

type RouteEntry = ServerBuild["routes"][string];
type RouteObject = Parameters<typeof matchRoutes>[0][number];

/** The build's flat route manifest as the nested tree that Remix matches against. */
function routeTree(routes: Record<string, RouteEntry>, parentId?: string): RouteObject[] {
  return Object.values(routes)
    .filter((route) => route.parentId === parentId)
    .map(({ id, path, index, caseSensitive }): RouteObject => (index ? { id, path, index, caseSensitive } : { id, path, caseSensitive, children: routeTree(routes, id) }));
}

/** `build` with only the routes that `pathname` matches in it, for the handler of exactly that address. */
export function buildFor(build: ServerBuild, pathname: string): ServerBuild {
  const ids = new Set((matchRoutes(routeTree(build.routes), pathname) ?? []).map((match) => match.route.id!));
  const only = <T>(all: Record<string, T>) => Object.fromEntries(Object.entries(all).filter(([id]) => ids.has(id)));
  return { ...build, routes: only(build.routes), assets: { ...build.assets, routes: only(build.assets.routes) } };
}
