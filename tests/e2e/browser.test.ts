/**
 * The product in a real browser: a visitor submits, the admin logs in, approves and runs the
 * reveal, and the visitor's page follows along (status, then the image). Screenshots land in
 * tests/.artifacts/screenshots (and in docs/screenshots with UPDATE_SCREENSHOTS=1, for the README).
 */
import type { BrowserContextOptions, Page } from "playwright-core";
import { saveScreenshot, withServerAndBrowser } from "../helpers/browser";
import { ADMIN_PASSWORD } from "../helpers/server";

const e2e = withServerAndBrowser();
// The pages run under the server's Content-Security-Policy: a script it blocked would show here
// (and hydration, which the tests below rely on, would be missing).
const cspViolations: string[] = [];
afterEach(() => expect(cspViolations.splice(0)).toEqual([]));

async function newContext(options: BrowserContextOptions) {
  const context = await e2e.browser.newContext(options);
  context.on("console", (message) => {
    if (/content security policy/i.test(message.text())) cspViolations.push(message.text());
  });
  return context;
}

async function visitorPage(userAgent: string, viewport = { width: 420, height: 860 }) {
  const context = await newContext({ userAgent, viewport, deviceScaleFactor: 1 });
  const page = await context.newPage();
  await page.goto(e2e.server.url);
  return page;
}

/** As if every visitor's browser had been closed an hour ago: no identity is in use. */
const idleEveryone = () => e2e.server.services.db.$client.prepare("UPDATE visitors SET last_seen_at = last_seen_at - 3600000").run();

async function submit(page: Page, prompt: string, size?: "Portrait" | "Landscape") {
  await page.getByLabel("Prompt", { exact: true }).fill(prompt);
  if (size) await page.getByLabel(size).check();
  await page.getByRole("button", { name: "Send prompt" }).click();
  await page.getByText("Sent! It is waiting").waitFor();
}

test("visitor submits; admin approves and reveals; the visitor's page follows to the image", async () => {
  const visitor = await visitorPage("Mozilla/5.0 promptgate-e2e visitor");
  const colourName = (await visitor.locator(".identity .chip").textContent())!;
  expect(colourName.length).toBeGreaterThan(2);

  // The shared schema catches a bad size in the browser, before any request.
  await visitor.getByLabel("Prompt", { exact: true }).fill("a lighthouse at dusk");
  await visitor.getByLabel("Custom").check();
  await visitor.getByLabel("Width").fill("100");
  await visitor.getByRole("button", { name: "Send prompt" }).click();
  await expect(visitor.locator('[data-field="width"]').textContent()).resolves.toMatch(/multiple of 8/);

  await submit(visitor, "a lighthouse at dusk, oil painting", "Landscape");
  const item = visitor.locator(".own-prompts li").first();
  await expect(item.locator(".badge").getAttribute("data-status")).resolves.toBe("pending");
  await saveScreenshot(visitor, "visitor");

  // Two more visitors, so the admin has something to moderate.
  await submit(await visitorPage("Mozilla/5.0 promptgate-e2e second"), "a tiny robot watering plants");
  await submit(await visitorPage("Mozilla/5.0 promptgate-e2e third"), "the moon made of cheese, photorealistic");

  const adminContext = await newContext({ viewport: { width: 1280, height: 720 }, userAgent: "Mozilla/5.0 promptgate-e2e admin" });
  const admin = await adminContext.newPage();
  await admin.goto(`${e2e.server.url}/admin`);
  await admin.waitForURL(/\/admin\/login$/);
  await admin.getByLabel("Password").fill("wrong password");
  await admin.getByRole("button", { name: "Log in" }).click();
  await admin.getByText("Wrong name or password.").waitFor();
  await admin.getByLabel("Password").fill(ADMIN_PASSWORD);
  await admin.getByRole("button", { name: "Log in" }).click();
  await admin.waitForURL(/\/admin$/);
  await saveScreenshot(admin, "admin");

  const row = admin.locator(".prompt-card", { hasText: "a lighthouse at dusk" });
  await row.getByRole("button", { name: "Approve" }).click();
  await admin.locator(".prompt-card", { hasText: "a tiny robot" }).getByRole("button", { name: "Approve" }).click();
  const moon = admin.locator(".prompt-card", { hasText: "the moon made of cheese" });
  await moon.getByRole("button", { name: "Deny", exact: true }).click();
  await moon.getByRole("button", { name: "Deny with this reason" }).click();
  await row.locator('.badge[data-status="done"]').waitFor({ timeout: 20_000 });

  // The visitor's page follows by itself (live updates): done, but still no image.
  await item.locator('.badge[data-status="done"]').waitFor({ timeout: 20_000 });
  expect(await item.locator("img").count()).toBe(0);

  await admin.goto(`${e2e.server.url}/admin/reveal`);
  await admin.getByRole("button", { name: "Start the show" }).click();
  await admin.getByRole("button", { name: "Next →" }).click();
  await admin.waitForFunction(() => (document.querySelector(".presenter-stage img") as HTMLImageElement | null)?.naturalWidth === 768);
  await expect(admin.locator(".presenter-stage .show-prompt").textContent()).resolves.toBe("a lighthouse at dusk, oil painting");
  await admin.keyboard.press("ArrowRight");
  await admin.locator(".presenter-stage .show-prompt", { hasText: "a tiny robot" }).waitFor();
  await admin.keyboard.press("ArrowLeft");
  await admin.locator(".presenter-stage .show-prompt", { hasText: "a lighthouse" }).waitFor();

  // Revealed: the image appears on the author's page without a reload.
  const image = item.locator("img.own-image");
  await image.waitFor({ timeout: 20_000 });
  await visitor.waitForFunction(() => (document.querySelector("img.own-image") as HTMLImageElement | null)?.naturalWidth === 768);
  await saveScreenshot(visitor, "visitor-revealed");
});

test("a look-alike phone is offered recovery but needs the code; the link works in a fresh browser", async () => {
  const phone = { width: 390, height: 844 };
  const userAgent = "Mozilla/5.0 (iPhone; CPU iPhone OS 18_2 like Mac OS X) promptgate-e2e look-alike";
  const owner = await visitorPage(userAgent, phone);
  const ownerColour = (await owner.locator(".identity .chip").textContent())!;
  await submit(owner, "the owner's secret castle");
  await owner.getByText("Use my colour on another device").click();
  // The QR code is drawn only once asked for, and is a real image; a new link brings a new one.
  await owner.waitForFunction(() => (document.querySelector("img.recovery-qr") as HTMLImageElement | null)?.naturalWidth! > 0);
  const firstQr = await owner.locator("img.recovery-qr").getAttribute("src");
  await owner.getByRole("button", { name: "Make a new code and link" }).click();
  await owner.getByText("New code and link made", { exact: false }).waitFor();
  await owner.waitForFunction((first) => document.querySelector("img.recovery-qr")?.getAttribute("src") !== first, firstQr);
  const code = (await owner.locator(".recovery-code").textContent())!;
  const link = (await owner.locator(".recovery-link").getAttribute("href"))!;
  await owner.context().close();
  // The owner's browser has been closed for an hour.
  idleEveryone();

  const lookalike = await visitorPage(userAgent, phone);
  await lookalike.getByText("Looks like you lost your cookies", { exact: false }).waitFor();
  await expect(lookalike.locator(".identity > p .chip").textContent()).resolves.not.toBe(ownerColour);
  expect(await lookalike.getByText("the owner's secret castle").count()).toBe(0);
  const card = lookalike.locator(".offer");
  expect((await card.boundingBox())!.x + (await card.boundingBox())!.width).toBeLessThanOrEqual(phone.width);
  await saveScreenshot(lookalike, "welcome-back");

  await card.getByLabel(`${ownerColour}'s recovery code`).fill("otter maple 00");
  await card.getByRole("button", { name: `Yes, I'm ${ownerColour}` }).click();
  await card.getByText("That code does not match").waitFor();
  expect(await lookalike.getByText("the owner's secret castle").count()).toBe(0);
  await lookalike.reload();
  await lookalike.locator(".offer").getByLabel(`${ownerColour}'s recovery code`).fill(code);
  await lookalike.locator(".offer").getByRole("button", { name: `Yes, I'm ${ownerColour}` }).click();
  await lookalike.getByText("Welcome back: you are", { exact: false }).waitFor();
  await expect(lookalike.locator(".identity > p .chip").textContent()).resolves.toBe(ownerColour);
  await lookalike.getByText("the owner's secret castle").waitFor();

  const laptop = await e2e.browser.newContext({ viewport: { width: 1280, height: 800 }, userAgent: "Mozilla/5.0 promptgate-e2e laptop" });
  const fresh = await laptop.newPage();
  await fresh.goto(link);
  await fresh.getByRole("button", { name: `Yes, I'm ${ownerColour}` }).click();
  await fresh.waitForURL(`${e2e.server.url}/`);
  await expect(fresh.locator(".identity > p .chip").textContent()).resolves.toBe(ownerColour);
  await fresh.getByText("the owner's secret castle").waitFor();
  await laptop.close();

  // Everyone put their phones away; then one more look-alike arrives and is someone else.
  await lookalike.context().close();
  idleEveryone();
  const another = await visitorPage(userAgent, phone);
  await another.getByText("Looks like you lost your cookies", { exact: false }).waitFor();
  await another.getByRole("button", { name: "No, I'm new" }).click();
  await another.getByText("won't ask again", { exact: false }).waitFor();
  await another.reload();
  await another.locator(".identity > p .chip").waitFor();
  expect(await another.getByText("lost your cookies", { exact: false }).count()).toBe(0);
});

test("the admin adds a GPU generator, sees its token once with the command, and revokes it after confirming", async () => {
  const context = await newContext({ viewport: { width: 1280, height: 720 }, userAgent: "Mozilla/5.0 promptgate-e2e generators" });
  const admin = await context.newPage();
  await admin.goto(`${e2e.server.url}/admin/login`);
  await admin.getByLabel("Password").fill(ADMIN_PASSWORD);
  await admin.getByRole("button", { name: "Log in" }).click();
  await admin.waitForURL(/\/admin$/);
  await admin.getByRole("link", { name: "Generators" }).click();
  await admin.waitForURL(/\/admin\/generators$/);
  await admin.getByLabel("New generator's name").fill("browser-box");
  await admin.getByRole("button", { name: "Add generator" }).click();
  const command = await admin.locator("pre").textContent();
  expect(command).toMatch(new RegExp(`MQTT_URL=mqtt://<this host>:${e2e.server.mqttPort} GENERATOR_ID=browser-box MQTT_PASSWORD=[A-Za-z0-9_-]{43}`));
  await admin.locator('tr[data-generator="browser-box"]').waitFor();
  await saveScreenshot(admin, "admin-generators");
  await admin.locator('tr[data-generator="browser-box"]').getByRole("link", { name: "Revoke" }).click();
  await admin.getByText("Revoke browser-box? It is disconnected at once").waitFor();
  await admin.getByRole("button", { name: "Yes, revoke browser-box" }).click();
  // The one status line that is not the (empty) live-updates line.
  await expect(admin.getByRole("status").and(admin.locator(":not(.live-status)")).textContent()).resolves.toBe("browser-box is revoked and disconnected.");
  await admin.locator('tr[data-generator="browser-box"]').waitFor({ state: "detached" });
  expect(e2e.server.services.generators.list().map((g) => g.name)).not.toContain("browser-box");
  await context.close();
});

test("the admin's account page refuses a wrong current password in words and logs out everywhere", async () => {
  const context = await e2e.browser.newContext({ viewport: { width: 1280, height: 720 }, userAgent: "Mozilla/5.0 promptgate-e2e account" });
  const admin = await context.newPage();
  await admin.goto(`${e2e.server.url}/admin/login`);
  await admin.getByLabel("Password").fill(ADMIN_PASSWORD);
  await admin.getByRole("button", { name: "Log in" }).click();
  await admin.waitForURL(/\/admin$/);
  await admin.getByRole("link", { name: "Account (admin)" }).click();
  await admin.waitForURL(/\/admin\/account$/);
  await admin.getByLabel("Current password").fill("not the password");
  await admin.getByLabel("New password (at least 8 characters)").fill("a new secret");
  await admin.getByLabel("New password again").fill("a new secret");
  await admin.getByRole("button", { name: "Change password" }).click();
  await expect(admin.getByRole("alert").textContent()).resolves.toBe("The current password is not right; nothing was changed.");
  await admin.getByRole("button", { name: "Log out everywhere" }).click();
  await admin.waitForURL(/\/admin\/login$/);
  await admin.goto(`${e2e.server.url}/admin`);
  await admin.waitForURL(/\/admin\/login$/);
  await context.close();
});

test("the admin adds a moderator and creates an API token in the browser; the token is shown once and the moderator sees no admin links", async () => {
  const context = await newContext({ viewport: { width: 1280, height: 800 }, userAgent: "Mozilla/5.0 promptgate-e2e access" });
  const admin = await context.newPage();
  await admin.goto(`${e2e.server.url}/admin/login`);
  await admin.getByLabel("Password").fill(ADMIN_PASSWORD);
  await admin.getByRole("button", { name: "Log in" }).click();
  await admin.waitForURL(/\/admin$/);

  await admin.getByRole("link", { name: "People" }).click();
  await admin.getByLabel("Moderator's name").fill("e2e-mod");
  await admin.getByLabel("Their password").fill("moderator's secret");
  await admin.getByRole("button", { name: "Add moderator" }).click();
  await admin.getByText("e2e-mod can now log in as a moderator.").waitFor();
  await admin.locator('tr[data-account="e2e-mod"]').waitFor();

  await admin.goto(`${e2e.server.url}/admin/tokens`);
  await admin.getByLabel("Token name").fill("e2e-bot");
  await admin.getByRole("checkbox", { name: /submit/ }).check();
  await admin.getByRole("checkbox", { name: /read every/ }).check();
  await admin.getByRole("button", { name: "Create token" }).click();
  const token = await admin.locator("pre[data-token]").textContent();
  expect(token).toMatch(/^pgt_[A-Za-z0-9_-]{43}$/);
  await saveScreenshot(admin, "admin-tokens");
  await admin.reload();
  await expect(admin.locator('tr[data-token-name="e2e-bot"]').textContent()).resolves.toContain("submit, read");
  await expect(admin.content()).resolves.not.toContain(token!);

  const modContext = await newContext({ viewport: { width: 1280, height: 800 }, userAgent: "Mozilla/5.0 promptgate-e2e moderator" });
  const mod = await modContext.newPage();
  await mod.goto(`${e2e.server.url}/admin/login`);
  await mod.getByLabel("Name").fill("e2e-mod");
  await mod.getByLabel("Password").fill("moderator's secret");
  await mod.getByRole("button", { name: "Log in" }).click();
  await mod.waitForURL(/\/admin$/);
  await mod.getByRole("link", { name: "Account (e2e-mod)" }).waitFor();
  await expect(mod.getByRole("link", { name: "People" }).count()).resolves.toBe(0);
  await expect(mod.getByRole("link", { name: "Generators" }).count()).resolves.toBe(0);
  await context.close();
  await modContext.close();
});
