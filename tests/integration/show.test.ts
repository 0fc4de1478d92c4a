/**
 * The show (issue 8 §5) over real HTTP: which images it holds and in what order, that only the
 * image put on screen is revealed, the audience link's code (closed by default, rotated,
 * closed), the audience's stream and image addresses, auto-advance, and refusals of bad input.
 */
import { TestClient } from "../helpers/client";
import { SseStream } from "../helpers/sse";
import { serverWithAdmin, waitFor, type TestServer } from "../helpers/server";
import { useCleanups } from "../helpers/cleanups";

const cleanup = useCleanups();

async function guest(server: TestServer, name: string): Promise<TestClient> {
  const client = new TestClient(server.url, { userAgent: `show guest ${name}` });
  await client.page("/");
  return client;
}

const revealedIds = (server: TestServer) =>
  (server.services.db.$client.prepare("SELECT id FROM prompts WHERE revealed_at IS NOT NULL ORDER BY id").all() as Array<{ id: number }>).map((row) => row.id);

/** Submits, approves and waits for the image; returns the prompt's id. */
async function generated(server: TestServer, admin: TestClient, author: TestClient, prompt: string): Promise<number> {
  const submitted = await author.mutate("prompt.submit", { prompt, width: 64, height: 64 });
  expect(submitted.status).toBe(200);
  const id = submitted.body.result.data.id as number;
  expect((await admin.mutate("admin.approve", { id })).status).toBe(200);
  await waitFor(`prompt ${id}'s image`, () => server.services.db.$client.prepare("SELECT 1 FROM images WHERE prompt_id = ?").get(id));
  return id;
}

/** Runs a presenter move; returns the presenter's view after it. */
async function present(admin: TestClient, move: string, input?: unknown) {
  const result = await admin.mutate(`show.${move}`, input);
  expect(result.status, JSON.stringify(result.body)).toBe(200);
  return result.body.result.data;
}

test("the show holds the images not yet revealed, reveals only the one put on screen, keeps each in its place going back, takes in images that finish during it, and ends on a card counting images and guests", async () => {
  const { server, admin } = await serverWithAdmin(cleanup);
  const teal = await guest(server, "teal");
  const amber = await guest(server, "amber");
  const before = await generated(server, admin, teal, "revealed before the show");
  expect((await admin.mutate("admin.markRevealed", { id: before })).status).toBe(200);
  const a = await generated(server, admin, teal, "first");
  const b = await generated(server, admin, amber, "second");
  const c = await generated(server, admin, teal, "third");

  const notStarted = await admin.mutate("show.next");
  expect(notStarted.status).toBe(409);
  expect(notStarted.body.error.message).toBe("Start the show first.");

  expect(await present(admin, "start")).toMatchObject({ phase: "title", total: 3, unseen: 3, position: 0, slide: null, upNext: { id: a } });
  expect(revealedIds(server)).toEqual([before]);
  expect(await present(admin, "next")).toMatchObject({ phase: "image", position: 1, total: 3, slide: { id: a, prompt: "first" }, upNext: { id: b } });
  expect(revealedIds(server)).toEqual([before, a]);
  expect(await present(admin, "next")).toMatchObject({ position: 2, slide: { id: b } });
  // Back and forth: the same places, nothing more revealed.
  expect(await present(admin, "previous")).toMatchObject({ position: 1, slide: { id: a } });
  expect(await present(admin, "previous")).toMatchObject({ position: 1, slide: { id: a } });
  expect(await present(admin, "next")).toMatchObject({ position: 2, slide: { id: b }, upNext: { id: c } });
  expect(revealedIds(server)).toEqual([before, a, b]);

  // An image that finishes during the show joins the unseen ones.
  const d = await generated(server, admin, amber, "late");
  expect((await admin.query("show.presenter")).body.result.data.show).toMatchObject({ position: 2, total: 4, unseen: 2 });
  expect(await present(admin, "next")).toMatchObject({ position: 3, slide: { id: c } });
  expect(await present(admin, "next")).toMatchObject({ position: 4, total: 4, slide: { id: d } });
  expect(await present(admin, "next")).toMatchObject({ phase: "end", slide: null, shownImages: 4, shownGuests: 2, unseen: 0 });
  expect(await present(admin, "previous")).toMatchObject({ phase: "image", position: 4, slide: { id: d } });
  expect(revealedIds(server)).toEqual([before, a, b, c, d]);

  // A new show starts at 1 of what is still unseen: nothing.
  expect(await present(admin, "start")).toMatchObject({ phase: "title", total: 0 });
  expect(await present(admin, "next")).toMatchObject({ phase: "end", shownImages: 0 });
  const actions = server.services.db.$client.prepare("SELECT action FROM audit_log WHERE action LIKE 'show.%'").all() as Array<{ action: string }>;
  expect(actions.filter((row) => row.action === "show.next")).toHaveLength(7);
});

test("by colour the show takes each guest's round: everyone's first image, then everyone's second", async () => {
  const { server, admin } = await serverWithAdmin(cleanup);
  const [teal, amber, plum] = [await guest(server, "teal"), await guest(server, "amber"), await guest(server, "plum")];
  const t1 = await generated(server, admin, teal, "t1");
  const t2 = await generated(server, admin, teal, "t2");
  const a1 = await generated(server, admin, amber, "a1");
  const t3 = await generated(server, admin, teal, "t3");
  const a2 = await generated(server, admin, amber, "a2");
  const p1 = await generated(server, admin, plum, "p1");
  await present(admin, "start");
  expect(await present(admin, "setMode", { mode: "colour" })).toMatchObject({ mode: "colour", upNext: { id: t1 } });
  const order: number[] = [];
  for (let view = await present(admin, "next"); view.phase === "image"; view = await present(admin, "next")) order.push(view.slide.id);
  expect(order).toEqual([t1, a1, p1, t2, a2, t3]);
});

test("the audience link is closed until opened; its code opens the view and the shown images only; a new code ends the old one's view and stream; closing refuses everyone", async () => {
  const { server, admin } = await serverWithAdmin(cleanup);
  const teal = await guest(server, "teal");
  const shown = await generated(server, admin, teal, "a lighthouse at dusk");
  const unseen = await generated(server, admin, teal, "a paper boat");
  const projector = new TestClient(server.url, { userAgent: "show projector" });

  // Closed by default: no code works, the page says there is no show, and /show only asks for a code.
  expect((await projector.query("show.audience", { code: "ABCDEFGH" })).status).toBe(404);
  const refused = await projector.page("/show/ABCDEFGH");
  expect(refused.status).toBe(404);
  expect(refused.html).toContain("There is no show at this address.");
  const entry = await projector.page("/show");
  expect(entry.status).toBe(200);
  expect(entry.html).toContain('name="code"');
  expect(entry.html).not.toContain("<img");
  expect((await projector.fetch("/show?code=abcd-efgh")).headers.get("location")).toBe("/show/ABCDEFGH");

  const { code } = await present(admin, "openLink");
  expect(code).toMatch(/^[2-9A-HJKMNP-Z]{8}$/);
  expect((await projector.query("show.audience", { code })).body.result.data.show).toEqual({
    phase: "waiting",
    slide: null,
    position: 0,
    total: 2,
    shownImages: 0,
    shownGuests: 0,
    autoAdvanceSeconds: 0,
  });
  // Typed from the screen: lower case and a dash are forgiven.
  expect((await projector.query("show.audience", { code: `${code.slice(0, 4).toLowerCase()}-${code.slice(4)}` })).status).toBe(200);
  expect((await projector.page("/join-qr.svg")).html).toMatch(/^<svg /);

  const stream = await SseStream.open(projector, "show.onAudience", { input: { code } });
  expect(stream.response.status).toBe(200);
  await present(admin, "start");
  await present(admin, "next");
  await stream.waitForData("the first image", (data) => data.type === "show" && data.show.slide?.id === shown);
  // The audience loads what it is shown, with the code; nothing else, and nothing without it.
  const image = await projector.fetch(`/show/${code}/images/${shown}.png`);
  expect(image.status).toBe(200);
  expect(image.headers.get("content-type")).toBe("image/png");
  expect((await projector.fetch(`/show/${code}/images/${unseen}.png`)).status).toBe(404);
  expect((await projector.fetch(`/show/ZZZZZZZZ/images/${shown}.png`)).status).toBe(404);
  expect((await projector.fetch(`/images/${shown}.png`)).status).toBe(404);
  // Guests cannot run the show.
  expect((await teal.mutate("show.next")).status).toBe(401);

  const rotated = (await present(admin, "openLink")).code;
  expect(rotated).not.toBe(code);
  await stream.waitForData("the end of the old code", (data) => data.type === "closed");
  stream.close();
  expect((await projector.query("show.audience", { code })).status).toBe(404);
  expect((await projector.fetch(`/show/${code}/images/${shown}.png`)).status).toBe(404);
  expect((await projector.query("show.audience", { code: rotated })).body.result.data.show).toMatchObject({ phase: "image", position: 1, slide: { id: shown } });
  const refusedStream = await SseStream.open(projector, "show.onAudience", { input: { code } });
  await waitFor("the old code's stream to be refused", () => refusedStream.messages.length > 0);
  expect(refusedStream.messages).toEqual([expect.objectContaining({ event: "serialized-error", data: expect.objectContaining({ data: expect.objectContaining({ code: "NOT_FOUND" }) }) })]);
  refusedStream.close();

  expect(await present(admin, "closeLink")).toMatchObject({ code: null });
  expect((await projector.query("show.audience", { code: rotated })).status).toBe(404);
  expect((await projector.page(`/show/${rotated}`)).status).toBe(404);
});

test("an image hidden while it is on screen leaves the projector at once: the audience sees the one shown before it, its address answers 404, and the show goes on from there", async () => {
  const { server, admin } = await serverWithAdmin(cleanup);
  const teal = await guest(server, "teal");
  const [first, second, third] = [await generated(server, admin, teal, "first"), await generated(server, admin, teal, "second"), await generated(server, admin, teal, "third")];
  const { code } = await present(admin, "openLink");
  await present(admin, "start");
  await present(admin, "next");
  await present(admin, "next");
  const projector = new TestClient(server.url, { userAgent: "show hide projector" });
  const stream = await SseStream.open(projector, "show.onAudience", { input: { code } });
  expect((await projector.fetch(`/show/${code}/images/${second}.png`)).status).toBe(200);

  expect((await admin.mutate("admin.hide", { id: second, hidden: true })).status).toBe(200);
  const after = await stream.waitForData("the hidden image to leave the screen", (data) => data.type === "show" && data.show.slide?.id !== second);
  expect(after.show).toMatchObject({ phase: "image", slide: { id: first }, position: 1, total: 2, shownImages: 1 });
  expect((await projector.fetch(`/show/${code}/images/${second}.png`)).status).toBe(404);
  expect(await present(admin, "next")).toMatchObject({ phase: "image", slide: { id: third }, position: 2, total: 2 });
  expect(await present(admin, "previous")).toMatchObject({ slide: { id: first } });
  expect(revealedIds(server)).toEqual([first, second, third]);
  // Shown again once unhidden, in its place.
  expect((await admin.mutate("admin.hide", { id: second, hidden: false })).status).toBe(200);
  expect(await present(admin, "next")).toMatchObject({ slide: { id: second }, position: 2, total: 3 });
  stream.close();
});

test("auto-advance moves the show on by itself, image by image, and stops at the end card", async () => {
  const { server, admin } = await serverWithAdmin(cleanup);
  const teal = await guest(server, "teal");
  const first = await generated(server, admin, teal, "one");
  const second = await generated(server, admin, teal, "two");
  await present(admin, "start");
  expect(await present(admin, "setAutoAdvance", { seconds: 1 })).toMatchObject({ autoAdvanceSeconds: 1 });
  const stream = await SseStream.open(admin, "show.onPresenter");
  await stream.waitForData("the first image", (data) => data.show.slide?.id === first);
  await stream.waitForData("the second image", (data) => data.show.slide?.id === second);
  await stream.waitForData("the end card", (data) => data.show.phase === "end");
  stream.close();
  expect(revealedIds(server)).toEqual([first, second]);
});

test("a mode or auto-advance that is not one is refused with a message, and the show stays as it was", async () => {
  const { admin } = await serverWithAdmin(cleanup);
  for (const [move, input, message] of [
    ["setMode", { mode: "sideways" }, "The mode is one of order, colour, shuffle."],
    ["setAutoAdvance", { seconds: -1 }, "Zero or more seconds per image."],
    ["setAutoAdvance", { seconds: 601 }, "At most 600 seconds per image."],
    ["setAutoAdvance", { seconds: "soon" }, "Give the seconds per image as a number."],
  ] as const) {
    const refused = await admin.mutate(`show.${move}`, input);
    expect(refused.status, `${move} ${JSON.stringify(input)}`).toBe(400);
    expect(JSON.stringify(refused.body.error)).toContain(message);
  }
  expect((await admin.query("show.presenter")).body.result.data.show).toMatchObject({ mode: "order", autoAdvanceSeconds: 0, phase: "waiting" });
  // Without JavaScript, the presenter's form answers the same way.
  await admin.page("/admin/reveal");
  const form = await admin.postForm("/admin/reveal", { intent: "auto", seconds: "601" });
  expect(form.status).toBe(400);
  expect(form.html).toContain("At most 600 seconds per image.");
});
