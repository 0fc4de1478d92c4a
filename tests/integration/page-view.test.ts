/**
 * The visitor page is served from a view of the Remix build with only its own routes (ADR 016):
 * exactly `/` and `/_root.data`. Any other spelling is the whole build's, like any unknown address.
 */
import { TestClient } from "../helpers/client";
import { removeDataDir, startTestServer, type TestServer } from "../helpers/server";

let server: TestServer;

beforeAll(async () => {
  server = await startTestServer({ LOCAL_GENERATOR: "false" });
});
afterAll(async () => {
  await server?.close();
  removeDataDir(server.dataDir);
});

/** The page with its per-response nonces and tokens taken out, to compare two answers. */
const shape = (html: string) => html.replace(/nonce="[^"]*"/g, "").replace(/value="[^"]*"/g, "");

test("other spellings of / and /_root.data are answered by the whole build like any unknown address, with no router warning", async () => {
  const client = new TestClient(server.url, { userAgent: "spelling tester" });
  const unknownPage = await client.page("/no-such-page");
  const unknownData = await client.page("/no-such-page.data");
  expect([unknownPage.response.status, unknownData.response.status]).toEqual([404, 404]);
  const warn = vi.spyOn(console, "warn");
  try {
    // `…/_Root.data` is still a data request (for /_Root); the other two are pages.
    for (const [path, unknown] of [["/_ROOT.DATA", unknownPage], ["/_root.data/", unknownPage], ["/_Root.data", unknownData]] as const) {
      const answer = await client.page(path);
      expect(answer.response.status, path).toBe(404);
      expect(shape(answer.html), path).toBe(shape(unknown.html));
    }
    expect(warn).not.toHaveBeenCalled();
  } finally {
    warn.mockRestore();
  }
  const page = await client.page("/");
  expect(page.response.status).toBe(200);
  expect(page.html).toContain("<form");
});
