/**
 * Crashes with real processes (issue 7 §7): the server (server/main.ts) and generators
 * (generator/main.ts) run as children and die by SIGKILL or hang (SIGSTOP); the A1111
 * emulators run here, so every SD call is counted. Kill points are found from outside (the
 * database, the emulator, a socket's queue, a FIFO), never with a hook in the product. Each test ends with the same audit: every approved prompt done with
 * exactly one image, no job left unfinished or failed, and the SD calls exactly as many as the
 * jobs plus the ones a kill wasted (a call whose answer went to a dead process).
 *
 * Covered elsewhere with real generators and a real broker, not repeated here: offline while
 * jobs are done elsewhere then back after a clean close, a silent generator losing its lease,
 * forged statuses and results from a generator that does not hold the job, draining
 * (dispatch.test.ts); a clean server restart (restart.test.ts).
 */
import Database from "better-sqlite3";
import { execFileSync } from "node:child_process";
import { readFileSync, rmSync } from "node:fs";
import path from "node:path";
import { startSdEmulator, type SdEmulator } from "../emulators/sd-server";
import { TestClient } from "../helpers/client";
import { freePort, runEntry, type Child } from "../helpers/processes";
import { ADMIN_PASSWORD, credentialInDataDir, makeDataDir, removeDataDir, waitFor } from "../helpers/server";
import { useCleanups } from "../helpers/cleanups";

const cleanup = useCleanups();

async function emulator(options: Parameters<typeof startSdEmulator>[0] = {}): Promise<SdEmulator> {
  const sd = await startSdEmulator(options);
  cleanup(() => sd.close());
  return sd;
}

/**
 * promptgate as `npm start` runs it, on fixed ports so that it can be killed and restarted.
 * Leases are short enough for a test to wait one out, and long enough that a loaded machine
 * delaying a heartbeat does not move a job (which would cost an SD call the test does not expect).
 */
async function gateway({ leaseSeconds = 5 } = {}, registerCleanup = cleanup) {
  const dataDir = makeDataDir();
  registerCleanup(() => removeDataDir(dataDir));
  const [port, mqttPort] = [await freePort(), await freePort()];
  const env = {
    PORT: String(port),
    MQTT_PORT: String(mqttPort),
    HOST: "127.0.0.1",
    DATA_DIR: dataDir,
    ADMIN_PASSWORD,
    LOCAL_GENERATOR: "false",
    JOB_LEASE_SECONDS: String(leaseSeconds),
    FINGERPRINT_MEMORY_KIB: "4096",
    LIMIT_SUBMITS_PER_MINUTE: "0",
    LIMIT_PENDING_PROMPTS: "0",
  };
  const start = () => runEntry("server/main.ts", env, /listening on/);
  let child: Child = await start();
  registerCleanup(() => child.kill());
  const db = new Database(path.join(dataDir, "promptgate.db"), { readonly: true });
  registerCleanup(() => db.close());
  const base = `http://127.0.0.1:${port}`;
  const visitor = new TestClient(base, { userAgent: "kill tests" });
  await visitor.page("/");
  const admin = new TestClient(base, { userAgent: "kill tests admin" });
  await admin.loginAsAdmin(ADMIN_PASSWORD);

  const sql = <T>(query: string, ...params: unknown[]) => db.prepare(query).all(...params) as T[];
  const madeBy = (ids: number[]) =>
    new Map(sql<{ promptId: number; generatorId: string }>(`SELECT prompt_id AS promptId, generator_id AS generatorId FROM images WHERE prompt_id IN (${ids.join(",")})`).map((row) => [row.promptId, row.generatorId]));

  return {
    mqttPort,
    dataDir,
    get child() {
      return child;
    },
    output: () => child.output(),
    /** SIGKILL, then the same server (database, ports, token) again. */
    async restart() {
      await child.kill("SIGKILL");
      child = await start();
    },
    sql,
    madeBy,
    async approve(prompt: string, size = 64): Promise<number> {
      const { id } = (await visitor.mutate("prompt.submit", { prompt, width: size, height: size })).body.result.data;
      expect((await admin.mutate("admin.approve", { id })).status).toBe(200);
      return id;
    },
    /** Approves `count` prompts, all at once. */
    approveMany(prefix: string, count: number): Promise<number[]> {
      return Promise.all(Array.from({ length: count }, (_, i) => this.approve(`${prefix} ${i}`)));
    },
    /** A generator process connected to this server. */
    async generator(generatorId: string, sd: SdEmulator, env: Record<string, string> = {}): Promise<Child> {
      const generator = await runEntry("generator/main.ts", { MQTT_URL: `mqtt://127.0.0.1:${mqttPort}`, MQTT_PASSWORD: credentialInDataDir(dataDir, generatorId), SD_API_URL: sd.url, GENERATOR_ID: generatorId, ...env }, /online at/);
      cleanup(() => generator.kill());
      return generator;
    },
    /** Waits until the server knows `generatorId` is online (its log says so). */
    online: (generatorId: string, times = 1) => waitFor(`${generatorId} to be online`, () => child.output().split(`generator ${generatorId} is online`).length > times),
    /**
     * Waits until every prompt has its image; `whileWaiting` runs on every look (e.g. to
     * check that no prompt ever shows failed).
     */
    allDone: (ids: number[], whileWaiting: () => void = () => undefined) =>
      waitFor(
        `${ids.length} prompt(s) to be done`,
        () => {
          whileWaiting();
          return madeBy(ids).size === ids.length;
        },
        30_000,
      ),
  };
}
type Gateway = Awaited<ReturnType<typeof gateway>>;

/**
 * Tests that do not kill the server share one (each with its own generators and prompts);
 * the audit's "no lease held" covers it whole, so they run one after another, as vitest does
 * within a file. A lease of 3 s lets the frozen generator's run out soon.
 */
let shared: Gateway | undefined;
const cleanupAfterAll = useCleanups("all");
const sharedGateway = async () => (shared ??= await gateway({ leaseSeconds: 3 }, cleanupAfterAll));

const callsFor = (sd: SdEmulator, prefix: string) => sd.calls.filter((call) => String(call.body.prompt).startsWith(prefix)).length;
/** No call at the backend, none waiting for it: nothing more is on its way. */
const idle = (...emulators: SdEmulator[]) => waitFor("the SD servers to be idle", () => emulators.every((sd) => sd.activeTask() === null && sd.queuedTasks().length === 0));

/** The audit every test ends with (see the header). */
async function expectEachDoneOnce(server: Gateway, ids: number[], sdCalls: { emulators: SdEmulator[]; prefix: string; expected: number }) {
  await server.allDone(ids);
  await idle(...sdCalls.emulators);
  const list = ids.join(",");
  expect(server.sql(`SELECT status, count(*) AS n FROM prompts WHERE id IN (${list}) GROUP BY status`)).toEqual([{ status: "done", n: ids.length }]);
  expect(server.sql(`SELECT prompt_id AS id FROM images WHERE prompt_id IN (${list}) GROUP BY prompt_id HAVING count(*) <> 1`)).toEqual([]);
  // No job stuck in line or under a lease, none failed: one job per prompt, each done.
  expect(server.sql(`SELECT state, count(*) AS n FROM jobs WHERE prompt_id IN (${list}) GROUP BY state`)).toEqual([{ state: "done", n: ids.length }]);
  expect(server.sql("SELECT count(*) AS n FROM jobs WHERE lease_generator_id IS NOT NULL")).toEqual([{ n: 0 }]);
  expect(sdCalls.emulators.reduce((sum, sd) => sum + callsFor(sd, sdCalls.prefix), 0)).toBe(sdCalls.expected);
}

/** The job id of a prompt. */
const jobOf = (server: Gateway, id: number) => server.sql<{ jobId: string }>("SELECT job_id AS jobId FROM prompts WHERE id = ?", id)[0]!.jobId;

describe("a generator killed with SIGKILL", () => {
  test("killed during its SD call and restarted, it makes the job again: one image, and the one SD call the kill wasted", async () => {
    const server = await sharedGateway();
    const sd = await emulator({ delayMs: 1000 });
    const doomed = await server.generator("restarts", sd);
    const id = await server.approve("outlive the generator");
    await waitFor("the generator to be at the SD server", () => sd.activeTask() === jobOf(server, id));
    await doomed.kill("SIGKILL");
    await waitFor("the broker to announce its death", () => server.output().includes("generator restarts is offline"));
    sd.setDelay(0);
    await server.generator("restarts", sd);
    await expectEachDoneOnce(server, [id], { emulators: [sd], prefix: "outlive the generator", expected: 2 });
  });

  test("killed during its SD call while another is online, its job moves there; back after 20 jobs were done elsewhere, it re-renders none", async () => {
    const server = await sharedGateway();
    const boxes = {
      a: { sd: await emulator({ delayMs: 1000 }), id: "box-a", child: null as Child | null },
      b: { sd: await emulator({ delayMs: 1000 }), id: "box-b", child: null as Child | null },
    };
    await Promise.all(Object.values(boxes).map(async (box) => (box.child = await server.generator(box.id, box.sd))));
    await Promise.all([server.online("box-a"), server.online("box-b")]);
    const first = await server.approve("moved: first");
    const jobId = jobOf(server, first);
    const [victim, survivor] = await waitFor("a generator to be at its SD server", () =>
      boxes.a.sd.activeTask() === jobId ? [boxes.a, boxes.b] : boxes.b.sd.activeTask() === jobId ? [boxes.b, boxes.a] : null,
    );
    survivor.sd.setDelay(0);
    // The broker sees the connection drop at once and publishes the victim's will, which ends its
    // lease; without a will (a hung process, a cut network) the lease runs out instead (below).
    await victim.child!.kill("SIGKILL");
    await server.allDone([first]);
    expect(server.madeBy([first]).get(first)).toBe(survivor.id);

    const meanwhile = await server.approveMany("moved: meanwhile", 20);
    await server.allDone(meanwhile);
    victim.sd.setDelay(0);
    await server.generator(victim.id, victim.sd);
    await server.online(victim.id, 2);
    // One job after its return: once it is done, whatever the return could trigger has run.
    const after = await server.approve("moved: after the return");
    await expectEachDoneOnce(server, [first, ...meanwhile, after], { emulators: [victim.sd, survivor.sd], prefix: "moved:", expected: 1 + 1 + 20 + 1 });
    expect(callsFor(victim.sd, "moved: meanwhile")).toBe(0);
    expect(new Set(server.madeBy(meanwhile).values())).toEqual(new Set([survivor.id]));
  });
});

describe("a generator frozen with SIGSTOP", () => {
  // A hung process keeps its TCP connection: no will, so only the lease can free its job.
  test("frozen during its SD call, it loses the job to another after its lease; thawed, it adds no second image", async () => {
    const server = await sharedGateway();
    const frozenSd = await emulator({ delayMs: 500 });
    const otherSd = await emulator();
    const frozen = await server.generator("freezes", frozenSd);
    await server.online("freezes");
    const id = await server.approve("frozen holder");
    const jobId = jobOf(server, id);
    await waitFor("the SD call to start, then freeze the generator", () => frozenSd.activeTask() === jobId && process.kill(frozen.process.pid!, "SIGSTOP"));
    cleanup(() => process.kill(frozen.process.pid!, "SIGCONT"));
    await server.generator("stays-awake", otherSd);
    await waitFor("the lease to run out", () => server.output().includes(`the lease of freezes on job ${jobId} ran out`));
    await server.allDone([id]);
    process.kill(frozen.process.pid!, "SIGCONT");
    // Thawed, it reads the server's cancel and the SD server's answer, in either order: it drops
    // the job, or its result arrives for a job already done and is ignored.
    await waitFor("the thawed generator to drop the job, or its result to be ignored", () =>
      frozen.output().includes(`job ${jobId} cancelled by the server`) || server.output().includes(`ignored a duplicate result for job ${jobId} from freezes`),
    );
    await expectEachDoneOnce(server, [id], { emulators: [frozenSd, otherSd], prefix: "frozen holder", expected: 2 });
    expect(server.madeBy([id]).get(id)).toBe("stays-awake");
  });
});

describe("the server killed with SIGKILL", () => {
  // The approval commits the job before anything is published: a kill between the two leaves a
  // committed job that no generator has. With no generator online the job stays in exactly that
  // state, whatever the timing, so the test needs no hook inside the server.
  test("killed after an approval, before the job was published: after the restart the job is made once", async () => {
    const server = await gateway();
    const sd = await emulator();
    const id = await server.approve("approved, then the crash");
    expect(server.sql("SELECT state, lease_generator_id AS holder, publish_count AS published FROM jobs")).toEqual([{ state: "queued", holder: null, published: 0 }]);
    await server.restart();
    await server.generator("after-the-crash", sd);
    await expectEachDoneOnce(server, [id], { emulators: [sd], prefix: "approved, then the crash", expected: 1 });
  });

  test("killed mid-generation, its generator's result reaches the restarted server: made once", async () => {
    const server = await gateway();
    const sd = await emulator({ delayMs: 1500 });
    await server.generator("survives-the-server", sd);
    const id = await server.approve("generated while the server dies");
    await waitFor("the SD backend to start the job", () => sd.activeTask() === jobOf(server, id));
    await server.restart();
    await expectEachDoneOnce(server, [id], { emulators: [sd], prefix: "generated while the server dies", expected: 1 });
  });

  /**
   * The window between a result leaving the generator and its row being committed. Aedes
   * acknowledges a QoS 1 publish before its subscribers (the server's link) have it, so a kill
   * after the acknowledgement is a different, racy case; this test takes the deterministic part:
   * the server is stopped (SIGSTOP) while the SD call runs, so the generator's result can only
   * wait, unacknowledged, in the stopped server's socket; reading that socket's receive queue
   * (/proc/net/tcp) tells when the result is there. Then SIGKILL: the generator still holds the
   * job (it lets go only on the acknowledgement), resends the result on reconnecting (mqtt.js
   * keeps unacknowledged QoS 1 packets across reconnects) and lists the job as in flight; the
   * restarted server, which renewed its leases for one period, stores it. One SD call.
   */
  test("killed between a generator's publish of the result and its storage, the result is resent and stored once", async () => {
    const server = await gateway();
    const sd = await emulator({ delayMs: 500 });
    await server.generator("resends", sd);
    // 512×512: its result (~4 KiB of base64 PNG) stands out from heartbeats and statuses.
    const id = await server.approve("published, then the crash", 512);
    const jobId = jobOf(server, id);
    await waitFor("the SD call to start, then stop the server", () => {
      // Same turn as the look: the emulator cannot answer in between.
      if (sd.activeTask() !== jobId) return false;
      return process.kill(server.child.process.pid!, "SIGSTOP");
    });
    await waitFor("the result to wait in the stopped server's socket", () => bytesWaitingAt(server.mqttPort) >= 4000);
    expect(server.sql("SELECT count(*) AS n FROM images")).toEqual([{ n: 0 }]);
    await server.restart();
    await expectEachDoneOnce(server, [id], { emulators: [sd], prefix: "published, then the crash", expected: 1 });
    expect(server.madeBy([id]).get(id)).toBe("resends");
  });

  /**
   * The rest of that window, after the broker's acknowledgement: Aedes acknowledges a QoS 1
   * publish before its subscribers (the server's link) have it. To hold the server inside
   * storeResult without a hook, a FIFO waits where it writes the image file: opening
   * a FIFO for writing blocks until someone reads it. Killed there, the server loses the result;
   * the generator, which lets go of a job only on the server's "stored", lists the job when it
   * reconnects and sends the result again, which the restarted server stores. One SD call.
   */
  test("killed after the broker acknowledged a result, before it was stored: the generator sends it again, one image, one SD call", async () => {
    const server = await gateway();
    const sd = await emulator();
    const id = await server.approve("acknowledged, then the crash");
    const jobId = jobOf(server, id);
    const fifo = path.join(server.dataDir, "images", `${id}-${jobId}.png`);
    execFileSync("mkfifo", [fifo]);
    const generator = await server.generator("acked", sd);
    await waitFor("the generator to have its result acknowledged", () => generator.output().includes(`job ${jobId} done in`));
    expect(server.sql("SELECT count(*) AS n FROM images")).toEqual([{ n: 0 }]);
    await server.child.kill("SIGKILL");
    rmSync(fifo);
    await server.restart();
    await expectEachDoneOnce(server, [id], { emulators: [sd], prefix: "acknowledged, then the crash", expected: 1 });
    await waitFor("the generator to hear that it is stored", () => generator.output().includes(`job ${jobId} stored by the server`));
  });
});

describe("a generator stopped with SIGTERM", () => {
  // Its broker (inside the server) is gone: no PUBACK and no "stored" will ever come, so only the
  // drain deadline (GENERATOR_DRAIN_SECONDS) ends the wait for them.
  test("whose broker is gone, it finishes its SD call, waits for the server's confirmation no longer than its deadline, names the unconfirmed job and exits 0", async () => {
    const server = await gateway();
    const sd = await emulator({ delayMs: 1000 });
    const generator = await server.generator("outlived-its-broker", sd, { GENERATOR_DRAIN_SECONDS: "1" });
    const id = await server.approve("finished without a broker");
    const jobId = jobOf(server, id);
    await waitFor("the generator to be at the SD server", () => sd.activeTask() === jobId);
    await server.child.kill("SIGKILL");
    expect(await generator.kill("SIGTERM")).toBe(0);
    expect(callsFor(sd, "finished without a broker")).toBe(1);
    expect(generator.output()).toContain(`stopping without the server's confirmation for the results of job(s) ${jobId}`);
    // Its result never reached a server: back, the job is made again, once.
    await server.restart();
    sd.setDelay(0);
    await server.generator("outlived-its-broker", sd);
    await expectEachDoneOnce(server, [id], { emulators: [sd], prefix: "finished without a broker", expected: 2 });
  });
});

/** Bytes received but not yet read by whoever listens on `port` (IPv4 loopback), from /proc/net/tcp. */
function bytesWaitingAt(port: number): number {
  const hexPort = `:${port.toString(16).toUpperCase().padStart(4, "0")}`;
  return readFileSync("/proc/net/tcp", "utf8")
    .split("\n")
    .slice(1)
    .map((line) => line.trim().split(/\s+/))
    .filter((fields) => fields[1]?.endsWith(hexPort) && fields[3] === "01") // 01: ESTABLISHED
    .reduce((sum, fields) => sum + parseInt(fields[4]!.split(":")[1]!, 16), 0);
}

describe("the SD server down", () => {
  // While the SD server is down the generator says it is unhealthy and gets nothing; the jobs
  // wait in the server's line, which has no deadline. So an outage of 30 s or 30 min ends the
  // same way as this one, which lasts until the generator has exhausted its retries on a job,
  // handed it back and failed a health probe.
  test("down with jobs queued: no job fails, every one is done once after it answers again", async () => {
    const server = await sharedGateway();
    const sd = await emulator();
    await server.generator("waits-for-sd", sd, { GENERATOR_MAX_ATTEMPTS: "2" });
    await server.online("waits-for-sd");
    await sd.down();
    const ids = await server.approveMany("outage", 3);
    await waitFor("a job to be handed back after its retries", () => server.output().includes("handed back by waits-for-sd"));
    await waitFor("the generator to be unhealthy", () => server.output().includes("generator waits-for-sd is online but unhealthy"));
    expect(server.sql(`SELECT count(*) AS n FROM prompts WHERE status = 'failed'`)).toEqual([{ n: 0 }]);
    await sd.up();
    await expectEachDoneOnce(server, ids, { emulators: [sd], prefix: "outage", expected: 3 });
  });
});

describe("three generators with an SD server that takes 50–300 ms", () => {
  test("60 jobs with one generator killed midway: 60 images, one SD call each plus the one the kill wasted, all three used", async () => {
    const server = await sharedGateway();
    const boxes = await Promise.all(
      ["one", "two", "three"].map(async (name, n) => {
        const sd = await emulator({ delayRangeMs: { min: 50, max: 300, seed: n + 1 } });
        return { id: `box-${name}`, sd, child: await server.generator(`box-${name}`, sd) };
      }),
    );
    await Promise.all(boxes.map((box) => server.online(box.id)));
    const ids = await server.approveMany("sixty", 60);
    const victim = boxes[0]!;
    await waitFor("a third of the jobs done, the victim busy at its SD server, then kill it", () => {
      const made = [...server.madeBy(ids).values()];
      if (made.length < 20 || !made.includes(victim.id) || victim.sd.activeTask() === null) return false;
      // Same turn as the look: its SD server has not answered, so this call is wasted.
      return victim.child.process.kill("SIGKILL");
    });
    await expectEachDoneOnce(server, ids, { emulators: boxes.map((box) => box.sd), prefix: "sixty", expected: 61 });
    expect(new Set(server.madeBy(ids).values())).toEqual(new Set(boxes.map((box) => box.id)));
  });
});

// Needs the server rule the lead is adding (server/link.ts, server/domain/jobs.ts): a `failed`
// that looks like the backend's fault sends the job to a generator that has not failed it yet.
describe("failover from a generator whose SD server always fails (server rule: a backend failure is retried elsewhere)", () => {
  test("a generator whose SD server answers 500 to everything never makes a job show failed while a healthy one can make it", async () => {
    const server = await sharedGateway();
    const broken = await emulator();
    broken.failAlways({ status: 500, body: { error: "OutOfMemoryError", detail: "", body: "", errors: "CUDA out of memory. Tried to allocate 2.00 GiB" } });
    const healthy = await emulator({ delayMs: 100 });
    await Promise.all([server.generator("broken-box", broken, { GENERATOR_MAX_ATTEMPTS: "1" }), server.generator("healthy-box", healthy)]);
    await Promise.all([server.online("broken-box"), server.online("healthy-box")]);
    const ids = await server.approveMany("failover", 4);
    const noneFailed = () => expect(server.sql(`SELECT id FROM prompts WHERE status = 'failed' AND id IN (${ids.join(",")})`)).toEqual([]);
    await server.allDone(ids, noneFailed);
    await expectEachDoneOnce(server, ids, { emulators: [healthy], prefix: "failover", expected: 4 });
    expect(new Set(server.madeBy(ids).values())).toEqual(new Set(["healthy-box"]));
    // The broken box was tried (it had free slots), once per job it was given.
    expect(callsFor(broken, "failover")).toBeGreaterThan(0);
    expect([...broken.seedsByTask.values()].every((seeds) => seeds.length === 1)).toBe(true);
  });
});
