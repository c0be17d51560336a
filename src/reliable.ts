/**
 * --ack in the publisher: what it calls when it connects, sends and hears
 * its markers back (the scheme is in ack.ts). Kept apart from publisher.ts
 * so that plain mode is untouched: the publisher asks `admit` before taking
 * a message, sends through `send`, and on every new session calls `attach`,
 * which sends again whatever is still unacknowledged. When to send a marker
 * is decided here: after `markerLines` lines since the last one, `markerMs`
 * after the first line it would cover (or, if a marker is still on its way
 * back then, as soon as it is back), when the window is full (`admit` says
 * wait), on a new session, and when the publisher drains (`flush`).
 */
import { EventEmitter } from 'node:events';
import {
  AckWindow,
  DEFAULT_ACK_BYTES,
  DEFAULT_ACK_WINDOW,
  DEFAULT_MARKER_LINES,
  DEFAULT_MARKER_MS,
  MARKER_BYTES,
  MAX_ID_JUMP,
  encodeMarker,
  isStreamName,
  markerEnd,
  newStreamName,
  seqMessType,
} from './ack.js';
import { type PreparedSend, type SpreadClient, type SpreadEvent } from './spread/client.js';
import { FIFO_MESS, SAFE_MESS } from './spread/constants.js';
import { nameField, wireHint } from './spread/encode.js';
import { ErrorCodes, SpreadPipeError, isSpreadPipeError } from './errors.js';

/** REJECT_NOT_UNIQUE refusals in a row before the stream takes a new name. @default 3 */
export const DEFAULT_NAME_REFUSALS = 3;
/**
 * ms a session may hold unacknowledged lines without any ack coming back
 * before it counts as down. A hung daemon (SIGSTOP, a stuck host) whose
 * socket buffers swallow the whole window never trips the session's own
 * stall timeout, which only sees bytes we could not write. @default 5000
 */
export const DEFAULT_ACK_TIMEOUT = 5000;

export interface ReliableOptions {
  /** Lines unacknowledged at most. @default 8192 */
  window?: number;
  /** Bytes unacknowledged at most. @default 16 MiB */
  windowBytes?: number;
  /** Stream name to go on with (kept in a spool); a new one otherwise. */
  name?: string;
  /** @default 5000 */
  ackTimeout?: number;
  /** Lines between markers at most. @default min(1024, window / 8) */
  markerLines?: number;
  /** ms a line sent waits for its marker at most. @default 10 */
  markerMs?: number;
}

/**
 * Why a new stream was taken: ids jumped too far for receivers (lines dropped
 * unsent), the daemon refused our name again and again (a stale session of
 * ours), or a crash left ids that may have been sent (rotateFrom()).
 */
export type NewStreamReason = 'ids-jumped' | 'name-refused' | 'after-crash';

export type ReliableEvent =
  /** The oldest unacknowledged id moved: ids below `below` are acknowledged. */
  | { type: 'acked'; below: number; lines: number }
  /** A new stream name (persist it), and why. `abandoned` unacknowledged lines were resent under it and may repeat. */
  | { type: 'new-stream'; name: string; abandoned: number; why: NewStreamReason };

export class Reliable extends EventEmitter {
  readonly window: AckWindow<PreparedSend>;
  /** Acknowledged lines, lines sent again on a new session, markers sent, and messages back that were no marker of ours. */
  readonly counters = { acked: 0, resent: 0, possibleDuplicates: 0, stray: 0, markers: 0 };
  private stream: string;
  /** Next line id when the queue does not give ids (no spool). */
  private counter = 0;
  /** Id just past the last message sent (ids only grow). */
  private end: number | undefined;
  /** rotateFrom(): the first id to go under a new stream. */
  private rotateAt: number | undefined;
  private refusals = 0;
  private readonly ackTimeout: number;
  private readonly markerLines: number;
  private readonly markerMs: number;
  /** When the current session last made progress: attached, acked, or sent into an empty window. */
  private progressAt = 0;
  private ackTimer: NodeJS.Timeout | undefined;
  /** The session markers go to (the one sent on last). */
  private client: SpreadClient | undefined;
  /** The marker's destination, our private group (per session), FIFO and SAFE (see ack.ts). */
  private markerRoutes: { fifo: PreparedSend; safe: PreparedSend } | undefined;
  /** Lines sent since the last marker, and the strongest service among them. */
  private unmarked = 0;
  private unmarkedSafe = false;
  private markerTimer: NodeJS.Timeout | undefined;
  /** When the first line not yet marked was sent. */
  private unmarkedSince = 0;
  /** The end the last marker on this session carried: it is on its way back while the window holds lines below it. */
  private markedEnd = -1;

  constructor(opts: ReliableOptions = {}) {
    super();
    this.ackTimeout = opts.ackTimeout ?? DEFAULT_ACK_TIMEOUT;
    this.window = new AckWindow<PreparedSend>(opts.window ?? DEFAULT_ACK_WINDOW, opts.windowBytes ?? DEFAULT_ACK_BYTES);
    this.markerLines = Math.max(1, opts.markerLines ?? Math.min(DEFAULT_MARKER_LINES, Math.floor(this.window.maxLines / 8)));
    this.markerMs = opts.markerMs ?? DEFAULT_MARKER_MS;
    this.stream = opts.name !== undefined && isStreamName(opts.name) ? opts.name : newStreamName();
  }

  /** The private name to connect with. */
  get name(): string {
    return this.stream;
  }

  /** The id nextId() will give. */
  peekId(): number {
    return this.counter;
  }

  /** Lines a message starting at `first` may carry and stay inside the window. */
  room(first: number): number {
    const low = this.window.lowest;
    const room = low === undefined ? this.window.maxLines : this.window.maxLines - (first - low);
    // A batch stops before rotateFrom()'s id: the lines after it go under the new stream only.
    return this.rotateAt !== undefined && first < this.rotateAt ? Math.min(room, this.rotateAt - first) : room;
  }

  /** The id the next line gets when the queue gives none. */
  nextId(lines: number): number {
    const id = this.counter;
    this.counter += lines;
    return id;
  }

  /**
   * May a message whose first line is `first` go now? 'wait' while the window
   * is full (a marker goes at once for what it holds); 'rotate' when ids
   * jumped too far for receivers (lines dropped unsent) and nothing is in
   * flight: take a new stream, then send.
   */
  admit(first: number, lines: number, bytes: number): 'send' | 'wait' | 'rotate' {
    if (this.rotateAt !== undefined && first >= this.rotateAt) {
      if (this.window.size === 0) return 'rotate';
      this.flush();
      return 'wait';
    }
    if (this.end !== undefined && first - this.end >= MAX_ID_JUMP) {
      if (this.window.size === 0) return 'rotate';
      this.flush();
      return 'wait';
    }
    if (this.window.fits(first, lines, bytes)) return 'send';
    this.flush();
    return 'wait';
  }

  /**
   * Lines from id `id` on go under a new stream, once every line before them
   * is acknowledged: a spool left by a crash (Spool.crashed) is sent again
   * under its old name, whose receivers drop what they have, but the ids
   * after it may have been on the wire already, given to lines that never
   * reached the file; under the old name receivers would drop new lines
   * given those ids as repeats.
   */
  rotateFrom(id: number): void {
    this.rotateAt = id;
  }

  /** A new stream: new name, ids judged afresh by receivers. Returns the name. */
  rotate(why: NewStreamReason = this.rotateAt !== undefined ? 'after-crash' : 'ids-jumped'): string {
    this.rotateAt = undefined;
    const abandoned = this.window.lines;
    this.counters.possibleDuplicates += abandoned;
    this.stream = newStreamName();
    this.end = undefined;
    this.refusals = 0;
    this.emit('event', { type: 'new-stream', name: this.stream, abandoned, why } satisfies ReliableEvent);
    return this.stream;
  }

  /** A connect attempt failed: after repeated REJECT_NOT_UNIQUE (a stale session of ours), take a new name. */
  connectFailed(err: unknown): void {
    if (isSpreadPipeError(err, ErrorCodes.REJECT_NOT_UNIQUE)) {
      if (++this.refusals >= DEFAULT_NAME_REFUSALS) this.rotate('name-refused');
    } else this.refusals = 0;
  }

  /** A new session: listen for our markers, send again everything unacknowledged, in order, then a marker. */
  attach(c: SpreadClient): boolean {
    this.refusals = 0;
    this.client = c;
    const self = c.privateGroup;
    const groups = nameField(self);
    this.markerRoutes = { fifo: { type: FIFO_MESS, hint: 0, groups, numGroups: 1 }, safe: { type: SAFE_MESS, hint: 0, groups, numGroups: 1 } };
    this.unmarked = 0;
    this.unmarkedSafe = false;
    this.markedEnd = -1;
    c.on('message', (ev: SpreadEvent) => {
      // Only our own markers come to a session that joins nothing; anything else is counted, not trusted.
      if (ev.kind !== 'data') return;
      const end = ev.frame.sender === self ? markerEnd(ev.frame.data) : undefined;
      if (end === undefined) this.counters.stray++;
      else this.acked(end);
    });
    this.watchAcks(c);
    let ok = true;
    this.window.forEachPending((route, buf, start, end, first, lines) => {
      this.counters.resent += lines;
      ok = c.sendRange(route, buf, start, end, wireHint(seqMessType(first)));
      this.unmarkedLines(route, lines);
    });
    this.flush();
    return ok;
  }

  /**
   * Send `buf[start, end)`, a message of `lines` lines from id `first`, to
   * `route`; false past the session's high-water mark. The window keeps a
   * reference to `buf`: the caller must not write that range again.
   */
  send(c: SpreadClient, route: PreparedSend, buf: Buffer, start: number, end: number, first: number, lines: number): boolean {
    if (this.window.size === 0) this.progressAt = Date.now();
    const ok = c.sendRange(route, buf, start, end, wireHint(seqMessType(first)));
    this.window.add(first, lines, buf, start, end, route);
    this.end = first + lines;
    this.unmarkedLines(route, lines);
    return ok;
  }

  /** Send a marker now for whatever was sent since the last one (the publisher drains, the window is full). */
  flush(): void {
    if (this.unmarked === 0 || !this.client || this.end === undefined) return;
    // The timer, if armed, is left to run (armMarkerTimer): at full speed a marker goes every markerLines
    // lines, and clearing and arming a timer for each cost more than the marker itself.
    const r = this.unmarkedSafe ? this.markerRoutes!.safe : this.markerRoutes!.fifo;
    this.unmarked = 0;
    this.unmarkedSafe = false;
    this.markedEnd = this.end;
    try {
      this.client.sendRange(r, encodeMarker(this.end), 0, MARKER_BYTES, wireHint(seqMessType(this.end)));
      this.counters.markers++;
    } catch {
      // The session closed under us: the next one sends the window again, and a marker.
    }
  }

  /** `lines` more were sent (the window and `end` already have them): a marker now, or a timer for one. */
  private unmarkedLines(route: PreparedSend, lines: number): void {
    if (route.type & SAFE_MESS) this.unmarkedSafe = true;
    if (this.unmarked === 0) this.unmarkedSince = Date.now();
    if ((this.unmarked += lines) >= this.markerLines) this.flush();
    else if (this.markerTimer === undefined) this.armMarkerTimer(this.markerMs);
  }

  /**
   * The timer that sends a marker once the first line not yet marked has
   * waited markerMs. A marker sent meanwhile (by count) leaves it running: it
   * then waits out what is left for the lines sent since, and sends no
   * marker early (a timer that fired on the old lines' schedule sent half as
   * many markers again at 100k lines/s). Due while a marker is still on its
   * way back, it leaves the marker to that one's return (acked()): a marker
   * by time at most once per round trip: a daemon slow to answer (real
   * Spread with a deep queue, a stopped one until the ack timeout) is not
   * sent a marker every markerMs that says little more than the one before
   * (#16: 254 markers instead of 318 for 260k lines poured into real Spread
   * 5.0.1, 1024 lines each).
   */
  private armMarkerTimer(ms: number): void {
    this.markerTimer = setTimeout(() => {
      this.markerTimer = undefined;
      if (this.unmarked === 0) return;
      const left = this.unmarkedSince + this.markerMs - Date.now();
      if (left > 0) this.armMarkerTimer(left);
      else if (!this.markerOnItsWay()) this.flush();
    }, ms);
    this.markerTimer.unref();
  }

  /** The last marker sent is not back yet: the window holds lines it covers (markers come back in order). */
  private markerOnItsWay(): boolean {
    const low = this.window.lowest;
    return low !== undefined && low < this.markedEnd;
  }

  /** Close the session when lines wait for acks longer than ackTimeout; the publisher then fails over. */
  private watchAcks(c: SpreadClient): void {
    // One session at a time: the publisher drops a session's 'close' listeners when it leaves it (fail-back).
    clearInterval(this.ackTimer);
    this.progressAt = Date.now();
    const ms = this.ackTimeout;
    const timer = setInterval(() => {
      if (!c.connected) clearInterval(timer);
      else if (this.window.size > 0 && Date.now() - this.progressAt >= ms) {
        clearInterval(timer);
        c.destroy(new SpreadPipeError(ErrorCodes.STALLED, `daemon ${c.address.label} acknowledged nothing for ${ms} ms (${this.window.lines} lines waiting)`));
      }
    }, Math.max(50, Math.floor(ms / 4)));
    timer.unref();
    this.ackTimer = timer;
  }

  /** A marker came back: every line below `end` was taken and ordered by the daemon. */
  private acked(end: number): void {
    const before = this.window.lowest;
    const lines = this.window.ackBelow(end);
    this.progressAt = Date.now();
    // A marker the timer held back (armMarkerTimer) goes once the one on its way is back.
    if (this.unmarked > 0 && !this.markerOnItsWay() && this.progressAt - this.unmarkedSince >= this.markerMs) this.flush();
    if (lines === 0) return;
    this.counters.acked += lines;
    const low = this.window.lowest;
    if (low !== before) this.emit('event', { type: 'acked', below: low ?? this.end!, lines } satisfies ReliableEvent);
  }
}
