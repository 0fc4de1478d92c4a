/**
 * A route `headers` function that passes on what loaders, actions and thrown responses set
 * (Retry-After on a 429 above all), so pages answer like the API with or without JavaScript.
 * Remix uses the headers function of the route that renders: the leaf, or the boundary of an error.
 */
import type { HeadersFunction } from "@remix-run/node";

export const passOnHeaders: HeadersFunction = ({ loaderHeaders, actionHeaders, errorHeaders }) => {
  const merged = new Headers(loaderHeaders);
  for (const [name, value] of [...actionHeaders, ...(errorHeaders ?? [])]) merged.set(name, value);
  return merged;
};
