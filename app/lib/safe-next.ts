/**
 * Where to go after logging in: `?next=` when it is a path on this site (nginx sends browsers
 * here from a protected upstream, docs/deploy/nginx.conf), else the moderation page. Anything
 * that could leave the site (`//evil`, `/\evil`, `https://…`, control characters) is ignored,
 * so the login page is never an open redirect.
 */
export const AFTER_LOGIN = "/admin";

export function safeNext(value: unknown, fallback = AFTER_LOGIN): string {
  if (typeof value !== "string" || value.length > 2048 || !value.startsWith("/") || value.startsWith("//") || value.startsWith("/\\")) return fallback;
  if (/[\u0000-\u001f\u007f\\]/.test(value)) return fallback;
  const base = "http://promptgate.invalid";
  try {
    const url = new URL(value, base);
    const path = `${url.pathname}${url.search}${url.hash}`;
    // Checked again after parsing: dot segments collapse (`/..//evil`, `/%2e%2e//evil` -> `//evil`),
    // and a browser reads the result's leading `//` as another host.
    return url.origin === base && !path.startsWith("//") ? path : fallback;
  } catch {
    return fallback;
  }
}
