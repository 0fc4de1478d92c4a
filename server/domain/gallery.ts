/**
 * The gallery (/gallery): revealed images for everyone, newest reveal first, a page at a time,
 * once the admin opens it (a row in `settings`). An image that has not been revealed is never in it.
 */
import { and, count, desc, eq, isNotNull } from "drizzle-orm";
import type { Db } from "../db/client";
import { images, prompts, settings, visitors } from "../db/schema";
import { colourFor, swatchOf } from "./colours";
import { imageUrlFor } from "./prompts";

const OPEN_SETTING = "gallery_open";
export const GALLERY_PAGE_SIZE = 24;

export interface GalleryItem {
  id: number;
  prompt: string;
  width: number;
  height: number;
  revealedAt: string;
  author: { name: string; hex: string; text: string };
  imageUrl: string;
}

export interface GalleryPage {
  items: GalleryItem[];
  /** 1-based; a page past the end is empty, not an error. */
  page: number;
  pages: number;
  total: number;
}

export function createGallery(db: Db) {
  // A hidden image stays out, revealed or not.
  const revealed = and(isNotNull(prompts.revealedAt), eq(prompts.hidden, false));
  return {
    /**
     * Closed until the admin opens it: while open, anyone may load any revealed image, which
     * would otherwise be its author's alone (a look-alike browser sees nothing of Teal's, ADR 007).
     */
    isOpen(): boolean {
      return db.select({ value: settings.value }).from(settings).where(eq(settings.key, OPEN_SETTING)).get()?.value === "true";
    },

    setOpen(open: boolean): void {
      const value = String(open);
      db.insert(settings).values({ key: OPEN_SETTING, value }).onConflictDoUpdate({ target: settings.key, set: { value } }).run();
    },

    page(page: number): GalleryPage {
      const total = db.select({ n: count() }).from(prompts).innerJoin(images, eq(images.promptId, prompts.id)).where(revealed).get()!.n;
      const items = db
        .select({ id: prompts.id, prompt: prompts.prompt, width: images.width, height: images.height, revealedAt: prompts.revealedAt, visitorId: prompts.visitorId, hex: visitors.hex })
        .from(prompts)
        .innerJoin(images, eq(images.promptId, prompts.id))
        .innerJoin(visitors, eq(visitors.id, prompts.visitorId))
        .where(revealed)
        .orderBy(desc(prompts.revealedAt), desc(prompts.id))
        .limit(GALLERY_PAGE_SIZE)
        .offset((page - 1) * GALLERY_PAGE_SIZE)
        .all()
        .map((row) => ({
          id: row.id,
          prompt: row.prompt,
          width: row.width,
          height: row.height,
          revealedAt: row.revealedAt!.toISOString(),
          author: { name: colourFor(row.visitorId).name, ...swatchOf(row.hex) },
          imageUrl: imageUrlFor(row.id),
        }));
      return { items, page, pages: Math.max(1, Math.ceil(total / GALLERY_PAGE_SIZE)), total };
    },
  };
}

export type Gallery = ReturnType<typeof createGallery>;
