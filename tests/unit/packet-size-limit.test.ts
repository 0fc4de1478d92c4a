import { Duplex, PassThrough } from "node:stream";
import { limitPacketSize, PacketTooLargeError } from "../../broker/packet-size-limit";

/** The remaining length's encoding [MQTT-2.2.3]: seven bits a byte, least significant first. */
function remainingLength(length: number): number[] {
  const bytes: number[] = [];
  do {
    const byte = length % 128;
    length = Math.floor(length / 128);
    bytes.push(length > 0 ? byte | 0x80 : byte);
  } while (length > 0);
  return bytes;
}

/** A QoS 0 PUBLISH on topic "t" with `payloadBytes` of payload. */
const publish = (payloadBytes: number) => {
  const body = Buffer.concat([Buffer.from([0, 1, 0x74]), Buffer.alloc(payloadBytes, 1)]);
  return Buffer.concat([Buffer.from([0x30, ...remainingLength(body.length)]), body]);
};
const PINGREQ = Buffer.from([0xc0, 0]);

/** Each packet's first bytes (its fixed header and more) in pieces of `size`, the rest in one chunk. */
const split = (packets: Buffer[], size: number) =>
  packets.flatMap((packet) => {
    const head = packet.subarray(0, 8);
    const pieces = Array.from({ length: Math.ceil(head.length / size) }, (_, i) => head.subarray(i * size, (i + 1) * size));
    return packet.length > 8 ? [...pieces, packet.subarray(8)] : pieces;
  });

/** Feeds the chunks; resolves with what passed and the errors. */
async function feed(chunks: Buffer[], limit: number) {
  const input = new PassThrough();
  const errors: PacketTooLargeError[] = [];
  const checked = limitPacketSize(Duplex.from({ readable: input, writable: new PassThrough() }), limit, (error) => errors.push(error));
  const passed: Buffer[] = [];
  checked.on("data", (chunk: Buffer) => passed.push(chunk));
  const ended = new Promise<void>((resolve) => {
    checked.once("end", resolve);
    checked.once("close", resolve);
    checked.once("error", () => resolve());
  });
  for (const chunk of chunks) input.write(chunk);
  input.end();
  await ended;
  return { passed: Buffer.concat(passed), errors };
}

test.each([1, 3, 8])("packets up to the limit pass unchanged, however the bytes are split (chunks of %i)", async (chunkSize) => {
  // Remaining lengths of 1, 2, 3 and 4 bytes [MQTT-2.2.3].
  const packets = [PINGREQ, publish(10), publish(200), publish(20_000), publish(2_100_000), publish(5)];
  const { passed, errors } = await feed(split(packets, chunkSize), 2_200_000);
  expect(errors).toEqual([]);
  expect(passed.equals(Buffer.concat(packets))).toBe(true);
});

test("a packet over the limit fails the stream as its header arrives, before its body", async () => {
  const big = publish(300_000);
  const header = big.subarray(0, 4);
  const { passed, errors } = await feed(split([publish(10), header], 1), 100_000);
  expect(errors.map((error) => [error.bytes, error.limit])).toEqual([[300_000 + 3, 100_000]]);
  expect(passed.length).toBeLessThanOrEqual(publish(10).length + header.length);
});
