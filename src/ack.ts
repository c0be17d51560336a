/**
 * --ack, the sender's side: sequence numbers in Spread's 16-bit message type
 * and the window of messages sent but not yet acknowledged.
 *
 * The scheme, chosen so that it works against real Spread daemons as well as
 * the built-in one, with nothing but the client protocol:
 * - Every message is sent to its groups AND to the sender's own private
 *   group. The daemon delivers one copy back to the sender (exactly once per
 *   connection); that copy is the acknowledgement that the daemon took and
 *   ordered the message. With FIFO or stronger service acks come back in send
 *   order; the window below accepts them in any order, so RELIABLE works too.
 * - Sequence numbers count LINES, not messages: the publisher gives every line
 *   an id (the spool's record id with --spool, a counter otherwise), and a
 *   message carries the id of its first line, mod 2^16, in its message type.
 *   A message's line count is its number of LF-terminated lines, which every
 *   receiver can count, so a batch rebuilt differently after a restart still
 *   deduplicates line by line.
 * - A publisher is one stream, named by its private name: "=" followed by nine
 *   random base-36 characters. The "=" marks a sequenced stream (a plain
 *   client's message type is no sequence number). The daemon part of the
 *   private group is not part of the stream, so failover keeps the stream.
 *   With --spool the name is kept in the spool, so a restarted spread-pipe
 *   resends its unacknowledged lines under the same name and ids and receivers
 *   drop what they already have; without a spool each process is a new
 *   stream. A new name (a new stream) is also taken when ids would jump too
 *   far for receivers (lines dropped from a full spool), see MAX_ID_JUMP.
 * - Bounds: at most DEFAULT_ACK_WINDOW lines are unacknowledged at any time,
 *   far under the 65536 wrap; receivers remember RECEIVER_WINDOW ids per
 *   stream (dedup.ts), which covers the unacknowledged window plus the lag of
 *   the spool's persisted cursor.
 */
import crypto from 'node:crypto';

/** First character of a sequenced stream's private name. */
export const STREAM_MARK = '=';
/** Message types are 16 bits: ids are sent modulo this. */
export const SEQ_MODULO = 0x10000;
/** Lines sent and not yet acknowledged, at most. @default 8192 */
export const DEFAULT_ACK_WINDOW = 8192;
/** Bytes sent and not yet acknowledged, at most (kept in memory for resending). @default 16 MiB */
export const DEFAULT_ACK_BYTES = 16 * 1024 * 1024;
/** Ids a receiver remembers per stream: the ack window plus the spool cursor's lag, with room. */
export const RECEIVER_WINDOW = 16384;
/**
 * Largest forward jump of ids (lines dropped before they were ever sent)
 * that every receiver still reads as "newer": a receiver takes an id as new
 * when it is less than half the wrap ahead of the newest it has, and may be
 * up to one ack window behind the sender. Past this a new stream is started.
 */
export const MAX_ID_JUMP = SEQ_MODULO / 2 - RECEIVER_WINDOW;

const NAME_CHARS = '0123456789abcdefghijklmnopqrstuvwxyz';

/** A fresh stream name: "=" and nine random base-36 characters (10, Spread's limit). */
export function newStreamName(): string {
  const bytes = crypto.randomBytes(9);
  let s = STREAM_MARK;
  for (const b of bytes) s += NAME_CHARS[b % 36];
  return s;
}

export function isStreamName(name: string): boolean {
  return /^=[0-9a-z]{9}$/.test(name);
}

/**
 * The stream of a message's sender: the private name inside "#name#daemon",
 * when it is a sequenced stream's name; undefined for every other sender.
 */
export function streamOf(sender: string): string | undefined {
  if (sender.charCodeAt(0) !== 0x23 /* # */ || sender.charCodeAt(1) !== 0x3d /* = */) return undefined;
  const end = sender.indexOf('#', 1);
  const name = end < 0 ? sender.slice(1) : sender.slice(1, end);
  return isStreamName(name) ? name : undefined;
}

/** The message type carrying line id `id`: its low 16 bits as a signed 16-bit value. */
export function seqMessType(id: number): number {
  return ((id & 0xffff) << 16) >> 16;
}

/** The 16-bit sequence number in a received message type. */
export function seqOf(messType: number): number {
  return messType & 0xffff;
}

/** Lines in a message body: LF-terminated lines, plus an unterminated tail; an empty body is one line. */
export function countLines(data: Uint8Array): number {
  let n = 0;
  let i = -1;
  const buf = data as Buffer;
  while ((i = buf.indexOf(0x0a, i + 1)) >= 0) n++;
  if (data.length === 0 || data[data.length - 1] !== 0x0a) n++;
  return n;
}

export interface InFlight<T> {
  /** Id of the message's first line. */
  readonly first: number;
  readonly lines: number;
  readonly bytes: number;
  /** What the publisher needs to send it again. */
  readonly item: T;
  acked: boolean;
}

/**
 * Messages sent and not yet acknowledged, in send order. Acks may come in any
 * order; the window's low edge (`lowest`) moves when its oldest message is
 * acknowledged, and is what the spool may persist as its cursor.
 */
export class AckWindow<T> {
  private entries: (InFlight<T> | undefined)[] = [];
  private head = 0;
  private readonly bySeq = new Map<number, InFlight<T>>();
  private linesHeld = 0;
  private bytesHeld = 0;
  /** Ids past every message sent so far (the next id to send, unless ids jump). */
  private end: number | undefined;
  /** Acks that matched no message in flight (a copy from an old session, say). */
  stray = 0;

  constructor(
    readonly maxLines = DEFAULT_ACK_WINDOW,
    readonly maxBytes = DEFAULT_ACK_BYTES,
  ) {
    if (!(maxLines >= 1 && maxLines <= SEQ_MODULO / 4)) throw new RangeError(`ack window ${maxLines} must be 1..${SEQ_MODULO / 4} lines`);
  }

  /** Messages in flight. */
  get size(): number {
    return this.bySeq.size;
  }

  get lines(): number {
    return this.linesHeld;
  }

  get bytes(): number {
    return this.bytesHeld;
  }

  /** Id of the oldest unacknowledged line, or undefined when nothing is in flight. */
  get lowest(): number | undefined {
    return this.entries[this.head]?.first;
  }

  /** Whether a message of `lines` lines from id `first` fits the window now. */
  fits(first: number, lines: number, bytes: number): boolean {
    const low = this.lowest;
    // Nothing in flight: any one message goes (batches are capped well under the window).
    if (low === undefined) return true;
    return first + lines - low <= this.maxLines && this.bytesHeld + bytes <= this.maxBytes;
  }

  /** Record a message just sent (ids must increase from message to message). */
  add(first: number, lines: number, bytes: number, item: T): void {
    if (this.end !== undefined && first < this.end) throw new RangeError(`line id ${first} sent after ${this.end - 1}`);
    const e: InFlight<T> = { first, lines, bytes, item, acked: false };
    this.entries.push(e);
    this.bySeq.set(first & 0xffff, e);
    this.linesHeld += lines;
    this.bytesHeld += bytes;
    this.end = first + lines;
  }

  /** An ack: a copy of our message with sequence `seq` and `lines` lines came back. Returns the message, if it was in flight. */
  ack(seq: number, lines: number): InFlight<T> | undefined {
    const e = this.bySeq.get(seq & 0xffff);
    if (!e || e.acked || e.lines !== lines) {
      this.stray++;
      return undefined;
    }
    e.acked = true;
    this.bySeq.delete(seq & 0xffff);
    this.linesHeld -= e.lines;
    this.bytesHeld -= e.bytes;
    while (this.head < this.entries.length && this.entries[this.head]!.acked) this.entries[this.head++] = undefined;
    if (this.head >= 1024 && this.head * 2 >= this.entries.length) {
      this.entries = this.entries.slice(this.head);
      this.head = 0;
    }
    return e;
  }

  /** Unacknowledged messages in send order: what to send again on a new session. */
  *pending(): IterableIterator<InFlight<T>> {
    for (let i = this.head; i < this.entries.length; i++) {
      const e = this.entries[i]!;
      if (!e.acked) yield e;
    }
  }

  /** Forget everything (at exit, or when a stream is abandoned); returns the lines that were unacknowledged. */
  clear(): number {
    const n = this.linesHeld;
    this.entries = [];
    this.head = 0;
    this.bySeq.clear();
    this.linesHeld = 0;
    this.bytesHeld = 0;
    this.end = undefined;
    return n;
  }
}
