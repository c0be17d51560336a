/**
 * The spool's bytes on disk (see spool.ts for the layout and why): segment
 * header, record frames with their CRC, the cursor record.
 */
import { crc32 } from './crc32.js';

/** Largest payload accepted; anything longer in a file is corruption. */
export const MAX_RECORD = 4 * 1024 * 1024;
export const SEG_MAGIC = Buffer.from('spspool1', 'latin1');
export const CUR_MAGIC = Buffer.from('spcursr1', 'latin1');
/** Magic and the first record's id (u64). */
export const SEG_HEADER = 16;
/** u32 payload length, u32 CRC-32 of length and payload. */
export const FRAME = 8;
/** Buffered appends are written once they reach this. */
export const WRITE_CHUNK = 256 * 1024;
/** Bytes read from a segment at a time. */
export const READ_CHUNK = 1024 * 1024;
export const SEG_RE = /^(\d{16})\.spool$/;

export const segName = (first: number): string => `${String(first).padStart(16, '0')}.spool`;

export function writeU64(b: Buffer, off: number, v: number): void {
  b.writeUInt32LE(v % 0x100000000, off);
  b.writeUInt32LE(Math.floor(v / 0x100000000), off + 4);
}

export function readU64(b: Buffer, off: number): number {
  return b.readUInt32LE(off) + b.readUInt32LE(off + 4) * 0x100000000;
}

export function frameCrc(buf: Buffer, start: number, len: number): number {
  // The CRC covers the length field too, so a torn length cannot pass.
  return crc32(buf, start + FRAME, start + FRAME + len, crc32(buf, start, start + 4));
}

/**
 * Parse one framed record at `off` (payload: u8 flags; if flags & 1, u16
 * route length and the route; then the data). Undefined if incomplete before
 * `limit`, 'bad' if corrupt.
 */
export function parseFrame(buf: Buffer, off: number, limit: number): { data: Buffer; route: string | undefined; end: number } | 'bad' | undefined {
  if (limit - off < FRAME) return undefined;
  const len = buf.readUInt32LE(off);
  if (len < 1 || len > MAX_RECORD) return 'bad';
  if (limit - off < FRAME + len) return undefined;
  if (frameCrc(buf, off, len) !== buf.readUInt32LE(off + 4)) return 'bad';
  const p = off + FRAME;
  const flags = buf[p]!;
  let q = p + 1;
  let route: string | undefined;
  if (flags & 1) {
    if (len < 3) return 'bad';
    const rl = buf.readUInt16LE(q);
    q += 2;
    if (q + rl > p + len) return 'bad';
    route = buf.toString('latin1', q, q + rl);
    q += rl;
  }
  return { data: buf.subarray(q, p + len), route, end: p + len };
}
