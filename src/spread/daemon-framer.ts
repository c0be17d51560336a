/**
 * Frame boundaries of a client's request stream, for the daemon's hot path:
 * each complete request is handed over as a byte range of the chunk it came
 * in (a copy only for a request straddling chunks), so that a plain multicast
 * can be forwarded without decoding it into strings and objects. Boundaries
 * and limits are MessageDecoder's (PROTOCOL.md 4.1, 9); a header past the
 * limits is judged and worded by the generic decoder, so both paths fail alike.
 */
import { ENDIAN_MARKER, HEADER_SIZE, MAX_GROUP_NAME, REJECT_MESS } from './constants.js';
import { DAEMON_LIMITS, type RequestLimits, swap32 } from './decoder.js';
import { ErrorCodes, SpreadPipeError } from '../errors.js';

/** A complete frame: `buf[off, end)`. */
export type FrameSink = (buf: Buffer, off: number, end: number) => void;

export class RequestFramer {
  private readonly maxGroups: number;
  private readonly maxDataLen: number;
  private readonly maxBody: number;
  /** Bytes of an unfinished frame: its header so far, or the whole frame once its size is known. */
  private partial: Buffer | null = null;
  private partialLen = 0;
  /** Size of the partial frame; 0 while its header is incomplete. */
  private need = 0;
  private failed: Error | null = null;

  /**
   * @param judge throws the generic decoder's error for a header past the limits
   *              (given the bytes from that header on)
   */
  constructor(
    private readonly onFrame: FrameSink,
    private readonly judge: (bad: Buffer) => void,
    limits: RequestLimits = {},
  ) {
    this.maxGroups = limits.maxGroups ?? DAEMON_LIMITS.maxGroups;
    this.maxDataLen = limits.maxDataLen ?? DAEMON_LIMITS.maxDataLen;
    this.maxBody = limits.maxBody ?? Infinity;
  }

  /** Feed bytes; calls onFrame for every complete frame in order. Throws on a bad header, and ever after. */
  write(chunk: Buffer): void {
    if (this.failed) throw this.failed;
    let off = 0;
    if (this.partial) {
      off = this.fill(chunk);
      if (this.partial) return;
    }
    const len = chunk.length;
    while (len - off >= HEADER_SIZE) {
      const total = this.frameSize(chunk, off);
      if (len - off < total) break;
      this.onFrame(chunk, off, off + total);
      off += total;
    }
    if (off < len) this.keep(chunk, off);
  }

  /** Bytes of the frame after `off`'s 48-byte header, i.e. the header's total, checked against the limits. */
  private frameSize(b: Buffer, off: number): number {
    const t = b.readUInt32LE(off);
    const bigEndian = ((t & ENDIAN_MARKER) >>> 0) !== ENDIAN_MARKER;
    const type = (bigEndian ? swap32(t) : t) >>> 0;
    const numGroups = bigEndian ? b.readInt32BE(off + 36) : b.readInt32LE(off + 36);
    const dataLen = bigEndian ? b.readInt32BE(off + 44) : b.readInt32LE(off + 44);
    if (numGroups < 0 || numGroups > this.maxGroups || dataLen < 0 || dataLen > this.maxDataLen || dataLen + numGroups * MAX_GROUP_NAME > this.maxBody) {
      this.partial = null;
      this.partialLen = 0;
      try {
        this.judge(b.subarray(off));
        this.failed = new SpreadPipeError(ErrorCodes.PROTOCOL, 'bad Spread frame: header past the limits');
      } catch (e) {
        this.failed = e as Error;
      }
      throw this.failed;
    }
    return HEADER_SIZE + (type & REJECT_MESS ? 4 : 0) + numGroups * MAX_GROUP_NAME + dataLen;
  }

  private keep(chunk: Buffer, off: number): void {
    const n = chunk.length - off;
    this.need = n >= HEADER_SIZE ? this.frameSize(chunk, off) : 0;
    this.partial = Buffer.allocUnsafe(this.need || HEADER_SIZE);
    chunk.copy(this.partial, 0, off);
    this.partialLen = n;
  }

  /** Complete the partial frame from `chunk`; returns how many bytes of it were used. */
  private fill(chunk: Buffer): number {
    let used = 0;
    if (this.need === 0) {
      used = Math.min(HEADER_SIZE - this.partialLen, chunk.length);
      chunk.copy(this.partial!, this.partialLen, 0, used);
      this.partialLen += used;
      if (this.partialLen < HEADER_SIZE) return used;
      this.need = this.frameSize(this.partial!, 0);
      const full = Buffer.allocUnsafe(this.need);
      this.partial!.copy(full, 0, 0, HEADER_SIZE);
      this.partial = full;
    }
    const take = Math.min(this.need - this.partialLen, chunk.length - used);
    chunk.copy(this.partial!, this.partialLen, used, used + take);
    this.partialLen += take;
    used += take;
    if (this.partialLen === this.need) {
      const p = this.partial!;
      const end = this.need;
      this.partial = null;
      this.partialLen = 0;
      this.need = 0;
      this.onFrame(p, 0, end);
    }
    return used;
  }
}
