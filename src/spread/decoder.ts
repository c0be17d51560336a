/**
 * Incremental decoder for framed Spread messages (either direction), in the
 * manner of nats.js core/src/parser.ts: `write(chunk)` may be called with any
 * slicing of the stream; an unfinished frame is kept between chunks and bytes
 * are copied only when a frame straddles chunks. Sizes are checked from the
 * header before anything is buffered, so memory per decoder is bounded by
 * one frame of at most the declared limits.
 */
import { ENDIAN_MARKER, HEADER_SIZE, MAX_GROUP_NAME, MAX_GROUPS_PER_MESSAGE, MAX_MESSAGE_BODY_LEN, REJECT_MESS, isDataType } from './constants.js';
import { Framer } from './framer.js';
import { ViewMemory } from './view-memory.js';
import { HDR_HINT, HDR_NUM_GROUPS, HDR_SENDER, HDR_TYPE, REJECT_EXTRA, VS_SET_COUNT, hintMessType, isLittleEndian, readHeaderInt, readNameField, NameFieldCache, swap32, wordValue } from './layout.js';

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

/**
 * A data message (a frame frameKind() calls 'data') handed over as the byte
 * range of its body, `buf[start, end)`, with its sender and mess_type: no
 * Frame, no event and no Buffer view made per message. The bytes are valid
 * only during the call (the chunk may be a reused read buffer).
 */
export type DataSink = (buf: Buffer, start: number, end: number, sender: string, messType: number) => void;

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

/** Members a client accepts in one membership message. */
const MAX_MEMBERS = 65536;
/**
 * A client receives member lists longer than the 100 a sender may address;
 * the body may hold each member in a vs-set of its own (a count and a name field).
 */
export const CLIENT_LIMITS: Required<DecoderLimits> = { maxGroups: MAX_MEMBERS, maxDataLen: MAX_MESSAGE_BODY_LEN + MAX_MEMBERS * (VS_SET_COUNT + MAX_GROUP_NAME) };
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
  private readonly senders = new NameFieldCache();
  private readonly firstGroups = new NameFieldCache();
  /** The memory under the last chunk: a frame's views are made from it, not by subarray(), which looks up `.buffer` for each. */
  private readonly chunk = new ViewMemory();

  constructor(
    private readonly onFrame: (f: Frame) => void,
    limits: RequestLimits = {},
    /** Where data messages go instead of onFrame (a subscriber's hot path); every other frame still goes to onFrame. */
    private readonly dataSink?: DataSink,
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
    // Scalar reads rather than readHeader(): the receive hot path allocates the Frame and nothing else for the header.
    const t = b.readUInt32LE(off + HDR_TYPE);
    const littleEndian = isLittleEndian(t);
    const type = wordValue(t);
    const numGroups = readHeaderInt(b, off + HDR_NUM_GROUPS, littleEndian);
    if (this.dataSink !== undefined && isDataType(type)) {
      this.frames++;
      this.dataSink(b, off + HEADER_SIZE + numGroups * MAX_GROUP_NAME, end, this.senders.read(b, off + HDR_SENDER), hintMessType(wordValue(b.readUInt32LE(off + HDR_HINT))));
      return;
    }
    let oldType: number | undefined;
    let g = off + HEADER_SIZE;
    if (type & REJECT_MESS) {
      const raw = littleEndian ? b.readUInt32LE(g) : b.readUInt32BE(g);
      oldType = (raw & ~ENDIAN_MARKER) >>> 0;
      g += REJECT_EXTRA;
    }
    const groups = new Array<string>(numGroups);
    for (let i = 0; i < numGroups; i++, g += MAX_GROUP_NAME) groups[i] = i === 0 ? this.firstGroups.read(b, g) : readNameField(b, g);
    const h = b.readUInt32LE(off + HDR_HINT);
    const hint = wordValue(h);
    const m = this.chunk;
    m.of(b);
    this.frames++;
    this.onFrame({
      type,
      sender: this.senders.read(b, off + HDR_SENDER),
      groups,
      hint,
      messType: hintMessType(hint),
      endianMismatch: !isLittleEndian(h),
      bigEndianHeader: !littleEndian,
      oldType,
      data: Buffer.from(m.mem, m.base + g, end - g),
      raw: Buffer.from(m.mem, m.base + off, end - off),
    });
  }
}
