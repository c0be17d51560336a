/**
 * --ack, the sender's side: sequence numbers in Spread's 16-bit message type,
 * the acknowledgement marker, and the window of messages sent but not yet
 * acknowledged.
 *
 * The scheme, chosen so that it works against real Spread daemons as well as
 * the built-in one, with nothing but the client protocol:
 * - Data messages go to their groups only. Now and then (after
 *   DEFAULT_MARKER_LINES lines or DEFAULT_MARKER_MS ms, whichever comes
 *   first, so one marker per window at full speed and a short wait at low
 *   rates; one due by time while the last is still on its way back goes when
 *   that one is back; at once when the window is full, on a new session and
 *   when the publisher drains) the publisher sends one small MARKER to its own private
 *   group only, on the same session. It says "every line id below END was
 *   sent before me"; when the daemon delivers it back, every data message
 *   sent before it has been taken and ordered by the daemon, and the window
 *   forgets them. The daemon's work and ours per line is then that of plain
 *   publishing (issue 16; the first scheme sent every message to our private
 *   group as well and took the copy back as its ack: one more delivery, read
 *   and parse per line, which halved a real daemon's throughput).
 * - Why the promise holds, and the service the marker takes. The documented
 *   guarantees (PROTOCOL.md section 12) are about what one receiver sees of
 *   the messages it gets; the sender gets none of its data messages now, so
 *   the promise rests on how a daemon takes its clients' messages, the same
 *   in 4.0.0 and 5.0.1 (daemon/session.c, protocol.c): Sess_read reads a
 *   session's socket in order and hands every message, whatever its service
 *   and destinations (a private group included), to Prot_new_message, which
 *   appends it to the daemon's ONE down queue; the token sends that queue in
 *   order, so the marker's ring sequence number is above those of all data
 *   messages sent before it on the session; and the daemon delivers anything,
 *   to a local private group too, only from the ring, after it was sent
 *   there. So a marker back means: the daemon has read every earlier data
 *   message and given it its place in the order (and, as before, a daemon
 *   that dies with packets no other daemon received yet may lose them: only
 *   SAFE says more). RELIABLE would do in those daemons (a single-packet
 *   RELIABLE message is delivered as soon as it is sent, "regardless of what
 *   is already in the queue", Deliver_reliable_packets), but it promises no
 *   order at all, so a daemon run another way would be within its rights to
 *   hand the marker back first. FIFO is the weakest service that promises
 *   one sender's messages in the order sent, so the marker is FIFO: real
 *   Spread delivers FIFO in ring order (Deliver_agreed_packets: once the
 *   daemon holds every packet up to it) and the built-in daemon serves a
 *   session's requests in order. Data sent SAFE get a SAFE marker: back only
 *   once every daemon has received everything up to it, which is what the
 *   ack of a SAFE message meant before. One marker per window costs nothing
 *   measurable whatever its service.
 * - The marker goes to the private group ONLY: no member of any group sees
 *   it, so plain receivers (spreadlogd, sp-sink, any Spread client) never
 *   get one. spread-pipe's receivers (write, tail, daemon --write, top)
 *   still recognise a marker (a sequenced sender, and a 16-byte body that
 *   starts with NUL and a magic no log line has) and skip it, counted,
 *   should one ever reach them.
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
 * - A session that dies leaves its unacknowledged messages in the window:
 *   the next session sends them again, then a marker; receivers drop the
 *   lines they already have.
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
  const buf = data as Buffer;
  const last = data.length - 1;
  let n = 0;
  // Most messages are one line ending in its LF: stop at the last byte rather than search again past it
  // (a call into the runtime per message, for every sequenced message a receiver takes).
  for (let i = buf.indexOf(0x0a); i >= 0; i = i === last ? -1 : buf.indexOf(0x0a, i + 1)) n++;
  if (last < 0 || data[last] !== 0x0a) n++;
  return n;
}

/** A marker's body: this magic, then the id END it acknowledges below, as a little-endian u32 pair (low, high). */
const MARKER_MAGIC = Buffer.from('\0spack1\0', 'latin1');
/** Bytes in a marker's body. */
export const MARKER_BYTES = 16;

/** The body of a marker acknowledging every line id below `end`. */
export function encodeMarker(end: number): Buffer {
  const b = Buffer.allocUnsafe(MARKER_BYTES);
  MARKER_MAGIC.copy(b, 0);
  b.writeUInt32LE(end % 0x100000000, 8);
  b.writeUInt32LE(Math.floor(end / 0x100000000), 12);
  return b;
}

/** Whether a message body is a marker (a log line never is: it does not start with NUL and carry this magic). */
export function isMarker(data: Uint8Array): boolean {
  if (data.length !== MARKER_BYTES || data[0] !== 0) return false;
  for (let i = 1; i < 8; i++) if (data[i] !== MARKER_MAGIC[i]) return false;
  return true;
}

/** A marker from a sequenced stream (what receivers skip even with --no-dedup: it is not a line). */
export function isStreamMarker(sender: string, data: Uint8Array): boolean {
  return data.length === MARKER_BYTES && isMarker(data) && streamOf(sender) !== undefined;
}

/** The id a marker acknowledges below, or undefined when `data` is no marker. */
export function markerEnd(data: Uint8Array): number | undefined {
  if (!isMarker(data)) return undefined;
  const b = Buffer.from(data.buffer, data.byteOffset, data.length);
  return b.readUInt32LE(12) * 0x100000000 + b.readUInt32LE(8);
}

/** Lines between markers at most. @default 1024 (an eighth of the default window) */
export const DEFAULT_MARKER_LINES = 1024;
/** ms a line waits for a marker at most (the marker interval at low rates, and when input pauses). @default 10 */
export const DEFAULT_MARKER_MS = 10;

const MIN_RING = 1024;

/**
 * Messages sent and not yet acknowledged, in send order, as parallel rings
 * (no object per message: the one-line-per-message path adds nothing to the
 * garbage collector's work). A message is a range of a buffer the queue
 * does not write again while it is held here (a queue block: the queues'
 * BlockHolder, outbound.ts, is oldestBuffer(); a spool record), its route, the id of
 * its first line and its line count. A marker acknowledges a prefix
 * (`ackBelow`); the low edge (`lowest`) is what the spool may persist as its
 * cursor.
 */
export class AckWindow<R> {
  private bufs: (Buffer | undefined)[] = [];
  private routes: (R | undefined)[] = [];
  private starts = new Uint32Array(0);
  private ends = new Uint32Array(0);
  private firsts = new Float64Array(0);
  private counts = new Uint32Array(0);
  private mask = -1;
  private head = 0;
  private n = 0;
  private linesHeld = 0;
  private bytesHeld = 0;
  /** Id past every message sent so far (the next id to send, unless ids jump). */
  private endId: number | undefined;

  constructor(
    readonly maxLines = DEFAULT_ACK_WINDOW,
    readonly maxBytes = DEFAULT_ACK_BYTES,
  ) {
    if (!(maxLines >= 1 && maxLines <= SEQ_MODULO / 4)) throw new RangeError(`ack window ${maxLines} must be 1..${SEQ_MODULO / 4} lines`);
  }

  /** Messages in flight. */
  get size(): number {
    return this.n;
  }

  get lines(): number {
    return this.linesHeld;
  }

  get bytes(): number {
    return this.bytesHeld;
  }

  /** Id of the oldest unacknowledged line, or undefined when nothing is in flight. */
  get lowest(): number | undefined {
    return this.n > 0 ? this.firsts[this.head] : undefined;
  }

  /**
   * The buffer under the oldest message held that `ours` accepts (the queues'
   * BlockHolder, outbound.ts: blocks behind it may be filled again). Mostly
   * the first; the scan goes on past copies and records read back, at most
   * once per queue block filled.
   */
  oldestBuffer(ours: (buffer: ArrayBufferLike) => boolean): ArrayBufferLike | undefined {
    for (let k = 0; k < this.n; k++) {
      const b = this.bufs[(this.head + k) & this.mask]!.buffer;
      if (ours(b)) return b;
    }
    return undefined;
  }

  /** Id past the last line sent (undefined before the first, and after clear()). */
  get end(): number | undefined {
    return this.endId;
  }

  /** Whether a message of `lines` lines from id `first` fits the window now. */
  fits(first: number, lines: number, bytes: number): boolean {
    // Nothing in flight: any one message goes (batches are capped well under the window).
    if (this.n === 0) return true;
    return first + lines - this.firsts[this.head]! <= this.maxLines && this.bytesHeld + bytes <= this.maxBytes;
  }

  /** Record a message just sent, `buf[start, end)` (ids must increase from message to message). */
  add(first: number, lines: number, buf: Buffer, start: number, end: number, route: R): void {
    if (this.endId !== undefined && first < this.endId) throw new RangeError(`line id ${first} sent after ${this.endId - 1}`);
    if (this.n > this.mask) this.grow();
    const i = (this.head + this.n++) & this.mask;
    this.bufs[i] = buf;
    this.routes[i] = route;
    this.starts[i] = start;
    this.ends[i] = end;
    this.firsts[i] = first;
    this.counts[i] = lines;
    this.linesHeld += lines;
    this.bytesHeld += end - start;
    this.endId = first + lines;
  }

  /** A marker came back: every message wholly below id `end` is acknowledged. Returns the lines acknowledged. */
  ackBelow(end: number): number {
    let acked = 0;
    while (this.n > 0) {
      const h = this.head;
      const lines = this.counts[h]!;
      if (this.firsts[h]! + lines > end) break;
      acked += lines;
      this.bytesHeld -= this.ends[h]! - this.starts[h]!;
      this.bufs[h] = undefined;
      this.routes[h] = undefined;
      this.head = (h + 1) & this.mask;
      this.n--;
    }
    this.linesHeld -= acked;
    return acked;
  }

  /** Unacknowledged messages in send order: what to send again on a new session. */
  forEachPending(fn: (route: R, buf: Buffer, start: number, end: number, first: number, lines: number) => void): void {
    for (let k = 0; k < this.n; k++) {
      const i = (this.head + k) & this.mask;
      fn(this.routes[i]!, this.bufs[i]!, this.starts[i]!, this.ends[i]!, this.firsts[i]!, this.counts[i]!);
    }
  }

  /** Unacknowledged lines whose ids are below `id` (with --spool at exit: those the bound deleted from the spool). */
  linesBelow(id: number): number {
    let n = 0;
    for (let k = 0; k < this.n; k++) {
      const i = (this.head + k) & this.mask;
      const first = this.firsts[i]!;
      if (first >= id) break;
      n += Math.min(this.counts[i]!, id - first);
    }
    return n;
  }

  /** Forget everything (at exit, or when a stream is abandoned); returns the lines that were unacknowledged. */
  clear(): number {
    const n = this.linesHeld;
    // Back to no ring at all: empty arrays written at the old ring's indices would turn into dictionaries.
    this.bufs = [];
    this.routes = [];
    this.starts = this.ends = this.counts = new Uint32Array(0);
    this.firsts = new Float64Array(0);
    this.mask = -1;
    this.head = this.n = 0;
    this.linesHeld = this.bytesHeld = 0;
    this.endId = undefined;
    return n;
  }

  private grow(): void {
    const cap = Math.max(MIN_RING, (this.mask + 1) * 2);
    const bufs: (Buffer | undefined)[] = new Array(cap);
    const routes: (R | undefined)[] = new Array(cap);
    const starts = new Uint32Array(cap);
    const ends = new Uint32Array(cap);
    const firsts = new Float64Array(cap);
    const counts = new Uint32Array(cap);
    for (let k = 0; k < this.n; k++) {
      const i = (this.head + k) & this.mask;
      bufs[k] = this.bufs[i];
      routes[k] = this.routes[i];
      starts[k] = this.starts[i]!;
      ends[k] = this.ends[i]!;
      firsts[k] = this.firsts[i]!;
      counts[k] = this.counts[i]!;
    }
    this.bufs = bufs;
    this.routes = routes;
    this.starts = starts;
    this.ends = ends;
    this.firsts = firsts;
    this.counts = counts;
    this.mask = cap - 1;
    this.head = 0;
  }
}
