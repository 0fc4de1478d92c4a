/** The admin page's "Guests join here" card and its QR code (issue 8 §7). */
import { qrCodeSvg } from "../../server/http/qr-svg";
import { TestClient } from "../helpers/client";
import { ADMIN_PASSWORD, removeDataDir, startTestServer, type TestServer } from "../helpers/server";

const servers: TestServer[] = [];
afterAll(async () => {
  for (const server of servers) {
    await server.close();
    removeDataDir(server.dataDir);
  }
});

test("with PUBLIC_URL the admin page shows the guests' address and /join-qr.svg encodes it", async () => {
  const server = await startTestServer({ PUBLIC_URL: "https://party.example.org/" });
  servers.push(server);
  const admin = new TestClient(server.url, { userAgent: "join admin" });
  await admin.loginAsAdmin(ADMIN_PASSWORD);
  const { html } = await admin.page("/admin");
  expect(html).toContain("Guests join here");
  expect(html).toContain('<a href="https://party.example.org/">https://party.example.org/</a>');

  const guest = new TestClient(server.url, { userAgent: "join guest" });
  const response = await guest.fetch("/join-qr.svg");
  expect(response.status).toBe(200);
  expect(response.headers.get("content-type")).toMatch(/^image\/svg\+xml/);
  // The same drawing as the recovery link's QR code (tested in the browser), of this address.
  expect(await response.text()).toBe(qrCodeSvg("https://party.example.org/"));
});

test("without PUBLIC_URL the join address is the one the request came to", async () => {
  const server = await startTestServer();
  servers.push(server);
  const admin = new TestClient(server.url, { userAgent: "join admin" });
  await admin.loginAsAdmin(ADMIN_PASSWORD);
  expect((await admin.page("/admin")).html).toContain(`<a href="${server.url}/">${server.url}/</a>`);
  expect(await (await admin.fetch("/join-qr.svg")).text()).toBe(qrCodeSvg(`${server.url}/`));
});
