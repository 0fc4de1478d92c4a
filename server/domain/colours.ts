/**
 * Visitor colours: a readable name and a swatch for every visitor id, never repeated and
 * never exhausted. 24 named hues × 8 tones give 192 first names ("Teal", "Deep Coral"…);
 * later generations reuse them with a number ("Deep Coral 2") and a slightly shifted swatch,
 * so both the name and the hex stay distinct (tests/unit/colours.test.ts checks 100,000).
 * Text on a swatch is black or white, whichever contrasts more (WCAG ≥ 4.5 always holds).
 */

const HUES: ReadonlyArray<readonly [name: string, degrees: number]> = [
  ["Red", 0], ["Teal", 175], ["Amber", 40], ["Violet", 270], ["Lime", 90], ["Rose", 340],
  ["Azure", 205], ["Orange", 25], ["Jade", 150], ["Magenta", 305], ["Gold", 50], ["Indigo", 240],
  ["Coral", 12], ["Cyan", 185], ["Olive", 65], ["Plum", 290], ["Emerald", 135], ["Crimson", 350],
  ["Sky", 195], ["Tangerine", 32], ["Mint", 160], ["Lavender", 255], ["Chartreuse", 78], ["Cobalt", 220],
];

const TONES: ReadonlyArray<readonly [adjective: string, saturation: number, lightness: number]> = [
  ["", 70, 45], ["Deep", 75, 28], ["Pale", 60, 78], ["Bright", 95, 55],
  ["Dusty", 28, 52], ["Dark", 55, 18], ["Soft", 45, 66], ["Vivid", 85, 38],
];

const PER_GENERATION = HUES.length * TONES.length;

export interface Colour {
  name: string;
  /** #rrggbb */
  hex: string;
  /** #000000 or #ffffff: the more readable text colour on `hex`. */
  text: string;
}

function hslToRgb(h: number, s: number, l: number): [number, number, number] {
  const sat = s / 100;
  const light = l / 100;
  const k = (n: number) => (n + h / 30) % 12;
  const a = sat * Math.min(light, 1 - light);
  const f = (n: number) => light - a * Math.max(-1, Math.min(k(n) - 3, 9 - k(n), 1));
  return [f(0), f(8), f(4)].map((v) => Math.round(v * 255)) as [number, number, number];
}

/** WCAG relative luminance of an sRGB colour. */
export function relativeLuminance([r, g, b]: readonly number[]): number {
  const linear = (c: number) => {
    const v = c / 255;
    return v <= 0.03928 ? v / 12.92 : ((v + 0.055) / 1.055) ** 2.4;
  };
  return 0.2126 * linear(r!) + 0.7152 * linear(g!) + 0.0722 * linear(b!);
}

/** WCAG contrast ratio between two luminances. */
export function contrastRatio(a: number, b: number): number {
  return (Math.max(a, b) + 0.05) / (Math.min(a, b) + 0.05);
}

/**
 * The swatch shift of a generation: hue ±12°, saturation ±10, lightness ±6, walked in a
 * mixed-radix order so that neighbouring generations differ in every component.
 */
function generationShift(generation: number): [dh: number, ds: number, dl: number] {
  if (generation === 0) return [0, 0, 0];
  const g = generation - 1;
  return [((g % 25) - 12), ((Math.floor(g / 25) % 21) - 10), ((Math.floor(g / 525) % 13) - 6)];
}

/** The colour of the visitor with 1-based id `visitorId`. */
export function colourFor(visitorId: number): Colour {
  if (!Number.isInteger(visitorId) || visitorId < 1) throw new RangeError(`visitor ids start at 1, got ${visitorId}`);
  const index = visitorId - 1;
  const [hueName, hue] = HUES[index % HUES.length]!;
  const [adjective, saturation, lightness] = TONES[Math.floor(index / HUES.length) % TONES.length]!;
  const generation = Math.floor(index / PER_GENERATION);
  const [dh, ds, dl] = generationShift(generation);
  const clamp = (value: number) => Math.min(100, Math.max(0, value));
  const rgb = hslToRgb((hue + dh + 360) % 360, clamp(saturation + ds), clamp(lightness + dl));
  const name = [adjective, hueName].filter(Boolean).join(" ") + (generation > 0 ? ` ${generation + 1}` : "");
  return { name, ...swatch(rgb) };
}

/**
 * The visitor id whose colour has this name ("Deep Coral 2" → its id), or null for a name no
 * visitor id can have. Case and surrounding spaces do not matter: people type names on phones.
 */
export function visitorIdForColourName(typed: string): number | null {
  const match = /^(?:([a-z]+) )?([a-z]+)(?: ([1-9]\d{0,6}))?$/.exec(typed.trim().toLowerCase().replace(/\s+/g, " "));
  if (!match) return null;
  const [, adjective = "", hueName, generationText] = match;
  const hue = HUES.findIndex(([name]) => name.toLowerCase() === hueName);
  const tone = TONES.findIndex(([name]) => name.toLowerCase() === adjective);
  const generation = generationText === undefined ? 0 : Number(generationText) - 1;
  // "Teal 1" is never a name: the first generation carries no number.
  if (hue < 0 || tone < 0 || generation < 0 || generationText === "1") return null;
  return generation * PER_GENERATION + tone * HUES.length + hue + 1;
}

function swatch(rgb: readonly number[]): Omit<Colour, "name"> {
  const hex = `#${rgb.map((c) => c.toString(16).padStart(2, "0")).join("")}`;
  const luminance = relativeLuminance(rgb);
  const text = contrastRatio(luminance, 0) >= contrastRatio(luminance, 1) ? "#000000" : "#ffffff";
  return { hex, text };
}

/** The swatch of a stored hex (text colour recomputed). */
export function swatchOf(hex: string): Omit<Colour, "name"> {
  const n = parseInt(hex.slice(1), 16);
  return swatch([(n >> 16) & 0xff, (n >> 8) & 0xff, n & 0xff]);
}

/**
 * Candidate swatches for a visitor, the designed one first, then ever lighter/darker
 * neighbours (same hue, one RGB step per try): the visitor store takes the first one
 * no other visitor has, so swatches stay distinct even where two designs round alike.
 */
export function* swatchCandidates(hex: string): Generator<string> {
  yield hex;
  const n = parseInt(hex.slice(1), 16);
  const rgb = [(n >> 16) & 0xff, (n >> 8) & 0xff, n & 0xff];
  for (let step = 1; step < 256; step++) {
    for (const delta of [step, -step]) {
      const moved = rgb.map((c) => c + delta);
      if (moved.every((c) => c >= 0 && c <= 255)) yield swatch(moved).hex;
    }
  }
}
