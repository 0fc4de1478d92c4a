/**
 * Place in line in a real browser: a guest's page says where each approved prompt stands and
 * follows the admin's Pin to front without a reload; after a move, a new tab shows the new order. No
 * generator is online, so the line stands still and there is no estimate.
 */
import type { Page } from "playwright-core";
import { withServerAndBrowser } from "../helpers/browser";
import { ADMIN_PASSWORD } from "../helpers/server";

const e2e = withServerAndBrowser({ LOCAL_GENERATOR: "false" });

async function guestPage(userAgent: string): Promise<Page> {
  const page = await (await e2e.browser.newContext({ userAgent, viewport: { width: 420, height: 860 } })).newPage();
  await page.goto(e2e.server.url);
  return page;
}

async function submit(page: Page, prompt: string) {
  await page.getByLabel("Prompt", { exact: true }).fill(prompt);
  await page.getByRole("button", { name: "Send prompt" }).click();
  await page.getByText("Sent! It is waiting").waitFor();
}

const standing = (page: Page, prompt: string) => page.locator(".own-prompts li", { hasText: prompt }).locator(".line-standing");

test("a guest sees each approved prompt's place in line, following the admin's pin and moves without a reload", async () => {
  const guest = await guestPage("Mozilla/5.0 promptgate-e2e line guest");
  await submit(guest, "first of mine");
  await submit(guest, "second of mine");
  await submit(await guestPage("Mozilla/5.0 promptgate-e2e line other"), "someone else's");

  const admin = await (await e2e.browser.newContext({ viewport: { width: 1280, height: 720 } })).newPage();
  await admin.goto(`${e2e.server.url}/admin/login`);
  await admin.getByLabel("Password").fill(ADMIN_PASSWORD);
  await admin.getByRole("button", { name: "Log in" }).click();
  await admin.waitForURL(/\/admin$/);
  for (const prompt of ["first of mine", "second of mine", "someone else's"]) {
    await admin.locator(".prompt-card", { hasText: prompt }).getByRole("button", { name: "Approve" }).click();
    await admin.locator(".prompt-card", { hasText: prompt }).locator(".line-place").waitFor();
  }

  // Fair turns: the other guest's one job comes before this guest's second.
  await standing(guest, "first of mine").filter({ hasText: "next in line · waiting for a generator to come online" }).waitFor();
  await standing(guest, "second of mine").filter({ hasText: "3rd in line" }).waitFor();
  await expect(admin.locator(".prompt-card", { hasText: "someone else's" }).locator(".line-place").textContent()).resolves.toBe("#2 in line");

  await admin.locator(".prompt-card", { hasText: "second of mine" }).getByRole("button", { name: "Pin to front" }).click();
  await admin.locator(".prompt-card", { hasText: "second of mine" }).locator(".line-place", { hasText: "#1 in line" }).waitFor();
  await standing(guest, "second of mine").filter({ hasText: "next in line" }).waitFor();
  await standing(guest, "first of mine").filter({ hasText: "2nd in line" }).waitFor();

  await admin.locator(".prompt-card", { hasText: "second of mine" }).getByRole("button", { name: /down in line/ }).click();
  await admin.locator(".prompt-card", { hasText: "second of mine" }).locator(".line-place", { hasText: "#2 in line" }).waitFor();

  // A new tab asks the server, which says the same.
  const again = await guest.context().newPage();
  await again.goto(e2e.server.url);
  await expect(standing(again, "first of mine").textContent()).resolves.toBe("next in line · waiting for a generator to come online");
  await expect(standing(again, "second of mine").textContent()).resolves.toBe("2nd in line · waiting for a generator to come online");
});
