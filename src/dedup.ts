/**
 * --ack, the receiver's side: drop lines a sequenced stream sent twice (a
 * resend after a lost ack, a reconnect, a failover, or a restarted
 * spread-pipe replaying its spool). See ack.ts for the scheme.
 *
 * Per stream a sliding window remembers the newest id seen and which of the
 * RECEIVER_WINDOW ids below it were seen. An id less than half the wrap ahead
 * of the newest is new (the window slides; ids skipped on the way are
 * "unseen", as lines dropped by the sender are); an id behind it and inside
 * the window is a duplicate exactly when it was seen; an id further behind
 * cannot come from a sender that keeps to its ack window, so it is taken as
 * the stream starting over (counted in `resets`) rather than dropped:
 * when in doubt, deliver twice rather than lose.
 *
 * Messages from other senders (no "=" stream name) pass untouched. A
 * stream's acknowledgement marker (ack.ts) is never a line: dropped, counted
 * in `markers` (they go to the sender's private group only, so one reaching
 * a receiver is unusual).
 */
import { RECEIVER_WINDOW, SEQ_MODULO, countLines, isMarker, seqOf, streamOf } from './ack.js';

/** Streams remembered at once; the least recently heard is forgotten first. @default 4096 */
export const DEFAULT_MAX_STREAMS = 4096;

const HALF = SEQ_MODULO / 2;

/** One stream's memory of the ids it has seen. */
export class SeqWindow {
  /** Newest id seen, or -1 before the first. */
  top = -1;
  readonly bits: Uint32Array;
  private readonly mask: number;

  constructor(readonly size = RECEIVER_WINDOW) {
    if (size < 32 || size > HALF || (size & (size - 1)) !== 0) throw new RangeError(`window ${size} must be a power of two in 32..${HALF}`);
    this.bits = new Uint32Array(size / 32);
    this.mask = size - 1;
  }

  /** Mark `seq` seen; returns 'new', 'dup', or 'reset' (new, but the window started over). */
  see(seq: number): 'new' | 'dup' | 'reset' {
    seq &= 0xffff;
    if (this.top < 0) {
      this.top = seq;
      this.set(seq);
      return 'new';
    }
    const d = (seq - this.top) & 0xffff;
    if (d === 0) return 'dup';
    if (d < HALF) {
      if (d >= this.size) this.bits.fill(0);
      else for (let i = 1; i < d; i++) this.clear((this.top + i) & 0xffff);
      this.top = seq;
      this.set(seq);
      return 'new';
    }
    if (SEQ_MODULO - d < this.size) {
      if (this.get(seq)) return 'dup';
      this.set(seq);
      return 'new';
    }
    this.bits.fill(0);
    this.top = seq;
    this.set(seq);
    return 'reset';
  }

  private get(seq: number): boolean {
    const i = seq & this.mask;
    return (this.bits[i >>> 5]! & (1 << (i & 31))) !== 0;
  }

  private set(seq: number): void {
    const i = seq & this.mask;
    this.bits[i >>> 5]! |= 1 << (i & 31);
  }

  private clear(seq: number): void {
    const i = seq & this.mask;
    this.bits[i >>> 5]! &= ~(1 << (i & 31));
  }
}

/** Ids newly seen: `count` ids from `first` (mod 2^16) of `stream`. What a journal records. */
export interface SeenRange {
  stream: string;
  first: number;
  count: number;
}

export interface DedupStats {
  /** Messages from sequenced streams looked at. */
  messages: number;
  /** Lines dropped as already seen. */
  duplicateLines: number;
  /** Messages dropped whole. */
  duplicateMessages: number;
  /** Messages delivered with some of their lines removed. */
  partial: number;
  /** Streams whose window started over (an id too far behind; see above). */
  resets: number;
  /** Streams forgotten to stay under maxStreams. */
  evicted: number;
  /** Acknowledgement markers skipped (not lines; #16). */
  markers: number;
}

export class DuplicateFilter {
  readonly stats: DedupStats = { messages: 0, duplicateLines: 0, duplicateMessages: 0, partial: 0, resets: 0, evicted: 0, markers: 0 };
  private readonly streams = new Map<string, SeqWindow>();
  /** The stream heard last: most messages come from the same one, so skip the LRU bookkeeping. */
  private lastName = '';
  private lastSender = '';
  private lastStream: string | undefined;
  private lastWindow: SeqWindow | undefined;
  private changes: SeenRange[] | undefined;

  constructor(
    readonly windowSize = RECEIVER_WINDOW,
    readonly maxStreams = DEFAULT_MAX_STREAMS,
  ) {}

  get streamCount(): number {
    return this.streams.size;
  }

  /** Record every id newly seen, for takeChanges() (a persistent receiver journals them). */
  trackChanges(on = true): void {
    this.changes = on ? [] : undefined;
  }

  /** The ids newly seen since the last call. */
  takeChanges(): SeenRange[] {
    const c = this.changes ?? [];
    if (this.changes) this.changes = [];
    return c;
  }

  /** Messages from `sender` are looked at by filter(); every other sender's pass it untouched. */
  sequenced(sender: string): boolean {
    return this.streamFor(sender) !== undefined;
  }

  /**
   * What of a message to keep: `data` itself (all new, or not a sequenced
   * stream), a copy without the lines already seen, or null (all seen).
   */
  filter(sender: string, messType: number, data: Buffer): Buffer | null {
    const stream = this.streamFor(sender);
    if (stream === undefined) return data;
    if (isMarker(data)) {
      this.stats.markers++;
      return null;
    }
    this.stats.messages++;
    const w = this.window(stream);
    const first = seqOf(messType);
    const lines = countLines(data);
    if (lines === 1) {
      const v = w.see(first);
      if (v === 'dup') {
        this.stats.duplicateLines++;
        this.stats.duplicateMessages++;
        return null;
      }
      if (v === 'reset') this.stats.resets++;
      this.record(stream, first, 1);
      return data;
    }
    // Several lines: decide each; keep the message as is unless some were seen.
    let keep: Buffer[] | undefined;
    let start = 0;
    let runFirst = -1;
    let runCount = 0;
    for (let k = 0; k < lines; k++) {
      const nl = data.indexOf(0x0a, start);
      const end = nl < 0 ? data.length : nl + 1;
      const seq = (first + k) & 0xffff;
      const v = w.see(seq);
      if (v === 'dup') {
        this.stats.duplicateLines++;
        keep ??= k > 0 ? [data.subarray(0, start)] : [];
      } else {
        if (v === 'reset') this.stats.resets++;
        keep?.push(data.subarray(start, end));
        if (runCount > 0 && ((runFirst + runCount) & 0xffff) === seq) runCount++;
        else {
          if (runCount > 0) this.record(stream, runFirst, runCount);
          runFirst = seq;
          runCount = 1;
        }
      }
      start = end;
    }
    if (runCount > 0) this.record(stream, runFirst, runCount);
    if (!keep) return data;
    if (keep.length === 0) {
      this.stats.duplicateMessages++;
      return null;
    }
    this.stats.partial++;
    return Buffer.concat(keep);
  }

  /** Mark ids seen without a message (replaying a journal). */
  markSeen(r: SeenRange): void {
    const w = this.window(r.stream);
    for (let k = 0; k < r.count; k++) w.see((r.first + k) & 0xffff);
  }

  /** Every stream's window, oldest-heard first (for a snapshot). */
  entries(): IterableIterator<[string, SeqWindow]> {
    return this.streams.entries();
  }

  /** Put back a stream's window from a snapshot. */
  restore(stream: string, top: number, bits: Uint32Array): void {
    const w = this.window(stream);
    if (bits.length !== w.bits.length) throw new RangeError(`window of ${bits.length * 32} ids, expected ${w.size}`);
    w.top = top;
    w.bits.set(bits);
  }

  /**
   * streamOf(sender), kept for the sender heard last: a receiver hears mostly
   * one sender in a row, its name the same string each time (the decoder's
   * name cache), so its stream is not parsed again per message.
   */
  private streamFor(sender: string): string | undefined {
    if (sender !== this.lastSender) {
      this.lastStream = streamOf(sender);
      this.lastSender = sender;
    }
    return this.lastStream;
  }

  private window(stream: string): SeqWindow {
    if (stream === this.lastName && this.lastWindow) return this.lastWindow;
    let w = this.streams.get(stream);
    if (w) {
      // Map order is the LRU order: move to the end.
      this.streams.delete(stream);
      this.streams.set(stream, w);
      this.lastName = stream;
      this.lastWindow = w;
      return w;
    }
    if (this.streams.size >= this.maxStreams) {
      const [oldest] = this.streams.keys();
      this.streams.delete(oldest!);
      if (oldest === this.lastName) this.lastWindow = undefined;
      this.stats.evicted++;
    }
    w = new SeqWindow(this.windowSize);
    this.streams.set(stream, w);
    this.lastName = stream;
    this.lastWindow = w;
    return w;
  }

  private record(stream: string, first: number, count: number): void {
    this.changes?.push({ stream, first, count });
  }
}
