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

test("the guest's progress bar moves without a reload, Cancel calls off a waiting prompt, and the reveal shows a banner, a starred tab title and a short vibration", async () => {
  const page = await (await browser.newContext({ userAgent: "Mozilla/5.0 promptgate-e2e progress", viewport: { width: 390, height: 844 } })).newPage();
  // Headless Chromium has no motor: the page's calls to it are counted instead.
  await page.addInitScript(() => {
    const calls: unknown[] = [];
    Object.assign(window, { vibrations: calls });
    navigator.vibrate = ((pattern: unknown) => calls.push(pattern) > 0) as Navigator["vibrate"];
  });
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
  await expect(page.evaluate(() => (window as unknown as { vibrations: unknown[] }).vibrations)).resolves.toEqual([200]);
  await expect(banner.getByRole("link", { name: "See it" }).getAttribute("href")).resolves.toBe(`#prompt-${id}`);
  await item.locator("img.own-image").waitFor();
  await expect(page.evaluate(() => (window as unknown as { stillHere?: boolean }).stillHere)).resolves.toBe(true);

  await banner.getByRole("button", { name: "Dismiss" }).click();
  await expect(page.title()).resolves.toBe("promptgate");
});

test("the admin's card shows a moving Starting… bar from the moment a generator takes a prompt, before its first step, then the steps", async () => {
  const context = await browser.newContext({ userAgent: "Mozilla/5.0 promptgate-e2e progress admin", viewport: { width: 1280, height: 720 } });
  const admin = await context.newPage();
  await admin.goto(`${server.url}/admin/login`);
  await admin.getByLabel("Password").fill(ADMIN_PASSWORD);
  await admin.getByRole("button", { name: "Log in" }).click();
  await admin.waitForURL(/\/admin$/);

  // Someone else's task holds A1111's lock: ours waits in its queue, where it reports no step.
  const calls = sd.calls.length;
  const blocker = fetch(`${sd.url}/sdapi/v1/txt2img`, { method: "POST", body: JSON.stringify({ prompt: "another app's picture", width: 64, height: 64 }) });
  await waitFor("A1111 to be busy", () => sd.calls.length > calls);
  const guest = new TestClient(server.url, { userAgent: "progress starting guest" });
  await guest.page("/");
  const id = (await guest.mutate("prompt.submit", { prompt: "a patient sunrise", width: 64, height: 64 })).body.result.data.id as number;
  const host = new TestClient(server.url, { userAgent: "progress starting host" });
  await host.loginAsAdmin(ADMIN_PASSWORD);
  expect((await host.mutate("admin.approve", { id })).status).toBe(200);

  const card = admin.locator(`.prompt-card[data-prompt-id="${id}"]`);
  await card.locator('.badge[data-status="generating"]').waitFor();
  const starting = card.locator('.progress[data-state="starting"]');
  await starting.getByText("Starting…").waitFor();
  // No value: the browser draws an indeterminate bar.
  await expect(starting.locator("progress").evaluate((bar: HTMLProgressElement) => bar.position)).resolves.toBe(-1);
  expect(server.services.progress.of(id)).toBeNull();

  // Ours takes its delay when it gets the lock: a shorter one still gives a few steps.
  sd.setDelay(1500);
  await (await blocker).arrayBuffer();
  await card.locator(".progress[data-step]", { hasText: /Step \d+ of 30/ }).waitFor();
  expect(await starting.count()).toBe(0);
  await card.locator('.badge[data-status="done"]').waitFor({ timeout: 15_000 });
  expect(await card.locator(".progress").count()).toBe(0);
  sd.setDelay(4000);
  await context.close();
});
