/**
 * The spool's bytes on disk (see ../spool.ts for the layout and why): the
 * segment header and file names, and the payload of a record inside its
 * frame (../record-frame.ts).
 */
import { CRC32_FRAMES, FRAME_BAD, FRAME_HEADER, FRAME_INCOMPLETE, type FrameCheck, checkFrame, xxh32Frames } from '../record-frame.js';

/** Largest payload accepted; anything longer in a file is corruption. */
export const MAX_RECORD = 4 * 1024 * 1024;
/**
 * The magic of the segments written today: format 2, frames checked by
 * XXH32 salted with the segment's first id (#16).
 */
export const SEG_MAGIC = Buffer.from('spspool2', 'latin1');
/**
 * Format 2 in a file used again (an acknowledged segment's, renamed): the
 * same, but past its last whole record lie the file's old bytes, whose
 * frames are salted for another segment and do not check (#16).
 */
export const SEG_MAGIC_REUSED = Buffer.from('spspoolR', 'latin1');
/** Format 1 (spread-pipe 0.1.0): the same layout, frames checked by CRC-32. Read, never written. */
export const SEG_MAGIC_V1 = Buffer.from('spspool1', 'latin1');
/** Magic and the first record's id (u64). */
export const SEG_HEADER = 16;
export const SEG_RE = /^(\d{16})\.spool$/;

export const segName = (first: number): string => `${String(first).padStart(16, '0')}.spool`;

export function writeU64(b: Buffer, off: number, v: number): void {
  b.writeUInt32LE(v % 0x100000000, off);
  b.writeUInt32LE(Math.floor(v / 0x100000000), off + 4);
}

export function readU64(b: Buffer, off: number): number {
  return b.readUInt32LE(off) + b.readUInt32LE(off + 4) * 0x100000000;
}

/** A segment's first 16 bytes: magic (SEG_MAGIC_REUSED in a file used again), then the id of its first record. */
export function segmentHeader(first: number, reused = false): Buffer {
  const header = Buffer.alloc(SEG_HEADER);
  (reused ? SEG_MAGIC_REUSED : SEG_MAGIC).copy(header, 0);
  writeU64(header, 8, first);
  return header;
}

/** How the frames of the segment whose first record is `first` are checked (format 2). */
export function segmentCheck(first: number): FrameCheck {
  return xxh32Frames(first % 0x100000000);
}

/**
 * If `buf` starts with the header of the segment whose first record is
 * `first`, how its frames are checked (by its format); else undefined.
 */
export function headerCheck(buf: Buffer, first: number): FrameCheck | undefined {
  if (buf.length < SEG_HEADER || readU64(buf, 8) !== first) return undefined;
  const magic = buf.subarray(0, 8);
  if (magic.equals(SEG_MAGIC) || magic.equals(SEG_MAGIC_REUSED)) return segmentCheck(first);
  if (magic.equals(SEG_MAGIC_V1)) return CRC32_FRAMES;
  return undefined;
}

/** Whether `buf` starts with the magic of a segment written in a file used again. */
export function isReusedHeader(buf: Buffer): boolean {
  return buf.length >= 8 && buf.subarray(0, 8).equals(SEG_MAGIC_REUSED);
}

/*
 * A record's payload: u8 flags; if flags & 1, u16 route length and the route
 * (latin1); then the data.
 */

/** Payload bytes of a record of `dataLen` bytes (latin1 is one byte per UTF-16 unit: route.length is its byte length). */
export function payloadLength(dataLen: number, route: string | undefined): number {
  return 1 + (route === undefined ? 0 : 2 + route.length) + dataLen;
}

/** Write a record's payload at `q`; returns the offset past it. */
export function writePayload(b: Buffer, q: number, data: Uint8Array, route: string | undefined): number {
  q = writeRoute(b, q, route);
  b.set(data, q);
  return q + data.length;
}

/** writePayload() of the data `prefix + line + LF`, without making it first (pipe mode's hot path). */
export function writeLinePayload(b: Buffer, q: number, prefix: Uint8Array, line: Uint8Array, route: string | undefined): number {
  q = writeRoute(b, q, route);
  // The host tag, a few bytes: as writeRoute's, copied here rather than by a call into the runtime.
  const n = prefix.length;
  for (let i = 0; i < n; i++) b[q + i] = prefix[i]!;
  q += n;
  b.set(line, q);
  q += line.length;
  b[q++] = 0x0a;
  return q;
}

/** The route text last written, and its bytes: records in a row mostly share one route. */
let lastRoute = '';
let lastRouteBytes = Buffer.alloc(0);

function writeRoute(b: Buffer, q: number, route: string | undefined): number {
  b[q++] = route === undefined ? 0 : 1;
  if (route === undefined) return q;
  if (route !== lastRoute) {
    lastRouteBytes = Buffer.from(route, 'latin1');
    lastRoute = route;
  }
  // A local, not the module's binding, in the loop: a read of a module-level `let` is a context load
  // and a check for its temporal dead zone, which the compiler need not hoist out of the loop.
  const rb = lastRouteBytes;
  const n = rb.length;
  b[q++] = n & 0xff;
  b[q++] = n >>> 8;
  // A few bytes: copied here rather than by a call into the runtime per record.
  for (let i = 0; i < n; i++) b[q + i] = rb[i]!;
  return q + n;
}

/**
 * Parse one framed record at `off`, its frame checked by `check` (the
 * segment's: headerCheck()). Undefined if incomplete before `limit`, 'bad'
 * if corrupt. The data is a view into `buf`.
 */
export function parseRecord(buf: Buffer, off: number, limit: number, check: FrameCheck): { data: Buffer; route: string | undefined; end: number } | 'bad' | undefined {
  const end = checkFrame(buf, off, limit, MAX_RECORD, false, check);
  if (end === FRAME_INCOMPLETE) return undefined;
  if (end === FRAME_BAD) return 'bad';
  const p = off + FRAME_HEADER;
  const flags = buf[p]!;
  let q = p + 1;
  let route: string | undefined;
  if (flags & 1) {
    if (end - p < 3) return 'bad';
    const rl = buf.readUInt16LE(q);
    q += 2;
    if (q + rl > end) return 'bad';
    route = routeAt(buf, q, rl);
    q += rl;
  }
  return { data: buf.subarray(q, end), route, end };
}

/** The route last read, and its bytes: records in a row mostly share one, read back without a new string each. */
let readRoute = '';
let readRouteBytes = Buffer.alloc(0);

function routeAt(buf: Buffer, q: number, rl: number): string {
  if (rl === readRouteBytes.length) {
    let i = 0;
    while (i < rl && buf[q + i] === readRouteBytes[i]) i++;
    if (i === rl) return readRoute;
  }
  readRoute = buf.toString('latin1', q, q + rl);
  readRouteBytes = Buffer.from(buf.subarray(q, q + rl));
  return readRoute;
}
