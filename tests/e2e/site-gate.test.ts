/**
 * SITE_PASSWORD and GUEST_MODE=submit (issue 9 §2) in a real Chromium with JavaScript on: the
 * visitor page's submits and data requests (Remix single fetch, `/_root.data`) and its live
 * updates get through the gate for a guest and for a browser that gave the password.
 */
import type { Browser, Page } from "playwright-core";
import { TestClient } from "../helpers/client";
import { launchBrowser } from "../helpers/browser";
import { ADMIN_PASSWORD, removeDataDir, startTestServer, type TestServer } from "../helpers/server";

const SITE_PASSWORD = "lanterns by the water";
let browser: Browser;
let server: TestServer;
let admin: TestClient;

beforeAll(async () => {
  server = await startTestServer({ LOCAL_GENERATOR: "false", SITE_PASSWORD, GUEST_MODE: "submit" });
  browser = await launchBrowser();
  admin = new TestClient(server.url, { userAgent: "site gate admin" });
  await admin.page("/site-login");
  await admin.postForm("/site-login", { password: SITE_PASSWORD, next: "/" });
  await admin.loginAsAdmin(ADMIN_PASSWORD);
});
afterAll(async () => {
  await browser?.close();
  await server?.close();
  removeDataDir(server.dataDir);
});

async function openPage(userAgent: string): Promise<{ page: Page; failed: string[] }> {
  const context = await browser.newContext({ userAgent, javaScriptEnabled: true });
  const page = await context.newPage();
  // Any request the gate turns away, which a guest's page must never need.
  const failed: string[] = [];
  page.on("response", (response) => {
    const turnedAway = response.status() === 401 || (response.headers().location ?? "").startsWith("/site-login");
    if (turnedAway) failed.push(`${response.status()} ${response.request().method()} ${response.url()}`);
  });
  return { page, failed };
}

/** Submits with JavaScript, then follows the prompt as the admin denies it. */
async function submitAndFollow(page: Page, prompt: string): Promise<void> {
  // Hydrated, with the live stream open: the submit goes through Remix's fetch, not a page load.
  await page.locator('.live-status[data-live="live"]').waitFor({ state: "attached" });
  await page.getByLabel("Prompt", { exact: true }).fill(prompt);
  await page.getByRole("button", { name: "Send prompt" }).click();
  await page.getByText("Sent! It is waiting").waitFor();
  const item = page.locator(".own-prompts li", { hasText: prompt });
  await expect(item.locator(".badge").getAttribute("data-status")).resolves.toBe("pending");
  const id = (server.services.db.$client.prepare("SELECT id FROM prompts WHERE prompt = ?").get(prompt) as { id: number }).id;
  expect((await admin.mutate("admin.deny", { id, reason: "seen through the gate" })).status).toBe(200);
  await item.locator('.badge[data-status="denied"]').waitFor();
}

test("a guest without the password submits with JavaScript on and sees their prompt's status change live", async () => {
  const { page, failed } = await openPage("Mozilla/5.0 promptgate-e2e gate guest");
  await page.goto(server.url);
  await submitAndFollow(page, "a paper boat on a puddle");
  expect(failed).toEqual([]);
});

test("a browser that gave the site password submits with JavaScript on and sees their prompt's status change live", async () => {
  const { page, failed } = await openPage("Mozilla/5.0 promptgate-e2e gate member");
  await page.goto(`${server.url}/site-login`);
  await page.getByLabel("Password").fill(SITE_PASSWORD);
  await page.getByRole("button", { name: "Enter" }).click();
  await page.waitForURL(`${server.url}/`);
  await submitAndFollow(page, "a kite over the dunes");
  expect(failed).toEqual([]);
});
