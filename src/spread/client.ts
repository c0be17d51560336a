/**
 * SpreadClient: one session with a Spread daemon over TCP or a unix socket.
 * One concern, the open session: its send buffering and flow control, its
 * receive path and its close. Dialing and the handshake are transport.ts,
 * send preparation and the per-message encoder send.ts, turning frames into
 * events messages.ts.
 *
 * Sends are encoded straight into a shared write buffer that is flushed once
 * per event-loop turn (or when full), so thousands of messages cost a few
 * socket writes; `multicast` returns false past the high-water mark and
 * 'drain' follows, like a Writable.
 */
import { EventEmitter } from 'node:events';
import type net from 'node:net';
import { CONNECTION_CLOSED, HEADER_SIZE, MAX_GROUPS_PER_MESSAGE, MAX_MESSAGE_BODY_LEN, MESSAGE_TOO_LONG, SAFE_MESSAGE_BODY_LEN } from './constants.js';
import { CLIENT_LIMITS, type DataSink, MessageDecoder, type Frame } from './decoder.js';
import { encodeJoin, encodeKill, encodeLeave, nameField } from './encode.js';
import { type SpreadEvent, frameEvent } from './messages.js';
import { MessageEncoder, type PreparedSend, type SendOptions, prepareSend } from './send.js';
import { type Handshaken, dial, generatedName, watchStall } from './transport.js';
import { type DaemonAddress, parseDaemonAddress, validateGroupName, validatePrivateName } from './address.js';
import { ErrorCodes, SpreadPipeError } from '../errors.js';
import { checked, intOption } from '../options.js';

export { type DataSink, type PreparedSend, type SendOptions, type SpreadEvent, prepareSend };

/** ms for TCP connect plus handshake; the one default of every mode (pipe, tail). @default 3000 */
export const DEFAULT_CONNECT_TIMEOUT = 3000;
/** @default 65536 */
export const DEFAULT_WRITE_BUFFER = 64 * 1024;
/** @default 1 MiB */
export const DEFAULT_HIGH_WATER_MARK = 1024 * 1024;
/** Attempts with other generated names after REJECT_NOT_UNIQUE. @default 5 */
export const DEFAULT_NAME_RETRIES = 5;

export interface SpreadClientOptions {
  /** `4803`, `4803@host`, `host:4803`, or a parsed address. */
  daemon: string | DaemonAddress;
  /** Private name, 1..10 characters. @default derived from the pid, retried on REJECT_NOT_UNIQUE */
  name?: string;
  /** Receive membership notices. @default true */
  membership?: boolean;
  /** Milliseconds for TCP connect plus handshake. @default 3000 */
  connectTimeout?: number;
  /** Bytes per coalesced socket write. @default 65536 */
  writeBufferSize?: number;
  /** Unsent bytes above which multicast() returns false. @default 1 MiB */
  highWaterMark?: number;
  /** Largest data + 32 * groups sent. @default 143151 (safe on every real daemon) */
  maxMessageLength?: number;
  /** Destroy the session when queued bytes make no progress for this long; 0 disables. @default 0 */
  stallTimeout?: number;
  /** Gives up a connect in progress (e.g. at exit), rejecting with SP_ERR_ABORTED. */
  signal?: AbortSignal;
  /**
   * Read every chunk into one buffer of this many bytes, reused (Node's
   * `onread`), instead of a fresh buffer per read: no allocation and no GC
   * per read, which matters when each message arrives in its own read (real
   * Spread writes a message in two). A Frame's data is then valid only
   * during its 'message' event: copy what you keep. 0: a fresh buffer per
   * read. @default 0
   */
  readBuffer?: number;
  /**
   * After a read of less than an eighth of the read buffer (a daemon that sends
   * faster than nothing, slower than a full buffer: real Spread writes each
   * message on its own), stop reading for this many ms, so that the next
   * read takes what arrived meanwhile in one go: one wakeup and one read(2)
   * per many messages instead of per message. The kernel holds the bytes
   * (loopback and LAN socket buffers hold thousands of log lines); each
   * message waits at most this long. 0: read as soon as bytes arrive. @default 0
   */
  readDelay?: number;
  /**
   * Data messages go to this function as the byte range of their body
   * (valid only during the call) instead of as 'message' events: no Frame,
   * event object or Buffer view per message (`top`'s receive path).
   * Membership and every other message are still 'message' events.
   * @default undefined: every message is a 'message' event
   */
  dataSink?: DataSink;
}

/** Defaults filled and checked (OptionError, code INVALID_ARGUMENT); the daemon name parsed. */
export function resolveClientOptions(o: SpreadClientOptions): SpreadClientOptions & { daemon: DaemonAddress; connectTimeout: number; membership: boolean } {
  return {
    ...o,
    daemon: typeof o.daemon === 'string' ? checked('daemon', () => parseDaemonAddress(o.daemon as string)) : o.daemon,
    name: o.name === undefined ? undefined : checked('name', () => validatePrivateName(o.name!)),
    membership: o.membership ?? true,
    connectTimeout: intOption('connectTimeout', o.connectTimeout, DEFAULT_CONNECT_TIMEOUT, { min: 1, unit: 'milliseconds' }),
    writeBufferSize: intOption('writeBufferSize', o.writeBufferSize, DEFAULT_WRITE_BUFFER, { min: 1, unit: 'bytes' }),
    highWaterMark: intOption('highWaterMark', o.highWaterMark, DEFAULT_HIGH_WATER_MARK, { min: 0, unit: 'bytes' }),
    maxMessageLength: intOption('maxMessageLength', o.maxMessageLength, SAFE_MESSAGE_BODY_LEN, { min: 1, max: MAX_MESSAGE_BODY_LEN, unit: 'bytes' }),
    stallTimeout: intOption('stallTimeout', o.stallTimeout, 0, { min: 0, unit: 'milliseconds' }),
    readBuffer: intOption('readBuffer', o.readBuffer, 0, { min: 0, unit: 'bytes' }),
    readDelay: intOption('readDelay', o.readDelay, 0, { min: 0, max: 1000, unit: 'milliseconds' }),
  };
}

export class SpreadClient extends EventEmitter {
  readonly privateGroup: string;
  readonly daemonVersion: [number, number, number];
  readonly address: DaemonAddress;
  /** Messages and bytes queued since the session opened. */
  messagesSent = 0;
  bytesQueued = 0;
  private readonly encoder: MessageEncoder;
  private readonly writeBufferSize: number;
  private readonly highWaterMark: number;
  private readonly maxLen: number;
  private wbuf: Buffer;
  /**
   * Write buffers handed to the kernel and back, for reuse. Up to a high-water
   * mark's worth can be in flight at once (a burst fills one after another in
   * one turn, before any write completes), so that many are kept: with fewer,
   * most flushes of a burst took a new buffer (#16: 3.7k of 4.4k flushes of
   * 1M lines, 240 MB of buffers the collector then swept).
   */
  private readonly spare: Buffer[] = [];
  private readonly maxSpare: number;
  private wlen = 0;
  /** Messages encoded into wbuf and not yet handed to the socket. */
  private wcount = 0;
  /** Messages handed to the socket whose write has not completed (still in Node's buffer). */
  private writing = 0;
  private flushScheduled = false;
  private needDrain = false;
  private closed = false;
  /** disconnect() or destroy() was called: no more sends. */
  private closing = false;
  private closeError: SpreadPipeError | undefined;
  private stallTimer: NodeJS.Timeout | undefined;
  private readonly decoder: MessageDecoder;
  /** Bytes that came in the accept's read, held until the caller of connect() can listen. */
  private early: Buffer | undefined;
  private readonly readDelay: number;
  /** A read shorter than this starts a read delay. */
  private readonly shortRead: number;
  private delayTimer: NodeJS.Timeout | undefined;
  /** A read delay is running (the socket paused until delayTimer fires). */
  private delaying = false;
  /** pause() was called: a read delay ending does not resume. */
  private userPaused = false;

  private constructor(
    private readonly socket: net.Socket,
    address: DaemonAddress,
    privateGroup: string,
    daemonVersion: [number, number, number],
    opts: SpreadClientOptions,
    rest: Buffer,
    reads?: { sink: (chunk: Buffer) => void },
  ) {
    super();
    this.address = address;
    this.privateGroup = privateGroup;
    this.daemonVersion = daemonVersion;
    this.encoder = new MessageEncoder(nameField(privateGroup));
    this.writeBufferSize = opts.writeBufferSize ?? DEFAULT_WRITE_BUFFER;
    this.highWaterMark = opts.highWaterMark ?? DEFAULT_HIGH_WATER_MARK;
    this.maxSpare = Math.ceil(this.highWaterMark / this.writeBufferSize) + 1;
    this.maxLen = opts.maxMessageLength ?? SAFE_MESSAGE_BODY_LEN;
    this.wbuf = Buffer.allocUnsafeSlow(this.writeBufferSize);
    this.decoder = new MessageDecoder((f) => this.dispatch(f), CLIENT_LIMITS, opts.dataSink);
    this.readDelay = opts.readDelay ?? 0;
    // Well below full: a read that brought more means a backlog, taken at once (real Spread drops a session 1000 messages behind).
    this.shortRead = (opts.readBuffer || DEFAULT_WRITE_BUFFER) / 8;
    if (reads) reads.sink = (chunk) => this.onData(chunk);
    else socket.on('data', (chunk: Buffer) => this.onData(chunk));
    socket.on('drain', () => this.onDrain());
    socket.on('error', (err) => this.fail(new SpreadPipeError(ErrorCodes.CONNECTION_CLOSED, `connection to ${address.label} failed: ${err.message}`, { cause: err })));
    socket.on('close', () => this.onClose());
    if (opts.stallTimeout) this.watchStall(opts.stallTimeout);
    // A daemon may send a message right behind the accept (e.g. to our private group).
    // A microtask would emit it before connect()'s caller has attached 'message'
    // listeners; setImmediate runs after that, and onData keeps the order if more
    // bytes arrive first.
    if (rest.length) {
      this.early = rest;
      setImmediate(() => this.onData(Buffer.alloc(0)));
    }
  }

  /** Open a session: TCP/unix connect, handshake with NULL authentication. */
  static async connect(options: SpreadClientOptions): Promise<SpreadClient> {
    const opts = resolveClientOptions(options);
    const address = opts.daemon;
    for (let attempt = 0; ; attempt++) {
      if (opts.signal?.aborted) throw new SpreadPipeError(ErrorCodes.ABORTED, `connect to daemon ${address.label} given up`);
      const name = opts.name ?? generatedName(attempt);
      try {
        return await SpreadClient.open(address, name, opts);
      } catch (e) {
        const retry = opts.name === undefined && attempt < DEFAULT_NAME_RETRIES && e instanceof SpreadPipeError && e.code === ErrorCodes.REJECT_NOT_UNIQUE;
        if (!retry) throw e;
      }
    }
  }

  private static open(address: DaemonAddress, name: string, opts: SpreadClientOptions): Promise<SpreadClient> {
    const dialOpts = { connectTimeout: opts.connectTimeout ?? DEFAULT_CONNECT_TIMEOUT, membership: opts.membership ?? true, signal: opts.signal, readBuffer: opts.readBuffer ?? 0 };
    return dial(address, name, dialOpts, (h: Handshaken) => new SpreadClient(h.socket, address, h.privateGroup, h.daemonVersion, opts, h.rest, h.reads));
  }

  get connected(): boolean {
    return !this.closed;
  }

  /** Bytes accepted but not yet handed to the kernel. */
  get writableLength(): number {
    return this.wlen + this.socket.writableLength;
  }

  join(group: string): void {
    this.writeRaw(encodeJoin(this.privateGroup, validateGroupName(group)));
  }

  leave(group: string): void {
    this.writeRaw(encodeLeave(this.privateGroup, validateGroupName(group)));
  }

  /** Multicast one message. Returns false once the unsent bytes pass the high-water mark. */
  multicast(groups: string | readonly string[], data: Buffer | Uint8Array, opts: SendOptions = {}): boolean {
    return this.send(prepareSend(groups, opts), data);
  }

  /** Multicast with destinations encoded beforehand (hot path). */
  send(p: PreparedSend, data: Buffer | Uint8Array): boolean {
    return this.sendRange(p, data, 0, data.length);
  }

  /**
   * Multicast `src[start, end)`: the publisher's queue hands out the block
   * holding a line rather than a view of it, one allocation less per line.
   * `hint` replaces p.hint (--ack: the message type carrying the first line's
   * id, without a PreparedSend made per message).
   */
  sendRange(p: PreparedSend, src: Uint8Array, start: number, end: number, hint = p.hint): boolean {
    this.checkOpen();
    const len = end - start;
    const bodyLen = len + p.groups.length;
    // What real daemons refuse by dropping the session (PROTOCOL.md 9) is refused here, sending nothing:
    // a message the daemon took in and threw away would look sent.
    if (bodyLen > this.maxLen || p.numGroups > MAX_GROUPS_PER_MESSAGE) {
      if (p.numGroups > MAX_GROUPS_PER_MESSAGE) {
        throw new SpreadPipeError(ErrorCodes.TOO_MANY_GROUPS, `message to ${p.numGroups} groups: Spread allows at most ${MAX_GROUPS_PER_MESSAGE}`);
      }
      throw new SpreadPipeError(ErrorCodes.MESSAGE_TOO_LONG, `message of ${len} bytes to ${p.numGroups} group(s) exceeds ${this.maxLen} bytes`, { spreadCode: MESSAGE_TOO_LONG });
    }
    const size = HEADER_SIZE + bodyLen;
    if (size > this.wbuf.length - this.wlen) {
      this.flush();
      if (size > this.wbuf.length) {
        const big = Buffer.allocUnsafe(size);
        this.encoder.encode(big, 0, p, src, start, len, hint);
        this.writeCounted(big, 1);
        return this.account(size);
      }
    }
    this.wlen = this.encoder.encode(this.wbuf, this.wlen, p, src, start, len, hint);
    this.wcount++;
    this.scheduleFlush();
    return this.account(size);
  }

  /** Hand buffered messages to the socket now. */
  flush(): void {
    if (this.wlen === 0 || this.closed) return;
    const out = this.wbuf.subarray(0, this.wlen);
    // The socket keeps a reference to `out` until its write completes; take another buffer rather than copy.
    this.wbuf = this.spare.pop() ?? Buffer.allocUnsafeSlow(this.writeBufferSize);
    this.wlen = 0;
    const n = this.wcount;
    this.wcount = 0;
    this.writeCounted(out, n);
  }

  /**
   * Messages accepted by send() that never reached the kernel: after 'close'
   * these are known lost (what the kernel held when the peer died is not
   * knowable without acknowledgements).
   */
  get unsentMessages(): number {
    return this.wcount + this.writing;
  }

  private writeCounted(buf: Buffer, messages: number): void {
    this.writing += messages;
    // Only a whole write buffer (not a view of a bigger one, not a message of its own) is filled again.
    const whole = buf.byteOffset === 0 && buf.buffer.byteLength === this.writeBufferSize;
    let reused = false;
    this.socket.write(buf, (err) => {
      // A destroyed socket calls back its cancelled writes without an error: they never left.
      if (err || this.socket.destroyed) return;
      this.writing -= messages;
      // Written to the kernel: the buffer may be filled again.
      if (whole && !reused) this.keepSpare(buf);
      // The socket emits 'drain' only after one of its own writes returned false;
      // with a high-water mark below its buffering (or bytes that were still in
      // wbuf) that never happens, so check on every completed write.
      this.onDrain();
    });
    // Nothing queued in the socket after write(): the kernel took the bytes during the call (its callback
    // comes only on the next tick), so the buffer may be filled again now. A burst flushes many times in
    // one turn; it then goes round one buffer instead of taking a new one for each (#16: half the flushes
    // of 1M lines took one, the collector's work).
    if (whole && this.socket.writableLength === 0) reused = this.keepSpare(buf);
  }

  /** Keep the write buffer under `buf` for filling again, while fewer than maxSpare are kept; whether it was. */
  private keepSpare(buf: Buffer): boolean {
    if (this.spare.length >= this.maxSpare) return false;
    this.spare.push(Buffer.from(buf.buffer, 0, this.writeBufferSize));
    return true;
  }

  /** Send the disconnect request, then close; resolves when the socket is closed. */
  async disconnect(timeoutMs = 2000): Promise<void> {
    if (this.closed) return;
    this.writeRaw(encodeKill(this.privateGroup));
    this.flush();
    this.closing = true;
    await new Promise<void>((resolve) => {
      const t = setTimeout(() => {
        this.socket.destroy();
        resolve();
      }, timeoutMs);
      this.socket.once('close', () => {
        clearTimeout(t);
        resolve();
      });
      this.socket.end();
    });
  }

  /** Stop reading from the daemon (the daemon buffers for us), e.g. while stdout is full. */
  pause(): void {
    this.userPaused = true;
    this.socket.pause();
  }

  resume(): void {
    this.userPaused = false;
    if (!this.delaying) this.socket.resume();
  }

  /** Close at once, dropping unsent bytes. */
  destroy(err?: SpreadPipeError): void {
    if (err) this.closeError ??= err;
    this.closing = true;
    this.socket.destroy();
  }

  private account(size: number): boolean {
    this.messagesSent++;
    this.bytesQueued += size;
    if (this.writableLength >= this.highWaterMark) {
      this.needDrain = true;
      return false;
    }
    return true;
  }

  private writeRaw(buf: Buffer): void {
    this.checkOpen();
    this.flush();
    this.socket.write(buf);
  }

  private checkOpen(): void {
    if (this.closed || this.closing) {
      throw this.closeError ?? new SpreadPipeError(ErrorCodes.NOT_CONNECTED, `session with ${this.address.label} is closed`);
    }
  }

  private scheduleFlush(): void {
    if (this.flushScheduled) return;
    this.flushScheduled = true;
    setImmediate(() => {
      this.flushScheduled = false;
      this.flush();
    });
  }

  private onDrain(): void {
    if (this.needDrain && this.writableLength < this.highWaterMark) {
      this.needDrain = false;
      this.emit('drain');
    }
  }

  private onData(chunk: Buffer): void {
    try {
      if (this.early) {
        const early = this.early;
        this.early = undefined;
        this.decoder.write(early);
      }
      this.decoder.write(chunk);
    } catch (e) {
      this.destroy(e as SpreadPipeError);
      return;
    }
    if (this.readDelay && chunk.length < this.shortRead && !this.delaying && !this.userPaused && !this.closed) {
      this.socket.pause();
      this.delaying = true;
      // One Timeout for the session, rescheduled: not a timer and a closure made per short read.
      if (this.delayTimer) this.delayTimer.refresh();
      else this.delayTimer = setTimeout(() => this.endDelay(), this.readDelay);
    }
  }

  private endDelay(): void {
    this.delaying = false;
    if (!this.userPaused && !this.closed) this.socket.resume();
  }

  private dispatch(frame: Frame): void {
    const ev = frameEvent(frame, this.daemonVersion[0]);
    if (ev) this.emit('message', ev);
  }

  private watchStall(ms: number): void {
    this.stallTimer = watchStall(this.socket, ms, (pending) =>
      this.destroy(new SpreadPipeError(ErrorCodes.STALLED, `daemon ${this.address.label} stopped reading: ${pending} bytes unsent for ${ms} ms`)),
    );
  }

  private fail(err: SpreadPipeError): void {
    this.closeError ??= err;
  }

  private onClose(): void {
    this.closed = true;
    clearInterval(this.stallTimer);
    clearTimeout(this.delayTimer);
    const err = this.closing && !this.closeError ? undefined : (this.closeError ?? new SpreadPipeError(ErrorCodes.CONNECTION_CLOSED, `daemon ${this.address.label} closed the session`, { spreadCode: CONNECTION_CLOSED }));
    this.emit('close', err);
  }
}

