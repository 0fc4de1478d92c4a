/**
 * A browser-like HTTP client for integration tests: a cookie jar, fixed fingerprint headers,
 * the CSRF token read from pages, Remix form posts and tRPC calls.
 */
export interface ClientOptions {
  userAgent?: string;
  acceptLanguage?: string;
  /** Sent as X-Forwarded-For (the server must run with TRUST_PROXY) to simulate another network. */
  forwardedFor?: string;
  /** An undici dispatcher, e.g. one trusting a test nginx's self-signed certificate (tests/helpers/nginx.ts). */
  dispatcher?: unknown;
  /** Sent with every request, e.g. the identity a test proxy passes on (tests/helpers/nginx.ts). */
  headers?: Record<string, string>;
}

export class TestClient {
  readonly cookies = new Map<string, string>();
  csrfToken: string | null = null;

  constructor(
    readonly baseUrl: string,
    readonly options: ClientOptions = {},
  ) {}

  private headers(extra: Record<string, string> = {}): Record<string, string> {
    const headers: Record<string, string> = {
      "user-agent": this.options.userAgent ?? "Mozilla/5.0 (X11; Linux x86_64) promptgate-test",
      "accept-language": this.options.acceptLanguage ?? "en-GB,en;q=0.9",
      ...this.options.headers,
      ...extra,
    };
    if (this.options.forwardedFor) headers["x-forwarded-for"] = this.options.forwardedFor;
    if (this.cookies.size) headers.cookie = [...this.cookies].map(([name, value]) => `${name}=${value}`).join("; ");
    return headers;
  }

  private remember(response: Response): void {
    for (const line of response.headers.getSetCookie()) {
      const [pair, ...attributes] = line.split(";");
      const eq = pair!.indexOf("=");
      const name = pair!.slice(0, eq).trim();
      const value = pair!.slice(eq + 1).trim();
      const expired = attributes.some((a) => /^\s*expires=thu, 01 jan 1970/i.test(a)) || value === "";
      if (expired) this.cookies.delete(name);
      else this.cookies.set(name, value);
    }
  }

  async fetch(path: string, init: RequestInit & { headers?: Record<string, string> } = {}): Promise<Response> {
    const response = await fetch(new URL(path, this.baseUrl), { redirect: "manual", dispatcher: this.options.dispatcher, ...init, headers: this.headers(init.headers) } as RequestInit);
    this.remember(response);
    return response;
  }

  /** GET a page; remembers its CSRF token. */
  async page(path = "/"): Promise<{ status: number; html: string; response: Response }> {
    const response = await this.fetch(path);
    const html = await response.text();
    const token = /name="_csrf" value="([^"]+)"/.exec(html)?.[1];
    if (token) this.csrfToken = token;
    return { status: response.status, html, response };
  }

  /** POST a Remix form (as a browser without JavaScript would), with the CSRF token unless given. */
  async postForm(path: string, fields: Record<string, string>, headers: Record<string, string> = {}): Promise<{ status: number; html: string; location: string | null; headers: Headers }> {
    if (!this.csrfToken && !("_csrf" in fields)) await this.page("/");
    const body = new URLSearchParams({ _csrf: this.csrfToken ?? "", ...fields });
    const response = await this.fetch(path, { method: "POST", body, headers: { "content-type": "application/x-www-form-urlencoded", ...headers } });
    return { status: response.status, html: await response.text(), location: response.headers.get("location"), headers: response.headers };
  }

  /** A tRPC query (GET). Returns the HTTP status and the parsed JSON. */
  async query(procedure: string, input?: unknown): Promise<{ status: number; body: any }> {
    const search = input === undefined ? "" : `?input=${encodeURIComponent(JSON.stringify(input))}`;
    const response = await this.fetch(`/api/trpc/${procedure}${search}`);
    return { status: response.status, body: await response.json() };
  }

  /** A tRPC mutation (POST with the CSRF header). */
  async mutate(procedure: string, input?: unknown, headers: Record<string, string> = {}): Promise<{ status: number; body: any }> {
    if (!this.csrfToken) await this.page("/admin/login");
    const response = await this.fetch(`/api/trpc/${procedure}`, {
      method: "POST",
      body: JSON.stringify(input ?? null),
      headers: { "content-type": "application/json", "x-csrf-token": this.csrfToken ?? "", ...headers },
    });
    return { status: response.status, body: await response.json() };
  }

  /** Logs in as the admin through the login form. */
  async loginAsAdmin(password: string): Promise<void> {
    await this.page("/admin/login");
    const result = await this.postForm("/admin/login", { password });
    if (result.status !== 302 && result.status !== 204) throw new Error(`admin login failed: ${result.status} ${result.html.slice(0, 200)}`);
  }
}

/** A script with an API token: `Authorization: Bearer`, no cookies, no CSRF token. */
export class TokenClient {
  constructor(
    readonly baseUrl: string,
    readonly token: string,
  ) {}

  fetch(path: string, init: RequestInit & { headers?: Record<string, string> } = {}): Promise<Response> {
    return fetch(new URL(path, this.baseUrl), { redirect: "manual", ...init, headers: { authorization: `Bearer ${this.token}`, ...init.headers } });
  }

  async query(procedure: string, input?: unknown): Promise<{ status: number; body: any }> {
    const search = input === undefined ? "" : `?input=${encodeURIComponent(JSON.stringify(input))}`;
    const response = await this.fetch(`/api/trpc/${procedure}${search}`);
    return { status: response.status, body: await response.json() };
  }

  async mutate(procedure: string, input?: unknown): Promise<{ status: number; body: any }> {
    const response = await this.fetch(`/api/trpc/${procedure}`, { method: "POST", body: JSON.stringify(input ?? null), headers: { "content-type": "application/json" } });
    return { status: response.status, body: await response.json() };
  }
}
