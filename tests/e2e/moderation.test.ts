/**
 * Moderation at party speed in a real Chromium (issue 8 §4, §8): the admin page on a 390×844
 * phone (nothing sideways, thumb-sized Approve and Deny on screen), a deny reason the guest sees
 * live in another browser, undo, moderation from a laptop's keyboard, alike prompts grouped, a
 * blocklisted prompt highlighted, and Cancel with JavaScript off.
 */
import { writeFileSync } from "node:fs";
import path from "node:path";
import type { Browser, BrowserContext, Page } from "playwright-core";
import { launchBrowser, saveScreenshot } from "../helpers/browser";
import { TestClient } from "../helpers/client";
import { ADMIN_PASSWORD, makeDataDir, removeDataDir, startTestServer, type TestServer } from "../helpers/server";

let browser: Browser;
let server: TestServer;
const contexts: BrowserContext[] = [];
beforeAll(async () => {
  const dataDir = makeDataDir();
  writeFileSync(path.join(dataDir, "blocklist.txt"), "gore\n");
  // No generator: approvals wait in line, so they can be undone and the warning shows.
  server = await startTestServer({ DATA_DIR: dataDir, BLOCKLIST_FILE: path.join(dataDir, "blocklist.txt"), LOCAL_GENERATOR: "false", LIMIT_SUBMITS_PER_MINUTE: "0", LIMIT_PENDING_PROMPTS: "0" });
  browser = await launchBrowser();
});
afterAll(async () => {
  for (const context of contexts) await context.close();
  await browser?.close();
  await server?.close();
  removeDataDir(server.dataDir);
});

const PHONE = { width: 390, height: 844 };

async function newPage(name: string, phone: boolean): Promise<Page> {
  const context = await browser.newContext(
    phone
      ? { viewport: PHONE, isMobile: true, hasTouch: true, deviceScaleFactor: 2, userAgent: `Mozilla/5.0 (iPhone) promptgate-e2e moderation ${name}` }
      : { viewport: { width: 1280, height: 720 }, userAgent: `Mozilla/5.0 promptgate-e2e moderation ${name}` },
  );
  contexts.push(context);
  return context.newPage();
}

async function adminPage(name: string, phone: boolean): Promise<Page> {
  const page = await newPage(name, phone);
  await page.goto(`${server.url}/admin/login`);
  await page.getByLabel("Password").fill(ADMIN_PASSWORD);
  await page.getByRole("button", { name: "Log in" }).click();
  await page.waitForURL(/\/admin$/);
  return page;
}

async function send(guest: TestClient, prompt: string): Promise<number> {
  const sent = await guest.mutate("prompt.submit", { prompt, width: 64, height: 64 });
  expect(sent.status).toBe(200);
  return sent.body.result.data.id;
}

const status = (page: Page, id: number) => page.locator(`.prompt-card[data-prompt-id="${id}"] .badge[data-status]`).first().getAttribute("data-status");
const statusIs = (page: Page, id: number, value: string) => page.locator(`.prompt-card[data-prompt-id="${id}"] .badge[data-status="${value}"]`).waitFor();

/** Every box measured against the phone's width: a mobile viewport widens itself to overflowing content. */
const overflow = (page: Page) =>
  page.evaluate((width) => {
    const wide = [...document.querySelectorAll("body *")].filter((element) => element.getBoundingClientRect().right > width + 0.5 || element.getBoundingClientRect().left < -0.5);
    return { scrollWidth: document.documentElement.scrollWidth, innerWidth: window.innerWidth, wide: wide.map((element) => element.outerHTML.slice(0, 100)) };
  }, PHONE.width);

test("at 390 px every prompt is a card with thumb-sized Approve and Deny on screen, nothing scrolls sideways, and a deny reason reaches the guest live, then Undo takes it back", async () => {
  const sender = new TestClient(server.url, { userAgent: "moderation phone sender" });
  await sender.page("/");
  await send(sender, `a very long word: ${"Pneumonoultramicroscopic".repeat(10)}`);
  await send(sender, "a long prompt about a quiet harbour at dawn. ".repeat(22).trim());

  // The guest whose prompt is denied watches their own page in another browser.
  const guest = await newPage("guest", true);
  await guest.goto(`${server.url}/`);
  await guest.getByLabel("Prompt", { exact: true }).fill("a selfie of my cat");
  await guest.getByRole("button", { name: "Send prompt" }).click();
  const own = guest.locator(".own-prompts li", { hasText: "a selfie of my cat" });
  await own.locator('.badge[data-status="pending"]').waitFor();
  const id = Number(await own.getAttribute("data-prompt-id"));

  const admin = await adminPage("phone admin", true);
  const card = admin.locator(`.prompt-card[data-prompt-id="${id}"]`);
  await card.waitFor();
  expect(await admin.locator(".prompt-card").count()).toBe(3);
  expect(await overflow(admin)).toEqual({ scrollWidth: PHONE.width, innerWidth: PHONE.width, wide: [] });
  for (const name of ["Approve", "Deny"]) {
    const box = (await card.getByRole("button", { name, exact: true }).boundingBox())!;
    expect(box.x, `${name} starts on screen`).toBeGreaterThanOrEqual(0);
    expect(box.x + box.width, `${name} ends on screen`).toBeLessThanOrEqual(PHONE.width);
    expect(box.width, `${name} is thumb-wide`).toBeGreaterThanOrEqual(44);
    expect(box.height, `${name} is thumb-tall`).toBeGreaterThanOrEqual(44);
  }
  await saveScreenshot(admin, "admin-phone");

  await card.getByRole("button", { name: "Deny", exact: true }).tap();
  const template = card.getByRole("button", { name: "Please describe an image" });
  await template.waitFor();
  // The reasons open inside the card, still nothing sideways.
  expect((await overflow(admin)).wide).toEqual([]);
  await template.tap();
  await statusIs(admin, id, "denied");
  await own.locator(".deny-reason", { hasText: "Why: Please describe an image" }).waitFor();
  await own.locator('.badge[data-status="denied"]').waitFor();

  const toast = admin.locator(".toast", { hasText: `Denied #${id}.` });
  await toast.getByRole("button", { name: "Undo" }).tap();
  await statusIs(admin, id, "pending");
  await own.locator('.badge[data-status="pending"]').waitFor();
  expect(await own.locator(".deny-reason").count()).toBe(0);

  // Approving with no generator online: the toast says the prompt will wait, and Undo takes it back too.
  await card.getByRole("button", { name: "Approve", exact: true }).tap();
  const approved = admin.locator(".toast", { hasText: `Approved #${id}.` });
  await approved.getByText("No generator is online: approved prompts will wait.").waitFor();
  await own.locator('.badge[data-status="approved"]').waitFor();
  await approved.getByRole("button", { name: "Undo" }).tap();
  await own.locator('.badge[data-status="pending"]').waitFor();
  expect(await status(admin, id)).toBe("pending");
});

test("on a laptop, j / k move between prompts, a approves, x selects, shift+a approves the selection, d denies with a reason and e edits", async () => {
  const sender = new TestClient(server.url, { userAgent: "moderation keyboard sender" });
  await sender.page("/");
  // Sent oldest first: the page lists them newest first, k1 at the top.
  const [k5, k4, k3, k2, k1] = [await send(sender, "keys five"), await send(sender, "keys four"), await send(sender, "keys three"), await send(sender, "keys two"), await send(sender, "keys one")];
  const admin = await adminPage("keyboard admin", false);
  const focused = () => admin.evaluate(() => Number(document.activeElement?.closest(".prompt-card")?.getAttribute("data-prompt-id")));
  await admin.locator(`.prompt-card[data-prompt-id="${k1}"]`).waitFor();

  await admin.keyboard.press("j");
  expect(await focused()).toBe(k1);
  await admin.keyboard.press("a");
  await statusIs(admin, k1!, "approved");

  await admin.keyboard.press("j");
  expect(await focused()).toBe(k2);
  await admin.keyboard.press("x");
  await admin.keyboard.press("j");
  await admin.keyboard.press("x");
  await admin.locator(".batch", { hasText: "2 selected" }).waitFor();
  await admin.keyboard.press("k");
  expect(await focused()).toBe(k2);
  await admin.keyboard.press("Shift+A");
  await statusIs(admin, k2!, "approved");
  await statusIs(admin, k3!, "approved");

  await admin.keyboard.press("j");
  await admin.keyboard.press("j");
  expect(await focused()).toBe(k4);
  await admin.keyboard.press("d");
  const reason = admin.locator(`.prompt-card[data-prompt-id="${k4}"]`).getByLabel("Reason the guest will read");
  await expect(reason.evaluate((element) => element === document.activeElement)).resolves.toBe(true);
  await admin.keyboard.type("Too dark for a party");
  await admin.keyboard.press("Enter");
  await statusIs(admin, k4!, "denied");
  expect(await focused()).toBe(k4);
  expect((await sender.query("prompt.mine")).body.result.data.find((prompt: { id: number }) => prompt.id === k4).denyReason).toBe("Too dark for a party");

  await admin.keyboard.press("j");
  expect(await focused()).toBe(k5);
  await admin.keyboard.press("e");
  const editor = admin.locator(`.prompt-card[data-prompt-id="${k5}"] textarea[name="prompt"]`);
  await expect(editor.evaluate((element) => element === document.activeElement)).resolves.toBe(true);
  await editor.fill("keys five, edited");
  await admin.locator(`.prompt-card[data-prompt-id="${k5}"]`).getByRole("button", { name: "Save the edit" }).click();
  await admin.locator(`.prompt-card[data-prompt-id="${k5}"] .original`, { hasText: "The guest wrote: keys five" }).waitFor();
  expect((await sender.query("prompt.mine")).body.result.data.find((prompt: { id: number }) => prompt.id === k5).prompt).toBe("keys five, edited");
  await admin.keyboard.press("k");
  expect(await focused()).toBe(k4);
});

test("alike prompts sit together under one heading wherever they were sent in the queue, a new alike one joins them live, and one tap keeps one and denies the others", async () => {
  const [fox, owl, cat] = [new TestClient(server.url, { userAgent: "alike fox" }), new TestClient(server.url, { userAgent: "alike owl" }), new TestClient(server.url, { userAgent: "alike cat" })];
  for (const guest of [fox, owl, cat]) await guest.page("/");
  const first = await send(fox, "A red fox in the snow!");
  const between = await send(owl, "an owl at midnight");
  const second = await send(cat, "a red fox in the   snow");
  const admin = await adminPage("alike admin", false);
  const group = admin.locator(".alike-group");
  await group.locator(".alike-head", { hasText: "2 alike" }).waitFor();
  const order = () => admin.locator(".prompt-card").evaluateAll((cards) => cards.map((card) => Number(card.getAttribute("data-prompt-id"))));
  const grouped = () => group.locator(".prompt-card").evaluateAll((cards) => cards.map((card) => Number(card.getAttribute("data-prompt-id"))));
  // Newest first, the pair where the newer one stands: the owl comes after both foxes.
  expect(await grouped()).toEqual([second, first]);
  const before = await order();
  expect(before.indexOf(first)).toBe(before.indexOf(second) + 1);
  expect(before.indexOf(between)).toBeGreaterThan(before.indexOf(first));

  const third = await send(owl, "a RED fox, in the snow");
  await group.locator(".alike-head", { hasText: "3 alike" }).waitFor();
  expect(await grouped()).toEqual([third, second, first]);

  await admin.locator(`.prompt-card[data-prompt-id="${second}"]`).getByRole("button", { name: "Deny the other 2 as duplicates" }).click();
  await statusIs(admin, first, "denied");
  await statusIs(admin, third, "denied");
  expect(await status(admin, second)).toBe("pending");
  // One left pending: no group any more.
  await group.waitFor({ state: "detached" });
  expect((await fox.query("prompt.mine")).body.result.data.find((prompt: { id: number }) => prompt.id === first).denyReason).toBe("Duplicate");
});

test("without JavaScript the admin's Cancel calls off a waiting prompt and one in line: the page comes back with both cancelled and the guest sees it", async () => {
  const context = await browser.newContext({ javaScriptEnabled: false, viewport: PHONE, userAgent: "Mozilla/5.0 promptgate-e2e moderation no-js admin" });
  contexts.push(context);
  const admin = await context.newPage();
  await admin.goto(`${server.url}/admin/login`);
  await admin.getByLabel("Password").fill(ADMIN_PASSWORD);
  await admin.getByRole("button", { name: "Log in" }).click();
  await admin.waitForURL(/\/admin$/);
  // Remix's inline script never ran: every click below is a plain form post and a new page.
  expect(await admin.evaluate(() => "__remixContext" in window)).toBe(false);

  const guest = new TestClient(server.url, { userAgent: "moderation no-js guest" });
  await guest.page("/");
  const [waiting, inLine] = [await send(guest, "cancel me while I wait"), await send(guest, "cancel me in line")];
  await admin.goto(`${server.url}/admin`);
  await admin.locator(`.prompt-card[data-prompt-id="${inLine}"]`).getByRole("button", { name: "Approve", exact: true }).click();
  await statusIs(admin, inLine, "approved");

  for (const id of [waiting, inLine]) {
    await admin.locator(`.prompt-card[data-prompt-id="${id}"]`).getByRole("button", { name: `Cancel #${id}` }).click();
    await statusIs(admin, id, "cancelled");
  }
  const mine = (await guest.query("prompt.mine")).body.result.data as Array<{ id: number; status: string }>;
  expect(mine.filter((prompt) => [waiting, inLine].includes(prompt.id)).map((prompt) => prompt.status)).toEqual(["cancelled", "cancelled"]);
  expect(server.services.db.$client.prepare("SELECT state FROM jobs WHERE prompt_id = ?").all(inLine)).toEqual([{ state: "cancelled" }]);
  // Nothing left to cancel on either card.
  expect(await admin.locator(`.prompt-card[data-prompt-id="${waiting}"]`).getByRole("button", { name: `Cancel #${waiting}` }).count()).toBe(0);
});

test("a prompt matching the blocklist stands out: a thick coloured edge and the entry it matched, unlike its neighbours", async () => {
  const sender = new TestClient(server.url, { userAgent: "moderation blocklist sender" });
  await sender.page("/");
  const [plain, flagged] = [await send(sender, "a calm meadow"), await send(sender, "a scene full of GORE")];
  const admin = await adminPage("blocklist admin", true);
  const card = admin.locator(`.prompt-card[data-prompt-id="${flagged}"]`);
  await card.locator(".flag", { hasText: "Matches the blocklist: gore" }).waitFor();
  const edge = (id: number) =>
    admin.locator(`.prompt-card[data-prompt-id="${id}"]`).evaluate((element) => {
      const style = getComputedStyle(element);
      return { width: style.borderLeftWidth, colour: style.borderLeftColor };
    });
  expect(await edge(flagged)).toEqual({ width: "6px", colour: "rgb(255, 179, 102)" });
  expect((await edge(plain)).width).toBe("1px");
  expect(await admin.locator(`.prompt-card[data-prompt-id="${plain}"] .flag`).count()).toBe(0);
});
