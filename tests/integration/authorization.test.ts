/**
 * Who may call what (issue 9, ADR 011), for every tRPC procedure of the router: each is listed
 * below with the least it needs, and a procedure added without a place in the list fails the
 * first test. Then every procedure is called, over HTTP, by everyone who must be refused
 * (nobody, a moderator, an API token of each scope) and must answer 401 or 403, with nothing
 * done; and by someone who may, who must get past the check. Every form, likewise, refuses a
 * post without its CSRF token.
 */
import { readdirSync, readFileSync } from "node:fs";
import path from "node:path";
import { appRouter } from "../../server/trpc/root";
import { TestClient, TokenClient } from "../helpers/client";
import { ADMIN_PASSWORD, removeDataDir, signedInModerator, startTestServer, waitFor, type TestServer } from "../helpers/server";
import { SseStream } from "../helpers/sse";

type Procedure = { path: string; type: "query" | "mutation" | "subscription" };
// At run time `_def.procedures` is flat, keyed by dotted path (its declared type is the nested record).
const procedures: Procedure[] = Object.entries(appRouter._def.procedures as unknown as Record<string, { _def: { type: Procedure["type"] } }>).map(([path, procedure]) => ({
  path,
  type: procedure._def.type,
}));

/** Anyone, or anyone with a colour (a visitor, a `submit` token, a person of the sign-in proxy). */
const OPEN = [
  "admin.login",
  "admin.redeemLoginLink",
  "admin.logout",
  "admin.me",
  "gallery.page",
  "prompt.submit",
  "prompt.mine",
  "prompt.cancel",
  "prompt.liveCursor",
  "prompt.onChange",
  "show.audience",
  "show.onAudience",
  "visitor.me",
  "visitor.page",
  "visitor.declineOffer",
  "visitor.recover",
  "visitor.linkTarget",
  "visitor.useLink",
  "visitor.renewRecovery",
];
/** A login of one's own (never a token). */
const ACCOUNT = ["admin.logoutEverywhere", "admin.changePassword", "admin.sessions", "admin.endSession"];
/** Reading the moderation list, the show and the images: staff, or a `read` token. */
const READ = ["admin.dashboard", "admin.olderPrompts", "admin.onChange", "gallery.isOpen", "show.presenter", "show.onPresenter"];
/** Moderating and running the show: staff, or a `moderate` token. */
const MODERATE = [
  "admin.approve",
  "admin.approveMany",
  "admin.deny",
  "admin.denyMany",
  "admin.denyAlike",
  "admin.edit",
  "admin.undo",
  "admin.hide",
  "admin.pinToFront",
  "admin.moveInLine",
  "admin.cancel",
  "admin.retry",
  "admin.retryFailed",
  "admin.mute",
  "admin.unmute",
  "admin.markRevealed",
  "show.start",
  "show.next",
  "show.previous",
  "show.end",
  "show.setMode",
  "show.setAutoAdvance",
  "show.openLink",
  "show.closeLink",
];
/** Accounts, tokens, generators, the gallery's switch and the end of the event: an admin's login only. */
const ADMIN = [
  "access.accounts",
  "access.addModerator",
  "access.addIdentity",
  "access.removeAccount",
  "access.tokens",
  "access.createToken",
  "access.revokeToken",
  "access.audit",
  "admin.generators",
  "admin.addGenerator",
  "admin.revokeGenerator",
  "event.summary",
  "event.end",
  "gallery.setOpen",
];

let server: TestServer;
let admin: TestClient;
let anonymous: TestClient;
let moderator: TestClient;
let cursor: string;
const tokens: Record<"submit" | "read" | "moderate", TokenClient> = {} as never;

beforeAll(async () => {
  server = await startTestServer({ LOCAL_GENERATOR: "false" });
  admin = new TestClient(server.url, { userAgent: "authorization admin" });
  await admin.loginAsAdmin(ADMIN_PASSWORD);
  moderator = await signedInModerator(server, admin, "matrix-mod", { userAgent: "authorization moderator" });
  for (const scope of ["submit", "read", "moderate"] as const) {
    tokens[scope] = new TokenClient(server.url, (await admin.mutate("access.createToken", { name: `matrix-${scope}`, scopes: [scope] })).body.result.data.token);
  }
  anonymous = new TestClient(server.url, { userAgent: "authorization stranger" });
  await anonymous.page("/");
  // Something on every live stream since `cursor`: a prompt, and a move of the show.
  cursor = (await anonymous.query("prompt.liveCursor")).body.result.data;
  expect((await anonymous.mutate("prompt.submit", { prompt: "for the streams" })).status).toBe(200);
  expect((await admin.mutate("show.openLink")).status).toBe(200);
});
afterAll(async () => {
  await server?.close();
  if (server) removeDataDir(server.dataDir);
});

/**
 * Calls `procedure` as `caller` with `{}`, an input most procedures refuse (400): the access
 * check comes first. A stream answers 200 and then either its first events (from the cursor
 * taken before the setup's changes) or the refusal, with its HTTP status, as its one event.
 */
async function statusOf(caller: TestClient | TokenClient, { path, type }: Procedure): Promise<number> {
  if (type === "mutation") return (await caller.mutate(path, {})).status;
  if (type === "query") {
    const response = await caller.fetch(`/api/trpc/${path}?input=${encodeURIComponent("{}")}`);
    await response.body?.cancel();
    return response.status;
  }
  const stream = await SseStream.open(caller, path, { input: { lastEventId: cursor } });
  try {
    const first = await waitFor(`${path}'s first event`, () => stream.messages[0]);
    return first.event === "serialized-error" ? first.data.data.httpStatus : stream.response.status;
  } finally {
    stream.close();
  }
}

const rows = (sql: string) => server.services.db.$client.prepare(sql).all();
const byPath = (paths: string[]) => procedures.filter((procedure) => paths.includes(procedure.path));

test("every procedure of the router has a place in this list, and only one", () => {
  const listed = [...OPEN, ...ACCOUNT, ...READ, ...MODERATE, ...ADMIN];
  expect(new Set(listed).size).toBe(listed.length);
  expect([...listed].sort()).toEqual(procedures.map((procedure) => procedure.path).sort());
});

test("nobody signed in is refused every staff procedure with 401, and nothing is done", async () => {
  const auditBefore = rows("SELECT * FROM audit_log");
  for (const procedure of byPath([...ACCOUNT, ...READ, ...MODERATE, ...ADMIN])) expect(await statusOf(anonymous, procedure), procedure.path).toBe(401);
  expect(rows("SELECT * FROM audit_log")).toEqual(auditBefore);
});

test("a moderator is refused every admin procedure with 403, and gets past the check of every reading and moderating one", async () => {
  const auditBefore = rows("SELECT * FROM audit_log WHERE action NOT LIKE 'show.%'");
  for (const procedure of byPath(ADMIN)) expect(await statusOf(moderator, procedure), procedure.path).toBe(403);
  for (const procedure of byPath([...READ, ...MODERATE])) expect([401, 403], procedure.path).not.toContain(await statusOf(moderator, procedure));
  expect(rows("SELECT * FROM audit_log WHERE action NOT LIKE 'show.%'")).toEqual(auditBefore);
  expect(rows("SELECT name FROM accounts ORDER BY id")).toEqual([{ name: "admin" }, { name: "matrix-mod" }]);
});

test.each([
  ["submit", [...ACCOUNT, ...READ, ...MODERATE, ...ADMIN], []],
  ["read", [...ACCOUNT, ...MODERATE, ...ADMIN], READ],
  ["moderate", [...ACCOUNT, ...READ, ...ADMIN], MODERATE],
] as const)("an API token with only the %s scope is refused with 403 everything beyond it, and never manages anything", async (scope, refused, allowed) => {
  const token = tokens[scope];
  const auditBefore = rows("SELECT * FROM audit_log WHERE action NOT LIKE 'show.%'");
  for (const procedure of byPath([...refused])) expect(await statusOf(token, procedure), procedure.path).toBe(403);
  for (const procedure of byPath([...allowed])) expect([401, 403], procedure.path).not.toContain(await statusOf(token, procedure));
  expect(rows("SELECT * FROM audit_log WHERE action NOT LIKE 'show.%'")).toEqual(auditBefore);
  expect(rows("SELECT name FROM api_tokens ORDER BY name")).toEqual([{ name: "matrix-moderate" }, { name: "matrix-read" }, { name: "matrix-submit" }]);
});

/** A form post for each route with an action, as the admin would send it, with something it would do. */
const FORMS: Record<string, Record<string, string>> = {
  "/?index": { intent: "submit", prompt: "forged by another site" },
  "/admin?index": { intent: "logout" },
  "/admin/account": { intent: "logout-everywhere" },
  "/admin/end-event": { confirm: "END" },
  "/admin/generators": { intent: "add", name: "forged-box" },
  "/admin/link": { intent: "renew" },
  "/admin/login": { password: ADMIN_PASSWORD },
  "/admin/people": { intent: "add", name: "forged", password: "forged password" },
  "/admin/reveal": { intent: "start" },
  "/admin/tokens": { intent: "create", name: "forged", scopes: "read" },
  "/gallery": { intent: "open" },
  "/recover/forged-link": {},
};

test("every form refuses a post without its CSRF token with 403, even the admin's, and nothing is done", async () => {
  const withActions = readdirSync(path.join(import.meta.dirname, "../../app/routes")).filter((file) => /export (async function|const) action\b/.test(readFileSync(path.join(import.meta.dirname, "../../app/routes", file), "utf8")));
  expect(withActions).toHaveLength(Object.keys(FORMS).length);
  const auditBefore = rows("SELECT * FROM audit_log");
  const counts = () => rows("SELECT (SELECT count(*) FROM prompts) AS prompts, (SELECT count(*) FROM accounts) AS accounts, (SELECT count(*) FROM api_tokens) AS tokens, (SELECT count(*) FROM admin_sessions) AS sessions");
  const before = counts();
  for (const [route, fields] of Object.entries(FORMS)) {
    for (const csrf of ["", "forged", anonymous.csrfToken!]) expect((await admin.postForm(route, { ...fields, _csrf: csrf })).status, `${route} with _csrf=${csrf}`).toBe(403);
  }
  expect(counts()).toEqual(before);
  expect(rows("SELECT * FROM audit_log")).toEqual(auditBefore);
  expect((await admin.query("admin.me")).body.result.data).toMatchObject({ name: "admin" });
});
