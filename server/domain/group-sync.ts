/**
 * fsync shared by everyone who asks at about the same time (group commit): each caller is
 * answered by an fsync that began after it asked, so whatever it wrote before asking is on disk
 * when its promise resolves, and ten results stored at once cost one or two fsyncs, not ten.
 * The fsync runs on libuv's thread pool: the event loop never waits for the disk.
 */
import { open } from "node:fs/promises";

export function createGroupSync(file: string): () => Promise<void> {
  let running: Promise<void> | null = null;
  let next: Promise<void> | null = null;

  async function syncOnce() {
    // fsync is per file, not per descriptor: a descriptor of our own reaches what others wrote.
    const handle = await open(file, "r");
    try {
      await handle.sync();
    } finally {
      await handle.close();
    }
  }
  const start = () => (running = syncOnce().finally(() => (running = null)));

  return () => {
    if (!running) return start();
    // One already runs, and may have begun before the caller's write: the next one answers.
    next ??= running
      .catch(() => undefined)
      .then(() => {
        next = null;
        return start();
      });
    return next;
  };
}
