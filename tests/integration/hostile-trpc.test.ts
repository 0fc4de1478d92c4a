/**
 * Hostile input over HTTP, by property-based tests: every tRPC procedure (enumerated from the
 * router, so procedures added later are covered too), every Remix form and route, as an anonymous
 * visitor and as the admin, with random and malformed input. The server must answer each
 * request below 500 with a tRPC-shaped body, keep serving, and store exactly what succeeded.
 */
import fc from "fast-check";
import { appRouter } from "../../server/trpc/root";
import { TestClient } from "../helpers/client";
import { SEED, assertProperty, hostileJsonText, hostileKey, hostileLeafText, hostileString, notJsonText, objectText, uriEncode } from "../helpers/hostile";
import { ADMIN_PASSWORD, firstAdminId, removeDataDir, startTestServer, type TestServer } from "../helpers/server";
import { errorLines, expectConsistentStore, expectHealthy, expectUnpollutedPrototypes } from "../helpers/invariants";

interface ProcedureInfo {
  path: string;
  type: "query" | "mutation" | "subscription";
  /** The keys of the procedure's input object, when it has one. */
  fields: string[];
}

type AnyDef = { type: ProcedureInfo["type"]; inputs: unknown[] };
// At run time `_def.procedures` is flat, keyed by dotted path (its declared type is the nested record).
const procedures: ProcedureInfo[] = Object.entries(appRouter._def.procedures as unknown as Record<string, { _def: AnyDef }>).map(([path, procedure]) => ({
  path,
  type: procedure._def.type,
  fields: procedure._def.inputs.flatMap((schema) => (schema && typeof schema === "object" && "shape" in schema ? Object.keys(schema.shape as object) : [])),
}));

type Role = "visitor" | "admin";
let server: TestServer;
let visitor: TestClient;
let admin: TestClient;
/** Prompts the server said it stored: what the prompts table must hold at the end. */
let submits = 0;

beforeAll(async () => {
  // TRUST_PROXY: hostile X-Forwarded-For headers reach the code that reads client addresses.
  // The submit limits are off so that hostile-but-valid prompts are stored and the accounting
  // below covers many writes (the limits themselves: tests/integration/limits.test.ts).
  server = await startTestServer({ LOCAL_GENERATOR: "false", TRUST_PROXY: "loopback", LIMIT_SUBMITS_PER_MINUTE: "0", LIMIT_PENDING_PROMPTS: "0" });
  visitor = new TestClient(server.url, { userAgent: "hostile visitor" });
  await visitor.page("/");
  admin = new TestClient(server.url, { userAgent: "hostile admin" });
  await admin.loginAsAdmin(ADMIN_PASSWORD);
});
afterAll(async () => {
  await server?.close();
  if (server) removeDataDir(server.dataDir);
});

const clientFor = (role: Role) => (role === "admin" ? admin : visitor);

/** The procedure names a tRPC URL addresses, as the server decodes them. */
function proceduresIn(url: URL): { names: string[]; batch: boolean } {
  const segment = url.pathname.slice("/api/trpc/".length);
  let decoded: string;
  try {
    decoded = decodeURIComponent(segment);
  } catch {
    decoded = segment;
  }
  const batch = url.searchParams.get("batch") === "1";
  return { names: batch ? decoded.split(",") : [decoded], batch };
}

const isEnvelope = (value: any): boolean =>
  value !== null &&
  typeof value === "object" &&
  ((typeof value.result === "object" && value.result !== null) ||
    (typeof value.error === "object" && value.error !== null && typeof value.error.message === "string"));

/** Checks one answer of the tRPC endpoint and counts the prompts it says were stored. */
async function expectTrpcAnswer(url: URL, response: Response): Promise<void> {
  const status = response.status;
  const context = `${status} for ${url.pathname}${url.search.slice(0, 200)}`;
  expect(status, context).toBeGreaterThanOrEqual(200);
  expect(status, context).toBeLessThan(500);
  if (response.headers.get("content-type")?.startsWith("text/event-stream")) {
    await response.body?.cancel();
    return;
  }
  const text = await response.text();
  // Refused before any handler read the request: no Content-Length, too large, headers too large.
  if ([411, 413, 431].includes(status) && !response.headers.get("content-type")?.includes("json")) return;
  let body: any;
  expect(() => (body = JSON.parse(text)), `${context}: ${text.slice(0, 200)}`).not.toThrow();
  const { names, batch } = proceduresIn(url);
  if (batch && Array.isArray(body)) {
    expect(body.every(isEnvelope), `${context}: ${text.slice(0, 300)}`).toBe(true);
    body.forEach((entry, index) => {
      if (names[index] === "prompt.submit" && entry.result) submits++;
    });
    return;
  }
  expect(isEnvelope(body), `${context}: ${text.slice(0, 300)}`).toBe(true);
  if (body.error) {
    expect(status, context).toBeGreaterThanOrEqual(400);
    if (typeof body.error.data?.httpStatus === "number") expect(body.error.data.httpStatus, context).toBeLessThan(500);
  } else if (names[0] === "prompt.submit") {
    submits++;
  }
}

interface RawRequest {
  role: Role;
  method: string;
  path: string;
  contentType?: string;
  /** undefined: the client's valid token. */
  csrf?: string;
  body?: string | Uint8Array;
}

async function send(request: RawRequest): Promise<Response> {
  const client = clientFor(request.role);
  const headers: Record<string, string> = { "x-csrf-token": request.csrf ?? client.csrfToken ?? "" };
  if (request.contentType !== undefined) headers["content-type"] = request.contentType;
  const hasBody = request.body !== undefined && !["GET", "HEAD"].includes(request.method);
  return client.fetch(request.path, { method: request.method, headers, body: hasBody ? (request.body as BodyInit) : undefined });
}

/**
 * A hostile call may have been admin.logout: the admin role stays the admin. A new session is
 * made directly (the login form is tested elsewhere and costs an argon2 verification), and it
 * is immune to the login throttle that the admin's own hostile logins trip.
 */
function keepAdminSignedIn(): void {
  if (!admin.cookies.has("pg_admin")) admin.cookies.set("pg_admin", server.services.adminSessions.start(firstAdminId(server)));
}

async function sendTrpc(request: RawRequest): Promise<void> {
  const response = await send(request);
  await expectTrpcAnswer(new URL(request.path, server.url), response);
  keepAdminSignedIn();
}

// Plausible values for the input fields the app has today; other fields get hostile values.
const PLAUSIBLE: Record<string, fc.Arbitrary<string>> = {
  prompt: fc.string({ minLength: 1, maxLength: 40 }).map((s) => JSON.stringify(s)),
  negativePrompt: fc.string({ maxLength: 20 }).map((s) => JSON.stringify(s)),
  width: fc.constantFrom("64", "512", "2048", '"512"', '" 768 "', "2056", "63"),
  code: fc.constantFrom('"otter maple 42"', '"OTTER-maple-00"', '"x"', '""'),
  colourName: fc.constantFrom('"Red"', '"Teal 2"', '"Vivid Cobalt 9999999"', '""'),
  secret: fc.constantFrom(JSON.stringify("a".repeat(43)), '"short"', '""'),
  visitorId: fc.constantFrom("1", "2", '"1"', "0", "-1", "1e9"),
  height: fc.constantFrom("64", "512", "2048", '"64"', '"2048"', "100", "-512"),
  size: fc.constantFrom('"square"', '"portrait"', '"landscape"', '"custom"', '"huge"', '""'),
  id: fc.oneof(fc.integer({ min: 1, max: 30 }).map(String), fc.constantFrom('"2"', "1.5", "0", "-1", "1e400", '"0x1"', "true")),
  password: fc.string({ maxLength: 20 }).map((s) => JSON.stringify(s)),
};
const plausible = (field: string) => PLAUSIBLE[field] ?? hostileLeafText;

/** A value for `field`: plausible, another field's (swapped), or hostile. */
const fieldValue = (field: string, fields: string[]) =>
  fc.oneof(
    { weight: 8, arbitrary: plausible(field) },
    { weight: 1, arbitrary: fc.constantFrom(...fields).chain(plausible) },
    { weight: 1, arbitrary: hostileLeafText },
    { weight: 1, arbitrary: hostileJsonText },
  );

/** The procedure's input object, mutated: fields missing, swapped, hostile, duplicated, extra keys. */
const shapedInput = (fields: string[]) =>
  fc
    .tuple(
      fc.tuple(...fields.map((field) => fc.option(fieldValue(field, fields), { nil: undefined, freq: 6 }))),
      fc.array(fc.tuple(fc.oneof(hostileKey, fc.constantFrom(...fields)), hostileLeafText), { maxLength: 2 }),
    )
    .map(([values, extra]) => objectText([...fields.flatMap((field, i): Array<[string, string]> => (values[i] === undefined ? [] : [[field, values[i]!]])), ...extra]));

const inputFor = (procedure: ProcedureInfo): fc.Arbitrary<string | undefined> =>
  fc.oneof(
    ...(procedure.fields.length ? [{ weight: 4, arbitrary: shapedInput(procedure.fields) }] : []),
    { weight: 2, arbitrary: hostileJsonText },
    { weight: 1, arbitrary: fc.constant(undefined) },
  );

/** How a browser-made tRPC client calls a procedure: GET with ?input= for queries, a JSON POST for mutations. */
function callRequest(role: Role, procedure: ProcedureInfo, input: string | undefined): RawRequest {
  if (procedure.type !== "mutation") {
    const search = input === undefined ? "" : `?input=${uriEncode(input)}`;
    return { role, method: "GET", path: `/api/trpc/${procedure.path}${search}` };
  }
  return { role, method: "POST", path: `/api/trpc/${procedure.path}`, contentType: "application/json", body: input };
}

const role = fc.constantFrom<Role>("visitor", "admin");
const procedure = fc.constantFrom(...procedures);
const procedureName = procedure.map((p) => p.path);
const unknownName = fc.oneof(
  fc.constantFrom("__proto__", "constructor", "toString", "hasOwnProperty", "admin.__proto__", "prompt.constructor", "prompt.submit.x", "prompt", "admin", ".", "prompt..submit", "_def", "createCaller"),
  fc.string({ maxLength: 20 }),
);

const CONTENT_TYPES = ["application/json", "application/json; charset=utf-16", "text/plain", "application/x-www-form-urlencoded", "multipart/form-data; boundary=x", "application/octet-stream", "", "*/*"];

/** Requests no tRPC client would send: broken bodies and query strings, batches, unknown procedures, wrong methods. */
const malformedRequest: fc.Arbitrary<RawRequest> = fc.oneof(
  // Broken bodies, any content type.
  fc.record({
    role,
    method: fc.constant("POST"),
    path: procedureName.map((name) => `/api/trpc/${name}`),
    contentType: fc.constantFrom(...CONTENT_TYPES),
    body: fc.oneof(notJsonText, hostileJsonText, fc.uint8Array({ maxLength: 300 }), fc.constant(new Uint8Array([0xff, 0xfe, 0x7b, 0x22, 0xc0, 0x80]))),
  }),
  // Broken query strings.
  fc.record({
    role,
    method: fc.constant("GET"),
    path: fc
      .tuple(
        procedureName,
        fc.oneof(
          notJsonText.map(uriEncode),
          fc.constantFrom("%", "%E0%A4%A", "%FF%FE", "{", "%7B%22", "1&input=2", "null&batch=1", "%00", "[]&batch=true"),
        ),
      )
      .map(([name, input]) => `/api/trpc/${name}?input=${input}`),
  }),
  // Batches: real and unknown procedures, more than the limit of 10, inputs keyed by index or not.
  fc
    .record({
      role,
      method: fc.constantFrom("GET", "POST"),
      names: fc.array(fc.oneof({ weight: 3, arbitrary: procedureName }, { weight: 1, arbitrary: unknownName }), { minLength: 1, maxLength: 14 }),
      input: fc.oneof(
        fc.array(fc.tuple(fc.oneof(fc.nat({ max: 15 }).map(String), hostileKey), hostileJsonText), { maxLength: 6 }).map(objectText),
        notJsonText,
        fc.constant(undefined),
      ),
    })
    .map(({ role, method, names, input }) => {
      const path = `/api/trpc/${names.map(uriEncode).join(",")}?batch=1`;
      if (method === "GET") return { role, method, path: input === undefined ? path : `${path}&input=${uriEncode(input)}` };
      return { role, method, path, contentType: "application/json", body: input };
    }),
  // Unknown procedures.
  fc.record({
    role,
    method: fc.constantFrom("GET", "POST"),
    path: unknownName.map((name) => `/api/trpc/${uriEncode(name)}`),
    contentType: fc.constant("application/json"),
    body: hostileJsonText,
  }),
  // Wrong methods and missing or forged CSRF tokens.
  fc.record({
    role,
    method: fc.constantFrom("PUT", "DELETE", "PATCH", "OPTIONS", "POST", "GET"),
    path: procedureName.map((name) => `/api/trpc/${name}`),
    contentType: fc.constant("application/json"),
    csrf: fc.option(fc.constantFrom("", "forged", "\u00ff", "a".repeat(5_000)), { nil: undefined }),
    body: hostileJsonText,
  }),
);

test("the router's procedures are enumerated, with their input fields", () => {
  const byPath = Object.fromEntries(procedures.map((p) => [p.path, p]));
  for (const known of [
    "visitor.me",
    "visitor.declineOffer",
    "visitor.recover",
    "visitor.useLink",
    "prompt.submit",
    "prompt.mine",
    "admin.login",
    "admin.logout",
    "admin.approve",
    "admin.deny",
    "admin.retry",
    "admin.mute",
    "admin.markRevealed",
  ]) {
    expect(byPath[known], known).toBeDefined();
  }
  expect(byPath["prompt.submit"]).toMatchObject({ type: "mutation", fields: expect.arrayContaining(["prompt", "negativePrompt", "width", "height"]) });
  expect(byPath["prompt.mine"]!.type).toBe("query");
  expect(byPath["admin.approve"]!.fields).toEqual(["id"]);
});

test("every procedure answers random and hostile input below 500 with a tRPC-shaped body, for visitors and the admin", async () => {
  await assertProperty(
    "tRPC procedures × hostile input",
    fc.asyncProperty(role, procedure.chain((p) => inputFor(p).map((input) => [p, input] as const)), async (who, [p, input]) => {
      const errors = errorLines(server).length;
      await sendTrpc(callRequest(who, p, input));
      await expectHealthy(server, errors);
    }),
    300,
  );
});

test("malformed requests, oversized batches and unknown procedures are refused below 500 with a tRPC-shaped body", async () => {
  await assertProperty(
    "tRPC endpoint × malformed HTTP",
    fc.asyncProperty(malformedRequest, async (request) => {
      const errors = errorLines(server).length;
      await sendTrpc(request);
      await expectHealthy(server, errors);
    }),
    300,
  );
});

const latin1 = fc.oneof(fc.integer({ min: 0x20, max: 0x7e }), fc.integer({ min: 0xa0, max: 0xff })).map((code) => String.fromCharCode(code));
const headerValue = fc.oneof(
  fc.string({ unit: latin1, maxLength: 60 }),
  fc.constantFrom("", "x".repeat(8_000), "1.2.3.4, 5.6.7.8", "::ffff:1.2.3.4", "999.1.1.1", "2001:db8::1%eth0", "[::1]:80", "unknown", ", ,", "0.0.0.0"),
);
const cookieValue = fc.oneof(
  fc.string({ unit: latin1, maxLength: 40 }).map((value) => value.replace(/[;,\s]/g, "")),
  fc.constantFrom("%", "%E0%A4%A", "%00", "", "a=b", '"quoted"', "x".repeat(4_000)),
);

test("strangers with hostile cookies and headers get answers below 500 with a tRPC-shaped body", async () => {
  // A genuine CSRF pair, so that hostile cookies and headers reach the procedures.
  const genuine = new TestClient(server.url, { userAgent: "csrf donor" });
  await genuine.page("/");
  const csrfCookie = `pg_csrf=${genuine.cookies.get("pg_csrf")}`;
  const stranger = fc.record({
    call: procedure.chain((p) => inputFor(p).map((input) => callRequest("visitor", p, input))),
    userAgent: fc.option(headerValue, { nil: undefined }),
    acceptLanguage: fc.option(headerValue, { nil: undefined }),
    forwardedFor: fc.option(headerValue, { nil: undefined }),
    cookies: fc.array(fc.tuple(fc.constantFrom("pg_visitor", "pg_admin", "pg_csrf", "other"), cookieValue), { maxLength: 3 }),
  });
  await assertProperty(
    "tRPC procedures × hostile cookies and headers",
    fc.asyncProperty(stranger, async ({ call, userAgent, acceptLanguage, forwardedFor, cookies }) => {
      const errors = errorLines(server).length;
      const headers: Record<string, string> = {
        cookie: [...cookies.map(([name, value]) => `${name}=${value}`), csrfCookie].join("; "),
        "x-csrf-token": genuine.csrfToken!,
      };
      if (call.contentType) headers["content-type"] = call.contentType;
      if (userAgent !== undefined) headers["user-agent"] = userAgent;
      if (acceptLanguage !== undefined) headers["accept-language"] = acceptLanguage;
      if (forwardedFor !== undefined) headers["x-forwarded-for"] = forwardedFor;
      const url = new URL(call.path, server.url);
      await expectTrpcAnswer(url, await fetch(url, { method: call.method, headers, body: call.body as BodyInit | undefined, redirect: "manual" }));
      await expectHealthy(server, errors);
    }),
    100,
  );
});

const FORMS: Record<string, string[]> = {
  "/?index": ["intent", "prompt", "negativePrompt", "size", "width", "height", "code", "colourName"],
  "/admin?index": ["intent", "id", "visitorId"],
  "/admin/account": ["intent", "currentPassword", "newPassword", "confirmPassword"],
  "/recover/AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA": [],
  "/admin/reveal": ["intent", "mode", "seconds"],
  "/admin/login": ["password"],
  "/gallery": ["intent", "from"],
  "/admin/end-event": ["intent", "confirm"],
};
const INTENTS = ["submit", "decline-offer", "recover", "renew-recovery", "approve", "deny", "retry", "mute", "unmute", "logout", "change-password", "logout-everywhere", "open", "close", "end", "start", "next", "previous", "link-open", "link-close", "mode", "auto"];
const formFieldValue = (field: string) =>
  fc.oneof(
    { weight: 3, arbitrary: field === "intent" ? fc.constantFrom(...INTENTS) : plausible(field).map((text) => String(JSON.parse(text))) },
    { weight: 1, arbitrary: hostileString },
  );

test("every Remix form answers hostile fields below 500, for visitors and the admin", async () => {
  const form = fc.constantFrom(...Object.keys(FORMS)).chain((path) =>
    fc.record({
      path: fc.constant(path),
      fields: fc.tuple(...FORMS[path]!.map((field) => fc.option(formFieldValue(field), { nil: undefined, freq: 6 }))).map((values) =>
        Object.fromEntries(FORMS[path]!.flatMap((field, i) => (values[i] === undefined ? [] : [[field, values[i]!]]))),
      ),
    }),
  );
  await assertProperty(
    "Remix forms × hostile fields",
    fc.asyncProperty(role, form, async (who, { path, fields }) => {
      const errors = errorLines(server).length;
      const result = await clientFor(who).postForm(path, fields);
      expect(result.status, `${result.status} for ${path} ${JSON.stringify(fields).slice(0, 200)}`).toBeLessThan(500);
      if (path === "/?index" && result.status === 200 && (fields.intent ?? "submit") === "submit") submits++;
      keepAdminSignedIn();
      await expectHealthy(server, errors);
    }),
    120,
  );
});

test("every other route answers hostile paths below 500", async () => {
  const segment = fc.oneof(
    hostileString.filter((text) => text.length < 200).map(uriEncode),
    fc.constantFrom("%", "%E0%A4%A", "%C0%80", "%00", "%FF.png", "1.png", "-1.png", "99999999999999999999.png", "1.png.png", "..%2F..%2Fetc%2Fpasswd", "%2e%2e%2f", "?x=%", "x?_data=routes%2F_index"),
  );
  const request = fc.record({
    role,
    method: fc.constantFrom("GET", "POST"),
    path: fc.tuple(fc.constantFrom("/", "/images/", "/admin/", "/admin/reveal/", "/show/", "/show?code=", "/join-qr.svg?", "/build/", "/healthz/", "/mqtt/", "/gallery?page=", "/admin/export.zip?scope=", "/admin/end-event/"), segment).map(([prefix, rest]) => prefix + rest),
  });
  await assertProperty(
    "HTTP routes × hostile paths",
    fc.asyncProperty(request, async ({ role: who, method, path }) => {
      const errors = errorLines(server).length;
      const client = clientFor(who);
      const body = method === "POST" ? new URLSearchParams({ _csrf: client.csrfToken ?? "", intent: "submit", prompt: "via a hostile path" }) : undefined;
      const response = await client.fetch(path, { method, body, headers: body ? { "content-type": "application/x-www-form-urlencoded" } : {} });
      expect(response.status, `${method} ${path}`).toBeLessThan(500);
      await response.body?.cancel();
      keepAdminSignedIn();
      await expectHealthy(server, errors);
    }),
    150,
  );
});

/** The page with its per-response nonces and tokens taken out, to compare two answers. */
const shape = (html: string) => html.replace(/nonce="[^"]*"/g, "").replace(/value="[^"]*"/g, "");

test("other spellings of / and /_root.data, which the visitor page's view of the build must not take (ADR 016), are answered by the whole build like any unknown address, with no router warning", async () => {
  const client = new TestClient(server.url, { userAgent: "spelling tester" });
  const unknownPage = await client.page("/no-such-page");
  const unknownData = await client.page("/no-such-page.data");
  expect([unknownPage.response.status, unknownData.response.status]).toEqual([404, 404]);
  const warn = vi.spyOn(console, "warn");
  try {
    // `…/_Root.data` is still a data request (for /_Root); the other two are pages.
    for (const [path, unknown] of [["/_ROOT.DATA", unknownPage], ["/_root.data/", unknownPage], ["/_Root.data", unknownData]] as const) {
      const answer = await client.page(path);
      expect(answer.response.status, path).toBe(404);
      expect(shape(answer.html), path).toBe(shape(unknown.html));
    }
    expect(warn).not.toHaveBeenCalled();
  } finally {
    warn.mockRestore();
  }
  const page = await client.page("/");
  expect(page.response.status).toBe(200);
  expect(page.html).toContain("<form");
});

test("legal but hostile prompt texts are stored exactly as normalised, never altered or lost", async () => {
  // Markup, SQL, quotes, emoji with joiners, right-to-left text with its marks, combining accents,
  // the longest allowed: all legal, all must round-trip (NFC, trimmed, CRLF as LF).
  const legalText = fc.oneof(
    fc.constantFrom(
      "<script>alert(1)</script>",
      "'; DROP TABLE prompts; --",
      '"quoted" and \\back\\slashes',
      "👩‍🚀 on the 🌕",
      "\u200fمرحبا بالعالم\u200e",
      "e\u0301toile",
      "line one\r\nline two\ttabbed",
      "x".repeat(1000),
    ),
    fc.string({ unit: "grapheme", minLength: 1, maxLength: 80 }),
  );
  const visitorOwnIds = new Set<number>();
  await assertProperty(
    "prompt.submit × legal hostile text",
    fc.asyncProperty(legalText, async (text) => {
      const expected = text.replace(/\r\n/g, "\n").normalize("NFC").trim();
      const response = await visitor.mutate("prompt.submit", { prompt: text, width: 64, height: 64 });
      if (!expected || /[\u0000-\u0008\u000b-\u001f\u007f-\u009f\u202a-\u202e\u2066-\u2069]/.test(expected)) {
        expect(response.status, JSON.stringify(text)).toBe(400);
        return;
      }
      expect(response.status, JSON.stringify(text)).toBe(200);
      submits++;
      const { id } = response.body.result.data;
      visitorOwnIds.add(id);
      const stored = server.services.db.$client.prepare("SELECT prompt FROM prompts WHERE id = ?").get(id) as { prompt: string };
      expect(stored.prompt).toBe(expected);
    }),
    60,
  );
  expect(visitorOwnIds.size).toBeGreaterThan(20);
});

test("afterwards the database is intact and holds exactly the prompts the server accepted", () => {
  console.log(`hostile tRPC: ${submits} prompts accepted (seed ${SEED})`);
  expect(errorLines(server)).toEqual([]);
  expectUnpollutedPrototypes();
  expectConsistentStore(server, { prompts: submits });
});
