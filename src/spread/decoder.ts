/**
 * Incremental decoder for framed Spread messages (either direction), in the
 * manner of nats.js core/src/parser.ts: `write(chunk)` may be called with any
 * slicing of the stream; an unfinished frame is kept between chunks and bytes
 * are copied only when a frame straddles chunks. Sizes are checked from the
 * header before anything is buffered, so memory per decoder is bounded by
 * one frame of at most the declared limits.
 */
import { ENDIAN_MARKER, HEADER_SIZE, MAX_GROUP_NAME, MAX_GROUPS_PER_MESSAGE, MAX_MESSAGE_BODY_LEN, REJECT_MESS } from './constants.js';
import { Framer } from './framer.js';
import { HDR_SENDER, REJECT_EXTRA, hintMessType, isLittleEndian, readHeader, readNameField, readNameFields, swap32, wordValue } from './layout.js';

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

/** Sign-extended mess_type and the hint's byte order, from a raw hint read little-endian. */
export function decodeHint(rawLE: number): { hint: number; messType: number; bigEndian: boolean } {
  const v = wordValue(rawLE);
  return { hint: v, messType: hintMessType(v), bigEndian: !isLittleEndian(rawLE) };
}

export { swap32 };

export class MessageDecoder {
  private readonly framer: Framer;
  /** Frames decoded so far. */
  frames = 0;

  constructor(
    private readonly onFrame: (f: Frame) => void,
    limits: RequestLimits = {},
  ) {
    this.framer = new Framer((b, off, end) => this.emit(b, off, end), {
      maxGroups: limits.maxGroups ?? DAEMON_LIMITS.maxGroups,
      maxDataLen: limits.maxDataLen ?? DAEMON_LIMITS.maxDataLen,
      maxBody: limits.maxBody ?? Infinity,
    });
  }

  /** Bytes held for an unfinished frame. */
  get buffered(): number {
    return this.framer.buffered;
  }

  /**
   * Feed bytes. Calls onFrame for every complete frame, in order. Throws a
   * SpreadPipeError with code SP_ERR_PROTOCOL on a header past the limits;
   * the decoder is unusable afterwards (the stream is out of sync).
   */
  write(chunk: Buffer): void {
    this.framer.write(chunk);
  }

  /** Clear a partial frame (after the connection it belonged to ended). */
  reset(): void {
    this.framer.reset();
  }

  /** One whole frame, `b[off, end)`, its header already checked by the framer. */
  private emit(b: Buffer, off: number, end: number): void {
    const h = readHeader(b, off);
    let oldType: number | undefined;
    let g = off + HEADER_SIZE;
    if (h.type & REJECT_MESS) {
      const raw = h.littleEndian ? b.readUInt32LE(g) : b.readUInt32BE(g);
      oldType = (raw & ~ENDIAN_MARKER) >>> 0;
      g += REJECT_EXTRA;
    }
    const groups = readNameFields(b, g, h.numGroups);
    g += h.numGroups * MAX_GROUP_NAME;
    this.frames++;
    this.onFrame({
      type: h.type,
      sender: readNameField(b, off + HDR_SENDER),
      groups,
      hint: h.hint,
      messType: hintMessType(h.hint),
      endianMismatch: !h.hintLittleEndian,
      bigEndianHeader: !h.littleEndian,
      oldType,
      data: b.subarray(g, end),
      raw: b.subarray(off, end),
    });
  }
}
