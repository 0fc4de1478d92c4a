import { crc32, deflateSync } from "node:zlib";
import { checkPng, encodePng } from "../../generator/png";

const rgb = (width: number, height: number) => new Uint8Array(width * height * 3).map((_, i) => (i * 37) % 256);
const good = () => encodePng(16, 8, rgb(16, 8));
const chunkAt = (png: Buffer, type: string) => png.indexOf(type) - 4;

/** Rewrites a chunk's CRC after its data was changed on purpose. */
function fixCrc(png: Buffer, type: string): Buffer {
  const at = chunkAt(png, type);
  const length = png.readUInt32BE(at);
  png.writeUInt32BE(crc32(png.subarray(at + 4, at + 8 + length)), at + 8 + length);
  return png;
}

function withChunk(png: Buffer, type: string, data: Buffer, before: string): Buffer {
  const chunk = Buffer.alloc(12 + data.length);
  chunk.writeUInt32BE(data.length, 0);
  chunk.write(type, 4, "latin1");
  data.copy(chunk, 8);
  chunk.writeUInt32BE(crc32(chunk.subarray(4, 8 + data.length)), 8 + data.length);
  const at = chunkAt(png, before);
  return Buffer.concat([png.subarray(0, at), chunk, png.subarray(at)]);
}

test("a well-formed PNG passes, with its size", () => {
  expect(checkPng(good())).toEqual({ ok: true, width: 16, height: 8 });
});

test.each([
  ["a flipped byte in IDAT", (png: Buffer) => ((png[chunkAt(png, "IDAT") + 10]! ^= 0xff), png), /chunk 1 \("IDAT"\) has a wrong CRC/],
  ["a wrong CRC on IEND", (png: Buffer) => ((png[png.length - 1]! ^= 1), png), /chunk 2 \("IEND"\) has a wrong CRC/],
  ["truncation in the middle", (png: Buffer) => png.subarray(0, 60), /runs past the end of the file/],
  ["truncation before IEND", (png: Buffer) => png.subarray(0, png.length - 12), /truncated at byte \d+ \(no IEND\)/],
  ["bytes after IEND", (png: Buffer) => Buffer.concat([png, Buffer.from("trailing")]), /8 bytes after IEND/],
  ["a wrong signature", (png: Buffer) => ((png[1] = 0), png), /wrong signature/],
  ["no IDAT", (png: Buffer) => Buffer.concat([png.subarray(0, chunkAt(png, "IDAT")), png.subarray(chunkAt(png, "IEND"))]), /no image data/],
  ["IHDR not first", (png: Buffer) => withChunk(png, "tEXt", Buffer.from("a\0b"), "IHDR"), /the first chunk is not IHDR/],
  ["a bad colour type", (png: Buffer) => fixCrc(((png[chunkAt(png, "IHDR") + 17] = 5), png), "IHDR"), /colour type 5/],
  ["a header larger than its data", (png: Buffer) => fixCrc((png.writeUInt32BE(9, chunkAt(png, "IHDR") + 12), png), "IHDR"), /inflates to 392 bytes, not the 441/],
  ["IDAT data that is no deflate stream, CRC and all", (png: Buffer) => {
    const at = chunkAt(png, "IDAT");
    png.fill(0x55, at + 8, at + 8 + png.readUInt32BE(at));
    return fixCrc(png, "IDAT");
  }, /the image data is corrupt/],
])("a PNG with %s is refused, naming the problem", (_case, corrupt, problem) => {
  const checked = checkPng(corrupt(good()));
  expect(checked.ok).toBe(false);
  expect(!checked.ok && checked.problem).toMatch(problem);
});

test("a decompression bomb is refused without inflating it all", () => {
  const png = good();
  const bomb = deflateSync(Buffer.alloc(8 * 1024 * 1024));
  const at = chunkAt(png, "IDAT");
  const header = Buffer.alloc(8);
  header.writeUInt32BE(bomb.length);
  header.write("IDAT", 4, "latin1");
  const crc = Buffer.alloc(4);
  crc.writeUInt32BE(crc32(Buffer.concat([header.subarray(4), bomb])));
  const bombed = Buffer.concat([png.subarray(0, at), header, bomb, crc, png.subarray(chunkAt(png, "IEND"))]);
  expect(checkPng(bombed)).toEqual({ ok: false, problem: "the image data inflates to more than the 392 bytes its size needs" });
});
