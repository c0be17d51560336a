/**
 * Frame boundaries of a Spread message stream (either direction), in the
 * manner of nats.js core/src/parser.ts: `write(chunk)` may be called with
 * any slicing of the stream, and each complete frame is handed over as a
 * byte range of the chunk it came in; bytes are copied only for a frame that
 * straddles chunks. Sizes are checked from the header before anything is
 * buffered (PROTOCOL.md 4.1, 9), so memory is bounded by one frame within
 * the limits. MessageDecoder decodes the ranges into Frames; the daemon's
 * hot path forwards plain multicasts straight from them.
 */
import { HEADER_SIZE, MAX_GROUP_NAME, REJECT_MESS } from './constants.js';
import { HDR_DATA_LEN, HDR_NUM_GROUPS, HDR_TYPE, REJECT_EXTRA, isLittleEndian, readHeaderInt, swap32 } from './layout.js';
import { ErrorCodes, SpreadPipeError } from '../errors.js';

/** A complete frame: `buf[off, end)`. */
export type FrameSink = (buf: Buffer, off: number, end: number) => void;

export interface FramerLimits {
  /** Largest num_groups accepted. */
  maxGroups: number;
  /** Largest data_len accepted. */
  maxDataLen: number;
  /** Largest data_len + 32 x num_groups; Infinity for no such bound. */
  maxBody: number;
}

export class Framer {
  /** Bytes of an unfinished frame: its header so far, or the whole frame once its size is known. */
  private partial: Buffer | null = null;
  private partialLen = 0;
  /** Size of the partial frame; 0 while its header is incomplete. */
  private need = 0;
  private failed: SpreadPipeError | null = null;

  constructor(
    private readonly onFrame: FrameSink,
    private readonly limits: FramerLimits,
  ) {}

  /** Bytes held for an unfinished frame. */
  get buffered(): number {
    return this.partialLen;
  }

  /**
   * Feed bytes; calls onFrame for every complete frame in order. Throws a
   * SpreadPipeError with code SP_ERR_PROTOCOL on a header past the limits,
   * and ever after: the stream is out of sync.
   */
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

  /** Forget a partial frame and a failure (after the connection they belonged to ended). */
  reset(): void {
    this.partial = null;
    this.partialLen = 0;
    this.need = 0;
    this.failed = null;
  }

  /** The size of the frame whose 48-byte header is at `off`, checked against the limits. */
  private frameSize(b: Buffer, off: number): number {
    const t = b.readUInt32LE(off + HDR_TYPE);
    const le = isLittleEndian(t);
    const type = (le ? t : swap32(t)) >>> 0;
    const numGroups = readHeaderInt(b, off + HDR_NUM_GROUPS, le);
    const dataLen = readHeaderInt(b, off + HDR_DATA_LEN, le);
    const { maxGroups, maxDataLen, maxBody } = this.limits;
    if (numGroups < 0 || numGroups > maxGroups) throw this.fail(`num_groups ${numGroups} outside 0..${maxGroups}`);
    if (dataLen < 0 || dataLen > maxDataLen) throw this.fail(`data_len ${dataLen} outside 0..${maxDataLen}`);
    if (dataLen + numGroups * MAX_GROUP_NAME > maxBody) throw this.fail(`data_len ${dataLen} + 32 x ${numGroups} groups over ${maxBody}`);
    // A REJECT_MESS carries the refused request's type after the header.
    return HEADER_SIZE + (type & REJECT_MESS ? REJECT_EXTRA : 0) + numGroups * MAX_GROUP_NAME + dataLen;
  }

  private fail(msg: string): SpreadPipeError {
    this.failed = new SpreadPipeError(ErrorCodes.PROTOCOL, `bad Spread frame: ${msg}`);
    this.partial = null;
    this.partialLen = 0;
    this.need = 0;
    return this.failed;
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
      // A fresh buffer per straddling frame: Frames handed out keep views of it.
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
