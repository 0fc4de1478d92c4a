/**
 * A minimal PNG encoder (8-bit RGB, no interlace): enough for placeholder images, no native
 * dependency; and a full check of a PNG received from a generator (`checkPng`).
 */
import { crc32, deflateSync, inflateSync } from "node:zlib";

function chunk(type: string, data: Buffer): Buffer {
  const length = Buffer.alloc(4);
  length.writeUInt32BE(data.length);
  const typeAndData = Buffer.concat([Buffer.from(type, "ascii"), data]);
  const crc = Buffer.alloc(4);
  crc.writeUInt32BE(crc32(typeAndData));
  return Buffer.concat([length, typeAndData, crc]);
}

const PNG_SIGNATURE = Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]);

/** Encodes `rgb` (width × height × 3 bytes, row-major) as a PNG file. */
export function encodePng(width: number, height: number, rgb: Uint8Array): Buffer {
  if (rgb.length !== width * height * 3) throw new Error(`expected ${width * height * 3} RGB bytes, got ${rgb.length}`);
  const header = Buffer.alloc(13);
  header.writeUInt32BE(width, 0);
  header.writeUInt32BE(height, 4);
  header[8] = 8; // bit depth
  header[9] = 2; // colour type: truecolour
  // bytes 10–12: deflate, adaptive filtering, no interlace (all zero)
  const stride = width * 3;
  const scanlines = Buffer.alloc((stride + 1) * height);
  for (let y = 0; y < height; y++) {
    // Filter type 0 (None) per row: placeholder images are mostly flat, deflate copes well.
    scanlines[y * (stride + 1)] = 0;
    scanlines.set(rgb.subarray(y * stride, (y + 1) * stride), y * (stride + 1) + 1);
  }
  return Buffer.concat([
    PNG_SIGNATURE,
    chunk("IHDR", header),
    chunk("IDAT", deflateSync(scanlines, { level: 6 })),
    chunk("IEND", Buffer.alloc(0)),
  ]);
}

/** Reads width and height from a PNG's IHDR, or returns null when `bytes` is not a PNG. */
export function readPngSize(bytes: Buffer): { width: number; height: number } | null {
  if (bytes.length < 24 || !bytes.subarray(0, 8).equals(PNG_SIGNATURE)) return null;
  if (bytes.toString("ascii", 12, 16) !== "IHDR") return null;
  return { width: bytes.readUInt32BE(16), height: bytes.readUInt32BE(20) };
}

/** Channels per pixel of each colour type, and the bit depths it allows (PNG spec, table 11.1). */
const COLOUR_TYPES: Record<number, { channels: number; depths: number[] }> = {
  0: { channels: 1, depths: [1, 2, 4, 8, 16] },
  2: { channels: 3, depths: [8, 16] },
  3: { channels: 1, depths: [1, 2, 4, 8] },
  4: { channels: 2, depths: [8, 16] },
  6: { channels: 4, depths: [8, 16] },
};

/** Adam7's passes: x start, y start, x step, y step. */
const ADAM7 = [
  [0, 0, 8, 8],
  [4, 0, 8, 8],
  [0, 4, 4, 8],
  [2, 0, 4, 4],
  [0, 2, 2, 4],
  [1, 0, 2, 2],
  [0, 1, 1, 2],
] as const;

/** Bytes of the decompressed image data: per row, one filter byte and the packed pixels. */
function scanlineBytes(width: number, height: number, bitsPerPixel: number, interlaced: boolean): number {
  const rows = (w: number, h: number) => (w > 0 && h > 0 ? h * (1 + Math.ceil((w * bitsPerPixel) / 8)) : 0);
  if (!interlaced) return rows(width, height);
  return ADAM7.reduce((sum, [x, y, dx, dy]) => sum + rows(Math.ceil((width - x) / dx), Math.ceil((height - y) / dy)), 0);
}

/**
 * Checks a whole PNG: the signature; every chunk's length and CRC; IHDR first, IEND last and
 * nothing after it; consecutive IDATs (and PLTE for a palette image); and that the image data
 * inflates to exactly the size its header promises (inflation stops one byte past it, so a
 * decompression bomb costs nothing). Returns the size, or what is wrong.
 */
export function checkPng(bytes: Buffer): { ok: true; width: number; height: number } | { ok: false; problem: string } {
  const fail = (problem: string) => ({ ok: false as const, problem });
  if (bytes.length < PNG_SIGNATURE.length || !bytes.subarray(0, 8).equals(PNG_SIGNATURE)) return fail("not a PNG (wrong signature)");
  const idat: Buffer[] = [];
  let header: { width: number; height: number; depth: number; colourType: number; interlaced: boolean } | null = null;
  let palette = false;
  let idatEnded = false;
  let offset = PNG_SIGNATURE.length;
  for (let index = 0; ; index++) {
    if (offset + 12 > bytes.length) return fail(`truncated at byte ${offset} (no IEND)`);
    const length = bytes.readUInt32BE(offset);
    const type = bytes.toString("latin1", offset + 4, offset + 8);
    if (length > 0x7fffffff || offset + 12 + length > bytes.length) return fail(`chunk ${index} (${JSON.stringify(type)}) runs past the end of the file`);
    const data = bytes.subarray(offset + 8, offset + 8 + length);
    if (crc32(data, crc32(bytes.subarray(offset + 4, offset + 8))) !== bytes.readUInt32BE(offset + 8 + length)) return fail(`chunk ${index} (${JSON.stringify(type)}) has a wrong CRC`);
    offset += 12 + length;
    if (index === 0) {
      if (type !== "IHDR" || length !== 13) return fail("the first chunk is not IHDR");
      header = { width: data.readUInt32BE(0), height: data.readUInt32BE(4), depth: data[8]!, colourType: data[9]!, interlaced: data[12] === 1 };
      const colour = COLOUR_TYPES[header.colourType];
      if (!colour || !colour.depths.includes(header.depth)) return fail(`IHDR: colour type ${header.colourType} with bit depth ${header.depth} is not valid`);
      if (header.width === 0 || header.height === 0 || data[10] !== 0 || data[11] !== 0 || data[12]! > 1) return fail("IHDR: invalid size, compression, filter or interlace method");
      continue;
    }
    if (type === "IHDR") return fail("a second IHDR");
    if (type === "PLTE") palette = true;
    if (type === "IDAT") {
      if (idatEnded) return fail("IDAT chunks are not consecutive");
      idat.push(data);
    } else if (idat.length) {
      idatEnded = true;
    }
    if (type === "IEND") {
      if (offset !== bytes.length) return fail(`${bytes.length - offset} bytes after IEND`);
      break;
    }
  }
  const { width, height, depth, colourType, interlaced } = header!;
  if (!idat.length) return fail("no image data (IDAT)");
  if (colourType === 3 && !palette) return fail("a palette image without PLTE");
  const expected = scanlineBytes(width, height, COLOUR_TYPES[colourType]!.channels * depth, interlaced);
  let pixels: Buffer;
  try {
    pixels = inflateSync(Buffer.concat(idat), { maxOutputLength: expected + 1 });
  } catch (error) {
    return fail(error instanceof RangeError ? `the image data inflates to more than the ${expected} bytes its size needs` : `the image data is corrupt (${(error as Error).message})`);
  }
  if (pixels.length !== expected) return fail(`the image data inflates to ${pixels.length} bytes, not the ${expected} its size needs`);
  return { ok: true, width, height };
}
