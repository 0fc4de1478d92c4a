/**
 * A real headless Chromium for end-to-end tests: the system's (/usr/bin/chromium) when there
 * is one, else the binary that the npm package @sparticuz/chromium ships, so `npm install`
 * alone is enough. Started with the flags this sandbox needs (no background networking).
 */
import { existsSync, mkdirSync } from "node:fs";
import path from "node:path";
import { chromium, type Browser, type Page } from "playwright-core";
import { ROOT } from "./processes";
import { removeDataDir, startTestServer, type TestServer } from "./server";

const SYSTEM_CHROMIUM = ["/usr/bin/chromium", "/usr/bin/chromium-browser", "/usr/bin/google-chrome"];
const FLAGS = ["--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking", "--disable-component-update", "--disable-sync", "--no-sandbox"];

export async function launchBrowser(): Promise<Browser> {
  const system = SYSTEM_CHROMIUM.find((candidate) => existsSync(candidate));
  if (system) return chromium.launch({ executablePath: system, args: FLAGS, headless: true });
  const { default: packaged } = await import("@sparticuz/chromium");
  // Not packaged.args: they are tuned for AWS Lambda (--single-process, --disable-web-security),
  // and in single-process mode browser contexts share cookies, which breaks per-visitor tests.
  return chromium.launch({ executablePath: await packaged.executablePath(), args: FLAGS, headless: true });
}

/**
 * Saves what `page` shows as `<name>.png` in tests/.artifacts/screenshots, and with
 * UPDATE_SCREENSHOTS=1 in docs/screenshots too: the README's pictures come from the tests.
 */
export async function saveScreenshot(page: Page, name: string): Promise<void> {
  const dirs = [path.join(ROOT, "tests/.artifacts/screenshots"), ...(process.env.UPDATE_SCREENSHOTS ? [path.join(ROOT, "docs/screenshots")] : [])];
  for (const dir of dirs) {
    mkdirSync(dir, { recursive: true });
    await page.screenshot({ path: path.join(dir, `${name}.png`) });
  }
}

/**
 * A test file's real server (with `env`) and Chromium: started before its first test, stopped
 * after its last, the server's DATA_DIR removed. Read them as `e2e.server` and `e2e.browser`.
 */
export function withServerAndBrowser(env: Record<string, string> = {}): { server: TestServer; browser: Browser } {
  const e2e = {} as { server: TestServer; browser: Browser };
  beforeAll(async () => {
    e2e.server = await startTestServer(env);
    e2e.browser = await launchBrowser();
  });
  afterAll(async () => {
    await e2e.browser?.close();
    await e2e.server?.close();
    if (e2e.server) removeDataDir(e2e.server.dataDir);
  });
  return e2e;
}
