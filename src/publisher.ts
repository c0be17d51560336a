/**
 * The publisher: a bounded queue in front of one Spread session, with
 * reconnect, failover across daemons and fail-back to the first, stall
 * detection, optional adaptive batching, and counters for every line that
 * did not make it. `push` never blocks and never throws on a full queue: the
 * web server behind stdin must never wait for us. Under `onFull: 'block'` the
 * queue takes what is pushed and emits `full`: the caller stops reading its
 * input until `room` (a file replayed can wait; see queue.ts).
 *
 * A send that fails is never counted as sent. A session-level failure (the
 * session closed or stalled under us) keeps the message for the next
 * session; a message the protocol forbids (too long, too many groups, an
 * illegal service) would fail on any session, so it is dropped, counted as
 * `rejected`, and reported.
 */
import { EventEmitter } from 'node:events';
import { type DaemonAddress } from './spread/address.js';
import { DEFAULT_CONNECT_TIMEOUT, type PreparedSend, SpreadClient } from './spread/client.js';
import { MAX_GROUP_NAME, SAFE_MESSAGE_BODY_LEN } from './spread/constants.js';
import { DEFAULT_QUEUE_BYTES, DEFAULT_QUEUE_LINES, LineQueue, type OverflowPolicy, resolveQueueOptions } from './queue.js';
import { OptionError, checked, intOption, renamed } from './options.js';
import { validatePrivateName } from './spread/address.js';
import { DaemonList } from './servers.js';
import { type ReconnectDelay, exponentialBackoff } from './backoff.js';
import { type ErrorCode, ErrorCodes, errorMessage, isSpreadPipeError } from './errors.js';
import { Reliable, type ReliableEvent, type ReliableOptions } from './reliable.js';
import { type Spool, type SpoolEvent } from './spool.js';
import { FlushTracker, SpoolQueue } from './spool-queue.js';

const LF = Buffer.from('\n');

/** The one connect timeout default, SpreadClient's. @default 3000 */
export { DEFAULT_CONNECT_TIMEOUT };
/** A daemon that takes none of our bytes for this long is treated as down. @default 5000 */
export const DEFAULT_STALL_TIMEOUT = 5000;
/** How often to try the first daemon again while on another one. @default 30000 */
export const DEFAULT_FAILBACK_INTERVAL = 30_000;
/** Largest batched message body; spreadlogd's default receive buffer is 8 KiB. @default 8192 */
export const DEFAULT_BATCH_BYTES = 8192;
/** Bytes handed to the session before we wait for 'drain'. @default 1 MiB */
export const DEFAULT_IN_FLIGHT = 1024 * 1024;

export interface PublisherOptions {
  daemons: readonly DaemonAddress[];
  /** Private name. @default derived from the pid */
  name?: string;
  /** @default 3000 */
  connectTimeout?: number;
  /** @default 5000 */
  stallTimeout?: number;
  /** @default capped exponential backoff with jitter */
  reconnectDelay?: ReconnectDelay;
  /** @default 30000 */
  failbackInterval?: number;
  /** @default 100000 */
  queueLines?: number;
  /** @default 32 MiB */
  queueBytes?: number;
  /** @default 'drop-newest' */
  onFull?: OverflowPolicy;
  /** Pack queued lines into one message when a backlog exists. @default false */
  batch?: boolean;
  /** @default 8192 */
  batchBytes?: number;
  /** --ack: resend until the daemon's copy comes back; sequence numbers for receivers (reliable.ts). */
  ack?: boolean | ReliableOptions;
  /** --spool: an open spool replaces the memory queue (spool-queue.ts); the caller closes it after close(). */
  spool?: Spool;
}

export type ResolvedPublisherOptions = PublisherOptions &
  Required<Pick<PublisherOptions, 'connectTimeout' | 'stallTimeout' | 'failbackInterval' | 'queueLines' | 'queueBytes' | 'onFull' | 'batch' | 'batchBytes'>>;

/** Defaults filled and checked (OptionError, code INVALID_ARGUMENT). */
export function resolvePublisherOptions(o: PublisherOptions): ResolvedPublisherOptions {
  if (!Array.isArray(o.daemons) || o.daemons.length === 0) throw new OptionError('daemons', 'at least one daemon is needed');
  const q = renamed({ maxLines: 'queueLines', maxBytes: 'queueBytes', policy: 'onFull' }, () =>
    resolveQueueOptions({ maxLines: o.queueLines, maxBytes: o.queueBytes, policy: o.onFull }),
  );
  return {
    ...o,
    name: o.name === undefined ? undefined : checked('name', () => validatePrivateName(o.name!)),
    connectTimeout: intOption('connectTimeout', o.connectTimeout, DEFAULT_CONNECT_TIMEOUT, { min: 1, unit: 'milliseconds' }),
    stallTimeout: intOption('stallTimeout', o.stallTimeout, DEFAULT_STALL_TIMEOUT, { min: 1, unit: 'milliseconds' }),
    failbackInterval: intOption('failbackInterval', o.failbackInterval, DEFAULT_FAILBACK_INTERVAL, { min: 1, unit: 'milliseconds' }),
    queueLines: q.maxLines,
    queueBytes: q.maxBytes,
    onFull: q.policy,
    batch: o.batch ?? false,
    batchBytes: intOption('batchBytes', o.batchBytes, DEFAULT_BATCH_BYTES, { min: 1, max: SAFE_MESSAGE_BODY_LEN, unit: 'bytes' }),
  };
}

/** Lines per message at most with --ack, so a resent batch stays well inside receivers' windows. */
export const ACK_BATCH_LINES = 1024;

/** One message to be: its body and destinations. */
export interface Entry {
  readonly body: Buffer;
  readonly route: PreparedSend;
  /** Lines in the body. */
  readonly lines: number;
  readonly size: number;
  /** Line id of the first line, when the queue gives ids (the spool). */
  readonly id?: number;
}

export type DropReason = 'queue-full' | 'lost-in-flight' | 'unsent-at-exit' | 'no-route' | 'spool-full' | 'spool-error' | 'unacked-at-exit' | 'rejected';

/**
 * Send errors that say the session, not the message, failed: the message is
 * kept for the next session. Any other error thrown by a send (a message the
 * protocol forbids, or one nobody foresaw) would fail again on every session:
 * the message is dropped as `rejected` rather than retried forever.
 */
const TRANSIENT_SEND_ERRORS: ReadonlySet<ErrorCode> = new Set([ErrorCodes.CONNECTION_CLOSED, ErrorCodes.NOT_CONNECTED, ErrorCodes.STALLED, ErrorCodes.PROTOCOL, ErrorCodes.ABORTED]);

export function isTransientSendError(e: unknown): boolean {
  return isSpreadPipeError(e) && TRANSIENT_SEND_ERRORS.has(e.code);
}

export interface Counters {
  /** Lines accepted by push(). */
  accepted: number;
  /** Lines handed to a daemon session and written to the kernel... or counted lost below. */
  linesSent: number;
  messagesSent: number;
  bytesSent: number;
  dropped: Record<DropReason, number>;
  /** --gap-notice lines queued by pushNotice(): not in accepted, linesSent or dropped. */
  notices: number;
  connects: number;
  disconnects: number;
  failovers: number;
  failbacks: number;
}

export type PublisherEvent =
  | { type: 'connecting'; daemon: string }
  | { type: 'connected'; daemon: string; privateGroup: string }
  | { type: 'connect-failed'; daemon: string; error: string; retryInMs: number | false }
  | { type: 'disconnected'; daemon: string; error: string; lost: number }
  | { type: 'failback'; daemon: string }
  | { type: 'drop'; reason: DropReason; lines: number; error?: string }
  /** onFull 'block': the queue is full, stop reading input; 'room': read again. */
  | { type: 'full' }
  | { type: 'room' }
  | { type: 'gave-up'; error: string }
  /** --ack took a new stream name (see reliable.ts). */
  | { type: 'new-stream'; name: string; abandoned: number }
  | { type: 'spool-error'; message: string };

export class Publisher extends EventEmitter {
  readonly counters: Counters = {
    accepted: 0,
    linesSent: 0,
    messagesSent: 0,
    bytesSent: 0,
    dropped: { 'queue-full': 0, 'lost-in-flight': 0, 'unsent-at-exit': 0, 'no-route': 0, 'spool-full': 0, 'spool-error': 0, 'unacked-at-exit': 0, rejected: 0 },
    notices: 0,
    connects: 0,
    disconnects: 0,
    failovers: 0,
    failbacks: 0,
  };
  private readonly queue: LineQueue<PreparedSend> | SpoolQueue;
  /** --ack state, if on. */
  readonly reliable: Reliable | undefined;
  /** --spool without --ack: which spooled lines reached the kernel. */
  private readonly flushes: FlushTracker | undefined;
  private flushTimer: NodeJS.Timeout | undefined;
  private readonly servers: DaemonList;
  private readonly delay: ReconnectDelay;
  private client: SpreadClient | undefined;
  private blocked = false;
  private dialing = false;
  private closing = false;
  /** Ends the dial loop's backoff wait early (at close). */
  private wakeDial: (() => void) | undefined;
  /** Set once close() stops waiting: no more dialing, whatever is left. */
  private readonly stopped = new AbortController();
  private pumpScheduled = false;
  private retryTimer: NodeJS.Timeout | undefined;
  private failbackTimer: NodeJS.Timeout | undefined;
  private probing = false;
  /** onFull 'block' and a memory queue: report full / room. */
  private readonly blocks: boolean;
  /** 'full' was emitted and 'room' not yet. */
  private inputStopped = false;
  /** Lines per message sent, for the loss count when a session dies (messages -> lines). */
  private readonly batchBytes: number;

  private readonly opts: ResolvedPublisherOptions;

  constructor(options: PublisherOptions) {
    super();
    const opts = (this.opts = resolvePublisherOptions(options));
    this.servers = new DaemonList(opts.daemons);
    this.delay = opts.reconnectDelay ?? exponentialBackoff();
    this.batchBytes = opts.batchBytes ?? DEFAULT_BATCH_BYTES;
    this.queue = opts.spool
      ? new SpoolQueue(opts.spool, (lines) => this.drop('spool-error', lines))
      : new LineQueue<PreparedSend>(opts.queueLines ?? DEFAULT_QUEUE_LINES, opts.queueBytes ?? DEFAULT_QUEUE_BYTES, opts.onFull ?? 'drop-newest', (lines) =>
          this.drop('queue-full', lines),
        );
    // A daemon that takes our bytes but orders none of them is as down as one that takes none.
    if (opts.ack) this.reliable = this.startReliable({ ackTimeout: opts.stallTimeout ?? DEFAULT_STALL_TIMEOUT, ...(opts.ack === true ? {} : opts.ack) });
    if (opts.spool) this.watchSpool(opts.spool);
    if (opts.spool && !this.reliable) this.flushes = new FlushTracker();
    this.blocks = opts.onFull === 'block' && this.queue instanceof LineQueue;
  }

  /** Under onFull 'block': the queue is full and input should wait for 'room'. */
  get full(): boolean {
    return this.blocks && (this.queue as LineQueue<PreparedSend>).full;
  }

  get connected(): boolean {
    return this.client !== undefined;
  }

  get queued(): { lines: number; bytes: number } {
    return { lines: this.queue instanceof LineQueue ? this.queue.lines : this.queue.length, bytes: this.queue.bytes };
  }

  /** Lines lost before they reached push() (read while the spool was locked), counted as if pushed. */
  noteDropped(reason: DropReason, lines: number): void {
    this.counters.accepted += lines;
    this.drop(reason, lines);
  }

  /** Start connecting; lines pushed before a session exists wait in the queue. */
  start(): void {
    void this.dial();
  }

  /** Queue one message body (one line, already tagged, LF-terminated) for `route`. Never blocks. */
  push(body: Buffer, route: PreparedSend | undefined): void {
    this.counters.accepted++;
    if (!route) return this.drop('no-route', 1);
    if (this.queue instanceof LineQueue) {
      this.queue.push(body, route);
      if (this.blocks) this.checkFull();
    } else this.queue.push({ body, route, lines: 1, size: body.length });
    this.schedulePump();
  }

  /**
   * push() for input that cannot be told to wait (syslog datagrams): under
   * onFull 'block' a full queue drops it (queue-full) as drop-newest would.
   */
  offer(body: Buffer, route: PreparedSend | undefined): void {
    if (this.full) return this.noteDropped('queue-full', 1);
    this.push(body, route);
  }

  /**
   * Queue a line that is not input (a --gap-notice line): sent like any
   * other, but counted in `notices`, not as a line accepted, sent or
   * dropped, so that those add up to the input. With --ack it takes a line
   * id and is acknowledged like a line; with --spool it is a spooled line.
   */
  pushNotice(body: Buffer, route: PreparedSend): void {
    this.counters.notices++;
    if (this.queue instanceof LineQueue) this.queue.push(body, route, 0);
    else this.queue.push({ body, route, lines: 1, size: body.length });
    this.schedulePump();
  }

  /**
   * Queue `prefix + line + LF` (prefix: the host tag and its space, or
   * empty) for `route`, without building the body first: the queue copies
   * the pieces into place. Never blocks; `line` may be reused afterwards.
   */
  pushLine(prefix: Buffer, line: Buffer, route: PreparedSend | undefined): void {
    if (!(this.queue instanceof LineQueue)) return this.push(Buffer.concat([prefix, line, LF]), route);
    this.counters.accepted++;
    if (!route) return this.drop('no-route', 1);
    this.queue.pushLine(prefix, line, route);
    if (this.blocks) this.checkFull();
    this.schedulePump();
  }

  private checkFull(): void {
    if (!this.inputStopped && (this.queue as LineQueue<PreparedSend>).full) {
      this.inputStopped = true;
      this.emit('event', { type: 'full' } satisfies PublisherEvent);
    }
  }

  /** After a pump: half empty again, input may go on. */
  private checkRoom(): void {
    if (this.inputStopped && (this.queue as LineQueue<PreparedSend>).roomy) {
      this.inputStopped = false;
      this.emit('event', { type: 'room' } satisfies PublisherEvent);
    }
  }

  private schedulePump(): void {
    if (!this.pumpScheduled && this.client && !this.blocked) {
      this.pumpScheduled = true;
      setImmediate(() => {
        this.pumpScheduled = false;
        this.pump();
      });
    }
  }

  /**
   * Stop: send what is queued within `drainTimeout` ms, then disconnect
   * cleanly. What could not be sent is counted as unsent-at-exit. With
   * `whileSending` (the end of a file under onFull 'block', where nothing
   * waits on us) the time runs from the last progress instead: a backlog
   * that is going out is sent whole, a daemon that takes nothing is given up
   * after `drainTimeout` ms.
   */
  async close(drainTimeout: number, opts: { whileSending?: boolean } = {}): Promise<Counters> {
    this.closing = true;
    clearInterval(this.failbackTimer);
    let deadline = Date.now() + drainTimeout;
    let progress = -1;
    await new Promise<void>((resolve) => {
      const check = (): void => {
        this.pump();
        const empty = this.queue.length === 0 && (!this.client || this.client.writableLength === 0) && !this.reliable?.window.size;
        const done = this.counters.messagesSent + (this.client?.writableLength ?? 0) + (this.reliable?.counters.acked ?? 0);
        if (opts.whileSending && done !== progress) {
          progress = done;
          deadline = Date.now() + drainTimeout;
        }
        if (empty || Date.now() >= deadline) resolve();
        else setTimeout(check, 10);
      };
      check();
    });
    // A dial in progress (a daemon that accepts but never answers) must not keep the process alive.
    this.stopped.abort();
    clearTimeout(this.retryTimer);
    this.wakeDial?.();
    clearInterval(this.flushTimer);
    const left = this.queue.clear();
    if (left) this.drop('unsent-at-exit', left);
    // With a spool what is unacknowledged stays there for the next run; without, it may be lost.
    const unacked = this.reliable && !this.opts.spool ? this.reliable.window.clear() : 0;
    if (unacked) this.drop('unacked-at-exit', unacked);
    const c = this.client;
    this.client = undefined;
    if (c) {
      c.removeAllListeners('close');
      const unsent = c.writableLength > 0 && !this.reliable ? c.unsentMessages : 0;
      if (this.flushes) this.commitFlushed(c);
      await c.disconnect(Math.max(100, deadline - Date.now()));
      if (unsent) this.drop('unsent-at-exit', unsent);
    }
    return this.counters;
  }

  /** Lines still to deliver: queued, or (--ack) sent and not yet acknowledged. */
  private hasWork(): boolean {
    if (this.stopped.signal.aborted) return false;
    return this.queue.length > 0 || (this.reliable?.window.size ?? 0) > 0;
  }

  private drop(reason: DropReason, lines: number): void {
    this.counters.dropped[reason] += lines;
    this.emit('event', { type: 'drop', reason, lines } satisfies PublisherEvent);
  }

  /** Hand queued entries to the session until it pushes back. */
  private pump(): void {
    this.pumpQueue();
    if (this.blocks) this.checkRoom();
  }

  private pumpQueue(): void {
    const c = this.client;
    if (!c || this.blocked) return;
    const r = this.reliable;
    if (!r && !this.opts.batch && this.queue instanceof LineQueue) {
      // One line per message: the queue hands out where each line lies, nothing is built per line.
      const q = this.queue;
      for (;;) {
        try {
          q.drain((route, block, off, len, lines) => {
            const ok = c.sendRange(route, block, off, off + len);
            this.countSent(lines, len);
            if (!ok) this.blocked = true;
            return ok;
          });
        } catch (err) {
          // The session closed under us: the message stays first in the queue for the next one.
          if (isTransientSendError(err)) break;
          this.reject(q.shift()!.lines, err);
          continue;
        }
        break;
      }
      return;
    }
    const limit = SAFE_MESSAGE_BODY_LEN;
    // With --ack our private group is one more destination.
    const extraGroups = r ? 1 : 0;
    for (let e: Entry | undefined = this.queue.peek(); e; e = this.queue.peek()) {
      if (r) {
        const first = e.id ?? r.peekId();
        const verdict = r.admit(first, e.lines, e.size);
        if (verdict === 'wait') return; // an ack will pump again
        if (verdict === 'rotate') return this.rotateStream();
      }
      const max = Math.min(this.batchBytes, limit - (e.route.numGroups + extraGroups) * MAX_GROUP_NAME);
      let body = e.body;
      let lines = e.lines;
      if (this.opts.batch && !r && this.queue instanceof LineQueue) {
        // Lines queued one after the other lie side by side: a batch is a view of them.
        const m = this.queue.take(max, Infinity)!;
        body = m.body;
        lines = m.lines;
      } else {
        this.queue.shift();
        if (this.opts.batch && this.queue.length > 0) {
          // A backlog exists: pack following lines with the same destinations (and, with ids, contiguous ones).
          const maxLines = r ? Math.max(1, Math.min(ACK_BATCH_LINES, r.room(e.id ?? r.peekId()))) : Infinity;
          const parts = [body];
          let size = body.length;
          for (
            let n: Entry | undefined = this.queue.peek();
            // A notice (no input lines) goes alone with --ack: its line id is its own.
            n && n.route === e.route && size + n.size <= max && lines + n.lines <= maxLines && (e.id === undefined || n.id === e.id + lines) && !(r && (e.lines === 0 || n.lines === 0));
            n = this.queue.peek()
          ) {
            parts.push(this.queue.shift()!.body);
            size += n.size;
            lines += n.lines;
          }
          if (parts.length > 1) body = Buffer.concat(parts, size);
        }
      }
      let ok: boolean;
      try {
        // With --ack a notice (no input lines) still takes one line id: receivers count its LF.
        const idLines = lines || 1;
        ok = r ? r.send(c, e.route, body, e.id ?? r.nextId(idLines), idLines) : c.send(e.route, body);
        if (this.flushes && e.id !== undefined) this.flushes.sent(e.id + lines);
      } catch (err) {
        if (isTransientSendError(err)) {
          // The session closed under us: keep the entry for the next one.
          this.requeueFront({ body, route: e.route, lines, size: body.length, ...(e.id === undefined ? {} : { id: e.id }) });
          return;
        }
        // With --spool the record is done with: the spool must not send it again.
        if (this.flushes && e.id !== undefined) this.flushes.sent(e.id + lines);
        this.reject(lines, err);
        continue;
      }
      this.countSent(lines, body.length);
      if (!ok) {
        this.blocked = true;
        return;
      }
    }
  }

  /** A message no session would take: drop it, counted, with why. */
  private reject(lines: number, err: unknown): void {
    this.counters.dropped.rejected += lines;
    this.emit('event', { type: 'drop', reason: 'rejected', lines, error: errorMessage(err) } satisfies PublisherEvent);
  }

  /** One message handed to the session. */
  private countSent(lines: number, bytes: number): void {
    this.counters.messagesSent++;
    this.counters.linesSent += lines;
    this.counters.bytesSent += bytes;
    this.linesPerMessage.push(lines);
  }

  private startReliable(o: ReliableOptions): Reliable {
    const r = new Reliable({ ...o, name: o.name ?? (this.opts.spool?.meta.stream as string | undefined) });
    if (this.opts.spool && this.opts.spool.meta.stream !== r.name) this.opts.spool.setMeta({ ...this.opts.spool.meta, stream: r.name });
    r.on('event', (e: ReliableEvent) => {
      if (e.type === 'acked') {
        this.opts.spool?.commit(e.below);
        if (this.client && !this.blocked) this.pump();
      } else {
        this.opts.spool?.setMeta({ ...this.opts.spool.meta, stream: e.name });
        this.emit('event', { type: 'new-stream', name: e.name, abandoned: e.abandoned } satisfies PublisherEvent);
      }
    });
    return r;
  }

  private watchSpool(spool: Spool): void {
    spool.on('event', (e: SpoolEvent) => {
      if (e.type === 'drop') this.drop('spool-full', e.records);
      else if (e.type === 'corrupt') this.drop('spool-error', e.records);
      else this.emit('event', { type: 'spool-error', message: e.message } satisfies PublisherEvent);
    });
  }

  /** --spool without --ack: forget spooled lines once the kernel has them. */
  private commitFlushed(c: SpreadClient): void {
    const end = this.flushes!.flushed(c);
    if (end !== undefined) this.opts.spool!.commit(end);
  }

  /** --ack: ids jumped too far for receivers; reconnect under a new stream name. */
  private rotateStream(): void {
    this.reliable!.rotate();
    const old = this.client;
    this.client = undefined;
    if (old) {
      old.removeAllListeners('close');
      old.removeAllListeners('drain');
      void old.disconnect();
    }
    // Often called from attach() inside the dial loop, which would turn a direct call away.
    setImmediate(() => void this.dial());
  }

  /** Lines of the most recent messages, to turn "messages lost with a session" into lines. */
  private readonly linesPerMessage = new LineTally();

  private requeueFront(e: Entry): void {
    this.queue.unshift(e);
  }

  private attach(c: SpreadClient): void {
    this.client = c;
    this.blocked = false;
    this.counters.connects++;
    this.linesPerMessage.reset();
    this.emit('event', { type: 'connected', daemon: c.address.label, privateGroup: c.privateGroup } satisfies PublisherEvent);
    c.on('drain', () => {
      if (this.client !== c) return;
      this.blocked = false;
      this.pump();
    });
    if (this.reliable && !this.reliable.attach(c)) this.blocked = true;
    if (this.flushes) {
      clearInterval(this.flushTimer);
      this.flushTimer = setInterval(() => this.client === c && this.commitFlushed(c), 200);
      this.flushTimer.unref();
    }
    c.on('close', (err?: Error) => {
      if (this.client !== c) return;
      this.client = undefined;
      this.counters.disconnects++;
      // With --ack nothing is lost with the session: the window sends it again on the next one.
      const lostMessages = this.reliable ? 0 : c.unsentMessages;
      // Without it, what the session held is out of the process or counted lost: the spool may forget it.
      const handed = this.flushes?.reset();
      if (handed !== undefined) this.opts.spool!.commit(handed);
      const lost = this.linesPerMessage.lastLines(lostMessages);
      this.counters.linesSent -= lost;
      if (lost) this.drop('lost-in-flight', lost);
      this.emit('event', { type: 'disconnected', daemon: c.address.label, error: err ? errorMessage(err) : 'closed', lost } satisfies PublisherEvent);
      // A daemon declared down (it stopped reading, or acknowledging) would most likely take our
      // connect and never answer it: dial the next one now rather than after a connect timeout.
      if (isSpreadPipeError(err, ErrorCodes.STALLED)) this.servers.next();
      if (!this.closing || this.hasWork()) void this.dial();
    });
    if (this.servers.onSecondary) this.startFailback();
    this.pump();
  }

  private connectOptions(daemon: DaemonAddress): Parameters<typeof SpreadClient.connect>[0] {
    return {
      daemon,
      name: this.reliable?.name ?? this.opts.name,
      membership: false,
      connectTimeout: this.opts.connectTimeout ?? DEFAULT_CONNECT_TIMEOUT,
      stallTimeout: this.opts.stallTimeout ?? DEFAULT_STALL_TIMEOUT,
      highWaterMark: DEFAULT_IN_FLIGHT,
      signal: this.stopped.signal,
    };
  }

  /** The one dial loop: try each daemon in order, back off after each full pass. */
  private async dial(): Promise<void> {
    if (this.dialing || this.client) return;
    this.dialing = true;
    let pass = 0;
    try {
      for (;;) {
        const daemon = this.servers.current;
        this.emit('event', { type: 'connecting', daemon: daemon.label } satisfies PublisherEvent);
        try {
          const c = await SpreadClient.connect(this.connectOptions(daemon));
          if (this.closing && !this.hasWork()) {
            void c.disconnect();
            return;
          }
          if (this.servers.index !== 0) this.counters.failovers++;
          this.attach(c);
          return;
        } catch (e) {
          if (this.stopped.signal.aborted) return;
          this.reliable?.connectFailed(e);
          const { wrapped } = this.servers.next();
          let wait: number | false = 0;
          if (wrapped) wait = this.delay(++pass, e);
          this.emit('event', { type: 'connect-failed', daemon: daemon.label, error: errorMessage(e), retryInMs: wait } satisfies PublisherEvent);
          if (wait === false) {
            this.emit('event', { type: 'gave-up', error: errorMessage(e) } satisfies PublisherEvent);
            return;
          }
          if (this.closing && !this.hasWork()) return;
          if (wait > 0)
            await new Promise<void>((r) => {
              this.retryTimer = setTimeout(r, wait as number);
              this.wakeDial = r;
            });
          if (this.closing && !this.hasWork()) return;
        }
      }
    } finally {
      this.dialing = false;
    }
  }

  /** While on a secondary daemon, try the first one now and then; switch when it answers. */
  private startFailback(): void {
    clearInterval(this.failbackTimer);
    this.failbackTimer = setInterval(() => void this.probePrimary(), this.opts.failbackInterval ?? DEFAULT_FAILBACK_INTERVAL);
    this.failbackTimer.unref();
  }

  private async probePrimary(): Promise<void> {
    if (this.probing || this.closing || !this.servers.onSecondary || !this.client) return;
    this.probing = true;
    try {
      const c = await SpreadClient.connect(this.connectOptions(this.servers.primary));
      const old = this.client;
      if (this.closing || !old) {
        void c.disconnect();
        return;
      }
      clearInterval(this.failbackTimer);
      this.servers.reset();
      this.counters.failbacks++;
      this.emit('event', { type: 'failback', daemon: c.address.label } satisfies PublisherEvent);
      // Detach the old session first so its close is not taken for a failure; what it holds is still sent.
      this.client = undefined;
      old.removeAllListeners('close');
      old.removeAllListeners('drain');
      void old.disconnect(this.opts.stallTimeout ?? DEFAULT_STALL_TIMEOUT);
      this.attach(c);
    } catch {
      // Still down; try again at the next interval.
    } finally {
      this.probing = false;
    }
  }
}

/**
 * Lines carried by the last messages sent on the current session, so that
 * "the last N messages never left" becomes a line count. Bounded: enough
 * entries for what the session may hold unsent (its high-water mark).
 */
class LineTally {
  private ring = new Uint32Array(1 << 16);
  private n = 0;

  reset(): void {
    this.n = 0;
  }

  push(lines: number): void {
    this.ring[this.n++ & 0xffff] = lines;
  }

  /** Lines in the last `messages` messages. */
  lastLines(messages: number): number {
    let sum = 0;
    const k = Math.min(messages, this.n, 1 << 16);
    for (let i = 1; i <= k; i++) sum += this.ring[(this.n - i) & 0xffff]!;
    return sum;
  }
}
