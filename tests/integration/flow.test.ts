/**
 * The whole path, with real parts: visitor → submit → admin approves → MQTT (QoS 1) →
 * generator (p-queue) → A1111 emulator → result stored → reveal → the author sees the image.
 */
import { readFileSync } from "node:fs";
import path from "node:path";
import { readPngSize } from "../../generator/png";
import { startSdEmulator, type SdEmulator } from "../emulators/sd-server";
import { TestClient } from "../helpers/client";
import { ADMIN_PASSWORD, removeDataDir, startTestServer, waitFor, type TestServer } from "../helpers/server";

let sd: SdEmulator;
let server: TestServer;

beforeAll(async () => {
  sd = await startSdEmulator();
  server = await startTestServer({ SD_API_URL: sd.url });
});
afterAll(async () => {
  await server?.close();
  await sd?.close();
  removeDataDir(server.dataDir);
});

test("a visitor's approved prompt is generated through A1111, stored, and shown to its author only after the reveal", async () => {
  const visitor = new TestClient(server.url);
  const home = await visitor.page("/");
  expect(home.status).toBe(200);
  expect(home.html).toMatch(/You are/);

  const sent = await visitor.postForm("/?index", { intent: "submit", prompt: "  a lighthouse in a storm  ", negativePrompt: "blurry", width: "640", height: "384" });
  expect(sent.status).toBe(200);
  expect(sent.html).toContain("waiting for the host");
  const [mine] = (await visitor.query("prompt.mine")).body.result.data;
  expect(mine).toMatchObject({ prompt: "a lighthouse in a storm", negativePrompt: "blurry", width: 640, height: 384, status: "pending", imageUrl: null });

  const admin = new TestClient(server.url, { userAgent: "admin-browser" });
  await admin.loginAsAdmin(ADMIN_PASSWORD);
  const approved = await admin.postForm("/admin?index", { intent: "approve", id: String(mine.id) });
  expect(approved.status).toBe(200);

  const done = await waitFor("the prompt to be done", async () => {
    const [row] = (await visitor.query("prompt.mine")).body.result.data;
    return row.status === "done" ? row : null;
  });
  // Done, but not yet revealed: the author sees the status, never the image.
  expect(done.imageUrl).toBeNull();
  expect((await visitor.fetch(`/images/${mine.id}.png`)).status).toBe(404);

  // A1111 got the original's defaults and the visitor's prompt.
  expect(sd.calls).toHaveLength(1);
  expect(sd.calls[0]!.body).toMatchObject({
    prompt: "a lighthouse in a storm",
    negative_prompt: "blurry",
    width: 640,
    height: 384,
    steps: 30,
    cfg_scale: 5,
    sampler_name: "DPM++ SDE Karras",
    restore_faces: true,
    save_images: false,
  });

  // The PNG is on disk under DATA_DIR with its metadata in the database; the generator drew
  // the seed itself (so a retry would make the same picture) and stored the one it sent.
  const image = server.services.db.$client.prepare("SELECT * FROM images WHERE prompt_id = ?").get(mine.id) as Record<string, unknown>;
  expect(image).toMatchObject({ width: 640, height: 384, backend: "a1111", seed: sd.calls[0]!.body.seed });
  expect(readPngSize(readFileSync(path.join(server.dataDir, "images", image.file_name as string)))).toEqual({ width: 640, height: 384 });

  // The admin can peek before the reveal.
  const peek = await admin.fetch(`/images/${mine.id}.png`);
  expect(peek.status).toBe(200);
  expect(peek.headers.get("content-type")).toBe("image/png");

  // The show puts it on screen and so reveals it; now the author (and only the author) sees it.
  expect((await admin.postForm("/admin/reveal", { intent: "start" })).status).toBe(200);
  expect((await admin.page("/admin/reveal")).html).toMatch(/Next: (<!-- -->)?a lighthouse in a storm/);
  expect((await visitor.query("prompt.mine")).body.result.data[0].imageUrl).toBeNull();
  const marked = await admin.postForm("/admin/reveal", { intent: "next" });
  expect(marked.status).toBe(200);

  const [revealed] = (await visitor.query("prompt.mine")).body.result.data;
  expect(revealed.imageUrl).toBe(`/images/${mine.id}.png`);
  const bytes = Buffer.from(await (await visitor.fetch(revealed.imageUrl)).arrayBuffer());
  expect(readPngSize(bytes)).toEqual({ width: 640, height: 384 });

  const stranger = new TestClient(server.url, { userAgent: "someone else" });
  await stranger.page("/");
  expect((await stranger.fetch(revealed.imageUrl)).status).toBe(404);
});
