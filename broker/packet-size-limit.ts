/**
 * Refuses MQTT packets above a size before they are buffered: Aedes' parser (mqtt-packet) has
 * no limit and collects a packet's whole body first, so one 100 MB publish costs 100 MB or more.
 * This reads each fixed header's remaining length [MQTT-2.2.3] as the bytes pass and fails the
 * stream at the first packet over the limit, having buffered nothing of its body.
 */
import { Duplex, Transform, pipeline } from "node:stream";

export class PacketTooLargeError extends Error {
  constructor(
    readonly bytes: number,
    readonly limit: number,
  ) {
    super(`an MQTT packet of ${bytes} bytes is over the limit of ${limit}`);
  }
}

/** The byte stream, checked; fails with PacketTooLargeError. */
function packetSizeCheck(limit: number): Transform {
  /** Body bytes of the current packet still to pass. */
  let body = 0;
  /** Whether the next byte is a packet's first (its type and flags). */
  let atPacketStart = true;
  let length = 0;
  let multiplier = 1;
  return new Transform({
    transform(chunk: Buffer, _encoding, callback) {
      let i = 0;
      while (i < chunk.length) {
        if (body > 0) {
          const skipped = Math.min(body, chunk.length - i);
          body -= skipped;
          i += skipped;
        } else if (atPacketStart) {
          atPacketStart = false;
          length = 0;
          multiplier = 1;
          i++;
        } else {
          // Remaining length: up to four bytes, seven bits each, least significant first.
          const byte = chunk[i++]!;
          length += (byte & 0x7f) * multiplier;
          multiplier *= 128;
          if (byte & 0x80 && multiplier <= 128 ** 3) continue;
          if (length > limit) return callback(new PacketTooLargeError(length, limit));
          body = length;
          atPacketStart = true;
        }
      }
      callback(null, chunk);
    },
  });
}

/**
 * `connection` for Aedes, with every incoming packet checked against `limit`; a packet over it
 * closes the connection and calls `onTooLarge`.
 */
export function limitPacketSize(connection: Duplex, limit: number, onTooLarge: (error: PacketTooLargeError) => void): Duplex {
  const checked = packetSizeCheck(limit);
  pipeline(connection, checked, (error) => {
    if (error instanceof PacketTooLargeError) onTooLarge(error);
  });
  return Duplex.from({ readable: checked, writable: connection });
}
