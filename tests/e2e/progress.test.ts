/**
 * Where is my picture, in a real browser: the guest's progress bar moves while an A1111 emulator
 * works on their prompt, a Cancel button calls off one still waiting, and the reveal is announced
 * by a banner and the tab's title, all without a reload.
 */
import type { Browser } from "playwright-core";
import { GeneratorEnvSchema, generatorConfigFrom, parseEnvironment } from "../../generator/env";
import { startGenerator, type RunningGenerator } from "../../generator/generator";
import { startSdEmulator, type SdEmulator } from "../emulators/sd-server";
import { launchBrowser } from "../helpers/browser";
import { TestClient } from "../helpers/client";
import { ADMIN_PASSWORD, collectingLogger, generatorCredential, removeDataDir, startTestServer, waitFor, type TestServer } from "../helpers/server";

let browser: Browser;
let server: TestServer;
let sd: SdEmulator;
let generator: RunningGenerator;

beforeAll(async () => {
  sd = await startSdEmulator({ delayMs: 4000 });
  server = await startTestServer({ LOCAL_GENERATOR: "false" });
  const config = generatorConfigFrom(
    parseEnvironment(GeneratorEnvSchema, { MQTT_URL: `mqtt://127.0.0.1:${server.mqttPort}`, MQTT_PASSWORD: generatorCredential(server, "e2e-progress").password, SD_API_URL: sd.url, GENERATOR_ID: "e2e-progress" }),
  );
  generator = await startGenerator(config, collectingLogger());
  browser = await launchBrowser();
});
afterAll(async () => {
  await browser?.close();
  await generator?.close();
  await server?.close();
  await sd?.close();
  removeDataDir(server.dataDir);
});

test("the guest's progress bar moves without a reload, Cancel calls off a waiting prompt, and the reveal shows a banner and a starred tab title", async () => {
  const page = await (await browser.newContext({ userAgent: "Mozilla/5.0 promptgate-e2e progress", viewport: { width: 390, height: 844 } })).newPage();
  await page.goto(server.url);
  for (const prompt of ["a slow sunrise", "changed my mind"]) {
    await page.getByLabel("Prompt", { exact: true }).fill(prompt);
    await page.getByRole("button", { name: "Send prompt" }).click();
    await page.locator(".own-prompts li", { hasText: prompt }).waitFor();
  }
  const item = page.locator(".own-prompts li", { hasText: "a slow sunrise" });
  const id = Number(await item.getAttribute("data-prompt-id"));
  // Marks this document: a reload would lose it.
  await page.evaluate(() => ((window as unknown as { stillHere: boolean }).stillHere = true));

  await page.locator(".own-prompts li", { hasText: "changed my mind" }).getByRole("button", { name: "Cancel" }).click();
  await page.locator(".own-prompts li", { hasText: "changed my mind" }).locator('[data-status="cancelled"]').waitFor();

  const admin = new TestClient(server.url, { userAgent: "progress e2e admin" });
  await admin.loginAsAdmin(ADMIN_PASSWORD);
  expect((await admin.mutate("admin.approve", { id })).status).toBe(200);

  const bar = item.locator(".progress");
  await bar.waitFor();
  const firstStep = Number(await bar.getAttribute("data-step"));
  await expect(bar.getAttribute("data-steps")).resolves.toBe("30");
  await item.locator(".progress", { hasText: /Step \d+ of 30/ }).waitFor();
  await waitFor("the bar to move", async () => Number(await bar.getAttribute("data-step")) > firstStep);

  await item.locator('[data-status="done"]').waitFor({ timeout: 15_000 });
  expect((await admin.mutate("admin.markRevealed", { id })).status).toBe(200);
  const banner = page.locator(".revealed-banner");
  await banner.getByText("Your picture is revealed!").waitFor();
  await expect(page.title()).resolves.toBe("★ Revealed — promptgate");
  await expect(banner.getByRole("link", { name: "See it" }).getAttribute("href")).resolves.toBe(`#prompt-${id}`);
  await item.locator("img.own-image").waitFor();
  await expect(page.evaluate(() => (window as unknown as { stillHere?: boolean }).stillHere)).resolves.toBe(true);

  await banner.getByRole("button", { name: "Dismiss" }).click();
  await expect(page.title()).resolves.toBe("promptgate");
});
