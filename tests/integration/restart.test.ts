/**
 * A server restart loses no approved job: the server's outbox is the source of truth. Crashes
 * (SIGKILL) of the server and of generators are in kill.test.ts.
 */
import { startSdEmulator, type SdEmulator } from "../emulators/sd-server";
import { TestClient } from "../helpers/client";
import { ADMIN_PASSWORD, makeDataDir, removeDataDir, startTestServer, waitFor } from "../helpers/server";
import { useCleanups } from "../helpers/cleanups";

let sd: SdEmulator;
const cleanup = useCleanups();

beforeEach(async () => {
  sd = await startSdEmulator();
  cleanup(() => sd.close());
});

const ownStatus = async (visitor: TestClient) => (await visitor.query("prompt.mine")).body.result.data[0]?.status;

test("an approved job that no generator received is generated exactly once after a server restart", async () => {
  const dataDir = makeDataDir();
  cleanup(() => removeDataDir(dataDir));
  const first = await startTestServer({ DATA_DIR: dataDir, LOCAL_GENERATOR: "false" });
  const visitor = new TestClient(first.url, { userAgent: "restart-visitor" });
  await visitor.page("/");
  const { id } = (await visitor.mutate("prompt.submit", { prompt: "survive the restart", width: 64, height: 64 })).body.result.data;
  const admin = new TestClient(first.url);
  await admin.loginAsAdmin(ADMIN_PASSWORD);
  await admin.mutate("admin.approve", { id });
  await first.close();

  const second = await startTestServer({ DATA_DIR: dataDir, SD_API_URL: sd.url });
  cleanup(() => second.close());
  const again = new TestClient(second.url, { userAgent: "restart-visitor" });
  for (const [name, value] of visitor.cookies) again.cookies.set(name, value);
  await waitFor("the job to be done after the restart", async () => (await ownStatus(again)) === "done");
  await new Promise((resolve) => setTimeout(resolve, 300));
  expect(sd.calls.filter((call) => call.body.prompt === "survive the restart")).toHaveLength(1);
});

test("the line keeps its fair order and the admin's pins across a server restart", async () => {
  const dataDir = makeDataDir();
  cleanup(() => removeDataDir(dataDir));
  const first = await startTestServer({ DATA_DIR: dataDir, LOCAL_GENERATOR: "false", LIMIT_PENDING_PROMPTS: "0" });
  const admin = new TestClient(first.url);
  await admin.loginAsAdmin(ADMIN_PASSWORD);
  const submit = async (visitor: TestClient, prompt: string) => (await visitor.mutate("prompt.submit", { prompt, width: 64, height: 64 })).body.result.data.id as number;
  const busy = new TestClient(first.url, { userAgent: "restart busy guest" });
  const other = new TestClient(first.url, { userAgent: "restart other guest" });
  await busy.page("/");
  await other.page("/");
  const ids = [await submit(busy, "busy 1"), await submit(busy, "busy 2"), await submit(busy, "busy 3"), await submit(other, "other 1")];
  for (const id of ids) await admin.mutate("admin.approve", { id });
  await admin.mutate("admin.pinToFront", { id: ids[2] });
  const line = async (client: TestClient) => (await client.query("admin.dashboard")).body.result.data.line as Record<string, number>;
  const before = await line(admin);
  // Pinned first; then fair turns: the other guest's single job before the busy guest's second.
  expect([before[ids[2]!], before[ids[0]!], before[ids[3]!], before[ids[1]!]]).toEqual([1, 2, 3, 4]);
  await first.close();

  const second = await startTestServer({ DATA_DIR: dataDir, LOCAL_GENERATOR: "false" });
  cleanup(() => second.close());
  const again = new TestClient(second.url);
  await again.loginAsAdmin(ADMIN_PASSWORD);
  expect(await line(again)).toEqual(before);
});
