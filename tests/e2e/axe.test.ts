/**
 * axe-core on every page, at a phone's width and a laptop's, in a real Chromium (issue 8 §8):
 * no serious or critical violation anywhere. Pages are loaded with content in them (a prompt,
 * a finished image, the gallery open), as a guest or as the admin.
 */
import { createRequire } from "node:module";
import type { Browser, BrowserContext, Page } from "playwright-core";
import type { AxeResults } from "axe-core";
import { launchBrowser } from "../helpers/browser";
import { TestClient } from "../helpers/client";
import { ADMIN_PASSWORD, removeDataDir, startTestServer, waitFor, type TestServer } from "../helpers/server";

/** The show's audience code, opened in the setup below. */
let showCode = "";

/** Every page, as whom it is opened (a path may depend on the setup). A new page is one line here. */
const PAGES: Array<{ path: string | (() => string); as: "guest" | "admin" }> = [
  { path: "/", as: "guest" },
  { path: `/recover/${"A".repeat(43)}`, as: "guest" },
  { path: "/admin/login", as: "guest" },
  { path: "/admin/link?token=not-a-real-token", as: "guest" },
  { path: "/admin", as: "admin" },
  { path: "/admin/generators", as: "admin" },
  { path: "/admin/account", as: "admin" },
  { path: "/admin/people", as: "admin" },
  { path: "/admin/audit", as: "admin" },
  { path: "/admin/tokens", as: "admin" },
  { path: "/admin/reveal", as: "admin" },
  { path: "/admin/end-event", as: "admin" },
  { path: "/gallery", as: "guest" },
  { path: "/show", as: "guest" },
  { path: () => `/show/${showCode}`, as: "guest" },
  { path: "/no-such-page", as: "guest" },
];
const VIEWPORTS = [
  { name: "phone", viewport: { width: 390, height: 844 }, isMobile: true, hasTouch: true },
  { name: "laptop", viewport: { width: 1280, height: 800 }, isMobile: false, hasTouch: false },
];
const AXE_SOURCE = createRequire(import.meta.url).resolve("axe-core/axe.min.js");

let browser: Browser;
let server: TestServer;
beforeAll(async () => {
  server = await startTestServer();
  browser = await launchBrowser();
  // Content on every page: a guest's prompt, made into an image and revealed, and the gallery open.
  const admin = new TestClient(server.url, { userAgent: "axe admin" });
  await admin.loginAsAdmin(ADMIN_PASSWORD);
  await admin.postForm("/gallery", { intent: "open" });
  const guest = new TestClient(server.url, { userAgent: "axe guest" });
  await guest.page("/");
  for (const prompt of ["a lighthouse at dusk, oil painting", "a tiny robot watering plants"]) {
    const { id } = (await guest.mutate("prompt.submit", { prompt })).body.result.data;
    await admin.mutate("admin.approve", { id });
    await waitFor(`image ${id}`, () => server.services.db.$client.prepare("SELECT 1 FROM images WHERE prompt_id = ?").get(id));
  }
  await admin.mutate("admin.markRevealed", { id: 1 });
  await guest.mutate("prompt.submit", { prompt: "a city of kites, waiting for approval" });
  // Alike to it, from another guest: the admin page shows them as a group.
  const another = new TestClient(server.url, { userAgent: "axe guest 2" });
  await another.page("/");
  await another.mutate("prompt.submit", { prompt: "A city of kites: waiting for approval!" });
  // The show running, its audience link open, the second image on screen.
  showCode = (await admin.mutate("show.openLink")).body.result.data.code;
  await admin.mutate("show.start");
  await admin.mutate("show.next");
});
afterAll(async () => {
  await browser?.close();
  await server?.close();
  removeDataDir(server.dataDir);
});

async function serious(page: Page): Promise<string[]> {
  await page.addScriptTag({ path: AXE_SOURCE });
  const results = await page.evaluate(() => (window as unknown as { axe: { run(options: object): Promise<AxeResults> } }).axe.run({ resultTypes: ["violations"] }));
  return results.violations
    .filter((violation) => violation.impact === "serious" || violation.impact === "critical")
    .map((violation) => `${violation.id} (${violation.impact}): ${violation.help} — ${violation.nodes.map((node) => node.target.join(" ")).join(", ")}`);
}

test.each(VIEWPORTS)("every page has no serious or critical axe violation on a $name ($viewport.width px)", async ({ name, ...options }) => {
  // axe is injected as a script: the pages' Content-Security-Policy would block it.
  const contexts: Record<"guest" | "admin", BrowserContext> = {
    guest: await browser.newContext({ ...options, bypassCSP: true, userAgent: `Mozilla/5.0 promptgate-e2e axe ${name} guest` }),
    admin: await browser.newContext({ ...options, bypassCSP: true, userAgent: `Mozilla/5.0 promptgate-e2e axe ${name} admin` }),
  };
  const login = await contexts.admin.newPage();
  await login.goto(`${server.url}/admin/login`);
  await login.getByLabel("Password").fill(ADMIN_PASSWORD);
  await login.getByRole("button", { name: "Log in" }).click();
  await login.waitForURL(/\/admin$/);

  const found: Record<string, string[]> = {};
  for (const { path: pathOf, as } of PAGES) {
    const path = typeof pathOf === "function" ? pathOf() : pathOf;
    const page = await contexts[as].newPage();
    const response = await page.goto(`${server.url}${path}`, { waitUntil: "load" });
    // A recovery link that is not one, and an address that is no page, answer with their error pages.
    expect(response?.status(), path).toBeLessThan(path.startsWith("/recover/") || path === "/no-such-page" ? 500 : 400);
    const violations = await serious(page);
    if (violations.length) found[path] = violations;
    await page.close();
  }
  await Promise.all(Object.values(contexts).map((context) => context.close()));
  expect(found).toEqual({});
});

test("the site password's page (SITE_PASSWORD) has no serious or critical axe violation, on a phone or a laptop, with or without a wrong try", async () => {
  const gated = await startTestServer({ SITE_PASSWORD: "party at the lighthouse" });
  try {
    const found: Record<string, string[]> = {};
    for (const { name, ...options } of VIEWPORTS) {
      const context = await browser.newContext({ ...options, bypassCSP: true, userAgent: `Mozilla/5.0 promptgate-e2e axe site ${name}` });
      const page = await context.newPage();
      await page.goto(`${gated.url}/`, { waitUntil: "load" });
      expect(new URL(page.url()).pathname).toBe("/site-login");
      const fresh = await serious(page);
      if (fresh.length) found[`${name} /site-login`] = fresh;
      await page.getByLabel("Password").fill("not the password");
      await page.getByRole("button").click();
      await page.waitForLoadState("load");
      const afterWrongTry = await serious(page);
      if (afterWrongTry.length) found[`${name} /site-login after a wrong try`] = afterWrongTry;
      await context.close();
    }
    expect(found).toEqual({});
  } finally {
    await gated.close();
    removeDataDir(gated.dataDir);
  }
});
