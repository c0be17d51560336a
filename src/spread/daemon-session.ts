/**
 * One client connection of the built-in daemon: the handshake (every
 * library-version branch of PROTOCOL.md 3.5, buffered rather than one-shot
 * reads), then framed requests handed to the daemon, and an output path that
 * coalesces writes per event-loop turn and enforces the session's byte budget.
 */
import type net from 'node:net';
import { DAEMON_VERSION, REJECT_AUTH, REJECT_ILLEGAL_NAME, REJECT_NOT_UNIQUE } from './constants.js';
import { DAEMON_LIMITS, type Frame, MessageDecoder } from './decoder.js';
import { encodeAccept, encodeAuthList, encodeRejectCode } from './encode.js';
import { type ConnectRequestParsed, parseAuthChoice, parseConnectRequest } from './handshake.js';
import type { Member } from './groups.js';
import { errorMessage } from '../errors.js';

/** What a session needs from its daemon. */
export interface SessionHost {
  readonly daemonName: string;
  readonly authMethods: readonly string[];
  /** Claim a private name; returns the private group, or a reject code. */
  register(s: DaemonSession, name: string): string | number;
  request(s: DaemonSession, f: Frame): void;
  /** The handshake completed. */
  opened(s: DaemonSession): void;
  /** The session ended; `wasOpen` false means during the handshake (its name, if claimed, is released). */
  closed(s: DaemonSession, reason: string, graceful: boolean, wasOpen: boolean): void;
  rejected(s: DaemonSession, code: number, reason: string): void;
  /** Backpressure: the session queued more than its budget. */
  overflow(s: DaemonSession, queued: number): void;
  /**
   * Called before a turn's output leaves for the clients: in-process taps (the
   * log writer) write what they hold first, so a sender that sees its own
   * message come back (--ack) knows it is written.
   */
  flushTaps(): void;
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
  private phase: Phase = 'connect';
  private acc: Buffer = Buffer.alloc(0);
  private request: ConnectRequestParsed | undefined;
  private readonly decoder: MessageDecoder;
  private corked = false;
  private readonly handshakeTimer: NodeJS.Timeout;

  constructor(
    readonly socket: net.Socket,
    private readonly host: SessionHost,
    private readonly budget: number,
    handshakeTimeout: number,
  ) {
    this.remote = socket.remoteAddress ? `${socket.remoteAddress}:${socket.remotePort}` : 'unix';
    this.decoder = new MessageDecoder((f) => this.onFrame(f), DAEMON_LIMITS);
    this.handshakeTimer = setTimeout(() => this.close(`handshake not completed within ${handshakeTimeout} ms`), handshakeTimeout);
    socket.on('data', (b: Buffer) => this.onData(b));
    socket.on('error', (e) => this.close(`socket error: ${errorMessage(e)}`));
    socket.on('close', () => this.close('connection closed by client', true));
  }

  get open(): boolean {
    return this.phase === 'open';
  }

  /** Bytes queued toward this client and not yet taken by the kernel. */
  get queued(): number {
    return this.socket.writableLength;
  }

  /** Queue bytes for the client; flushed as one writev at the end of this turn. */
  deliver(buf: Buffer): void {
    if (this.phase !== 'open') return;
    if (!this.corked) {
      this.corked = true;
      this.socket.cork();
      process.nextTick(() => {
        this.corked = false;
        this.host.flushTaps();
        this.socket.uncork();
      });
    }
    this.socket.write(buf);
    this.messagesOut++;
    if (this.socket.writableLength > this.budget) this.host.overflow(this, this.socket.writableLength);
  }

  pause(): void {
    this.socket.pause();
  }

  resume(): void {
    this.socket.resume();
  }

  /** Drop the session: nothing more is read or sent. */
  close(reason: string, graceful = false): void {
    if (this.phase === 'closed') return;
    const wasOpen = this.phase === 'open';
    this.phase = 'closed';
    clearTimeout(this.handshakeTimer);
    this.socket.destroy();
    this.host.closed(this, reason, graceful, wasOpen);
  }

  /** Handshake refusal: one signed byte, then close (what real daemons do). */
  private reject(code: number, reason: string): void {
    if (this.phase === 'closed') return;
    this.phase = 'closed';
    clearTimeout(this.handshakeTimer);
    this.socket.end(encodeRejectCode(code));
    this.host.rejected(this, code, reason);
    if (this.privateGroup) this.host.closed(this, reason, false, false);
  }

  private onData(b: Buffer): void {
    if (this.phase === 'open') {
      try {
        this.decoder.write(b);
      } catch (e) {
        this.close(errorMessage(e));
      }
      return;
    }
    if (this.phase === 'closed') return;
    this.acc = this.acc.length ? Buffer.concat([this.acc, b]) : b;
    if (this.acc.length > 4096) return this.close('handshake longer than any real one');
    this.handshake();
  }

  private handshake(): void {
    if (this.phase === 'connect') {
      const r = parseConnectRequest(this.acc);
      if (!r) return;
      if (r.kind === 'reject') return this.reject(r.code, r.code === REJECT_ILLEGAL_NAME ? 'illegal private name' : 'library version too old');
      // Real daemons check the name before the auth list, so REJECT_NOT_UNIQUE replaces it.
      const claimed = this.host.register(this, r.name);
      if (typeof claimed === 'number') {
        return this.reject(claimed, claimed === REJECT_NOT_UNIQUE ? `private name "${r.name}" already in use` : 'refused');
      }
      this.privateGroup = claimed;
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
      if (a.kind === 'reject') return this.reject(REJECT_AUTH, 'authentication method refused');
      this.acc = this.acc.subarray(a.consumed);
      this.accept();
    }
  }

  private accept(): void {
    const r = this.request!;
    this.phase = 'open';
    clearTimeout(this.handshakeTimer);
    this.socket.write(encodeAccept(DAEMON_VERSION, this.privateGroup, r.hasPatch));
    this.host.opened(this);
    const rest = this.acc;
    this.acc = Buffer.alloc(0);
    if (rest.length) this.onData(rest);
  }

  private onFrame(f: Frame): void {
    if (this.phase !== 'open') return;
    this.messagesIn++;
    this.host.request(this, f);
  }
}
