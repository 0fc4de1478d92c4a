/**
 * The show (issue 8 §5): the reveal as server state, so the presenter's phone and the projector
 * follow one truth. One show at a time, kept as a row in `settings`:
 *
 * - its *sequence* is the images shown in this show, in the order they were shown, then the
 *   finished images nobody has seen yet, in the show's mode. Showing an image moves it from the
 *   second part to the end of the first, so its place never changes, an image that finishes late
 *   joins the unseen part, and images revealed before this show are not in it at all;
 * - only the image put on screen is marked revealed (in the same transaction), never one passed over;
 * - the audience's link carries a random code the presenter opens, rotates and closes: without
 *   it there is no show to see. At 8 characters of 31 (~8·10¹¹) it cannot be guessed over HTTP.
 *
 * Every change notes a `show` event on the live log (ADR 012); both views read the state anew.
 */
import { createHash, randomBytes, randomInt } from "node:crypto";
import { and, eq, inArray, isNull, type SQL } from "drizzle-orm";
import type { Db } from "../db/client";
import { prompts, settings, visitors } from "../db/schema";
import { colourFor, swatchOf } from "./colours";
import { DomainError } from "./errors";
import { sameSecret } from "./secret-tokens";

export const SHOW_MODES = ["order", "colour", "shuffle"] as const;
/** `order`: as submitted; `colour`: each guest's round (everyone's first, then everyone's second…); `shuffle`: seeded, stable for the show. */
export type ShowMode = (typeof SHOW_MODES)[number];
export const AUTO_ADVANCE_MAX_SECONDS = 600;

/** Letters and digits that cannot be mistaken for one another when typed from a screen. */
const CODE_ALPHABET = "23456789ABCDEFGHJKMNPQRSTUVWXYZ";
export const SHOW_CODE_LENGTH = 8;
const SETTING = "show";

interface ShowRecord {
  /** The audience's code; null: the audience view is closed. */
  code: string | null;
  mode: ShowMode;
  /** 0: the presenter advances by hand. */
  autoAdvanceSeconds: number;
  /** Null before the first start. */
  startedAt: number | null;
  seed: number;
  /** Prompt ids shown in this show, in the order first shown. */
  shown: number[];
  /** On screen; null: the title card (started, nothing shown yet) or the end card. */
  currentId: number | null;
  ended: boolean;
}

const INITIAL: ShowRecord = { code: null, mode: "order", autoAdvanceSeconds: 0, startedAt: null, seed: 0, shown: [], currentId: null, ended: false };

/** One image on the screen, as anyone in the room may see it (it is revealed). */
export interface Slide {
  id: number;
  prompt: string;
  width: number;
  height: number;
  author: { name: string; hex: string; text: string };
}

/** What the audience sees. `phase`: waiting (not started), title (started, nothing shown), image, end. */
export interface ShowView {
  phase: "waiting" | "title" | "image" | "end";
  slide: Slide | null;
  /** 1-based place of the slide in the sequence, and the sequence's length (shown + still to show). */
  position: number;
  total: number;
  /** Shown in this show: images and distinct guests (the end card's "N images from M guests"). */
  shownImages: number;
  shownGuests: number;
  autoAdvanceSeconds: number;
}

/** What the presenter sees besides: the settings, the link's code and what comes next. */
export interface PresenterView extends ShowView {
  mode: ShowMode;
  code: string | null;
  /** The image `next` would put on screen, if any. */
  upNext: Slide | null;
  /** Finished images not yet shown. */
  unseen: number;
}

/** Small, stable, well-mixed: the shuffle's key for an image under a show's seed. */
function shuffleKey(seed: number, id: number): string {
  return createHash("sha256").update(`${seed}:${id}`).digest("hex");
}

type Image = { id: number; visitorId: number };

/**
 * The images not yet shown (given in id order), in the order the show will take them. A shuffle
 * depends only on the seed and each id, so an image that joins never moves the others. By
 * colour, round k holds each guest's k-th image counting those already shown, guests in the
 * order of their first image.
 */
export function orderUnseen<T extends Image>(unseen: T[], { mode, seed, shown }: { mode: ShowMode; seed: number; shown: Image[] }): T[] {
  if (mode === "shuffle") {
    const keys = new Map(unseen.map((row) => [row.id, shuffleKey(seed, row.id)]));
    return [...unseen].sort((a, b) => (keys.get(a.id)! < keys.get(b.id)! ? -1 : 1));
  }
  if (mode === "order") return unseen;
  const firstOf = new Map<number, number>();
  for (const row of [...shown, ...unseen]) firstOf.set(row.visitorId, Math.min(row.id, firstOf.get(row.visitorId) ?? Infinity));
  const turns = new Map<number, number>();
  for (const row of shown) turns.set(row.visitorId, (turns.get(row.visitorId) ?? 0) + 1);
  const round = new Map<number, number>();
  for (const row of unseen) {
    const k = turns.get(row.visitorId) ?? 0;
    round.set(row.id, k);
    turns.set(row.visitorId, k + 1);
  }
  return [...unseen].sort((a, b) => round.get(a.id)! - round.get(b.id)! || firstOf.get(a.visitorId)! - firstOf.get(b.visitorId)! || a.id - b.id);
}

export function createShow(db: Db, { changes, now = Date.now }: { changes: { promptChanged(ids: number | number[]): void; showChanged(): void }; now?: () => number }) {
  let timer: NodeJS.Timeout | null = null;

  function read(): ShowRecord {
    const row = db.select({ value: settings.value }).from(settings).where(eq(settings.key, SETTING)).get();
    return row ? { ...INITIAL, ...(JSON.parse(row.value) as Partial<ShowRecord>) } : { ...INITIAL };
  }

  function write(record: ShowRecord): void {
    const value = JSON.stringify(record);
    db.insert(settings).values({ key: SETTING, value }).onConflictDoUpdate({ target: settings.key, set: { value } }).run();
  }

  type Row = { id: number; visitorId: number; prompt: string; width: number; height: number; hex: string };
  const columns = { id: prompts.id, visitorId: prompts.visitorId, prompt: prompts.prompt, width: prompts.width, height: prompts.height, hex: visitors.hex };
  const slideOf = (row: Row): Slide => ({ id: row.id, prompt: row.prompt, width: row.width, height: row.height, author: { name: colourFor(row.visitorId).name, ...swatchOf(row.hex) } });

  /**
   * The show's images: those shown and still there ("end the event" deletes them; a moderator
   * may hide one, even while it is on screen), then the unseen in the mode's order.
   */
  function sequence(record: ShowRecord): { shown: Row[]; unseen: Row[] } {
    const finished = (where: SQL) =>
      db
        .select(columns)
        .from(prompts)
        .innerJoin(visitors, eq(visitors.id, prompts.visitorId))
        .where(and(eq(prompts.status, "done"), eq(prompts.hidden, false), where))
        .orderBy(prompts.id)
        .all();
    const shownRows = new Map((record.shown.length ? finished(inArray(prompts.id, record.shown)) : []).map((row) => [row.id, row]));
    const shown = record.shown.flatMap((id) => shownRows.get(id) ?? []);
    const unseen = finished(isNull(prompts.revealedAt));
    return { shown, unseen: orderUnseen(unseen, { mode: record.mode, seed: record.seed, shown }) };
  }

  /**
   * Where the show stands in `shown` (-1: before the first image). An image that left the show
   * while on screen (hidden, deleted) gives way to the last one still there that was shown
   * before it, so the screen drops it at once and Next and Previous go on from there.
   */
  function currentIndex(record: ShowRecord, shown: Row[]): number {
    const there = new Map(shown.map((row, index) => [row.id, index]));
    for (let i = record.currentId === null ? -1 : record.shown.indexOf(record.currentId); i >= 0; i--) {
      const index = there.get(record.shown[i]!);
      if (index !== undefined) return index;
    }
    return -1;
  }

  function viewOf(record: ShowRecord): PresenterView {
    const { shown, unseen } = sequence(record);
    const index = currentIndex(record, shown);
    const phase = record.startedAt === null ? "waiting" : record.ended ? "end" : index >= 0 ? "image" : "title";
    const upNext = phase === "end" ? unseen[0] : (shown[index + 1] ?? unseen[0]);
    return {
      phase,
      slide: phase === "image" ? slideOf(shown[index]!) : null,
      position: phase === "image" ? index + 1 : 0,
      total: shown.length + unseen.length,
      shownImages: shown.length,
      shownGuests: new Set(shown.map((row) => row.visitorId)).size,
      autoAdvanceSeconds: record.autoAdvanceSeconds,
      mode: record.mode,
      code: record.code,
      upNext: upNext && record.startedAt !== null ? slideOf(upNext) : null,
      unseen: unseen.length,
    };
  }

  /** Runs `change` on the stored state in one transaction, with any reveal it makes; notes the change and re-arms auto-advance. */
  function update(change: (record: ShowRecord) => number | void): PresenterView {
    const view = db.transaction(
      () => {
        const record = read();
        const revealed = change(record);
        if (revealed !== undefined) {
          db.update(prompts).set({ revealedAt: new Date(now()) }).where(eq(prompts.id, revealed)).run();
          changes.promptChanged(revealed);
        }
        write(record);
        return viewOf(record);
      },
      { behavior: "immediate" },
    );
    changes.showChanged();
    arm(view);
    return view;
  }

  function requireStarted(record: ShowRecord) {
    if (record.startedAt === null) throw new DomainError("SHOW_NOT_STARTED", "Start the show first.");
  }

  function next(record: ShowRecord): number | void {
    requireStarted(record);
    const { shown, unseen } = sequence(record);
    const index = record.ended ? shown.length - 1 : currentIndex(record, shown);
    if (shown[index + 1]) {
      record.currentId = shown[index + 1]!.id;
      record.ended = false;
    } else if (unseen[0]) {
      record.currentId = unseen[0].id;
      record.shown.push(unseen[0].id);
      record.ended = false;
      return unseen[0].id;
    } else {
      record.currentId = null;
      record.ended = true;
    }
  }

  /** Auto-advance: the server moves on, so the show goes on while the presenter's phone sleeps; never past the end card. */
  function arm(view: PresenterView) {
    if (timer) clearTimeout(timer);
    timer = null;
    if (view.autoAdvanceSeconds > 0 && (view.phase === "title" || view.phase === "image")) {
      timer = setTimeout(() => update(next), view.autoAdvanceSeconds * 1000);
      timer.unref();
    }
  }

  const codeMatches = (record: ShowRecord, code: string) => record.code !== null && sameSecret(code, record.code);

  function newCode(): string {
    let code = "";
    for (let i = 0; i < SHOW_CODE_LENGTH; i++) code += CODE_ALPHABET[randomInt(CODE_ALPHABET.length)];
    return code;
  }

  // A show left auto-advancing when the server stopped goes on after the restart.
  arm(viewOf(read()));

  return {
    presenterView: (): PresenterView => viewOf(read()),

    /** The audience's view, for the holder of the current code only; anyone else is told there is no show. */
    audienceView(code: string): ShowView {
      const record = read();
      if (!codeMatches(record, code)) throw new DomainError("SHOW_NOT_FOUND", "There is no show at this address. Ask the host for the current link or code.");
      const { mode: _mode, code: _code, upNext: _upNext, unseen: _unseen, ...view } = viewOf(record);
      return view;
    },

    /** Whether the holder of `code` may load this image: one shown in this show and not hidden since, while the link is open. */
    mayShowImage(code: string, promptId: number): boolean {
      const record = read();
      if (!codeMatches(record, code) || !record.shown.includes(promptId)) return false;
      return db.select({ hidden: prompts.hidden }).from(prompts).where(eq(prompts.id, promptId)).get()?.hidden === false;
    },

    /** A new show: the title card, nothing shown; what was revealed before stays out of it. The link and settings stay. */
    start: (): PresenterView =>
      update((record) => {
        Object.assign(record, { startedAt: now(), seed: randomBytes(4).readUInt32BE(), shown: [], currentId: null, ended: false });
      }),

    /** The next image (revealing it if it is new to this show), or the end card after the last. */
    next: (): PresenterView => update(next),

    previous: (): PresenterView =>
      update((record) => {
        requireStarted(record);
        const { shown } = sequence(record);
        const index = record.ended ? shown.length : currentIndex(record, shown);
        if (index <= 0) return;
        record.currentId = shown[index - 1]!.id;
        record.ended = false;
      }),

    /** The end card now. */
    end: (): PresenterView =>
      update((record) => {
        requireStarted(record);
        Object.assign(record, { currentId: null, ended: true });
      }),

    /** The order of the images not yet shown; what was shown keeps its place. */
    setMode: (mode: ShowMode): PresenterView =>
      update((record) => {
        record.mode = mode;
      }),

    /** Seconds per image (0: by hand), counted from now. */
    setAutoAdvance: (seconds: number): PresenterView =>
      update((record) => {
        record.autoAdvanceSeconds = seconds;
      }),

    /** Opens the audience link with a fresh code; an older code stops working at once. */
    openLink: (): PresenterView =>
      update((record) => {
        record.code = newCode();
      }),

    closeLink: (): PresenterView =>
      update((record) => {
        record.code = null;
      }),

    close(): void {
      if (timer) clearTimeout(timer);
      timer = null;
    },
  };
}

export type Show = ReturnType<typeof createShow>;
