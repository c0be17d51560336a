/**
 * The one record framing of the files spread-pipe appends to (the spool's
 * segments, the --write dedup journal):
 *
 *   [u32 LE payload length][u32 LE check][payload]
 *
 * The check is one of two (FrameCheck), chosen by the file (the spool's
 * segment header says which): the CRC-32 of the length field and the
 * payload (the dedup journal; spool segments of format 1, spread-pipe
 * 0.1.0), or the XXH32 of the payload seeded with its length XOR a salt
 * (spool segments of format 2, #16: a fifth of the CRC's time per record).
 * Either covers the length, so that a torn or flipped length cannot pass as
 * a shorter record. A reader trusts nothing past the first frame that is
 * incomplete or does not check: that is where a torn write ends.
 */
import { type CrcArena, crc32 } from './crc32.js';
import { xxh32 } from './xxh32.js';

/**
 * Which check a file's frames carry. `salt` (XXH32) ties a frame to the
 * file it was written for: the spool salts with the low 32 bits of the
 * segment's first record id, so that a frame copied from another segment,
 * or left in a file used again, does not check.
 */
export type FrameCheck = { readonly sum: 'crc32' } | { readonly sum: 'xxh32'; readonly salt: number };

/** CRC-32 of length and payload (the dedup journal, spool format 1). */
export const CRC32_FRAMES: FrameCheck = { sum: 'crc32' };

/** XXH32 of the payload seeded with length XOR `salt` (spool format 2). */
export function xxh32Frames(salt: number): FrameCheck {
  return { sum: 'xxh32', salt: salt >>> 0 };
}

/** Length and check before each payload. */
export const FRAME_HEADER = 8;
/** checkFrame(): the bytes before the limit end inside the frame. */
export const FRAME_INCOMPLETE = -1;
/** checkFrame(): a length out of range or a CRC that does not check. */
export const FRAME_BAD = -2;

/** CRC of the frame at `start` with a `len`-byte payload (its length field already written). */
export function frameCrc(buf: Uint8Array, start: number, len: number): number {
  return crc32(buf, start + FRAME_HEADER, start + FRAME_HEADER + len, crc32(buf, start, start + 4));
}

/** The check of the frame at `start` with a `len`-byte payload (its length field written, for the CRC). */
export function frameCheck(buf: Uint8Array, start: number, len: number, check: FrameCheck): number {
  if (check.sum === 'crc32') return frameCrc(buf, start, len);
  return xxh32(buf, start + FRAME_HEADER, start + FRAME_HEADER + len, (len ^ check.salt) >>> 0);
}

/** Fill in the header of the frame at `start`, whose `len`-byte payload is already written after it. */
export function sealFrame(buf: Buffer, start: number, len: number, check: FrameCheck = CRC32_FRAMES): void {
  buf.writeUInt32LE(len, start);
  buf.writeUInt32LE(frameCheck(buf, start, len, check), start + 4);
}

/**
 * Seal every frame in an arena's buffer [start, end): frames back to back,
 * each with its payload length written at its start and its payload after
 * it. In one call into the arena's module where it has one.
 */
export function sealFramesIn(a: CrcArena, start: number, end: number, check: FrameCheck = CRC32_FRAMES): void {
  if (check.sum === 'crc32' && a.sealAll) return a.sealAll(start, end);
  if (check.sum === 'xxh32' && a.sealAllXxh32) return a.sealAllXxh32(start, end, check.salt);
  for (let p = start; p < end; ) {
    const len = a.buf.readUInt32LE(p);
    sealFrame(a.buf, p, len, check);
    p += FRAME_HEADER + len;
  }
}

/**
 * The frame at `off`, looking no further than `limit`: the offset just past
 * it (its payload is [off + FRAME_HEADER, that offset)), FRAME_INCOMPLETE, or
 * FRAME_BAD (a length not in 1..maxLen, or a check that fails).
 *
 * `legacyCrc`: also take a CRC of the payload alone, as the dedup journal of
 * spread-pipe 0.1.0 wrote it (read only: writers always use the one scope).
 */
export function checkFrame(buf: Buffer, off: number, limit: number, maxLen = 0xffffffff, legacyCrc = false, check: FrameCheck = CRC32_FRAMES): number {
  if (limit - off < FRAME_HEADER) return FRAME_INCOMPLETE;
  const len = buf.readUInt32LE(off);
  if (len < 1 || len > maxLen) return FRAME_BAD;
  if (limit - off < FRAME_HEADER + len) return FRAME_INCOMPLETE;
  const crc = buf.readUInt32LE(off + 4);
  const end = off + FRAME_HEADER + len;
  if (frameCheck(buf, off, len, check) !== crc && !(legacyCrc && crc32(buf, off + FRAME_HEADER, end) === crc)) return FRAME_BAD;
  return end;
}
