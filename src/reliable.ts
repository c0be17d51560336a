/**
 * --ack in the publisher: what it calls when it connects, sends and hears
 * its own messages back (the scheme is in ack.ts). Kept apart from
 * publisher.ts so that plain mode is untouched: the publisher asks `admit`
 * before taking a message, sends through `send`, and on every new session
 * calls `attach`, which sends again whatever is still unacknowledged.
 */
import { EventEmitter } from 'node:events';
import { AckWindow, DEFAULT_ACK_BYTES, DEFAULT_ACK_WINDOW, type InFlight, MAX_ID_JUMP, countLines, isStreamName, newStreamName, seqMessType } from './ack.js';
import { type PreparedSend, type SpreadClient, type SpreadEvent } from './spread/client.js';
import { MAX_GROUPS_PER_MESSAGE } from './spread/constants.js';
import { encodeHint, nameField } from './spread/encode.js';
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
}

export interface Sent {
  readonly route: PreparedSend;
  readonly body: Buffer;
}

export type ReliableEvent =
  /** The oldest unacknowledged id moved: ids below `below` are acknowledged. */
  | { type: 'acked'; below: number; lines: number }
  /** A new stream name (persist it). `abandoned` unacknowledged lines were resent under it and may repeat. */
  | { type: 'new-stream'; name: string; abandoned: number };

export class Reliable extends EventEmitter {
  readonly window: AckWindow<Sent>;
  /** Acknowledged lines, and lines sent again on a new session. */
  readonly counters = { acked: 0, resent: 0, possibleDuplicates: 0, stray: 0 };
  private stream: string;
  /** Next line id when the queue does not give ids (no spool). */
  private counter = 0;
  /** Id just past the last message sent (ids only grow). */
  private end: number | undefined;
  private refusals = 0;
  /** Per route, the same route with our private group added (per session). */
  private withSelf = new WeakMap<PreparedSend, { groups: Buffer; numGroups: number; type: number }>();
  private selfField: Buffer | undefined;
  private readonly ackTimeout: number;
  /** When the current session last made progress: attached, acked, or sent into an empty window. */
  private progressAt = 0;
  private ackTimer: NodeJS.Timeout | undefined;

  constructor(opts: ReliableOptions = {}) {
    super();
    this.ackTimeout = opts.ackTimeout ?? DEFAULT_ACK_TIMEOUT;
    this.window = new AckWindow<Sent>(opts.window ?? DEFAULT_ACK_WINDOW, opts.windowBytes ?? DEFAULT_ACK_BYTES);
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
    return low === undefined ? this.window.maxLines : this.window.maxLines - (first - low);
  }

  /** The id the next line gets when the queue gives none. */
  nextId(lines: number): number {
    const id = this.counter;
    this.counter += lines;
    return id;
  }

  /**
   * May a message whose first line is `first` go now? 'wait' while the window
   * is full; 'rotate' when ids jumped too far for receivers (lines dropped
   * unsent) and nothing is in flight: take a new stream, then send.
   */
  admit(first: number, lines: number, bytes: number): 'send' | 'wait' | 'rotate' {
    if (this.end !== undefined && first - this.end >= MAX_ID_JUMP) return this.window.size === 0 ? 'rotate' : 'wait';
    return this.window.fits(first, lines, bytes) ? 'send' : 'wait';
  }

  /** A new stream: new name, ids judged afresh by receivers. Returns the name. */
  rotate(): string {
    const abandoned = this.window.lines;
    this.counters.possibleDuplicates += abandoned;
    this.stream = newStreamName();
    this.end = undefined;
    this.refusals = 0;
    this.emit('event', { type: 'new-stream', name: this.stream, abandoned } satisfies ReliableEvent);
    return this.stream;
  }

  /** A connect attempt failed: after repeated REJECT_NOT_UNIQUE (a stale session of ours), take a new name. */
  connectFailed(err: unknown): void {
    if (isSpreadPipeError(err, ErrorCodes.REJECT_NOT_UNIQUE)) {
      if (++this.refusals >= DEFAULT_NAME_REFUSALS) this.rotate();
    } else this.refusals = 0;
  }

  /** A new session: listen for our copies, and send again everything unacknowledged, in order. */
  attach(c: SpreadClient): boolean {
    this.refusals = 0;
    this.selfField = nameField(c.privateGroup);
    this.withSelf = new WeakMap();
    const self = c.privateGroup;
    c.on('message', (ev: SpreadEvent) => {
      if (ev.kind === 'data' && ev.frame.sender === self) this.ack(ev.frame.messType, countLines(ev.frame.data));
    });
    this.watchAcks(c);
    let ok = true;
    for (const e of this.window.pending()) {
      this.counters.resent += e.lines;
      ok = this.write(c, e.item.route, e.item.body, e.first);
    }
    return ok;
  }

  /** Send one message of `lines` lines starting at id `first`; false past the session's high-water mark. */
  send(c: SpreadClient, route: PreparedSend, body: Buffer, first: number, lines: number): boolean {
    if (this.window.size === 0) this.progressAt = Date.now();
    const ok = this.write(c, route, body, first);
    this.window.add(first, lines, body.length, { route, body });
    this.end = first + lines;
    return ok;
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

  private write(c: SpreadClient, route: PreparedSend, body: Buffer, first: number): boolean {
    let r = this.withSelf.get(route);
    if (!r) {
      if (route.numGroups >= MAX_GROUPS_PER_MESSAGE) {
        throw new SpreadPipeError(ErrorCodes.INVALID_ARGUMENT, `--ack needs room for one more group than the ${route.numGroups} given`);
      }
      r = { groups: Buffer.concat([route.groups, this.selfField!]), numGroups: route.numGroups + 1, type: route.type };
      this.withSelf.set(route, r);
    }
    return c.send({ type: r.type, hint: encodeHint(seqMessType(first)), groups: r.groups, numGroups: r.numGroups }, body);
  }

  private ack(messType: number, lines: number): void {
    const before = this.window.lowest;
    const e: InFlight<Sent> | undefined = this.window.ack(messType, lines);
    if (!e) {
      this.counters.stray++;
      return;
    }
    this.counters.acked += e.lines;
    this.progressAt = Date.now();
    const low = this.window.lowest;
    if (low !== before) this.emit('event', { type: 'acked', below: low ?? this.end!, lines: e.lines } satisfies ReliableEvent);
  }
}
