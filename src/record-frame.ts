/**
 * The one record framing of the files spread-pipe appends to (the spool's
 * segments, the --write dedup journal):
 *
 *   [u32 LE payload length][u32 LE CRC-32 of the length field and the payload][payload]
 *
 * The CRC covers the length too, so that a torn or flipped length cannot
 * pass as a shorter record. A reader trusts nothing past the first frame
 * that is incomplete or does not check: that is where a torn write ends.
 */
import { type CrcArena, crc32 } from './crc32.js';

/** Length and CRC before each payload. */
export const FRAME_HEADER = 8;
/** checkFrame(): the bytes before the limit end inside the frame. */
export const FRAME_INCOMPLETE = -1;
/** checkFrame(): a length out of range or a CRC that does not check. */
export const FRAME_BAD = -2;

/** CRC of the frame at `start` with a `len`-byte payload (its length field already written). */
export function frameCrc(buf: Uint8Array, start: number, len: number): number {
  return crc32(buf, start + FRAME_HEADER, start + FRAME_HEADER + len, crc32(buf, start, start + 4));
}

/** Fill in the header of the frame at `start`, whose `len`-byte payload is already written after it. */
export function sealFrame(buf: Buffer, start: number, len: number): void {
  buf.writeUInt32LE(len, start);
  buf.writeUInt32LE(frameCrc(buf, start, len), start + 4);
}

/**
 * Seal every frame in an arena's buffer [start, end): frames back to back,
 * each with its payload length written at its start and its payload after
 * it. In one call into the arena's module where it has one.
 */
export function sealFramesIn(a: CrcArena, start: number, end: number): void {
  if (a.sealAll) return a.sealAll(start, end);
  for (let p = start; p < end; ) {
    const len = a.buf.readUInt32LE(p);
    sealFrame(a.buf, p, len);
    p += FRAME_HEADER + len;
  }
}

/**
 * The frame at `off`, looking no further than `limit`: the offset just past
 * it (its payload is [off + FRAME_HEADER, that offset)), FRAME_INCOMPLETE, or
 * FRAME_BAD (a length not in 1..maxLen, or a CRC that does not check).
 *
 * `legacyCrc`: also take a CRC of the payload alone, as the dedup journal of
 * spread-pipe 0.1.0 wrote it (read only: writers always use the one scope).
 */
export function checkFrame(buf: Buffer, off: number, limit: number, maxLen = 0xffffffff, legacyCrc = false): number {
  if (limit - off < FRAME_HEADER) return FRAME_INCOMPLETE;
  const len = buf.readUInt32LE(off);
  if (len < 1 || len > maxLen) return FRAME_BAD;
  if (limit - off < FRAME_HEADER + len) return FRAME_INCOMPLETE;
  const crc = buf.readUInt32LE(off + 4);
  const end = off + FRAME_HEADER + len;
  if (frameCrc(buf, off, len) !== crc && !(legacyCrc && crc32(buf, off + FRAME_HEADER, end) === crc)) return FRAME_BAD;
  return end;
}
