/**
 * After the show in a real Chromium: the gallery on a phone (revealed images in one column that
 * fits the screen, long prompts and long words included, images loaded lazily), and the export
 * the admin downloads from the admin page, opened with Info-ZIP's unzip.
 */
import { execFile } from "node:child_process";
import path from "node:path";
import { promisify } from "node:util";
import { ensureProgram } from "../helpers/debian";
import { saveScreenshot, withServerAndBrowser } from "../helpers/browser";
import { TestClient } from "../helpers/client";
import { ADMIN_PASSWORD, waitFor } from "../helpers/server";

const e2e = withServerAndBrowser();

test("at 390 px the gallery is one column of revealed images with their colour and prompt, nothing sticks out sideways, and images load lazily", async () => {
  const admin = new TestClient(e2e.server.url, { userAgent: "gallery admin" });
  await admin.loginAsAdmin(ADMIN_PASSWORD);
  await admin.postForm("/gallery", { intent: "open" });
  // Revealed in this order, so shown last to first.
  const prompts = [
    "a fox in the snow. ".repeat(40).trim(),
    `a very long word: ${"Supercalifragilistic".repeat(8)}`,
    "a lighthouse made of glass, waves of light, long exposure at dusk",
  ];
  const ids: number[] = [];
  for (const [i, prompt] of prompts.entries()) {
    const guest = new TestClient(e2e.server.url, { userAgent: `gallery guest ${i}` });
    await guest.page("/");
    const { id } = (await guest.mutate("prompt.submit", { prompt, width: i === 1 ? 512 : 256, height: i === 0 ? 512 : 256 })).body.result.data;
    await admin.mutate("admin.approve", { id });
    await waitFor(`image ${id}`, () => e2e.server.services.db.$client.prepare("SELECT 1 FROM images WHERE prompt_id = ?").get(id));
    await admin.mutate("admin.markRevealed", { id });
    ids.push(id);
  }

  const phone = { width: 390, height: 844 };
  const context = await e2e.browser.newContext({ viewport: phone, isMobile: true, hasTouch: true, deviceScaleFactor: 2, userAgent: "Mozilla/5.0 (iPhone) promptgate-e2e gallery" });
  const cspViolations: string[] = [];
  context.on("console", (message) => {
    if (/content security policy/i.test(message.text())) cspViolations.push(message.text());
  });
  const page = await context.newPage();
  const response = await page.goto(`${e2e.server.url}/gallery`);
  expect(response?.status()).toBe(200);

  const cards = page.locator(".gallery-grid li");
  await expect(cards.evaluateAll((items) => items.map((item) => Number(item.getAttribute("data-prompt-id"))))).resolves.toEqual([...ids].reverse());
  for (const [i, id] of ids.entries()) {
    const card = page.locator(`.gallery-grid li[data-prompt-id="${id}"]`);
    await expect(card.locator(".chip").count()).resolves.toBe(1);
    await expect(card.locator(".prompt-text").textContent()).resolves.toBe(prompts[i]);
    await expect(card.locator("img").getAttribute("loading")).resolves.toBe("lazy");
  }
  // The newest card's image is in view and really loads.
  await page.waitForFunction(() => (document.querySelector(".gallery-grid img") as HTMLImageElement | null)?.naturalWidth! > 0);

  // A mobile viewport widens itself to overflowing content, so measure every box against the phone's width.
  const overflow = await page.evaluate((width) => {
    const wide = [...document.querySelectorAll("body *")].filter((element) => element.getBoundingClientRect().right > width + 0.5);
    return { scrollWidth: document.documentElement.scrollWidth, innerWidth: window.innerWidth, wide: wide.map((element) => element.outerHTML.slice(0, 80)) };
  }, phone.width);
  expect(overflow).toEqual({ scrollWidth: phone.width, innerWidth: phone.width, wide: [] });
  // One column: every card starts at the same x.
  const lefts = await cards.evaluateAll((items) => items.map((item) => Math.round(item.getBoundingClientRect().left)));
  expect(new Set(lefts).size).toBe(1);

  await saveScreenshot(page, "gallery-phone");
  expect(cspViolations).toEqual([]);
  await context.close();
});

test("the admin downloads the export from the admin page: the zip holds the revealed image and its metadata, prompt, colour, size, seed, sampler, steps, cfg, generator and timings, in JSON and CSV", async () => {
  const unzip = await ensureProgram("unzip", ["unzip"]);
  const run = promisify(execFile);
  const admin = new TestClient(e2e.server.url, { userAgent: "export admin" });
  await admin.loginAsAdmin(ADMIN_PASSWORD);
  const guest = new TestClient(e2e.server.url, { userAgent: "export guest" });
  await guest.page("/");
  const { id } = (await guest.mutate("prompt.submit", { prompt: "a paper crane for the export", negativePrompt: "blurry", width: 256, height: 128 })).body.result.data;
  await admin.mutate("admin.approve", { id });
  await waitFor(`image ${id}`, () => e2e.server.services.db.$client.prepare("SELECT 1 FROM images WHERE prompt_id = ?").get(id));
  await admin.mutate("admin.markRevealed", { id });

  const context = await e2e.browser.newContext({ viewport: { width: 1280, height: 800 }, userAgent: "Mozilla/5.0 promptgate-e2e export", acceptDownloads: true });
  const page = await context.newPage();
  await page.goto(`${e2e.server.url}/admin/login`);
  await page.getByLabel("Password").fill(ADMIN_PASSWORD);
  await page.getByRole("button", { name: "Log in" }).click();
  await page.waitForURL(/\/admin$/);
  const [download] = await Promise.all([page.waitForEvent("download"), page.getByRole("link", { name: /^Revealed images \(\d+\)$/ }).click()]);
  const file = path.join(e2e.server.dataDir, "export-from-e2e.browser.zip");
  await download.saveAs(file);
  expect(download.suggestedFilename()).toMatch(/\.zip$/);

  const listed = (await run(unzip, ["-Z1", file])).stdout.split("\n").filter(Boolean);
  const imageFile = `images/promptgate-${id}-a-paper-crane-for-the-export.png`;
  expect(listed).toEqual(expect.arrayContaining(["metadata.json", "metadata.csv", imageFile]));
  const png = (await run(unzip, ["-p", file, imageFile], { encoding: "buffer" })).stdout as unknown as Buffer;
  expect(png.subarray(1, 4).toString()).toBe("PNG");
  const records = JSON.parse((await run(unzip, ["-p", file, "metadata.json"])).stdout) as Array<Record<string, unknown>>;
  const record = records.find((entry) => entry.id === id);
  expect(record).toMatchObject({
    file: imageFile,
    prompt: "a paper crane for the export",
    negativePrompt: "blurry",
    colour: expect.any(String),
    width: 256,
    height: 128,
    seed: expect.any(Number),
    generator: expect.any(String),
    queuedMs: expect.any(Number),
    generationMs: expect.any(Number),
    submittedAt: expect.any(String),
    approvedAt: expect.any(String),
    finishedAt: expect.any(String),
    revealedAt: expect.any(String),
    hidden: false,
  });
  expect(Object.keys(record!)).toEqual(expect.arrayContaining(["sampler", "steps", "cfgScale", "backend"]));
  const csvHeader = (await run(unzip, ["-p", file, "metadata.csv"])).stdout.split("\r\n")[0];
  // With a byte-order mark, so a spreadsheet reads it as UTF-8.
  expect(csvHeader).toBe("\ufeffid,file,prompt,negative_prompt,colour,colour_hex,width,height,seed,sampler,steps,cfg_scale,generator,backend,queued_ms,generation_ms,submitted_at,approved_at,finished_at,revealed_at,hidden");
  await context.close();
});
