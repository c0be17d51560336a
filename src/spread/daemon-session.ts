/**
 * One client connection of the built-in daemon: the handshake (every
 * library-version branch of PROTOCOL.md 3.5, buffered rather than one-shot
 * reads), then framed requests handed to the router, and an output path that
 * gathers a turn's messages into one write and enforces the byte budget.
 * It reports three typed events to its host (SessionEvent): open, overflow,
 * and close (once, with a CloseReason).
 *
 * One concern, one client connection from its first byte to its close,
 * hence over 300 lines: the handshake, the request path and the output path
 * share its phase and its socket.
 */
import type net from 'node:net';
import { DAEMON_VERSION, HEADER_SIZE, MAX_GROUP_NAME, MAX_MESSAGE_BODY_LEN, REGULAR_MESS, REJECT_AUTH, REJECT_NOT_UNIQUE, REJECT_VERSION } from './constants.js';
import { DAEMON_LIMITS, type Frame, MessageDecoder } from './decoder.js';
import { Framer } from './framer.js';
import { isPlainMulticast } from './daemon-rules.js';
import { HDR_NUM_GROUPS, nameFieldEquals, readNameField } from './layout.js';
import { encodeAccept, encodeAuthList, encodeRejectCode } from './encode.js';
import { type ConnectRequestParsed, parseAuthChoice, parseConnectRequest } from './handshake.js';
import type { Member } from './groups.js';
import { errorMessage } from '../errors.js';
import type { CloseReason, CloseRequest, RejectCause, SessionEvent } from './daemon-events.js';
import { TLS_HANDSHAKE_RECORD } from './tls.js';

/** PROTOCOL.md 9: num_groups 0..100, data_len 0..144000, data_len + 32 x num_groups <= 143952, decided on the header. */
const REQUEST_LIMITS = { ...DAEMON_LIMITS, maxBody: MAX_MESSAGE_BODY_LEN - HEADER_SIZE };

/** Bytes per write request; see writeBacklog(). */
const MAX_WRITE = 1024 * 1024;

/** Longer than any real handshake (3 + 2 + 10 + 90 bytes): more is not a Spread client. */
const MAX_HANDSHAKE_BYTES = 4096;

/** What a session needs from its daemon. */
export interface SessionHost {
  readonly daemonName: string;
  readonly authMethods: readonly string[];
  /** While set, handshakes do not time out (a hung daemon answers nothing, but never gives up either). */
  readonly hanging: boolean;
  /** The session's open, overflow (it is muted already) and close (once, with its CloseReason). */
  event(s: DaemonSession, e: SessionEvent): void;
  /** The session has output for this turn; the host calls flushOut() once per turn. */
  pending(s: DaemonSession): void;
  /** A socket that only has a reject byte left to send; the host destroys it on close(). */
  linger(sock: net.Socket): void;
}

/** Where a session's requests go (the daemon's router). */
export interface SessionRouter {
  /** Claim a private name; returns the private group, or a reject code. */
  claim(s: DaemonSession, name: string): string | number;
  /** A decoded request (anything but a plain multicast). */
  request(s: DaemonSession, f: Frame): void;
  /** The hot path: a request isPlainMulticast passed, as `buf[off, end)`, with its destinations. */
  forward(s: DaemonSession, buf: Buffer, off: number, end: number, groups: readonly string[]): void;
}

type Phase = 'connect' | 'auth' | 'open' | 'closed';

export class DaemonSession implements Member {
  privateGroup = '';
  membership = false;
  libraryMajor = 5;
  libraryVersion: [number, number, number] = [0, 0, 0];
  readonly groups = new Set<string>();
  readonly remote: string;
  messagesIn = 0;
  messagesOut = 0;
  /** Stamp of the last message delivered here: a multicast to several groups delivers once. */
  mark = 0;
  private phase: Phase = 'connect';
  /** Over budget: nothing more is queued; the daemon closes it once the current flush is done. */
  private muted = false;
  private acc: Buffer = Buffer.alloc(0);
  private request: ConnectRequestParsed | undefined;
  /** Request boundaries; plain multicasts are forwarded from the bytes, the rest go to `decoder`. */
  private readonly framer: Framer;
  /** Only ever given whole requests, so it holds no partial state. */
  private readonly decoder: MessageDecoder;
  /** The private group's bytes, to check a request's sender field without decoding it. */
  private senderBytes: Uint8Array = new Uint8Array(0);
  /** The destinations of the last plain multicast, decoded, and their bytes: publishers repeat them. */
  private lastGroups: string[] = [];
  private lastGroupBytes: Uint8Array[] = [];
  /** This turn's output, written by flushOut(). */
  private out: Buffer[] = [];
  private outBytes = 0;
  /** Earlier turns' output waiting for the write in progress. */
  private backlog: Buffer[] = [];
  private backlogBytes = 0;
  private writing = false;
  /**
   * Output not yet in `out`: a run `runBuf[runStart, runEnd)`, grown while
   * deliveries are contiguous (consecutive requests of one chunk), so that a
   * turn's output is a few ranges rather than one per message.
   */
  private runBuf: Buffer | null = null;
  private runStart = 0;
  private runEnd = 0;
  private handshakeTimer: NodeJS.Timeout | undefined;
  /** The last host tag found in `identity`, as bytes: every line of a publisher carries the same one. */
  private okTag: Buffer | undefined;

  /**
   * @param identity  mutual TLS: the names (lower case) of the client's certificate, the only host
   *                  tags its data lines may start with; undefined: any tag
   */
  constructor(
    readonly socket: net.Socket,
    private readonly host: SessionHost,
    private readonly router: SessionRouter,
    private readonly budget: number,
    private readonly handshakeTimeout: number,
    readonly identity?: readonly string[],
  ) {
    this.remote = socket.remoteAddress ? `${socket.remoteAddress}:${socket.remotePort}` : 'unix';
    this.decoder = new MessageDecoder((f) => this.onFrame(f), REQUEST_LIMITS);
    this.framer = new Framer((buf, off, end) => this.onRequest(buf, off, end), REQUEST_LIMITS);
    this.armHandshakeTimer();
    socket.on('data', (b: Buffer) => this.onData(b));
    socket.on('error', (e) => this.close({ text: `socket error: ${errorMessage(e)}`, cause: 'socket-error' }));
    socket.on('close', () =>
      this.close(this.phase === 'open' ? { text: 'connection closed by client', graceful: true, cause: 'hung-up' } : { text: 'connection closed during the handshake', cause: 'hung-up' }),
    );
  }

  get open(): boolean {
    return this.phase === 'open' && !this.muted;
  }

  /** Bytes queued toward this client and not yet taken by the kernel (up to one write request's worth). */
  get queued(): number {
    return this.outBytes + this.backlogBytes + this.socket.writableLength;
  }

  /** Queue bytes for the client; written with the rest of this turn's output by flushOut(). */
  deliver(buf: Buffer): void {
    this.deliverRange(buf, 0, buf.length);
  }

  /** deliver() of `buf[start, end)`, without making a Buffer of it. */
  deliverRange(buf: Buffer, start: number, end: number): void {
    if (this.phase !== 'open' || this.muted) return;
    if (this.outBytes === 0) this.host.pending(this);
    this.outBytes += end - start;
    this.messagesOut++;
    if (buf === this.runBuf && start === this.runEnd) {
      this.runEnd = end;
      return;
    }
    if (this.runBuf) this.out.push(this.runBuf.subarray(this.runStart, this.runEnd));
    this.runBuf = buf;
    this.runStart = start;
    this.runEnd = end;
  }

  /**
   * The turn's output goes to the session's backlog: ranges that are most of
   * a chunk read from a publisher as they are, small ones copied together, so
   * that a queued range never keeps alive a chunk much larger than itself.
   * Past the budget the client is behind for good and is cut off. (Checked
   * once the turn's output is handed to the socket, which usually takes it
   * at once.)
   */
  flushOut(): void {
    if (this.outBytes === 0 || this.phase !== 'open' || this.muted) return;
    const pieces = this.out;
    pieces.push(this.runBuf!.subarray(this.runStart, this.runEnd));
    this.out = [];
    this.runBuf = null;
    let small: Buffer[] = [];
    for (const p of pieces) {
      if (!keepable(p)) {
        small.push(p);
        continue;
      }
      if (small.length) this.backlog.push(small.length === 1 ? Buffer.from(small[0]!) : Buffer.concat(small));
      small = [];
      this.backlog.push(p);
    }
    if (small.length) this.backlog.push(small.length === 1 ? Buffer.from(small[0]!) : Buffer.concat(small));
    this.backlogBytes += this.outBytes;
    this.outBytes = 0;
    this.writeBacklog();
    const queued = this.queued;
    if (queued > this.budget) {
      this.muted = true;
      this.host.event(this, { type: 'overflow', queued });
    }
  }

  /**
   * One write request at a time, of at most MAX_WRITE bytes (a writev of the
   * backlog's first buffers: one syscall, not one per message). The socket's
   * writableLength counts a request whole until the kernel has taken all of
   * it, so letting Node merge a long backlog into one request would count
   * bytes the client already has against its budget, and cut off a client
   * that keeps up.
   */
  private writeBacklog(): void {
    if (this.writing || this.backlogBytes === 0 || this.phase !== 'open') return;
    let n = 0;
    let bytes = 0;
    while (n < this.backlog.length && (n === 0 || bytes + this.backlog[n]!.length <= MAX_WRITE)) bytes += this.backlog[n++]!.length;
    const batch = this.backlog.splice(0, n);
    this.backlogBytes -= bytes;
    this.writing = true;
    if (n > 1) this.socket.cork();
    for (let i = 0; i < n - 1; i++) this.socket.write(batch[i]!);
    this.socket.write(batch[n - 1]!, this.onWritten);
    if (n > 1) this.socket.uncork();
  }

  private readonly onWritten = (err?: Error | null): void => {
    this.writing = false;
    if (!err) this.writeBacklog();
  };

  pause(): void {
    this.socket.pause();
  }

  resume(): void {
    this.socket.resume();
    // A hang just ended: the client gets a whole timeout to finish, not what was left of one.
    if (this.phase === 'connect' || this.phase === 'auth') {
      clearTimeout(this.handshakeTimer);
      this.armHandshakeTimer();
    }
  }

  /** Drop the session: nothing more is read or sent; reported once, as a 'close' event. */
  close(why: CloseRequest): void {
    if (this.phase === 'closed') return;
    const w = typeof why === 'string' ? { text: why } : why;
    const reason: CloseReason = { text: w.text, phase: this.phase === 'open' ? 'open' : 'handshake', graceful: w.graceful ?? false, cause: w.cause ?? 'dropped' };
    if (w.protocolError !== undefined) reason.protocolError = w.protocolError;
    this.phase = 'closed';
    this.out = [];
    this.outBytes = 0;
    this.runBuf = null;
    this.backlog = [];
    this.backlogBytes = 0;
    clearTimeout(this.handshakeTimer);
    this.socket.destroy();
    this.host.event(this, { type: 'close', reason });
  }

  /** The client broke PROTOCOL.md 9: dropped silently (to the client), reported with the reason. */
  protocolError(why: string): void {
    this.close({ text: `bad request: ${why}`, protocolError: why });
  }

  private armHandshakeTimer(): void {
    this.handshakeTimer = setTimeout(() => {
      // The hang fault stands for a stopped daemon, which never times anyone out.
      if (this.host.hanging) return this.armHandshakeTimer();
      this.close({ text: `handshake not completed within ${this.handshakeTimeout} ms`, cause: 'handshake-timeout' });
    }, this.handshakeTimeout);
  }

  /** Handshake refusal: one signed byte, then close (what real daemons do). */
  private reject(code: number, reason: string, cause: RejectCause): void {
    if (this.phase === 'closed') return;
    this.phase = 'closed';
    clearTimeout(this.handshakeTimer);
    this.socket.removeAllListeners('data');
    this.host.event(this, { type: 'close', reason: { text: reason, phase: 'handshake', graceful: false, cause, rejectCode: code } });
    // Unread request bytes make the close a reset; the byte goes first and stays readable.
    this.socket.end(encodeRejectCode(code));
    this.host.linger(this.socket);
  }

  private onData(b: Buffer): void {
    if (this.phase === 'open') {
      try {
        this.framer.write(b);
      } catch (e) {
        // Requests behind one that closed the session are not judged: it is reported once.
        if (this.phase === 'open') this.protocolError(errorMessage(e));
      }
      return;
    }
    if (this.phase === 'closed') return;
    // A Spread connect request starts with the library's major version (3..5), never 0x16 0x03.
    if (this.phase === 'connect' && this.acc.length === 0 && b[0] === TLS_HANDSHAKE_RECORD && (b.length < 2 || b[1] === 0x03)) {
      return this.close({ text: 'TLS ClientHello on a plain port: the client must dial PORT@HOST here, or a tls:// listener', cause: 'tls-on-plain' });
    }
    this.acc = this.acc.length ? Buffer.concat([this.acc, b]) : b;
    // Parse first: a client may send its first requests right behind the handshake in one chunk.
    this.handshake();
    if ((this.phase === 'connect' || this.phase === 'auth') && this.acc.length > MAX_HANDSHAKE_BYTES) {
      this.close({ text: `${this.acc.length} handshake bytes: not a Spread client`, cause: 'not-spread' });
    }
  }

  private handshake(): void {
    if (this.phase === 'connect') {
      const r = parseConnectRequest(this.acc);
      if (!r) return;
      if (r.kind === 'reject') {
        const v = `${this.acc[0]}.${this.acc[1]}`;
        return r.code === REJECT_VERSION ? this.reject(r.code, `library version ${v} too old`, 'version') : this.reject(r.code, 'illegal private name', 'illegal-name');
      }
      // Real daemons check the name before sending the auth list, so REJECT_NOT_UNIQUE replaces it.
      const claimed = this.router.claim(this, r.name);
      if (typeof claimed === 'number') {
        return claimed === REJECT_NOT_UNIQUE ? this.reject(claimed, `private name "${r.name}" already in use`, 'name-in-use') : this.reject(claimed, 'refused', 'dropped');
      }
      this.privateGroup = claimed;
      this.senderBytes = Buffer.from(claimed, 'latin1');
      this.request = r;
      this.acc = this.acc.subarray(r.consumed);
      this.membership = r.membership;
      this.libraryVersion = r.version;
      this.libraryMajor = r.version[0];
      if (r.needsAuth) {
        this.phase = 'auth';
        this.socket.write(encodeAuthList(this.host.authMethods));
      } else {
        // Libraries before 3.16 skip authentication; NULL is enabled, so accept.
        return this.accept();
      }
    }
    if (this.phase === 'auth') {
      const a = parseAuthChoice(this.acc, this.host.authMethods);
      if (!a) return;
      if (a.kind === 'reject') return this.reject(REJECT_AUTH, 'authentication method refused', 'auth');
      this.acc = this.acc.subarray(a.consumed);
      this.accept();
    }
  }

  private accept(): void {
    const r = this.request!;
    this.phase = 'open';
    clearTimeout(this.handshakeTimer);
    this.socket.write(encodeAccept(DAEMON_VERSION, this.privateGroup, r.hasPatch));
    this.host.event(this, { type: 'open' });
    const rest = this.acc;
    this.acc = Buffer.alloc(0);
    if (rest.length) this.onData(rest);
  }

  private onFrame(f: Frame): void {
    if (this.phase !== 'open' || this.muted) return;
    if (this.identity && f.type & REGULAR_MESS && !this.toSelfOnly(f.groups)) {
      const bad = this.forgedTag(f.data, 0, f.data.length);
      if (bad !== undefined) return this.host.event(this, { type: 'forged', tag: bad });
    }
    this.messagesIn++;
    this.router.request(this, f);
  }

  /** One whole request, `buf[off, end)`. */
  private onRequest(buf: Buffer, off: number, end: number): void {
    if (this.phase !== 'open' || this.muted) return;
    if (!isPlainMulticast(buf, off, this.senderBytes)) return this.decoder.write(buf.subarray(off, end));
    const groups = this.destinations(buf, off);
    if (this.identity && !this.toSelfOnly(groups)) {
      const bad = this.forgedTag(buf, off + HEADER_SIZE + groups.length * MAX_GROUP_NAME, end);
      if (bad !== undefined) return this.host.event(this, { type: 'forged', tag: bad });
    }
    this.messagesIn++;
    this.router.forward(this, buf, off, end, groups);
  }

  /** A message only the sender gets back (an --ack marker): no one else reads it, so it carries no host tag. */
  private toSelfOnly(groups: readonly string[]): boolean {
    return groups.length > 0 && groups.every((g) => g === this.privateGroup);
  }

  /**
   * Mutual TLS: the first host tag in `b[start, end)` (a line's first word,
   * `HOST SP LINE`, one or more lines) that the certificate does not name, or
   * undefined when every line's is one of `identity`.
   */
  private forgedTag(b: Buffer, start: number, end: number): string | undefined {
    const names = this.identity!;
    let i = start;
    while (i < end) {
      let j = i;
      while (j < end && b[j] !== 0x20 && b[j] !== 0x0a) j++;
      const ok = this.okTag;
      if (!(ok && j - i === ok.length && b.compare(ok, 0, ok.length, i, j) === 0)) {
        const tag = b.toString('latin1', i, j);
        if (!names.includes(tag.toLowerCase())) return tag;
        this.okTag = Buffer.from(tag, 'latin1');
      }
      const nl = b.indexOf(0x0a, j);
      if (nl < 0 || nl >= end) break;
      i = nl + 1;
    }
    return undefined;
  }

  /** The group names of a request, decoded only when they differ from the last request's. */
  private destinations(b: Buffer, off: number): string[] {
    // isPlainMulticast passed: a little-endian header.
    const n = b.readInt32LE(off + HDR_NUM_GROUPS);
    const known = this.lastGroupBytes;
    if (known.length === n) {
      let same = true;
      for (let i = 0; same && i < n; i++) same = nameFieldEquals(b, off + HEADER_SIZE + i * MAX_GROUP_NAME, known[i]!);
      if (same) return this.lastGroups;
    }
    const groups = new Array<string>(n);
    for (let i = 0; i < n; i++) groups[i] = readNameField(b, off + HEADER_SIZE + i * MAX_GROUP_NAME);
    this.lastGroups = groups;
    this.lastGroupBytes = groups.map((g) => Buffer.from(g, 'latin1'));
    return groups;
  }
}

/** Worth writing without a copy: large, and at least half of the memory it keeps alive. */
function keepable(p: Buffer): boolean {
  return p.length >= 16384 && p.length * 2 >= p.buffer.byteLength;
}
