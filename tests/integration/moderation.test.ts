/**
 * Moderation at party speed (issue 8 §4), over real HTTP, forms and tRPC: deny reasons the guest
 * reads, edits with the original on record, undo, batch decisions, duplicates, filters, hiding a
 * finished image, and the warning when no generator is online. Every action is audited.
 */
import { TestClient } from "../helpers/client";
import { ADMIN_PASSWORD, removeDataDir, signedInModerator, startTestServer, waitFor, type TestServer } from "../helpers/server";

let server: TestServer;
let admin: TestClient;
let moderator: TestClient;

beforeAll(async () => {
  // No generator: approved jobs wait in line, so decisions can be taken back.
  server = await startTestServer({ LOCAL_GENERATOR: "false", LIMIT_SUBMITS_PER_MINUTE: "0", LIMIT_PENDING_PROMPTS: "0" });
  admin = new TestClient(server.url, { userAgent: "moderation admin" });
  await admin.loginAsAdmin(ADMIN_PASSWORD);
  moderator = await signedInModerator(server, admin, "mod", { userAgent: "moderation moderator" });
});
afterAll(async () => {
  await server?.close();
  removeDataDir(server.dataDir);
});

async function guest(name: string, target = server): Promise<TestClient> {
  const client = new TestClient(target.url, { userAgent: `moderation guest ${name}` });
  await client.page("/");
  return client;
}

async function send(client: TestClient, prompt: string, negativePrompt = ""): Promise<number> {
  const sent = await client.mutate("prompt.submit", { prompt, negativePrompt, width: 64, height: 64 });
  expect(sent.status).toBe(200);
  return sent.body.result.data.id;
}

const mine = async (client: TestClient, id: number) => (await client.query("prompt.mine")).body.result.data.find((prompt: { id: number }) => prompt.id === id);
const moderated = async (id: number, filters: Record<string, unknown> = {}) =>
  (await admin.query("admin.dashboard", { limit: 5000, ...filters })).body.result.data.prompts.find((prompt: { id: number }) => prompt.id === id);
const row = (id: number) => server.services.db.$client.prepare("SELECT status, job_id AS jobId, deny_reason AS denyReason FROM prompts WHERE id = ?").get(id) as { status: string; jobId: string | null; denyReason: string | null };
const audited = (actor: string, action: string, target: string) =>
  server.services.db.$client.prepare("SELECT count(*) AS n FROM audit_log WHERE actor = ? AND action = ? AND target = ?").get(actor, action, target) as { n: number };

test("a moderator's edit is what the guest sees and what is approved, while the guest's own words stay on record for the admin", async () => {
  const author = await guest("edit");
  const id = await send(author, "a cat with a rude word", "ugly");
  // Without JavaScript: the card's edit form.
  const edited = await moderator.postForm("/admin?index", { intent: "edit", id: String(id), prompt: "  a cat with a hat ", negativePrompt: "blurry" });
  expect(edited.status).toBe(200);
  expect(await mine(author, id)).toMatchObject({ prompt: "a cat with a hat", negativePrompt: "blurry", status: "pending" });
  expect(await moderated(id)).toMatchObject({ prompt: "a cat with a hat", negativePrompt: "blurry", original: { prompt: "a cat with a rude word", negativePrompt: "ugly" } });
  // A second edit keeps the very first words on record.
  expect((await moderator.mutate("admin.edit", { id, prompt: "a cat in a hat", negativePrompt: "" })).status).toBe(200);
  expect((await moderated(id)).original).toEqual({ prompt: "a cat with a rude word", negativePrompt: "ugly" });
  const page = await admin.page("/admin");
  expect(page.html).toContain("Edited. The guest wrote: a cat with a rude word");

  // Bad input is refused with the field's message and changes nothing.
  const empty = await moderator.mutate("admin.edit", { id, prompt: "   ", negativePrompt: "" });
  expect(empty.status).toBe(400);
  expect(empty.body.error.data.userMessage).toBe("Prompt is empty: describe the image you want");
  expect((await mine(author, id)).prompt).toBe("a cat in a hat");

  await moderator.mutate("admin.approve", { id });
  const refused = await moderator.mutate("admin.edit", { id, prompt: "too late", negativePrompt: "" });
  expect(refused.status).toBe(409);
  expect(refused.body.error.data.userMessage).toBe(`Prompt #${id} is approved; only pending prompts can be edited.`);
  expect(audited("mod", "prompt.edit", `prompt ${id}`).n).toBe(2);
});

test("a denial's reason, a template or the moderator's own words, is shown to its author; too long a reason is refused", async () => {
  const author = await guest("deny");
  const [templated, written, silent] = [await send(author, "deny me with a template"), await send(author, "deny me in words"), await send(author, "deny me quietly")];
  expect((await moderator.postForm("/admin?index", { intent: "deny", id: String(templated), reason: "", template: "Please describe an image" })).status).toBe(200);
  expect((await moderator.postForm("/admin?index", { intent: "deny", id: String(written), reason: "  Lovely,\nbut   not tonight " })).status).toBe(200);
  expect((await moderator.postForm("/admin?index", { intent: "deny", id: String(silent), reason: "" })).status).toBe(200);
  expect(await mine(author, templated)).toMatchObject({ status: "denied", denyReason: "Please describe an image" });
  expect(await mine(author, written)).toMatchObject({ status: "denied", denyReason: "Lovely, but not tonight" });
  expect(await mine(author, silent)).toMatchObject({ status: "denied", denyReason: null });
  expect((await author.page("/")).html).toContain("Why: Lovely, but not tonight");

  const pending = await send(author, "a reason too long");
  const tooLong = await moderator.mutate("admin.deny", { id: pending, reason: "x".repeat(201) });
  expect(tooLong.status).toBe(400);
  expect(tooLong.body.error.data.userMessage).toBe("reason: A reason must be at most 200 characters");
  const form = await moderator.postForm("/admin?index", { intent: "deny", id: String(pending), reason: "y".repeat(201) });
  expect(form.status).toBe(400);
  expect(form.html).toContain("A reason must be at most 200 characters");
  expect(row(pending)).toEqual({ status: "pending", jobId: null, denyReason: null });
  expect(audited("mod", "prompt.deny", `prompt ${templated}`).n).toBe(1);
});

test("undo puts a denied prompt back to pending, and an approved one whose job still waits in line, its job gone", async () => {
  const author = await guest("undo");
  const id = await send(author, "change your mind");
  await moderator.postForm("/admin?index", { intent: "deny", id: String(id), template: "Duplicate" });
  const undoDeny = await moderator.postForm("/admin?index", { intent: "undo", id: String(id) });
  expect(undoDeny.status).toBe(200);
  expect(row(id)).toEqual({ status: "pending", jobId: null, denyReason: null });

  const approved = await moderator.postForm("/admin?index", { intent: "approve", id: String(id) });
  // The toast offers Undo, and says the approval waits: no generator is online.
  expect(approved.html).toContain('name="intent" value="undo"');
  expect(approved.html).toContain("No generator is online: approved prompts will wait.");
  const jobId = row(id).jobId!;
  expect((await moderator.mutate("admin.undo", { id })).body.result.data).toEqual({ undone: "approve" });
  expect(row(id)).toEqual({ status: "pending", jobId: null, denyReason: null });
  expect(server.services.db.$client.prepare("SELECT count(*) AS n FROM jobs WHERE id = ?").get(jobId)).toEqual({ n: 0 });
  expect(await mine(author, id)).toMatchObject({ status: "pending" });

  const nothing = await moderator.mutate("admin.undo", { id });
  expect(nothing.status).toBe(409);
  expect(audited("mod", "prompt.undo-approve", `prompt ${id}`).n).toBe(1);
  expect(audited("mod", "prompt.undo-deny", `prompt ${id}`).n).toBe(1);
});

test("undo is refused with a clear message once its window has passed, for a denial and an approval alike, and changes nothing", async () => {
  const author = await guest("late undo");
  const [denied, approved] = [await send(author, "deny me, then wait"), await send(author, "approve me, then wait")];
  await moderator.mutate("admin.deny", { id: denied, reason: "Duplicate" });
  await moderator.mutate("admin.approve", { id: approved });
  const jobId = row(approved).jobId;
  // The decisions were taken a moment longer ago than the window (UNDO_SECONDS = 15).
  server.services.db.$client.prepare("UPDATE prompts SET decided_at = decided_at - 15100 WHERE id IN (?, ?)").run(denied, approved);

  const lateDeny = await moderator.mutate("admin.undo", { id: denied });
  expect(lateDeny.status).toBe(409);
  expect(lateDeny.body.error.data.userMessage).toBe(`Too late to undo: a decision can be taken back for 15 s. Prompt #${denied} stays denied; you can still approve it.`);
  const lateApprove = await moderator.postForm("/admin?index", { intent: "undo", id: String(approved) });
  expect(lateApprove.status).toBe(409);
  expect(lateApprove.html).toContain(`Too late to undo: a decision can be taken back for 15 s. Prompt #${approved} stays approved.`);
  expect(row(denied)).toEqual({ status: "denied", jobId: null, denyReason: "Duplicate" });
  expect(row(approved)).toEqual({ status: "approved", jobId, denyReason: null });
  expect(server.services.db.$client.prepare("SELECT count(*) AS n FROM audit_log WHERE action LIKE 'prompt.undo-%' AND target IN (?, ?)").get(`prompt ${denied}`, `prompt ${approved}`)).toEqual({ n: 0 });
});

test("approving with no generator online warns that approved prompts will wait", async () => {
  const id = await send(await guest("warn"), "approve me into the void");
  const answer = await moderator.mutate("admin.approve", { id });
  expect(answer.body.result.data).toEqual({ published: true, generatorsOnline: 0 });
  expect((await admin.page("/admin")).html).toContain("No generator is online: approved prompts will wait.");
});

test("batch decisions apply to the selection and skip prompts decided meanwhile", async () => {
  const author = await guest("batch");
  const ids = [await send(author, "batch one"), await send(author, "batch two"), await send(author, "batch three"), await send(author, "batch four")];
  await admin.mutate("admin.approve", { id: ids[0] });
  const approved = await moderator.mutate("admin.approveMany", { ids: [ids[0], ids[1], ids[2]] });
  expect(approved.body.result.data).toEqual({ approved: 2, generatorsOnline: 0 });
  const denied = await moderator.mutate("admin.denyMany", { ids: [ids[1], ids[3], 999_999], reason: "Not suitable for this event" });
  expect(denied.body.result.data).toEqual({ denied: 1 });
  expect(ids.map((id) => row(id).status)).toEqual(["approved", "approved", "approved", "denied"]);
  expect(row(ids[3]!).denyReason).toBe("Not suitable for this event");
  // Without JavaScript: the card's checkbox and the batch form.
  const more = await send(author, "batch five");
  expect((await moderator.postForm("/admin?index", { intent: "deny-selected", ids: String(more), reason: "Duplicate" })).status).toBe(200);
  expect(row(more)).toMatchObject({ status: "denied", denyReason: "Duplicate" });
  const none = await moderator.mutate("admin.approveMany", { ids: [] });
  expect(none.status).toBe(400);
  expect(none.body.error.data.userMessage).toBe("ids: Select at least one prompt.");
  expect(audited("mod", "prompt.approve", "2 prompts").n).toBe(1);
});

test("alike prompts from different colours are grouped, and one action denies the rest as duplicates", async () => {
  const ids = [await send(await guest("dup a"), "A castle, at night!"), await send(await guest("dup b"), "a castle at   night"), await send(await guest("dup c"), "a Castle at night")];
  const other = await send(await guest("dup d"), "a castle at noon");
  const page = await admin.page("/admin");
  expect(page.html).toContain("3 alike");
  expect(page.html).toContain("Deny the other 2 as duplicates");
  expect((await moderator.postForm("/admin?index", { intent: "deny-alike", id: String(ids[1]) })).status).toBe(200);
  expect(ids.map((id) => row(id).status)).toEqual(["denied", "pending", "denied"]);
  expect(row(ids[0]!).denyReason).toBe("Duplicate");
  expect(row(other).status).toBe("pending");
  expect(audited("mod", "prompt.deny", "2 prompts").n).toBe(1);
});

test("the list filters by status and colour from the query string, without JavaScript, offering every colour that sent a prompt", async () => {
  const red = await guest("filter red");
  const blue = await guest("filter blue");
  const [redPending, redDenied, bluePending] = [await send(red, "filter red pending"), await send(red, "filter red denied"), await send(blue, "filter blue pending")];
  await admin.mutate("admin.deny", { id: redDenied });
  const shownIds = (html: string) => [...html.matchAll(/data-prompt-id="(\d+)"/g)].map((match) => Number(match[1]));
  const visitorId = (await moderated(redPending)).author.id;

  const denied = shownIds((await admin.page("/admin?status=denied&show=5000")).html);
  expect(denied).toContain(redDenied);
  expect(denied).not.toContain(redPending);
  expect(denied.every((id) => row(id).status === "denied")).toBe(true);
  const reds = shownIds((await admin.page(`/admin?colour=${visitorId}`)).html);
  expect(reds.sort()).toEqual([redPending, redDenied].sort());
  expect(shownIds((await admin.page(`/admin?colour=${visitorId}&status=pending`)).html)).toEqual([redPending]);
  expect(shownIds((await admin.page("/admin?status=nonsense")).html)).toContain(bluePending);
  // The colour filter offers every colour that sent a prompt, not only those on the page loaded.
  const onePrompt = await admin.page("/admin?show=1");
  expect(shownIds(onePrompt.html)).toEqual([bluePending]);
  expect(onePrompt.html).toContain(`<option value="${visitorId}">${(await moderated(redPending)).author.name}</option>`);
  // The API filters the same way.
  expect((await admin.query("admin.dashboard", { visitorId, status: "pending" })).body.result.data.prompts.map((prompt: { id: number }) => prompt.id)).toEqual([redPending]);
  expect((await admin.query("admin.dashboard", { status: "nonsense" })).status).toBe(400);
});

test("a hidden image stays out of the reveal and the gallery, its author sees it done but never the image until it is unhidden; undo is refused once a generator has it", async () => {
  const live = await startTestServer({ LIMIT_SUBMITS_PER_MINUTE: "0" });
  try {
    const host = new TestClient(live.url, { userAgent: "hide admin" });
    await host.loginAsAdmin(ADMIN_PASSWORD);
    await host.postForm("/gallery", { intent: "open" });
    const author = await guest("hide", live);
    const id = await send(author, "a picture to hide");
    await host.mutate("admin.approve", { id });
    await waitFor("the image", () => live.services.db.$client.prepare("SELECT 1 FROM images WHERE prompt_id = ?").get(id));
    const late = await host.mutate("admin.undo", { id });
    expect(late.status).toBe(409);
    expect(late.body.error.data.userMessage).toMatch(/only a denial, or an approval still waiting in line, can be undone/);

    expect((await host.postForm("/admin?index", { intent: "hide", id: String(id) })).status).toBe(200);
    // The show would not put it on screen: it was the only finished image.
    const presenter = (await host.query("show.presenter")).body.result.data.show;
    expect(presenter).toMatchObject({ unseen: 0, upNext: null });
    // Revealed while hidden (a reveal open from before): the author still sees no image.
    await host.mutate("admin.markRevealed", { id });
    expect(await mine(author, id)).toMatchObject({ status: "done", imageUrl: null });
    expect((await author.fetch(`/images/${id}.png`)).status).toBe(404);
    expect((await new TestClient(live.url, { userAgent: "hide passer-by" }).fetch(`/images/${id}.png`)).status).toBe(404);
    expect((await host.query("gallery.page", { page: 1 })).body.result.data.items.map((item: { id: number }) => item.id)).not.toContain(id);
    expect((await host.fetch(`/images/${id}.png`)).status).toBe(200);

    expect((await host.mutate("admin.hide", { id, hidden: false })).status).toBe(200);
    expect(await mine(author, id)).toMatchObject({ status: "done", imageUrl: `/images/${id}.png` });
    expect((await author.fetch(`/images/${id}.png`)).status).toBe(200);
    const pending = await send(author, "nothing to hide yet");
    const early = await host.mutate("admin.hide", { id: pending, hidden: true });
    expect(early.status).toBe(409);
    const actions = live.services.db.$client.prepare("SELECT action FROM audit_log WHERE target = ? ORDER BY id").all(`prompt ${id}`);
    expect(actions).toEqual([{ action: "prompt.approve" }, { action: "prompt.hide" }, { action: "prompt.reveal" }, { action: "prompt.unhide" }]);
  } finally {
    await live.close();
    removeDataDir(live.dataDir);
  }
});
