import { mkdtempSync, readdirSync, readlinkSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { createGroupSync } from "../../server/domain/group-sync";

let dir: string;
beforeEach(() => {
  dir = mkdtempSync(path.join(tmpdir(), "promptgate-group-sync-"));
});
afterEach(() => rmSync(dir, { recursive: true, force: true }));

test("callers who ask while an fsync runs share the next one, which starts only after the running one ends", async () => {
  const file = path.join(dir, "data");
  writeFileSync(file, "written before asking");
  const { sync, close } = createGroupSync(file);
  const ended: string[] = [];
  const first = sync();
  const second = sync();
  const third = sync();
  // The first may have begun before the others wrote: they wait for one of their own, together.
  expect(second).toBe(third);
  expect(second).not.toBe(first);
  await Promise.all([first.then(() => ended.push("first")), second.then(() => ended.push("second"))]);
  expect(ended).toEqual(["first", "second"]);
  // Nothing running: the next caller gets a fresh fsync at once.
  const later = sync();
  expect(later).not.toBe(second);
  await later;
  await close();
});

test("a failed fsync rejects its callers only; the next caller gets a new one", async () => {
  const file = path.join(dir, "appears later");
  const { sync, close } = createGroupSync(file);
  const failed = sync();
  const queued = sync();
  await expect(failed).rejects.toThrow("ENOENT");
  await expect(queued).rejects.toThrow("ENOENT");
  writeFileSync(file, "now it exists");
  await expect(sync()).resolves.toBeUndefined();
  await close();
});

/** This process's descriptors open on `file` (Linux: /proc/self/fd). */
function descriptorsOn(file: string): number {
  return readdirSync("/proc/self/fd").filter((fd) => {
    try {
      return readlinkSync(`/proc/self/fd/${fd}`) === file;
    } catch {
      return false; // the descriptor readdir itself used, closed by now
    }
  }).length;
}

test("one descriptor serves every fsync of a file until close lets go of it", async () => {
  const file = path.join(dir, "wal");
  writeFileSync(file, "written before asking");
  const { sync, close } = createGroupSync(file);
  await sync();
  await Promise.all([sync(), sync()]);
  await sync();
  expect(descriptorsOn(file)).toBe(1);
  await close();
  expect(descriptorsOn(file)).toBe(0);
});
