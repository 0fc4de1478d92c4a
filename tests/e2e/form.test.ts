/**
 * The guest form in a real Chromium (issue 8 §7): sizes by name, the negative prompt under
 * "More options", and a submit that cannot reach the server keeps what was typed.
 */
import type { BrowserContextOptions, Page } from "playwright-core";
import { saveScreenshot, withServerAndBrowser } from "../helpers/browser";

const e2e = withServerAndBrowser();

const PHONE: BrowserContextOptions = { viewport: { width: 390, height: 844 }, isMobile: true, hasTouch: true, deviceScaleFactor: 1 };
const UNREACHABLE = "Could not reach the server — your prompt is kept; try again in a moment.";

async function guestPage(name: string, options: BrowserContextOptions = {}): Promise<Page> {
  const context = await e2e.browser.newContext({ ...PHONE, userAgent: `Mozilla/5.0 promptgate-e2e form ${name}`, ...options });
  const page = await context.newPage();
  await page.goto(e2e.server.url);
  return page;
}

const storedPrompt = (prompt: string) =>
  e2e.server.services.db.$client.prepare("SELECT negative_prompt AS negativePrompt, width, height FROM prompts WHERE prompt = ?").get(prompt) as
    | { negativePrompt: string; width: number; height: number }
    | undefined;

test("a guest picks a size by name, Custom shows the pixel fields, and the negative prompt waits under More options", async () => {
  const page = await guestPage("sizes");
  await expect(page.getByLabel("Square").isChecked()).resolves.toBe(true);
  await expect(page.getByLabel("Width").isVisible()).resolves.toBe(false);
  await expect(page.getByLabel("Leave out").isVisible()).resolves.toBe(false);

  await page.getByLabel("Custom").check();
  await page.getByLabel("Width").waitFor({ state: "visible" });
  await page.getByLabel("Portrait").check();
  await page.getByLabel("Width").waitFor({ state: "hidden" });

  await page.getByText("More options").click();
  await page.getByLabel("Leave out").fill("blurry, text");
  await page.getByLabel("Prompt", { exact: true }).fill("a tall lighthouse in the fog");
  await page.getByRole("button", { name: "Send prompt" }).click();
  await page.getByText("Sent! It is waiting").waitFor();
  await expect(page.locator(".own-prompts li").first().textContent()).resolves.toContain("512×768");
  await saveScreenshot(page, "visitor-phone");
  expect(storedPrompt("a tall lighthouse in the fog")).toEqual({ negativePrompt: "blurry, text", width: 512, height: 768 });
});

test("without JavaScript the size presets, Custom and More options still work", async () => {
  const page = await guestPage("no-js", { javaScriptEnabled: false });
  await page.getByLabel("Landscape").check();
  await page.getByText("More options").click();
  await page.getByLabel("Leave out").fill("people");
  await page.getByLabel("Prompt", { exact: true }).fill("a wide desert at noon");
  await page.getByRole("button", { name: "Send prompt" }).click();
  await page.getByText("Sent! It is waiting").waitFor();
  expect(storedPrompt("a wide desert at noon")).toEqual({ negativePrompt: "people", width: 768, height: 512 });

  // A bad custom size comes back from the server with the fields shown and the text kept.
  await page.getByLabel("Custom").check();
  await page.getByLabel("Width").fill("100");
  await page.getByLabel("Prompt", { exact: true }).fill("a narrow canyon");
  await page.getByRole("button", { name: "Send prompt" }).click();
  await page.locator('[data-field="width"]').waitFor();
  await expect(page.locator('[data-field="width"]').textContent()).resolves.toMatch(/multiple of 8/);
  await expect(page.getByLabel("Prompt", { exact: true }).inputValue()).resolves.toBe("a narrow canyon");
  await expect(page.getByLabel("Custom").isChecked()).resolves.toBe(true);
  expect(storedPrompt("a narrow canyon")).toBeUndefined();
});

test("without JavaScript a guest's Cancel calls off that one prompt and leaves the others waiting", async () => {
  const page = await guestPage("no-js cancel", { javaScriptEnabled: false });
  for (const prompt of ["a harbour at dusk, keep me", "a harbour at dawn, cancel me"]) {
    await page.getByLabel("Prompt", { exact: true }).fill(prompt);
    await page.getByRole("button", { name: "Send prompt" }).click();
    await page.getByText("Sent! It is waiting").waitFor();
  }
  await page.locator(".own-prompts li", { hasText: "cancel me" }).getByRole("button", { name: "Cancel" }).click();
  await page.locator(".own-prompts li", { hasText: "cancel me" }).locator('[data-status="cancelled"]').waitFor();
  const status = (prompt: string) => (e2e.server.services.db.$client.prepare("SELECT status FROM prompts WHERE prompt = ?").get(prompt) as { status: string }).status;
  expect([status("a harbour at dusk, keep me"), status("a harbour at dawn, cancel me")]).toEqual(["pending", "cancelled"]);
});

test("a submit while offline or answered 502 keeps the prompt, its size and options, says what to do, and goes through once the server is back", async () => {
  const page = await guestPage("offline");
  await page.getByLabel("Prompt", { exact: true }).fill("a city of kites");
  await page.getByLabel("Landscape").check();
  await page.getByText("More options").click();
  await page.getByLabel("Leave out").fill("rain");

  await page.context().setOffline(true);
  await page.getByRole("button", { name: "Send prompt" }).click();
  await page.getByText(UNREACHABLE).waitFor();
  await page.context().setOffline(false);
  await expect(page.getByLabel("Prompt", { exact: true }).inputValue()).resolves.toBe("a city of kites");
  await expect(page.getByLabel("Leave out").inputValue()).resolves.toBe("rain");
  await expect(page.getByLabel("Landscape").isChecked()).resolves.toBe(true);
  expect(storedPrompt("a city of kites")).toBeUndefined();

  // A proxy in front of a restarting server answers 502 instead.
  await page.route("**/*", (route) => (route.request().method() === "POST" ? route.fulfill({ status: 502, contentType: "text/html", body: "<h1>502 Bad Gateway</h1>" }) : route.fallback()));
  await page.getByLabel("Prompt", { exact: true }).fill("a city of kites at night");
  await page.getByRole("button", { name: "Send prompt" }).click();
  await page.getByText(UNREACHABLE).waitFor();
  await expect(page.getByLabel("Prompt", { exact: true }).inputValue()).resolves.toBe("a city of kites at night");
  await page.unrouteAll();

  await page.getByRole("button", { name: "Send prompt" }).click();
  await page.getByText("Sent! It is waiting").waitFor();
  expect(await page.getByText(UNREACHABLE).count()).toBe(0);
  expect(storedPrompt("a city of kites at night")).toEqual({ negativePrompt: "rain", width: 768, height: 512 });
});
