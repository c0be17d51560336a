/**
 * The publisher: a bounded queue in front of one Spread session, with
 * reconnect, failover across daemons and fail-back to the first, stall
 * detection, optional adaptive batching, and counters for every line that
 * did not make it. `push` never blocks and never throws on a full queue: the
 * web server behind stdin must never wait for us. Under `onFull: 'block'` the
 * queue takes what is pushed and emits `full`: the caller stops reading its
 * input until `room` (a file replayed can wait; see queue.ts).
 *
 * One concern, the session's life: which queue and sending strategy (built
 * once, from the options), the dial loop, failover and fail-back, the pump,
 * and close. The queues (queue.ts, spool-queue.ts behind outbound.ts), the
 * strategies (strategy.ts), --ack (reliable.ts) and the spool's commits
 * (spool-commits.ts) live apart; counters and events in publisher-events.ts.
 *
 * A send that fails is never counted as sent. A session-level failure (the
 * session closed or stalled under us) keeps the message for the next
 * session; a message the protocol forbids (too long, too many groups, an
 * illegal service) would fail on any session, so it is dropped, counted as
 * `rejected`, and reported.
 *
 * Over 300 lines on purpose: one concern, the life of the session (dial loop,
 * attach/detach, pump, fail-back); queues, strategies and events are their own files.
 */
import { EventEmitter } from 'node:events';
import { setTimeout as sleep } from 'node:timers/promises';
import { type DaemonAddress } from './spread/address.js';
import { DEFAULT_CONNECT_TIMEOUT, type PreparedSend, SpreadClient } from './spread/client.js';
import { SAFE_MESSAGE_BODY_LEN } from './spread/constants.js';
import { type OutboundQueue } from './outbound.js';
import { LineQueue, type OverflowPolicy, resolveQueueOptions } from './queue.js';
import { OptionError, checked, intOption, renamed } from './options.js';
import { validatePrivateName } from './spread/address.js';
import { DaemonList } from './servers.js';
import { type ReconnectDelay, exponentialBackoff } from './backoff.js';
import { ErrorCodes, errorMessage, isSpreadPipeError } from './errors.js';
import { type Counters, type DropReason, type PublisherEvent, isTransientSendError, newCounters } from './publisher-events.js';
import { Reliable, type ReliableEvent, type ReliableOptions } from './reliable.js';
import { type Spool, type SpoolEvent } from './spool.js';
import { SpoolQueue } from './spool-queue.js';
import { SpoolCommits } from './spool-commits.js';
import { ROTATE, type SendStrategy, sendStrategy } from './strategy.js';
import { LineTally } from './line-tally.js';

export { ACK_BATCH_LINES } from './strategy.js';
export { type Counters, type DropReason, type PublisherEvent, isTransientSendError } from './publisher-events.js';

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
  /** --ack: keep lines until a marker back confirms them, resend after a failover; sequence numbers for receivers (reliable.ts). */
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

/**
 * The session, one of: none (the dial loop may be running), open (taking
 * messages), or blocked (past its high-water mark, or resending its --ack
 * window: waiting for 'drain').
 */
type Session = { readonly state: 'none' } | { readonly state: 'open' | 'blocked'; readonly client: SpreadClient };
const NO_SESSION: Session = { state: 'none' };

/** running; draining (close() sends what is queued); stopped (no more dialing, whatever is left). */
type Phase = 'running' | 'draining' | 'stopped';

export class Publisher extends EventEmitter {
  readonly counters: Counters = newCounters();
  private readonly queue: OutboundQueue<PreparedSend>;
  private readonly strategy: SendStrategy;
  /** --ack state, if on. */
  readonly reliable: Reliable | undefined;
  /** --spool: when spooled lines may be forgotten. */
  private readonly commits: SpoolCommits | undefined;
  private readonly servers: DaemonList;
  private readonly delay: ReconnectDelay;
  private session: Session = NO_SESSION;
  private phase: Phase = 'running';
  /** The dial loop in progress: one at a time, every dial() gets it. */
  private dialing: Promise<void> | undefined;
  /** The fail-back attempt in progress. */
  private probing: Promise<void> | undefined;
  /** Aborted when close() stops waiting: ends a connect in progress and the dial loop's backoff wait. */
  private readonly stopped = new AbortController();
  private pumpTask: NodeJS.Immediate | undefined;
  private failbackTimer: NodeJS.Timeout | undefined;
  /** onFull 'block': report full / room (a queue that takes everything never says full). */
  private readonly blocks: boolean;
  /** Input told to wait ('full' emitted, 'room' not yet), or reading. */
  private input: 'reading' | 'waiting' = 'reading';
  /** Lines per message sent, for the loss count when a session dies (messages -> lines). */
  private readonly linesPerMessage = new LineTally();
  private readonly opts: ResolvedPublisherOptions;

  constructor(options: PublisherOptions) {
    super();
    const opts = (this.opts = resolvePublisherOptions(options));
    this.servers = new DaemonList(opts.daemons);
    this.delay = opts.reconnectDelay ?? exponentialBackoff();
    this.queue = opts.spool
      ? // The copy kept in memory is bounded like the queue it stands in for: no more memory than without --spool.
        new SpoolQueue(opts.spool, (lines) => this.drop('spool-error', lines), opts.queueBytes)
      : new LineQueue<PreparedSend>(opts.queueLines, opts.queueBytes, opts.onFull, (lines) =>
          this.drop('queue-full', lines),
        );
    if (opts.spool) {
      this.commits = new SpoolCommits(opts.spool, !!opts.ack);
      this.watchSpool(opts.spool);
    }
    // A daemon that takes our bytes but orders none of them is as down as one that takes none.
    if (opts.ack) this.reliable = this.startReliable({ ackTimeout: opts.stallTimeout, ...(opts.ack === true ? {} : opts.ack) });
    // Messages are copied as they are sent; with --ack the window holds them until acknowledged.
    const window = this.reliable?.window;
    this.queue.reuseBlocks(window && ((ours) => window.oldestBuffer(ours)));
    this.strategy = sendStrategy(this.queue, { reliable: this.reliable, batchBytes: opts.batch ? opts.batchBytes : undefined });
    this.blocks = opts.onFull === 'block';
  }

  /** Under onFull 'block': the queue is full and input should wait for 'room'. */
  get full(): boolean {
    return this.blocks && this.queue.full;
  }

  get connected(): boolean {
    return this.session.state !== 'none';
  }

  get queued(): { lines: number; bytes: number } {
    return { lines: this.queue.lines, bytes: this.queue.bytes };
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
    this.queue.push(body, route);
    this.queuedOne();
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
    this.queue.push(body, route, 0);
    this.schedulePump();
  }

  /**
   * Queue `prefix + line + LF` (prefix: the host tag and its space, or
   * empty) for `route`, without building the body first: the queue copies
   * the pieces into place. Never blocks; `line` may be reused afterwards.
   */
  pushLine(prefix: Uint8Array, line: Uint8Array, route: PreparedSend | undefined): void {
    this.counters.accepted++;
    if (!route) return this.drop('no-route', 1);
    this.queue.pushLine(prefix, line, route);
    this.queuedOne();
  }

  private queuedOne(): void {
    if (this.blocks && this.input === 'reading' && this.queue.full) {
      this.input = 'waiting';
      this.emit('event', { type: 'full' } satisfies PublisherEvent);
    }
    this.schedulePump();
  }

  private schedulePump(): void {
    if (this.pumpTask === undefined && this.session.state === 'open') {
      this.pumpTask = setImmediate(() => {
        this.pumpTask = undefined;
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
    this.phase = 'draining';
    clearInterval(this.failbackTimer);
    let deadline = Date.now() + drainTimeout;
    let progress = -1;
    await new Promise<void>((resolve) => {
      const check = (): void => {
        this.pump();
        // Draining: what was sent is acknowledged now, not after the marker interval.
        if (this.session.state !== 'none') this.reliable?.flush();
        const c = this.client;
        const empty = this.queue.length === 0 && (!c || c.writableLength === 0) && !this.reliable?.window.size;
        const done = this.counters.messagesSent + (c?.writableLength ?? 0) + (this.reliable?.counters.acked ?? 0);
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
    this.phase = 'stopped';
    this.stopped.abort();
    const left = this.queue.clear();
    if (left) this.drop('unsent-at-exit', left);
    // With a spool what is unacknowledged stays there for the next run, but for lines the spool's bound
    // deleted while they were in flight (#16: counted, so that the counters add up); without, it may be lost.
    const spool = this.opts.spool;
    const unacked = !this.reliable ? 0 : spool ? this.reliable.window.linesBelow(spool.oldestId) : this.reliable.window.clear();
    if (unacked) this.drop('unacked-at-exit', unacked);
    const c = this.detach();
    if (c) {
      this.commits?.flushedBy(c);
      await c.disconnect(Math.max(100, deadline - Date.now()));
      // What the session still held when it was cut off never left: counted in lines (a batch is
      // many), once, and no longer as sent. With --ack the window already accounts for it.
      if (!this.reliable) this.unsend(c.unsentMessages, 'unsent-at-exit');
    }
    return this.counters;
  }

  private get client(): SpreadClient | undefined {
    return this.session.state === 'none' ? undefined : this.session.client;
  }

  /** A session is wanted: none is open, and we are running or (closing) lines are still to deliver. */
  private wantsSession(): boolean {
    if (this.session.state !== 'none' || this.phase === 'stopped') return false;
    return this.phase === 'running' || this.queue.length > 0 || (this.reliable?.window.size ?? 0) > 0;
  }

  /**
   * The last `messages` messages of the session never left: their lines are
   * no longer sent but dropped for `reason`. Returns those lines.
   */
  private unsend(messages: number, reason: DropReason): number {
    const lines = this.linesPerMessage.lastLines(messages);
    this.counters.linesSent -= lines;
    if (lines) this.drop(reason, lines);
    return lines;
  }

  private drop(reason: DropReason, lines: number): void {
    this.counters.dropped[reason] += lines;
    this.emit('event', { type: 'drop', reason, lines } satisfies PublisherEvent);
  }

  /** Hand queued messages to the session until it pushes back: next, send, account. */
  private pump(): void {
    const s = this.session;
    if (s.state === 'open') this.sendQueued(s.client);
    if (this.input === 'waiting' && this.queue.roomy) {
      this.input = 'reading';
      this.emit('event', { type: 'room' } satisfies PublisherEvent);
    }
  }

  private sendQueued(c: SpreadClient): void {
    const strategy = this.strategy;
    for (let m = strategy.next(); m !== undefined; m = strategy.next()) {
      if (m === ROTATE) return this.rotateStream();
      let ok: boolean;
      try {
        ok = strategy.send(c, m);
      } catch (err) {
        // The session closed under us: the message waits for the next one.
        if (isTransientSendError(err)) return strategy.putBack(m);
        this.commits?.settled(m);
        this.reject(m.lines, err);
        continue;
      }
      this.commits?.settled(m);
      this.countSent(m.lines, m.end - m.start);
      if (!ok) {
        this.session = { state: 'blocked', client: c };
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
    const spool = this.commits;
    // After a crash the spool's stream goes on only for what it holds (sent again, repeats dropped by
    // receivers); the lines after those go under a new name (Reliable.rotateFrom).
    const crashed = this.opts.spool?.crashed ? this.opts.spool : undefined;
    const resume = crashed ? crashed.unacked > 0 : true;
    const r = new Reliable({ ...o, name: o.name ?? (resume ? spool?.stream : undefined) });
    if (crashed && resume) r.rotateFrom(crashed.nextRecordId);
    if (spool) spool.stream = r.name;
    r.on('event', (e: ReliableEvent) => {
      if (e.type === 'acked') {
        spool?.acked(e.below);
        if (this.session.state === 'open') this.pump();
      } else {
        if (spool) spool.stream = e.name;
        this.emit('event', { type: 'new-stream', name: e.name, abandoned: e.abandoned, why: e.why } satisfies PublisherEvent);
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

  /** --ack: ids jumped too far for receivers; reconnect under a new stream name. */
  private rotateStream(): void {
    this.reliable!.rotate();
    void this.detach()?.disconnect();
    // From attach() inside the dial loop this is the loop in progress, which goes on: no session.
    void this.dial();
  }

  /**
   * Leave the current session so that its close is not taken for a failure
   * (fail-back, a new --ack stream, close()); returns it, for the caller to
   * disconnect: what it holds is still sent.
   */
  private detach(): SpreadClient | undefined {
    const c = this.client;
    if (!c) return undefined;
    this.session = NO_SESSION;
    this.commits?.left();
    c.removeAllListeners('close');
    c.removeAllListeners('drain');
    return c;
  }

  private attach(c: SpreadClient): void {
    this.session = { state: 'open', client: c };
    this.counters.connects++;
    this.linesPerMessage.reset();
    this.emit('event', { type: 'connected', daemon: c.address.label, privateGroup: c.privateGroup } satisfies PublisherEvent);
    c.on('drain', () => {
      if (this.client !== c) return;
      this.session = { state: 'open', client: c };
      this.pump();
    });
    if (this.reliable && !this.reliable.attach(c)) this.session = { state: 'blocked', client: c };
    this.commits?.attach(c);
    c.on('close', (err?: Error) => this.lost(c, err));
    if (this.servers.onSecondary) this.startFailback();
    this.pump();
  }

  /** The session closed under us (a detached one no longer reports here). */
  private lost(c: SpreadClient, err?: Error): void {
    if (this.client !== c) return;
    this.session = NO_SESSION;
    this.counters.disconnects++;
    // With --ack nothing is lost with the session: the window sends it again on the next one.
    const lostMessages = this.reliable ? 0 : c.unsentMessages;
    // Without it, what the session held is out of the process or counted lost: the spool may forget it.
    this.commits?.lost();
    const lost = this.unsend(lostMessages, 'lost-in-flight');
    this.emit('event', { type: 'disconnected', daemon: c.address.label, error: err ? errorMessage(err) : 'closed', lost } satisfies PublisherEvent);
    // A daemon declared down (it stopped reading, or acknowledging) would most likely take our
    // connect and never answer it: dial the next one now rather than after a connect timeout.
    if (isSpreadPipeError(err, ErrorCodes.STALLED)) this.servers.next();
    void this.dial();
  }

  private connectOptions(daemon: DaemonAddress): Parameters<typeof SpreadClient.connect>[0] {
    return {
      daemon,
      name: this.reliable?.name ?? this.opts.name,
      membership: false,
      connectTimeout: this.opts.connectTimeout,
      stallTimeout: this.opts.stallTimeout,
      highWaterMark: DEFAULT_IN_FLIGHT,
      signal: this.stopped.signal,
    };
  }

  /** The one dial loop, memoised (as nats.js protocol.ts): a dial() while it runs gets the same promise. */
  private dial(): Promise<void> {
    this.dialing ??= (async () => {
      // Past this point `dialing` is set: a dial() from inside the loop (attach -> a new --ack stream) joins it.
      await undefined;
      try {
        await this.dialLoop();
      } finally {
        this.dialing = undefined;
      }
    })();
    return this.dialing;
  }

  /** Try each daemon in order until a session is open, backing off after each full pass. */
  private async dialLoop(): Promise<void> {
    let pass = 0;
    while (this.wantsSession()) {
      const daemon = this.servers.current;
      this.emit('event', { type: 'connecting', daemon: daemon.label } satisfies PublisherEvent);
      let c: SpreadClient;
      try {
        c = await SpreadClient.connect(this.connectOptions(daemon));
      } catch (e) {
        if (this.phase === 'stopped') return;
        this.reliable?.connectFailed(e);
        const { wrapped } = this.servers.next();
        const wait = wrapped ? this.delay(++pass, e) : 0;
        this.emit('event', { type: 'connect-failed', daemon: daemon.label, error: errorMessage(e), retryInMs: wait } satisfies PublisherEvent);
        if (wait === false) {
          this.emit('event', { type: 'gave-up', error: errorMessage(e) } satisfies PublisherEvent);
          return;
        }
        // close() aborts the wait.
        if (wait > 0 && this.wantsSession()) await sleep(wait, undefined, { signal: this.stopped.signal }).catch(() => {});
        continue;
      }
      if (!this.wantsSession()) {
        void c.disconnect();
        return;
      }
      if (this.servers.index !== 0) this.counters.failovers++;
      // Usually ends the loop; a new --ack stream taken inside it leaves no session, and the loop dials again.
      this.attach(c);
    }
  }

  /** While on a secondary daemon, try the first one now and then; switch when it answers. */
  private startFailback(): void {
    clearInterval(this.failbackTimer);
    this.failbackTimer = setInterval(() => void (this.probing ??= this.probePrimary().finally(() => (this.probing = undefined))), this.opts.failbackInterval);
    this.failbackTimer.unref();
  }

  private async probePrimary(): Promise<void> {
    if (this.phase !== 'running' || !this.servers.onSecondary || !this.client) return;
    let c: SpreadClient;
    try {
      c = await SpreadClient.connect(this.connectOptions(this.servers.primary));
    } catch {
      return; // still down; try again at the next interval
    }
    if (this.phase !== 'running' || !this.client) {
      void c.disconnect();
      return;
    }
    clearInterval(this.failbackTimer);
    this.servers.reset();
    this.counters.failbacks++;
    this.emit('event', { type: 'failback', daemon: c.address.label } satisfies PublisherEvent);
    void this.detach()?.disconnect(this.opts.stallTimeout);
    this.attach(c);
  }
}
