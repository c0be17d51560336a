/**
 * The wire layout of a framed Spread message, one owner (PROTOCOL.md 4):
 * where each header field sits, how a header is read in either byte order,
 * and the 32-byte NUL-padded name field, written and read. Every other module
 * reads and writes frames through these names. The hot paths (framer,
 * decoder, the daemon's forward check, the publisher's encoder) call the
 * scalar helpers (isLittleEndian, readHeaderInt, wordValue, hintMessType,
 * readNameField, nameFieldEquals, writeHintAndDataLen), which V8 inlines;
 * readHeader is the one-object view for paths where an allocation per frame
 * does not matter.
 *
 *   0  type        uint32, service bits | endian marker (the writer's order)
 *   4  sender      32-byte name field
 *   36 num_groups  int32
 *   40 hint        uint32, ((mess_type << 8) & 0x00ffff00) | marker (the original sender's order)
 *   44 data_len    int32
 *   48 [REJECT_MESS only: old_type, uint32] then num_groups name fields, then data
 */
import { ENDIAN_MARKER, HEADER_SIZE, MAX_GROUP_NAME } from './constants.js';

export const HDR_TYPE = 0;
export const HDR_SENDER = 4;
export const HDR_NUM_GROUPS = 36;
export const HDR_HINT = 40;
export const HDR_DATA_LEN = 44;
/** REJECT_MESS only: the refused request's type, right after the header. */
export const REJECT_OLD_TYPE = HEADER_SIZE;
/** Bytes REJECT_MESS carries between its header and its groups. */
export const REJECT_EXTRA = 4;
/** The mess_type bits of a hint (reserved bits and marker excluded). */
export const HINT_MESS_TYPE_MASK = 0x00ffff00;

// Membership bodies (PROTOCOL.md 7.2, 7.3), integers in the header's order:
// a group id (three int32), then, in the 4.x/5.x layout, the number of vs-sets,
// the byte offset of the receiver's set (from MEMB_VS_SETS), and the sets, each
// a count and that many name fields; in the 3.x layout a count and the names.
export const GROUP_ID_SIZE = 12;
export const MEMB_NUM_VS_SETS = GROUP_ID_SIZE;
export const MEMB_MY_VS_OFFSET = GROUP_ID_SIZE + 4;
export const MEMB_VS_SETS = GROUP_ID_SIZE + 8;
/** A vs-set's member count before its names. */
export const VS_SET_COUNT = 4;
export const MEMB_OLD_COUNT = GROUP_ID_SIZE;
export const MEMB_OLD_NAMES = GROUP_ID_SIZE + 4;

export function swap32(v: number): number {
  return (((v & 0xff) << 24) | ((v & 0xff00) << 8) | ((v >>> 8) & 0xff00) | ((v >>> 24) & 0xff)) >>> 0;
}

/**
 * A type or hint word, read little-endian, carries the little-endian marker
 * (both marker bits set). Anything else is a big-endian writer's word.
 */
export function isLittleEndian(wordLE: number): boolean {
  return ((wordLE & ENDIAN_MARKER) >>> 0) === ENDIAN_MARKER;
}

/** The header at `off` was written little-endian (its type word carries the marker). */
export function isLittleEndianHeader(b: Buffer, off: number): boolean {
  return isLittleEndian(b.readUInt32LE(off + HDR_TYPE));
}

/** An int32 header field in the header's byte order. */
export function readHeaderInt(b: Buffer, at: number, littleEndian: boolean): number {
  return littleEndian ? b.readInt32LE(at) : b.readInt32BE(at);
}

/** A type or hint word brought to host order by its own marker, the marker cleared. */
export function wordValue(wordLE: number): number {
  return ((isLittleEndian(wordLE) ? wordLE : swap32(wordLE)) & ~ENDIAN_MARKER) >>> 0;
}

/** Sign-extended 16-bit mess_type of a hint in host order (marker cleared). */
export function hintMessType(hint: number): number {
  return (((hint >>> 8) & 0xffff) << 16) >> 16;
}

/**
 * Set hint and data_len of the little-endian header at `off`. Byte stores:
 * on the publisher's hot path (a header copied from a template, then these
 * two fields per message) they cost less than Buffer.writeUInt32LE's checks.
 */
export function writeHintAndDataLen(buf: Uint8Array, off: number, hint: number, dataLen: number): void {
  const h = off + HDR_HINT;
  buf[h] = hint;
  buf[h + 1] = hint >>> 8;
  buf[h + 2] = hint >>> 16;
  buf[h + 3] = hint >>> 24;
  const d = off + HDR_DATA_LEN;
  buf[d] = dataLen;
  buf[d + 1] = dataLen >>> 8;
  buf[d + 2] = dataLen >>> 16;
  buf[d + 3] = dataLen >>> 24;
}

export interface MessageHeader {
  /** Service bits in host order, marker cleared. */
  type: number;
  /** The header's byte order (type, num_groups, data_len, old_type follow it). */
  littleEndian: boolean;
  numGroups: number;
  dataLen: number;
  /** The hint in host order by its own marker, marker cleared. */
  hint: number;
  /** The hint's own byte order (a daemon forwards it unconverted: the original sender's). */
  hintLittleEndian: boolean;
}

/** The fixed fields of the 48-byte header at `off` (the sender name aside: readNameField). */
export function readHeader(b: Buffer, off: number): MessageHeader {
  const t = b.readUInt32LE(off + HDR_TYPE);
  const littleEndian = isLittleEndian(t);
  const h = b.readUInt32LE(off + HDR_HINT);
  return {
    type: wordValue(t),
    littleEndian,
    numGroups: readHeaderInt(b, off + HDR_NUM_GROUPS, littleEndian),
    dataLen: readHeaderInt(b, off + HDR_DATA_LEN, littleEndian),
    hint: wordValue(h),
    hintLittleEndian: isLittleEndian(h),
  };
}

/** A 32-byte NUL-padded name field; at most 31 significant bytes, as the library copies. */
export function nameField(name: string): Buffer {
  const field = Buffer.alloc(MAX_GROUP_NAME);
  field.write(name, 0, MAX_GROUP_NAME - 1, 'latin1');
  return field;
}

/** Concatenated 32-byte fields for a destination list. */
export function groupsField(groups: readonly string[]): Buffer {
  const out = Buffer.alloc(groups.length * MAX_GROUP_NAME);
  for (let i = 0; i < groups.length; i++) {
    out.write(groups[i]!, i * MAX_GROUP_NAME, MAX_GROUP_NAME - 1, 'latin1');
  }
  return out;
}

/**
 * The name in the 32-byte field at `at`: up to its first NUL, or all 32
 * bytes when a peer sent none (real daemons copy the field whole).
 */
export function readNameField(b: Buffer, at: number): string {
  let end = at;
  const stop = at + MAX_GROUP_NAME;
  while (end < stop && b[end] !== 0) end++;
  return b.toString('latin1', at, end);
}

/**
 * The last name read from a 32-byte field, kept with its bytes: a stream
 * from one sender to one group repeats the same two fields in every frame,
 * and comparing ~20 bytes is cheaper than making the same string again.
 */
export class NameFieldCache {
  private readonly bytes = Buffer.alloc(MAX_GROUP_NAME);
  private len = -1;
  private name = '';

  read(b: Buffer, at: number): string {
    // The field holds the last name when it starts with its bytes and ends there (NUL or the field's end):
    // one pass over the bytes, not a search for the NUL and then a compare.
    const n = this.len;
    if (n >= 0 && (n === MAX_GROUP_NAME || b[at + n] === 0)) {
      const c = this.bytes;
      let i = 0;
      while (i < n && c[i] === b[at + i]) i++;
      if (i === n) return this.name;
    }
    let end = at;
    const stop = at + MAX_GROUP_NAME;
    while (end < stop && b[end] !== 0) end++;
    b.copy(this.bytes, 0, at, end);
    this.len = end - at;
    this.name = b.toString('latin1', at, end);
    return this.name;
  }
}

/** The 32-byte name field at `at` holds exactly `name` (its bytes, then a NUL or the field's end). */
export function nameFieldEquals(b: Uint8Array, at: number, name: Uint8Array): boolean {
  const n = name.length;
  if (n > MAX_GROUP_NAME) return false;
  for (let i = 0; i < n; i++) if (b[at + i] !== name[i]) return false;
  return n === MAX_GROUP_NAME || b[at + n] === 0;
}

/** The names of `count` consecutive fields from `at`. */
export function readNameFields(b: Buffer, at: number, count: number): string[] {
  const out = new Array<string>(count);
  for (let i = 0; i < count; i++) out[i] = readNameField(b, at + i * MAX_GROUP_NAME);
  return out;
}
