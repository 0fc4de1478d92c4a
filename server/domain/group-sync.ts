/**
 * fsync shared by everyone who asks at about the same time (group commit): each caller is
 * answered by an fsync that began after it asked, so whatever it wrote before asking is on disk
 * when its promise resolves, and ten results stored at once cost one or two fsyncs, not ten.
 * The fsync runs on libuv's thread pool: the event loop never waits for the disk.
 */
import { open, type FileHandle } from "node:fs/promises";

export interface GroupSync {
  sync(): Promise<void>;
  /** Waits for the fsyncs asked for so far, then lets go of the file. */
  close(): Promise<void>;
}

export function createGroupSync(file: string): GroupSync {
  let running: Promise<void> | null = null;
  let next: Promise<void> | null = null;
  // fsync is per file, not per descriptor: one descriptor of our own, kept open, reaches what
  // others write. Opening and closing one per fsync cost two more trips to the thread pool.
  // The files synced (the image directory, SQLite's WAL) keep their inode while the server
  // runs: SQLite truncates and reuses its WAL, and deletes it only when the database closes.
  let handle: Promise<FileHandle> | null = null;

  async function syncOnce() {
    handle ??= open(file, "r");
    const opened = handle;
    try {
      await (await opened).sync();
    } catch (error) {
      // A file that could not be opened (not there yet) is tried afresh by the next caller.
      if (handle === opened) handle = null;
      await opened.then((fd) => fd.close()).catch(() => undefined);
      throw error;
    }
  }
  const start = () => (running = syncOnce().finally(() => (running = null)));

  return {
    sync() {
      if (!running) return start();
      // One already runs, and may have begun before the caller's write: the next one answers.
      next ??= running
        .catch(() => undefined)
        .then(() => {
          next = null;
          return start();
        });
      return next;
    },
    async close() {
      await (next ?? running)?.catch(() => undefined);
      const opened = handle;
      handle = null;
      await opened?.then((fd) => fd.close()).catch(() => undefined);
    },
  };
}
