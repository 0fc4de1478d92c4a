/**
 * An unexpected failure, on the server exactly as `npm start` runs it (no NODE_ENV): the page
 * and the API answer "Something went wrong (ref XXXX)" and nothing of the inside; the log has
 * the whole error under the same ref.
 */
import Database from "better-sqlite3";
import path from "node:path";
import { TestClient } from "../helpers/client";
import { ROOT, runEntry, type Child } from "../helpers/processes";
import { ADMIN_PASSWORD, makeDataDir, removeDataDir, waitFor } from "../helpers/server";

let server: Child;
let url: string;
const dataDir = makeDataDir();

beforeAll(async () => {
  server = await runEntry(
    "server/main.ts",
    { HOST: "127.0.0.1", PORT: "0", MQTT_PORT: "0", DATA_DIR: dataDir, ADMIN_PASSWORD, LOCAL_GENERATOR: "false", FINGERPRINT_MEMORY_KIB: "4096" },
    /listening on/,
  );
  url = /open (http:\/\/\S+)/.exec(server.output())![1]!;
});
afterAll(async () => {
  await server?.kill();
  removeDataDir(dataDir);
});

const REF_MESSAGE = /Something went wrong \(ref ([2-9A-HJ-KM-NP-Z]{4})\)/;

/** What an answer must never show: a stack frame, a path, a source file, SQL or SQLite's words. */
function expectNothingInternal(text: string) {
  expect(text).not.toMatch(/\n\s+at /);
  expect(text).not.toMatch(/:\d+:\d+\)/);
  expect(text).not.toContain(ROOT);
  expect(text).not.toContain(dataDir);
  expect(text).not.toMatch(/\.tsx?\b/);
  expect(text).not.toMatch(/sqlite/i);
  expect(text).not.toMatch(/no such table|failed query|select /i);
  expect(text).not.toContain("Unexpected Server Error");
}

/** The log entry of `ref`: its first line up to the next timestamped line. */
function logEntry(ref: string): string {
  const output = server.output();
  const start = output.indexOf(`error ref ${ref}: `);
  if (start < 0) return "";
  const next = output.slice(start).search(/\n\d{4}-\d\d-\d\dT/);
  return next < 0 ? output.slice(start) : output.slice(start, start + next);
}

test("a malformed address is the client's mistake: 400, no ref, nothing logged", async () => {
  for (const path of ["/%E0%A4%A", "/images/%.png"]) {
    const response = await fetch(url + path);
    expect(response.status).toBe(400);
    await expect(response.text()).resolves.toBe("Bad Request.");
  }
  expect(server.output()).not.toContain("error ref");
});

test("with its prompts table gone, the pages, the API and the image route answer a ref, and only the log has the error", async () => {
  const visitor = new TestClient(url);
  expect((await visitor.page("/")).status).toBe(200);

  const db = new Database(path.join(dataDir, "promptgate.db"));
  db.exec("ALTER TABLE prompts RENAME TO prompts_moved_away");
  db.close();

  const page = await visitor.page("/");
  expect(page.status).toBe(500);
  const pageRef = REF_MESSAGE.exec(page.html)?.[1];
  expect(pageRef).toBeDefined();
  expectNothingInternal(page.html);

  const api = await visitor.query("prompt.mine");
  expect(api.status).toBe(500);
  const apiRef = REF_MESSAGE.exec(api.body.error.message)?.[1];
  expect(api.body.error.message).toBe(`Something went wrong (ref ${apiRef})`);
  expect(api.body.error.data.userMessage).toBe(api.body.error.message);
  expect(api.body.error.data.stack).toBeUndefined();
  expectNothingInternal(JSON.stringify(api.body));
  expect(apiRef).not.toBe(pageRef);

  const form = await visitor.postForm("/?index", { intent: "submit", prompt: "a lighthouse at dusk", width: "512", height: "512" });
  expect(form.status).toBe(500);
  const formRef = REF_MESSAGE.exec(form.html)?.[1];
  expect(formRef).toBeDefined();
  expectNothingInternal(form.html);

  // Express's fallback: the image route asks the database before anything else.
  const image = await visitor.fetch("/images/1.png");
  expect(image.status).toBe(500);
  const imageText = await image.text();
  const imageRef = REF_MESSAGE.exec(imageText)?.[1];
  expect(imageText).toBe(`Something went wrong (ref ${imageRef})`);

  for (const ref of [pageRef!, apiRef!, formRef!, imageRef!]) {
    const entry = await waitFor(`the log entry of ref ${ref}`, () => logEntry(ref));
    expect(entry).toContain("no such table: prompts");
    expect(entry).toMatch(/\n\s+at .*:\d+:\d+/);
    expect(server.output().split(`error ref ${ref}:`)).toHaveLength(2);
  }
  // Each failure once: Remix's handleError, tRPC's onError and the caller do not log it twice.
  expect(server.output().match(/error ref /g)).toHaveLength(4);
});
