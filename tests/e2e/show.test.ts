/**
 * The show in a real Chromium, as at a party: the host runs it from a phone (390×844), the
 * projector (1920×1080) opens the audience link and follows live. Checks that only images put
 * on screen are revealed, that a square image fills the TV's height, that long prompts and long
 * words stay on screen, the contrast of every text as the page computes it, and that an image
 * hidden while on screen leaves it at once.
 */
import type { Page } from "playwright-core";
import { saveScreenshot, withServerAndBrowser } from "../helpers/browser";
import { TestClient } from "../helpers/client";
import { ADMIN_PASSWORD, waitFor } from "../helpers/server";

const e2e = withServerAndBrowser();

const TV = { width: 1920, height: 1080 };
const PHONE = { width: 390, height: 844 };
const OLD_PROJECTOR = { width: 1024, height: 768 };

/**
 * Elements whose box leaves the screen `size` (measured against it: a mobile viewport widens
 * itself to overflowing content). The audience view must fit whole; the presenter's page may
 * scroll down, never sideways.
 */
const outside = (page: Page, size: { width: number; height: number }, { scrolls = false } = {}) =>
  page.evaluate(({ width, height, scrolls }) => {
    const boxes = [...document.querySelectorAll("body *")].filter((element) => {
      const box = element.getBoundingClientRect();
      return box.width > 0 && (box.left < -0.5 || box.right > width + 0.5 || (!scrolls && (box.top < -0.5 || box.bottom > height + 0.5)));
    });
    return boxes.map((element) => element.outerHTML.slice(0, 80));
  }, { ...size, scrolls });

/** WCAG 2 contrast of each visible text against the first opaque background behind it, as the page computes them. */
const contrasts = (page: Page) =>
  page.evaluate(() => {
    const rgb = (value: string) => (value.match(/[\d.]+/g) ?? []).map(Number);
    const luminance = ([r, g, b]: number[]) => {
      const channel = (c: number) => ((c /= 255) <= 0.03928 ? c / 12.92 : ((c + 0.055) / 1.055) ** 2.4);
      return 0.2126 * channel(r!) + 0.7152 * channel(g!) + 0.0722 * channel(b!);
    };
    const background = (element: Element | null): number[] => {
      for (; element; element = element.parentElement) {
        const colour = rgb(getComputedStyle(element).backgroundColor);
        if (colour.length === 3 || (colour.length === 4 && colour[3]! > 0)) return colour;
      }
      return [255, 255, 255];
    };
    const texts = [...document.querySelectorAll("body *")].filter(
      (element) => element.checkVisibility() && [...element.childNodes].some((node) => node.nodeType === Node.TEXT_NODE && node.textContent!.trim()),
    );
    return texts.map((element) => {
      const [a, b] = [luminance(rgb(getComputedStyle(element).color)), luminance(background(element))];
      return { text: element.textContent!.trim().slice(0, 40), ratio: Math.round(((Math.max(a, b) + 0.05) / (Math.min(a, b) + 0.05)) * 100) / 100 };
    });
  });

async function expectReadable(page: Page) {
  const measured = await contrasts(page);
  expect(measured.length).toBeGreaterThan(0);
  expect(measured.filter((text) => text.ratio < 4.5)).toEqual([]);
}

/** Rendered size of an `object-fit: contain` image: the box scaled to the picture's shape. */
/** The height the image on stage is drawn at, once it has loaded. */
const renderedHeight = async (page: Page) => {
  await page.waitForFunction(() => ((document.querySelector(".show-stage img") as HTMLImageElement | null)?.naturalWidth ?? 0) > 0);
  return page.locator(".show-stage img").evaluate((img: HTMLImageElement) => {
    const box = img.getBoundingClientRect();
    return img.naturalHeight * Math.min(box.width / img.naturalWidth, box.height / img.naturalHeight);
  });
};

const revealed = () => (e2e.server.services.db.$client.prepare("SELECT id FROM prompts WHERE revealed_at IS NOT NULL ORDER BY id").all() as Array<{ id: number }>).map((row) => row.id);

test("the projector follows the host's phone live, only the image shown is revealed, a square image fills the TV's height, long prompts and words stay on screen, every text meets AA contrast, and an image hidden from the phone leaves every screen at once", async () => {
  const admin = new TestClient(e2e.server.url, { userAgent: "show e2e admin" });
  await admin.loginAsAdmin(ADMIN_PASSWORD);
  const prompts = ["a lighthouse at dusk, oil painting", "a fox in the snow, ".repeat(60).slice(0, 1000), `a long word: ${"Lighthouse".repeat(30)}`];
  const ids: number[] = [];
  for (const [i, prompt] of prompts.entries()) {
    const guest = new TestClient(e2e.server.url, { userAgent: `show e2e guest ${i}` });
    await guest.page("/");
    const { id } = (await guest.mutate("prompt.submit", { prompt, width: 512, height: 512 })).body.result.data;
    await admin.mutate("admin.approve", { id });
    ids.push(id);
  }
  await waitFor("three images", () => e2e.server.services.db.$client.prepare(`SELECT count(*) AS n FROM images`).get() as { n: number } | undefined, 30_000);
  await waitFor("three images", () => (e2e.server.services.db.$client.prepare(`SELECT count(*) AS n FROM images`).get() as { n: number }).n === 3, 30_000);

  const phoneContext = await e2e.browser.newContext({ viewport: PHONE, isMobile: true, hasTouch: true, deviceScaleFactor: 2, userAgent: "Mozilla/5.0 (iPhone) promptgate-e2e presenter" });
  const phone = await phoneContext.newPage();
  await phone.goto(`${e2e.server.url}/admin/reveal`);
  await phone.waitForURL(/\/admin\/login/);
  await phone.getByLabel("Password").fill(ADMIN_PASSWORD);
  await phone.getByRole("button", { name: "Log in" }).click();
  await phone.waitForURL((url) => !url.pathname.startsWith("/admin/login"));
  await phone.goto(`${e2e.server.url}/admin/reveal`);
  await phone.getByText("Closed: nobody can watch the show").waitFor();

  const tvContext = await e2e.browser.newContext({ viewport: TV, userAgent: "Mozilla/5.0 promptgate-e2e projector" });
  const tv = await tvContext.newPage();
  // Not open to everyone: without the code there is nothing to see.
  await tv.goto(`${e2e.server.url}/show`);
  await tv.getByLabel("Show code").waitFor();
  expect(await tv.locator("img").count()).toBe(0);
  expect((await tv.goto(`${e2e.server.url}/show/ABCDEFGH`))?.status()).toBe(404);

  await phone.getByRole("button", { name: "Open the audience link" }).click();
  const code = (await phone.locator(".show-code").textContent())!;
  expect(code).toMatch(/^[A-Z0-9]{8}$/);
  await tv.goto(`${e2e.server.url}/show`);
  await tv.getByLabel("Show code").fill(code.toLowerCase());
  await tv.getByRole("button", { name: "Watch" }).click();
  await tv.waitForURL(`${e2e.server.url}/show/${code}`);
  await tv.getByText("The show starts soon").waitFor();
  await tv.waitForFunction(() => (document.querySelector('img[src="/join-qr.svg"]') as HTMLImageElement | null)?.naturalWidth! > 0);
  await expectReadable(tv);

  await phone.getByRole("button", { name: "Start the show" }).click();
  await tv.getByText("The show is about to begin").waitFor();
  await phone.getByRole("button", { name: "Next →" }).click();
  await tv.locator(".show-prompt", { hasText: prompts[0]! }).waitFor();
  await tv.waitForFunction(() => (document.querySelector(".show-stage img") as HTMLImageElement | null)?.naturalWidth === 512);
  // Three new images, one shown: exactly that one is revealed.
  expect(revealed()).toEqual([ids[0]]);
  expect(await renderedHeight(tv)).toBeGreaterThanOrEqual(0.8 * TV.height);
  await expectReadable(tv);
  await saveScreenshot(tv, "show-tv");

  await phone.getByRole("button", { name: "Next →" }).click();
  await tv.locator(".show-meta", { hasText: "2 / 3" }).waitFor();
  await expect(tv.locator(".show-prompt").textContent()).resolves.toBe(prompts[1]);
  expect(await outside(tv, TV)).toEqual([]);
  expect(await renderedHeight(tv)).toBeGreaterThanOrEqual(0.8 * TV.height);
  // An older projector, 1024×768: the 1,000-character prompt stays on its screen too.
  const projector = await (await e2e.browser.newContext({ viewport: OLD_PROJECTOR })).newPage();
  await projector.goto(`${e2e.server.url}/show/${code}`);
  await projector.locator(".show-meta", { hasText: "2 / 3" }).waitFor();
  expect(await outside(projector, OLD_PROJECTOR)).toEqual([]);
  await projector.context().close();
  expect(await outside(phone, PHONE, { scrolls: true })).toEqual([]);
  await expectReadable(phone);
  await saveScreenshot(phone, "show-presenter-phone");

  await phone.getByRole("button", { name: "Next →" }).click();
  await tv.locator(".show-meta", { hasText: "3 / 3" }).waitFor();
  await expect(tv.locator(".show-prompt").textContent()).resolves.toBe(prompts[2]);
  expect(await outside(tv, TV)).toEqual([]);
  expect(await outside(phone, PHONE, { scrolls: true })).toEqual([]);
  await expectReadable(tv);

  // Back: the projector follows, and nothing more is revealed by going back and forth.
  await phone.getByRole("button", { name: "← Previous" }).click();
  await tv.locator(".show-meta", { hasText: "2 / 3" }).waitFor();
  expect(revealed()).toEqual(ids);

  await phone.getByRole("button", { name: "Next →" }).click();
  await tv.locator(".show-meta", { hasText: "3 / 3" }).waitFor();
  await phone.getByRole("button", { name: "Next →" }).click();
  await tv.getByText("That's all!").waitFor();
  await tv.getByText("3 images from 3 guests").waitFor();
  await expectReadable(tv);

  // The same audience view on a phone.
  const small = await (await e2e.browser.newContext({ viewport: PHONE, isMobile: true, deviceScaleFactor: 2 })).newPage();
  await small.goto(`${e2e.server.url}/show/${code}`);
  await small.getByText("That's all!").waitFor();
  await phone.getByRole("button", { name: "← Previous" }).click();
  await small.locator(".show-prompt", { hasText: "a long word" }).waitFor();
  expect(await outside(small, PHONE)).toEqual([]);
  await expectReadable(small);

  // Something on screen that should not be: the host hides it from the phone, and every screen drops it at once.
  await phone.getByRole("button", { name: "Hide this image from the show" }).click();
  for (const screen of [tv, small]) await screen.locator(".show-meta", { hasText: "2 / 2" }).waitFor();
  await expect(tv.locator(".show-prompt").textContent()).resolves.toBe(prompts[1]);
  expect(await tv.locator(`img[src$="/${ids[2]}.png"]`).count()).toBe(0);
  expect((await admin.fetch(`/show/${code}/images/${ids[2]}.png`)).status).toBe(404);
  expect(e2e.server.services.db.$client.prepare("SELECT hidden FROM prompts WHERE id = ?").get(ids[2])).toEqual({ hidden: 1 });
  await small.context().close();

  await tvContext.close();
  await phoneContext.close();
});
