/**
 * Incremental decoder for framed Spread messages (either direction), in the
 * manner of nats.js core/src/parser.ts: `write(chunk)` may be called with any
 * slicing of the stream; an unfinished frame is kept between chunks and bytes
 * are copied only when a frame straddles chunks. Sizes are checked from the
 * header before anything is buffered, so memory per decoder is bounded by
 * one frame of at most the declared limits.
 */
import {
  ENDIAN_MARKER,
  HEADER_SIZE,
  MAX_GROUP_NAME,
  MAX_GROUPS_PER_MESSAGE,
  MAX_MESSAGE_BODY_LEN,
  REJECT_MESS,
} from './constants.js';
import { ErrorCodes, SpreadPipeError } from '../errors.js';

export interface Frame {
  /** Service bits in host order with the endian marker cleared. */
  type: number;
  /** Sender field up to its first NUL (a private group, or a group name for membership). */
  sender: string;
  /** Destination names (data), member list (membership), or extended list (reject). */
  groups: string[];
  /** The hint brought to host order by its own marker; marker bits cleared. */
  hint: number;
  /** Signed 16-bit application message type from the hint. */
  messType: number;
  /** The original sender wrote the hint in the other byte order than ours (little-endian). */
  endianMismatch: boolean;
  /** The header itself was big-endian (the daemon-side view of a big-endian client). */
  bigEndianHeader: boolean;
  /** REJECT_MESS only: the refused request's type, marker cleared. */
  oldType: number | undefined;
  /** Message body. A view into the stream's chunk when the frame did not straddle chunks. */
  data: Buffer;
  /** The whole frame as received, for forwarding without re-encoding. */
  raw: Buffer;
}

export interface DecoderLimits {
  /** Largest num_groups accepted. Membership messages list every member, so clients need more than 100. @default 100 */
  maxGroups?: number;
  /** Largest data_len accepted. @default 144000 */
  maxDataLen?: number;
}

/** The daemon's extra rule on requests. */
export interface RequestLimits extends DecoderLimits {
  /**
   * Largest data_len + 32 x num_groups (the daemon's PROTOCOL.md 9 rule 5),
   * checked on the header so that a refused frame is never waited for.
   * @default no limit beyond the two above
   */
  maxBody?: number;
}

/** A client receives member lists longer than the 100 a sender may address. */
export const CLIENT_LIMITS: Required<DecoderLimits> = { maxGroups: 65536, maxDataLen: MAX_MESSAGE_BODY_LEN + 65536 * 36 };
export const DAEMON_LIMITS: Required<DecoderLimits> = { maxGroups: MAX_GROUPS_PER_MESSAGE, maxDataLen: MAX_MESSAGE_BODY_LEN };

function readName(b: Buffer, off: number): string {
  let end = off;
  const stop = off + MAX_GROUP_NAME;
  while (end < stop && b[end] !== 0) end++;
  return b.toString('latin1', off, end);
}

/** Sign-extended mess_type and the hint's byte order, from a raw hint read little-endian. */
export function decodeHint(rawLE: number): { hint: number; messType: number; bigEndian: boolean } {
  const bigEndian = ((rawLE & ENDIAN_MARKER) >>> 0) !== ENDIAN_MARKER;
  const h = bigEndian ? swap32(rawLE) : rawLE >>> 0;
  const v = (h & ~ENDIAN_MARKER) >>> 0;
  return { hint: v, messType: (((v >>> 8) & 0xffff) << 16) >> 16, bigEndian };
}

export function swap32(v: number): number {
  return (((v & 0xff) << 24) | ((v & 0xff00) << 8) | ((v >>> 8) & 0xff00) | ((v >>> 24) & 0xff)) >>> 0;
}

interface Header {
  type: number;
  numGroups: number;
  dataLen: number;
  bigEndian: boolean;
  /** Bytes before the body: header, optional reject old type, group names. */
  prefix: number;
  total: number;
}

export class MessageDecoder {
  private readonly maxGroups: number;
  private readonly maxDataLen: number;
  private readonly maxBody: number;
  /** Bytes of an unfinished header (< 52 bytes) or of an unfinished frame (exact size). */
  private partial: Buffer | null = null;
  private partialLen = 0;
  private partialHeader: Header | null = null;
  private failed: SpreadPipeError | null = null;
  /** Frames decoded so far. */
  frames = 0;

  constructor(
    private readonly onFrame: (f: Frame) => void,
    limits: RequestLimits = {},
  ) {
    this.maxGroups = limits.maxGroups ?? DAEMON_LIMITS.maxGroups;
    this.maxDataLen = limits.maxDataLen ?? DAEMON_LIMITS.maxDataLen;
    this.maxBody = limits.maxBody ?? Infinity;
  }

  /** Bytes held for an unfinished frame. */
  get buffered(): number {
    return this.partialLen;
  }

  /**
   * Feed bytes. Calls onFrame for every complete frame, in order. Throws a
   * SpreadPipeError with code SP_ERR_PROTOCOL on a header past the limits;
   * the decoder is unusable afterwards (the stream is out of sync).
   */
  write(chunk: Buffer): void {
    if (this.failed) throw this.failed;
    let off = 0;
    if (this.partial) {
      off = this.fillPartial(chunk);
      if (this.partial) return;
    }
    const len = chunk.length;
    while (len - off >= HEADER_SIZE) {
      const h = this.header(chunk, off, len - off);
      if (h === null) break; // reject old type not yet here
      if (len - off < h.total) {
        this.startPartial(chunk, off, h);
        return;
      }
      this.emit(chunk, off, h);
      off += h.total;
    }
    if (off < len) this.startPartial(chunk, off, null);
  }

  /** Clear a partial frame (after the connection it belonged to ended). */
  reset(): void {
    this.partial = null;
    this.partialLen = 0;
    this.partialHeader = null;
    this.failed = null;
  }

  private header(b: Buffer, off: number, avail: number): Header | null {
    const t = b.readUInt32LE(off);
    const bigEndian = ((t & ENDIAN_MARKER) >>> 0) !== ENDIAN_MARKER;
    const type = ((bigEndian ? swap32(t) : t) & ~ENDIAN_MARKER) >>> 0;
    const numGroups = bigEndian ? b.readInt32BE(off + 36) : b.readInt32LE(off + 36);
    const dataLen = bigEndian ? b.readInt32BE(off + 44) : b.readInt32LE(off + 44);
    if (numGroups < 0 || numGroups > this.maxGroups) {
      throw this.fail(`num_groups ${numGroups} outside 0..${this.maxGroups}`);
    }
    if (dataLen < 0 || dataLen > this.maxDataLen) {
      throw this.fail(`data_len ${dataLen} outside 0..${this.maxDataLen}`);
    }
    if (dataLen + numGroups * MAX_GROUP_NAME > this.maxBody) {
      throw this.fail(`data_len ${dataLen} + 32 x ${numGroups} groups over ${this.maxBody}`);
    }
    const extra = type & REJECT_MESS ? 4 : 0;
    if (extra && avail < HEADER_SIZE + extra) return null;
    const prefix = HEADER_SIZE + extra + numGroups * MAX_GROUP_NAME;
    return { type, numGroups, dataLen, bigEndian, prefix, total: prefix + dataLen };
  }

  private fail(msg: string): SpreadPipeError {
    this.failed = new SpreadPipeError(ErrorCodes.PROTOCOL, `bad Spread frame: ${msg}`);
    this.partial = null;
    this.partialLen = 0;
    return this.failed;
  }

  private startPartial(chunk: Buffer, off: number, h: Header | null): void {
    const n = chunk.length - off;
    // Unknown size yet: room for the largest header (48 + reject old type).
    this.partial = Buffer.allocUnsafe(h ? h.total : HEADER_SIZE + 4);
    chunk.copy(this.partial, 0, off);
    this.partialLen = n;
    this.partialHeader = h;
  }

  /** Complete the partial frame from `chunk`; returns how many bytes of chunk were used. */
  private fillPartial(chunk: Buffer): number {
    let used = 0;
    let p = this.partial!;
    if (!this.partialHeader) {
      const want = Math.min(HEADER_SIZE + 4 - this.partialLen, chunk.length);
      chunk.copy(p, this.partialLen, 0, want);
      const have = this.partialLen + want;
      if (have < HEADER_SIZE) {
        this.partialLen = have;
        return chunk.length;
      }
      const h = this.header(p, 0, have);
      if (h === null) {
        this.partialLen = have;
        return chunk.length;
      }
      const full = Buffer.allocUnsafe(h.total);
      const keep = Math.min(have, h.total);
      p.copy(full, 0, 0, keep);
      used = keep - this.partialLen;
      this.partial = p = full;
      this.partialLen = keep;
      this.partialHeader = h;
    }
    const h = this.partialHeader!;
    const want = Math.min(h.total - this.partialLen, chunk.length - used);
    chunk.copy(p, this.partialLen, used, used + want);
    this.partialLen += want;
    used += want;
    if (this.partialLen === h.total) {
      this.partial = null;
      this.partialLen = 0;
      this.partialHeader = null;
      this.emit(p, 0, h);
    }
    return used;
  }

  private emit(b: Buffer, off: number, h: Header): void {
    const extra = h.prefix - HEADER_SIZE - h.numGroups * MAX_GROUP_NAME;
    let oldType: number | undefined;
    if (extra) {
      const raw = h.bigEndian ? b.readUInt32BE(off + HEADER_SIZE) : b.readUInt32LE(off + HEADER_SIZE);
      oldType = (raw & ~ENDIAN_MARKER) >>> 0;
    }
    const groups = new Array<string>(h.numGroups);
    let g = off + HEADER_SIZE + extra;
    for (let i = 0; i < h.numGroups; i++, g += MAX_GROUP_NAME) groups[i] = readName(b, g);
    const hint = decodeHint(b.readUInt32LE(off + 40));
    this.frames++;
    this.onFrame({
      type: h.type,
      sender: readName(b, off + 4),
      groups,
      hint: hint.hint,
      messType: hint.messType,
      endianMismatch: hint.bigEndian,
      bigEndianHeader: h.bigEndian,
      oldType,
      data: b.subarray(off + h.prefix, off + h.total),
      raw: b.subarray(off, off + h.total),
    });
  }
}
