/**
 * Live updates in a real browser (ADR 012): pages follow changes made in other browsers without
 * a reload, the reveal takes in images that finish while it is open, and the admin pages in
 * older prompts on demand.
 */
import type { Browser, BrowserContext, Page } from "playwright-core";
import { startGenerator } from "../../generator/generator";
import { startSdEmulator, type SdEmulator } from "../emulators/sd-server";
import { launchBrowser } from "../helpers/browser";
import { TestClient } from "../helpers/client";
import { ADMIN_PASSWORD, collectingLogger, generatorConfigOn, removeDataDir, startTestServer, waitFor, type TestServer } from "../helpers/server";

let browser: Browser;
let server: TestServer;
let sd: SdEmulator;
const contexts: BrowserContext[] = [];
const cleanups: Array<() => Promise<unknown>> = [];

beforeAll(async () => {
  sd = await startSdEmulator({ delayMs: 1500 });
  // No built-in generator: a prompt stays approved until the test starts one.
  server = await startTestServer({ LOCAL_GENERATOR: "false", SD_API_URL: sd.url, LIMIT_SUBMITS_PER_MINUTE: "0", LIMIT_PENDING_PROMPTS: "0" });
  browser = await launchBrowser();
});
afterEach(async () => {
  for (const context of contexts.splice(0)) await context.close();
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});
afterAll(async () => {
  await browser?.close();
  await server?.close();
  await sd?.close();
  removeDataDir(server.dataDir);
});

async function open(path: string, userAgent: string): Promise<Page> {
  const context = await browser.newContext({ userAgent, viewport: { width: 1280, height: 800 } });
  contexts.push(context);
  const page = await context.newPage();
  await page.goto(`${server.url}${path}`);
  // Gone after a reload: proves the page changed in place.
  await page.evaluate(() => ((window as unknown as { stayed: boolean }).stayed = true));
  return page;
}

const stayed = (page: Page) => page.evaluate(() => (window as unknown as { stayed?: boolean }).stayed === true);

async function openAdmin(path: string): Promise<Page> {
  const page = await open("/admin/login", "Mozilla/5.0 promptgate-live admin");
  await page.getByLabel("Password").fill(ADMIN_PASSWORD);
  await page.getByRole("button", { name: "Log in" }).click();
  await page.waitForURL(/\/admin$/);
  if (path !== "/admin") await page.goto(`${server.url}${path}`);
  await page.evaluate(() => ((window as unknown as { stayed: boolean }).stayed = true));
  return page;
}

async function startGpuBox(name: string) {
  const config = generatorConfigOn(server, name, { SD_API_URL: sd.url });
  const running = await startGenerator({ ...config, reconnectMs: 100 }, collectingLogger());
  cleanups.push(() => running.close());
}

test("the visitor's status moves from waiting to approved to done without a reload; the generators page and the open reveal follow too", async () => {
  const visitor = await open("/", "Mozilla/5.0 promptgate-live visitor");
  const item = (text: string) => visitor.locator(".own-prompts li", { hasText: text });
  const status = (text: string, value: string) => item(text).locator(`.badge[data-status="${value}"]`).waitFor({ timeout: 20_000 });
  for (const prompt of ["a paper boat on a puddle", "a paper plane over a roof"]) {
    await visitor.getByLabel("Prompt", { exact: true }).fill(prompt);
    await visitor.getByRole("button", { name: "Send prompt" }).click();
    await status(prompt, "pending");
  }

  const admin = await openAdmin("/admin");
  await admin.locator(".prompt-card", { hasText: "a paper boat" }).getByRole("button", { name: "Approve" }).click();
  await status("a paper boat", "approved");
  await admin.locator(".prompt-card", { hasText: "a paper plane" }).getByRole("button", { name: "Approve" }).click();
  await status("a paper plane", "approved");

  const generators = await admin.context().newPage();
  await generators.goto(`${server.url}/admin/generators`);
  await generators.getByText("No generators added yet.").waitFor();
  // Each image takes the SD emulator 1.5 s, one at a time.
  await startGpuBox("live-box");
  // The generators page learns of it as it comes online.
  await generators.locator('tr[data-generator="live-box"]').getByRole("cell", { name: "yes", exact: true }).waitFor();
  await status("a paper boat", "generating");
  // The plane, next in line, takes longer: it is still being made when the reveal opens.
  sd.setDelay(3000);
  await status("a paper boat", "done");
  await admin.locator('.prompt-card:has-text("a paper boat") .badge[data-status="done"]').waitFor();

  await admin.goto(`${server.url}/admin/reveal`);
  await admin.getByRole("button", { name: "Start the show" }).click();
  await admin.getByRole("button", { name: "Next →" }).click();
  await admin.locator(".presenter-stage .show-prompt", { hasText: "a paper boat on a puddle" }).waitFor();
  await admin.getByTestId("position").getByText("1 / 1").waitFor();
  await item("a paper boat").locator("img.own-image").waitFor();
  // The plane finishes while the reveal is open: it joins the list.
  await admin.getByTestId("position").getByText("1 / 2").waitFor({ timeout: 20_000 });
  await admin.keyboard.press("ArrowRight");
  await admin.locator(".presenter-stage .show-prompt", { hasText: "a paper plane over a roof" }).waitFor();
  await item("a paper plane").locator("img.own-image").waitFor();
  expect(await stayed(visitor)).toBe(true);
});

test("the admin sees a new submission without a reload, and pages in older prompts on demand", async () => {
  const sender = new TestClient(server.url, { userAgent: "live e2e sender" });
  await sender.page("/");
  const send = async (prompt: string) => expect((await sender.mutate("prompt.submit", { prompt, width: 64, height: 64 })).status).toBe(200);
  for (let i = 1; i <= 55; i++) await send(`backlog prompt ${i}`);

  const admin = await openAdmin("/admin");
  const rows = admin.locator(".prompt-card");
  await waitFor("one page of prompts", async () => (await rows.count()) === 50);
  await send("a brand new prompt");
  await admin.locator(".prompt-card", { hasText: "a brand new prompt" }).waitFor();
  const oldest = admin.locator(".prompt-text", { hasText: /^backlog prompt 1$/ });
  expect(await oldest.count()).toBe(0);

  await admin.getByRole("button", { name: "Load older" }).click();
  await oldest.waitFor();
  expect(await admin.getByRole("button", { name: "Load older" }).count()).toBe(0);
  expect(await stayed(admin)).toBe(true);
});

test("a page whose server restarts says it is reconnecting, then catches up by itself", async () => {
  const first = await startTestServer({ LOCAL_GENERATOR: "false" });
  const env = { DATA_DIR: first.dataDir, PORT: String(first.httpPort), LOCAL_GENERATOR: "false" };
  let current: TestServer = first;
  cleanups.push(async () => {
    await current.close();
    removeDataDir(first.dataDir);
  });
  const context = await browser.newContext({ userAgent: "Mozilla/5.0 promptgate-live restart", viewport: { width: 800, height: 800 } });
  contexts.push(context);
  const visitor = await context.newPage();
  await visitor.goto(first.url);
  await visitor.getByLabel("Prompt", { exact: true }).fill("a lantern in the fog");
  await visitor.getByRole("button", { name: "Send prompt" }).click();
  const badge = visitor.locator(".own-prompts li", { hasText: "a lantern" }).locator(".badge");
  await badge.and(visitor.locator('[data-status="pending"]')).waitFor();
  await visitor.locator('.live-status[data-live="live"]').waitFor({ state: "attached" });
  await visitor.evaluate(() => ((window as unknown as { stayed: boolean }).stayed = true));

  await first.close();
  await visitor.getByRole("status").filter({ hasText: "Reconnecting…" }).waitFor();
  current = await startTestServer(env);
  // Approved while the page was away from this server: its events are of another start, so the page fetches its list again.
  const admin = new TestClient(current.url, { userAgent: "restart admin" });
  await admin.loginAsAdmin(ADMIN_PASSWORD);
  const [prompt] = current.services.prompts.listAll();
  expect((await admin.mutate("admin.approve", { id: prompt!.id })).status).toBe(200);
  await badge.and(visitor.locator('[data-status="approved"]')).waitFor({ timeout: 20_000 });
  await visitor.locator('.live-status[data-live="live"]').waitFor({ state: "attached" });
  expect(await visitor.locator(".live-status").textContent()).toBe("");
  expect(await stayed(visitor)).toBe(true);
});

test("a visitor page whose colour was taken back in another browser stops following and says to reload", async () => {
  const first = await open("/", "Mozilla/5.0 promptgate-live first browser");
  await first.getByLabel("Prompt", { exact: true }).fill("a kite over the dunes");
  await first.getByRole("button", { name: "Send prompt" }).click();
  await first.locator('.live-status[data-live="live"]').waitFor({ state: "attached" });
  const colour = (await first.locator(".identity > p .chip").textContent())!;
  await first.getByText("Use my colour on another device").click();
  const link = (await first.locator(".recovery-link").getAttribute("href"))!;

  const second = await open(new URL(link).pathname, "Mozilla/5.0 promptgate-live second browser");
  await second.getByRole("button", { name: `Yes, I'm ${colour}` }).click();
  await second.waitForURL(`${server.url}/`);
  await second.getByText("Use my colour on another device").click();
  // Signs every other browser using the colour out, the first one included.
  await second.getByRole("button", { name: "Make a new code and link" }).click();
  await second.getByText("New code and link made", { exact: false }).waitFor();
  await second.getByLabel("Prompt", { exact: true }).fill("a second kite");
  await second.getByRole("button", { name: "Send prompt" }).click();

  await first.getByRole("status").filter({ hasText: "Live updates stopped: reload the page." }).waitFor();
  expect(await first.getByText("a second kite").count()).toBe(0);
  expect(await stayed(first)).toBe(true);
});
