/**
 * Send preparation for SpreadClient: destinations and service checked and
 * encoded once (prepareSend), and the per-message encoder of the hot path,
 * which copies a header made once per destination list and sets only the
 * two fields that change (hint, data_len). No sockets here.
 */
import { AGREED_MESS, HEADER_SIZE, ILLEGAL_SERVICE, REGULAR_MESS, SELF_DISCARD } from './constants.js';
import { groupsField, wireHint, writeMessage } from './encode.js';
import { writeHintAndDataLen } from './layout.js';
import { ViewMemory } from './view-memory.js';
import { validateDestination } from './address.js';
import { ErrorCodes, SpreadPipeError } from '../errors.js';

export interface SendOptions {
  /** One of the six delivery bits. @default AGREED_MESS */
  service?: number;
  /** Signed 16-bit message type. @default 0 */
  messType?: number;
  /** Do not deliver to the sender itself. @default false */
  selfDiscard?: boolean;
}

/** Destinations and service encoded once, for the publisher's hot path. */
export interface PreparedSend {
  readonly type: number;
  /** The hint field as wireHint() gives it (signed; the same bytes as encodeHint()). */
  readonly hint: number;
  readonly groups: Buffer;
  readonly numGroups: number;
}

export function prepareSend(groups: string | readonly string[], opts: SendOptions = {}): PreparedSend {
  const list = typeof groups === 'string' ? [groups] : groups;
  list.forEach(validateDestination);
  const service = opts.service ?? AGREED_MESS;
  const delivery = service & REGULAR_MESS;
  if (delivery === 0 || (delivery & (delivery - 1)) !== 0) {
    throw new SpreadPipeError(ErrorCodes.ILLEGAL_SERVICE, `service 0x${service.toString(16)} needs exactly one delivery bit`, { spreadCode: ILLEGAL_SERVICE });
  }
  const messType = opts.messType ?? 0;
  if (!Number.isInteger(messType) || messType < -32768 || messType > 32767) {
    throw new SpreadPipeError(ErrorCodes.INVALID_ARGUMENT, `message type ${messType} is not a signed 16-bit integer`);
  }
  return { type: service | (opts.selfDiscard ? SELF_DISCARD : 0), hint: wireHint(messType), groups: groupsField(list), numGroups: list.length };
}

const EMPTY = Buffer.alloc(0);

/**
 * Encodes one session's messages: the same bytes as writeMessage(), from a
 * header encoded once per destination list, so per message only the hint and
 * the length change. Buffer methods (copy, writeUInt32LE) cost more than the
 * bytes they move at this size.
 */
export class MessageEncoder {
  /** Header + groups of the last destination list sent. */
  private head: Buffer = EMPTY;
  private headGroups: Buffer | undefined;
  private headType = -1;
  /** The memory under the last source: the same queue block for hundreds of messages in a row. */
  private readonly src = new ViewMemory();

  /** `sender`: the session's private group as a name field. */
  constructor(private readonly sender: Buffer) {}

  /** Encode `src[start, start + len)` to `p` at `off` in `buf`; returns the offset after it. */
  encode(buf: Buffer, off: number, p: PreparedSend, src: Uint8Array, start: number, len: number, hint = p.hint): number {
    if (p.groups !== this.headGroups || p.type !== this.headType) {
      this.head = Buffer.allocUnsafe(HEADER_SIZE + p.groups.length);
      writeMessage(this.head, 0, p.type, this.sender, p.groups, 0, EMPTY);
      this.headGroups = p.groups;
      this.headType = p.type;
    }
    const head = this.head;
    buf.set(head, off);
    writeHintAndDataLen(buf, off, hint, len);
    off += head.length;
    if (start === 0 && len === src.length) buf.set(src, off);
    else {
      const m = this.src;
      m.of(src);
      buf.set(new Uint8Array(m.mem, m.base + start, len), off);
    }
    return off + len;
  }
}
