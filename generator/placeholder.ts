/**
 * The built-in renderer used when no SD backend is configured (SD_API_URL unset):
 * a real PNG of the requested size, different for every job — the author's colour
 * as a gradient, seeded bubbles, and the prompt's words written across it — so the
 * whole promptgate loop can be tried without a GPU.
 */
import { GLYPH_HEIGHT, GLYPH_WIDTH, glyphRows } from "./font";
import { encodePng } from "./png";

export interface PlaceholderRequest {
  prompt: string;
  width: number;
  height: number;
  /** #rrggbb */
  colour: string;
  seed: number;
}

/** Deterministic PRNG (mulberry32), so that a seed reproduces its image (and the SD emulator its delays). */
export function seededRandom(seed: number): () => number {
  let state = seed >>> 0;
  return () => {
    state = (state + 0x6d2b79f5) >>> 0;
    let t = state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

function parseHex(colour: string): [number, number, number] {
  const n = parseInt(colour.slice(1), 16);
  return [(n >> 16) & 0xff, (n >> 8) & 0xff, n & 0xff];
}

/** Wraps `text` into at most `maxLines` lines of at most `maxChars` characters, ending with "…" when cut. */
function wrapWords(text: string, maxChars: number, maxLines: number): string[] {
  const lines: string[] = [];
  let line = "";
  for (const word of text.trim().split(/\s+/)) {
    const pieces = word.match(new RegExp(`.{1,${maxChars}}`, "g")) ?? [];
    for (const piece of pieces) {
      if (line && line.length + 1 + piece.length > maxChars) {
        lines.push(line);
        line = piece;
      } else {
        line = line ? `${line} ${piece}` : piece;
      }
    }
  }
  if (line) lines.push(line);
  if (lines.length <= maxLines) return lines;
  const kept = lines.slice(0, maxLines);
  kept[maxLines - 1] = `${kept[maxLines - 1]!.slice(0, Math.max(0, maxChars - 3))}...`;
  return kept;
}

export function renderPlaceholder(request: PlaceholderRequest): Buffer {
  const { width, height } = request;
  const rgb = new Uint8Array(width * height * 3);
  const [r, g, b] = parseHex(request.colour);
  const random = seededRandom(request.seed);

  // Gradient from the author's colour (top) to a darker shade of it (bottom).
  for (let y = 0; y < height; y++) {
    const shade = 1 - 0.6 * (y / height);
    for (let x = 0; x < width; x++) {
      const i = (y * width + x) * 3;
      rgb[i] = r * shade;
      rgb[i + 1] = g * shade;
      rgb[i + 2] = b * shade;
    }
  }

  // Seeded translucent bubbles: two jobs with the same prompt still look different.
  const bubbleCount = 5 + Math.floor(random() * 6);
  for (let n = 0; n < bubbleCount; n++) {
    const cx = random() * width;
    const cy = random() * height;
    const radius = (0.05 + random() * 0.25) * Math.min(width, height);
    const lighten = random() < 0.5;
    for (let y = Math.max(0, Math.floor(cy - radius)); y < Math.min(height, Math.ceil(cy + radius)); y++) {
      for (let x = Math.max(0, Math.floor(cx - radius)); x < Math.min(width, Math.ceil(cx + radius)); x++) {
        if ((x - cx) ** 2 + (y - cy) ** 2 > radius * radius) continue;
        const i = (y * width + x) * 3;
        for (let c = 0; c < 3; c++) rgb[i + c] = lighten ? rgb[i + c]! + (255 - rgb[i + c]!) * 0.25 : rgb[i + c]! * 0.75;
      }
    }
  }

  // The prompt's words in white on a dark band, scaled to the image.
  const scale = Math.max(1, Math.floor(Math.min(width, height) / 96));
  const cell = (GLYPH_WIDTH + 1) * scale;
  const lineHeight = (GLYPH_HEIGHT + 3) * scale;
  const margin = 2 * cell;
  const maxChars = Math.max(1, Math.floor((width - 2 * margin) / cell));
  const maxLines = Math.max(1, Math.floor((height - 2 * margin) / lineHeight));
  const lines = wrapWords(request.prompt, maxChars, maxLines);
  const bandTop = Math.max(0, Math.floor((height - lines.length * lineHeight) / 2) - scale * 2);
  const bandBottom = Math.min(height, bandTop + lines.length * lineHeight + scale * 4);
  for (let y = bandTop; y < bandBottom; y++) {
    for (let x = 0; x < width; x++) {
      const i = (y * width + x) * 3;
      for (let c = 0; c < 3; c++) rgb[i + c] = rgb[i + c]! * 0.35;
    }
  }
  lines.forEach((line, lineIndex) => {
    const top = bandTop + scale * 3 + lineIndex * lineHeight;
    const left = Math.floor((width - line.length * cell) / 2);
    [...line].forEach((char, charIndex) => {
      glyphRows(char).forEach((bits, row) => {
        for (let col = 0; col < GLYPH_WIDTH; col++) {
          if (!(bits & (1 << (GLYPH_WIDTH - 1 - col)))) continue;
          for (let dy = 0; dy < scale; dy++) {
            for (let dx = 0; dx < scale; dx++) {
              const x = left + charIndex * cell + col * scale + dx;
              const y = top + row * scale + dy;
              if (x < 0 || x >= width || y < 0 || y >= height) continue;
              rgb.fill(255, (y * width + x) * 3, (y * width + x) * 3 + 3);
            }
          }
        }
      });
    });
  });

  return encodePng(width, height, rgb);
}
