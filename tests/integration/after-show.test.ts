/**
 * After the show: authors' downloads, the gallery and its switch, the export zip (checked with
 * Info-ZIP's unzip against the database and the image files) and "end the event".
 */
import { execFile } from "node:child_process";
import { readdirSync, readFileSync, writeFileSync } from "node:fs";
import path from "node:path";
import { promisify } from "node:util";
import { TestClient } from "../helpers/client";
import { ensureProgram } from "../helpers/debian";
import { serverWithAdmin, waitFor, type TestServer } from "../helpers/server";
import type { ExportRecord } from "../../server/domain/export";
import { useCleanups } from "../helpers/cleanups";

const run = promisify(execFile);
const cleanup = useCleanups();

const rows = (server: TestServer, sql: string, ...params: unknown[]) => server.services.db.$client.prepare(sql).all(...params) as Array<Record<string, any>>;
const count = (server: TestServer, table: string) => (rows(server, `SELECT count(*) AS n FROM ${table}`)[0]!.n as number);

async function visitor(server: TestServer, name: string): Promise<TestClient> {
  const client = new TestClient(server.url, { userAgent: `after-show ${name}` });
  await client.page("/");
  return client;
}

/** Submits, approves and waits for the image; returns the prompt's id. */
async function generated(server: TestServer, admin: TestClient, author: TestClient, prompt: string, negativePrompt = ""): Promise<number> {
  const submitted = await author.mutate("prompt.submit", { prompt, negativePrompt, width: 64, height: 64 });
  expect(submitted.status).toBe(200);
  const id = submitted.body.result.data.id as number;
  expect((await admin.mutate("admin.approve", { id })).status).toBe(200);
  await waitFor(`prompt ${id}'s image`, () => rows(server, "SELECT 1 FROM images WHERE prompt_id = ?", id).length === 1);
  return id;
}

const reveal = async (admin: TestClient, id: number) => expect((await admin.mutate("admin.markRevealed", { id })).status).toBe(200);

/** RFC 4180, as a spreadsheet reads it. */
function parseCsv(text: string): string[][] {
  const table: string[][] = [];
  let row: string[] = [];
  let cell = "";
  let quoted = false;
  for (let i = 0; i < text.length; i++) {
    const c = text[i]!;
    if (quoted) {
      if (c === '"' && text[i + 1] === '"') (cell += '"'), i++;
      else if (c === '"') quoted = false;
      else cell += c;
    } else if (c === '"') quoted = true;
    else if (c === ",") row.push(cell), (cell = "");
    else if (c === "\r" && text[i + 1] === "\n") {
      row.push(cell), table.push(row), (row = []), (cell = ""), i++;
    } else cell += c;
  }
  return table;
}

async function downloadZip(server: TestServer, client: TestClient, scope: string): Promise<{ file: string; response: Response }> {
  const response = await client.fetch(`/admin/export.zip?scope=${scope}`);
  expect(response.status).toBe(200);
  const file = path.join(server.dataDir, `export-${scope}.zip`);
  writeFileSync(file, Buffer.from(await response.arrayBuffer()));
  return { file, response };
}

test("the export zip holds the revealed images, byte for byte, with metadata.json and metadata.csv that match the database and the audit log; scope=finished adds the unrevealed and the hidden ones, flagged", async () => {
  const unzip = await ensureProgram("unzip", ["unzip"]);
  const { server, admin } = await serverWithAdmin(cleanup);
  const teal = await visitor(server, "teal");
  const other = await visitor(server, "other");
  const tricky = '=HYPERLINK("http://evil.example"), with "quotes"\nand a second line';
  const first = await generated(server, admin, teal, tricky, "-ugly, @blurry");
  const second = await generated(server, admin, other, "Ünïcödé fox: a/b\\c?*");
  const unrevealed = await generated(server, admin, teal, "still a secret");
  const hidden = await generated(server, admin, other, "shown, then hidden by the host");
  await teal.mutate("prompt.submit", { prompt: "never approved" });
  await reveal(admin, first);
  await reveal(admin, second);
  await reveal(admin, hidden);
  expect((await admin.mutate("admin.hide", { id: hidden, hidden: true })).status).toBe(200);

  const { file, response } = await downloadZip(server, admin, "revealed");
  expect(response.headers.get("content-type")).toBe("application/zip");
  expect(response.headers.get("content-disposition")).toMatch(/^attachment; filename="promptgate-revealed-\d{4}-\d\d-\d\d\.zip"$/);
  await run(unzip, ["-tq", file]);
  const entries = (await run(unzip, ["-Z1", file])).stdout.trim().split("\n");
  expect(entries).toEqual(["metadata.json", "metadata.csv", "audit-log.csv", `images/promptgate-${first}-hyperlink-http-evil-example-with-quotes.png`, `images/promptgate-${second}-unicode-fox-a-b-c.png`]);

  const extract = async (entry: string) => (await run(unzip, ["-p", file, entry], { encoding: "buffer", maxBuffer: 64 << 20 })).stdout as unknown as Buffer;
  const metadata = JSON.parse((await extract("metadata.json")).toString("utf8")) as Array<Record<string, any>>;
  const stored = rows(
    server,
    `SELECT p.id, p.prompt, p.negative_prompt, p.created_at AS submitted_at, p.decided_at, p.revealed_at, v.hex,
       i.file_name, i.width, i.height, i.seed, i.parameters, i.generator_id, i.backend, i.queued_ms, i.generation_ms, i.created_at AS finished_at FROM prompts p JOIN images i ON i.prompt_id = p.id JOIN visitors v ON v.id = p.visitor_id
     WHERE p.revealed_at IS NOT NULL AND NOT p.hidden ORDER BY p.id`,
  );
  expect(metadata.map((record) => record.id)).toEqual([first, second]);
  for (const [i, record] of metadata.entries()) {
    const row = stored[i]!;
    const parameters = JSON.parse(row.parameters);
    expect(record).toEqual({
      id: row.id,
      file: entries[i + 3],
      prompt: row.prompt,
      negativePrompt: row.negative_prompt,
      colour: expect.any(String),
      colourHex: row.hex,
      width: row.width,
      height: row.height,
      seed: row.seed,
      sampler: parameters.samplerName,
      steps: parameters.steps,
      cfgScale: parameters.cfgScale,
      generator: row.generator_id,
      backend: row.backend,
      queuedMs: row.queued_ms,
      generationMs: row.generation_ms,
      submittedAt: new Date(row.submitted_at).toISOString(),
      approvedAt: new Date(row.decided_at).toISOString(),
      finishedAt: new Date(row.finished_at).toISOString(),
      revealedAt: new Date(row.revealed_at).toISOString(),
      hidden: false,
    });
    expect(typeof record.sampler).toBe("string");
    expect(await extract(record.file)).toEqual(readFileSync(path.join(server.dataDir, "images", row.file_name)));
  }
  // The colour names are the ones the visitors see.
  const dashboard = (await admin.query("admin.dashboard")).body.result.data;
  const colourOf = (id: number) => dashboard.prompts.find((p: { id: number }) => p.id === id).author.name;
  expect(metadata.map((record) => record.colour)).toEqual([colourOf(first), colourOf(second)]);

  const csvText = (await extract("metadata.csv")).toString("utf8");
  expect(csvText.startsWith("\uFEFF")).toBe(true);
  // Quotes doubled inside a quoted cell, as RFC 4180 has it.
  expect(csvText).toContain('"\'=HYPERLINK(""http://evil.example""), with ""quotes""\nand a second line"');
  const csv = parseCsv(csvText.slice(1));
  expect(csv[0]).toEqual(["id", "file", "prompt", "negative_prompt", "colour", "colour_hex", "width", "height", "seed", "sampler", "steps", "cfg_scale", "generator", "backend", "queued_ms", "generation_ms", "submitted_at", "approved_at", "finished_at", "revealed_at", "hidden"]);
  expect(csv).toHaveLength(3);
  const byHeader = csv.slice(1).map((cells) => Object.fromEntries(csv[0]!.map((header, i) => [header, cells[i]])));
  // A formula typed by a guest stays text in a spreadsheet: a leading ' before = + - @.
  expect(byHeader[0]!.prompt).toBe(`'${tricky}`);
  expect(byHeader[0]!.negative_prompt).toBe("'-ugly, @blurry");
  expect(byHeader[1]!.prompt).toBe("Ünïcödé fox: a/b\\c?*");
  for (const [i, record] of metadata.entries()) {
    expect(byHeader[i]).toMatchObject({ id: String(record.id), seed: String(record.seed), sampler: record.sampler, steps: String(record.steps), file: record.file, revealed_at: record.revealedAt, hidden: "false" });
  }

  // The audit log goes with the images: every row, this export included, its details as JSON.
  const audit = parseCsv((await extract("audit-log.csv")).toString("utf8").slice(1));
  expect(audit[0]).toEqual(["at", "actor", "action", "target", "details"]);
  const logged = rows(server, "SELECT actor, action, target FROM audit_log ORDER BY id");
  expect(audit.slice(1).map(([, actor, action, target]) => ({ actor, action, target: target || null }))).toEqual(logged);
  expect(audit.slice(1).map(([, , action, target]) => `${action} ${target}`)).toEqual(expect.arrayContaining([`prompt.approve prompt ${first}`, `prompt.reveal prompt ${second}`]));
  expect(JSON.parse(audit.at(-1)![4]!)).toEqual({ scope: "revealed", images: 2 });

  const finished = await downloadZip(server, admin, "finished");
  const finishedEntries = (await run(unzip, ["-Z1", finished.file])).stdout.trim().split("\n");
  expect(finishedEntries).toEqual([...entries, `images/promptgate-${unrevealed}-still-a-secret.png`, `images/promptgate-${hidden}-shown-then-hidden-by-the-host.png`]);
  const finishedMetadata = JSON.parse((await run(unzip, ["-p", finished.file, "metadata.json"])).stdout);
  expect(finishedMetadata.map((record: ExportRecord) => [record.id, record.revealedAt === null, record.hidden])).toEqual([
    [first, false, false],
    [second, false, false],
    [unrevealed, true, false],
    [hidden, false, true],
  ]);
  const finishedCsv = parseCsv((await run(unzip, ["-p", finished.file, "metadata.csv"])).stdout.slice(1));
  expect(finishedCsv.slice(1).map((cells) => cells.at(-1))).toEqual(["false", "false", "false", "true"]);
});

test("only the admin gets the export: a visitor is sent to the login, and an unknown scope is refused with 400", async () => {
  const { server, admin } = await serverWithAdmin(cleanup);
  const guest = await visitor(server, "curious");
  const refused = await guest.fetch("/admin/export.zip?scope=finished");
  expect(refused.status).toBe(302);
  expect(refused.headers.get("location")).toBe("/admin/login");
  expect(await refused.text()).not.toContain("PK");
  const bad = await admin.fetch("/admin/export.zip?scope=everything");
  expect(bad.status).toBe(400);
  expect(await bad.text()).toBe("scope must be revealed or finished.");
});

test("?download=1 saves an image as promptgate-<id>-<slug>.png: the admin always, its author only after the reveal, nobody else", async () => {
  const { server, admin } = await serverWithAdmin(cleanup);
  const author = await visitor(server, "author");
  const stranger = await visitor(server, "stranger");
  const id = await generated(server, admin, author, "A Red Fox, at dawn!");
  const url = `/images/${id}.png?download=1`;

  expect((await author.fetch(url)).status).toBe(404);
  const forAdmin = await admin.fetch(url);
  expect(forAdmin.status).toBe(200);
  expect(forAdmin.headers.get("content-disposition")).toBe(`attachment; filename="promptgate-${id}-a-red-fox-at-dawn.png"`);
  await reveal(admin, id);
  const forAuthor = await author.fetch(url);
  expect(forAuthor.status).toBe(200);
  expect(forAuthor.headers.get("content-disposition")).toBe(`attachment; filename="promptgate-${id}-a-red-fox-at-dawn.png"`);
  const fileName = rows(server, "SELECT file_name FROM images WHERE prompt_id = ?", id)[0]!.file_name;
  expect(Buffer.from(await forAuthor.arrayBuffer())).toEqual(readFileSync(path.join(server.dataDir, "images", fileName)));
  expect((await author.fetch(`/images/${id}.png`)).headers.get("content-disposition")).toBeNull();
  expect((await stranger.fetch(url)).status).toBe(404);
  // The author's page links the download beside the image.
  expect((await author.page("/")).html).toContain(`href="/images/${id}.png?download=1"`);
});

test("the gallery is closed until the admin opens it; open, it shows everyone the revealed images only, newest reveal first; closed, it answers 404 “The gallery is closed.” to all but the admin", async () => {
  const { server, admin } = await serverWithAdmin(cleanup);
  const author = await visitor(server, "painter");
  const guest = await visitor(server, "onlooker");
  const older = await generated(server, admin, author, "revealed first");
  const newer = await generated(server, admin, author, "revealed second");
  const secret = await generated(server, admin, author, "not revealed yet");
  await reveal(admin, older);
  await reveal(admin, newer);
  const unopened = await guest.page("/gallery");
  expect(unopened.status).toBe(404);
  expect(unopened.html).toContain("The gallery is closed.");
  expect((await guest.fetch(`/images/${older}.png`)).status).toBe(404);

  // The admin page's switch opens it.
  expect((await admin.page("/admin")).html).toContain("The gallery</a> is closed.");
  const opening = await admin.postForm("/gallery", { intent: "open", from: "admin" });
  expect(opening.status).toBe(302);
  expect(opening.location).toBe("/admin");
  const open = await guest.page("/gallery");
  expect(open.status).toBe(200);
  const shown = [...open.html.matchAll(/data-prompt-id="(\d+)"/g)].map((match) => Number(match[1]));
  expect(shown).toEqual([newer, older]);
  expect(open.html).not.toContain("not revealed yet");
  expect(open.html).toContain('loading="lazy"');
  // A gallery visitor may see a revealed image, never an unrevealed one.
  expect((await guest.fetch(`/images/${older}.png`)).status).toBe(200);
  expect((await guest.fetch(`/images/${secret}.png`)).status).toBe(404);
  expect((await guest.page("/gallery?page=x")).status).toBe(400);

  expect((await admin.page("/admin")).html).toContain("The gallery</a> is open to everyone.");
  await admin.postForm("/gallery", { intent: "close" });
  expect(rows(server, "SELECT value FROM settings WHERE key = 'gallery_open'")).toEqual([{ value: "false" }]);
  const closed = await guest.page("/gallery");
  expect(closed.status).toBe(404);
  expect(closed.html).toContain("The gallery is closed.");
  expect((await guest.query("gallery.page", { page: 1 })).status).toBe(404);
  // Closed, a revealed image is its author's again, and only theirs.
  expect((await guest.fetch(`/images/${older}.png`)).status).toBe(404);
  expect((await author.fetch(`/images/${older}.png`)).status).toBe(200);
  const asAdmin = await admin.page("/gallery");
  expect(asAdmin.status).toBe(200);
  expect(asAdmin.html).toContain("The gallery is closed: only you can see it.");
  // Only the admin may switch it.
  expect((await guest.postForm("/gallery", { intent: "open" })).location).toBe("/admin/login");
  expect((await guest.page("/gallery")).status).toBe(404);

  await admin.postForm("/gallery", { intent: "open" });
  expect((await guest.page("/gallery")).status).toBe(200);
});

test("ending the event needs END typed, then deletes exactly the visitor data (image files too), keeps the admin, generators and settings, and the site carries on", async () => {
  const { server, admin } = await serverWithAdmin(cleanup);
  const teal = await visitor(server, "leaving 1");
  const rose = await visitor(server, "leaving 2");
  const revealed = await generated(server, admin, teal, "a last picture");
  await generated(server, admin, rose, "another picture");
  await rose.mutate("prompt.submit", { prompt: "left pending" });
  await reveal(admin, revealed);
  server.services.generators.add("gpu-box-1");
  await admin.postForm("/gallery", { intent: "open" });
  const kept = {
    settings: rows(server, "SELECT * FROM settings ORDER BY key"),
    generators: rows(server, "SELECT name, token_hash FROM generator_credentials ORDER BY name"),
    adminSessions: count(server, "admin_sessions"),
  };
  const imageDir = path.join(server.dataDir, "images");
  expect(readdirSync(imageDir)).toHaveLength(2);
  const before = { visitors: count(server, "visitors"), sessions: count(server, "sessions"), fingerprints: count(server, "fingerprints") };
  expect(before.fingerprints).toBeGreaterThan(0);

  const page = await admin.page("/admin/end-event");
  expect(page.status).toBe(200);
  expect(page.html).toContain('href="/admin/export.zip?scope=revealed"');
  expect(page.html).toContain("There are 2 visitors, 3 prompts and 2 images (1 revealed).");
  const unconfirmed = await admin.postForm("/admin/end-event", { intent: "end", confirm: "end" });
  expect(unconfirmed.status).toBe(400);
  expect(unconfirmed.html).toContain("Type END (in capitals) to confirm; nothing was deleted.");
  expect(count(server, "prompts")).toBe(3);
  const refused = await teal.mutate("event.end", { confirm: "END" });
  expect(refused.status).toBe(401);
  expect(count(server, "visitors")).toBe(before.visitors);

  const ended = await admin.postForm("/admin/end-event", { intent: "end", confirm: "END" });
  expect(ended.status).toBe(200);
  expect(ended.html).toContain(`${before.visitors} visitors, ${before.sessions} sessions, ${before.fingerprints} fingerprints`);
  expect(ended.html).toContain("3 prompts and 2 jobs");
  expect(ended.html).toContain("2 images and their files");
  for (const table of ["visitors", "sessions", "fingerprints", "prompts", "jobs", "images"]) expect(count(server, table), table).toBe(0);
  expect(readdirSync(imageDir)).toEqual([]);
  expect(rows(server, "SELECT * FROM settings ORDER BY key")).toEqual(kept.settings);
  expect(rows(server, "SELECT name, token_hash FROM generator_credentials ORDER BY name")).toEqual(kept.generators);
  expect(count(server, "admin_sessions")).toBe(kept.adminSessions);
  expect(server.log.lines).toContain(
    `info end of the event: deleted ${before.visitors} visitors, ${before.sessions} sessions, ${before.fingerprints} fingerprints, 3 prompts, 2 jobs, 2 images`,
  );

  // The admin is still logged in; an old guest's cookie is gone, and they start afresh like any new guest.
  expect((await admin.page("/admin")).status).toBe(200);
  const newcomer = await visitor(server, "newcomer");
  const me = (await newcomer.query("visitor.me")).body.result.data;
  expect(me.colour.name).toEqual(expect.any(String));
  expect(count(server, "visitors")).toBe(1);
  const after = await generated(server, admin, newcomer, "a fresh start");
  expect(readdirSync(imageDir)).toHaveLength(1);
  expect((await teal.query("prompt.mine")).body.result.data).toEqual([]);
  expect(after).toBeGreaterThan(revealed);
});
