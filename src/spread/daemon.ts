/**
 * SpreadDaemon: a minimal one-daemon Spread that speaks the client protocol,
 * so real Spread clients (spuser, spreadlogd, mod_log_spread) and our own
 * client work against it unchanged. One daemon means one total order: every
 * request is handled to completion, in arrival order, on one thread.
 *
 * This is the facade over its parts: the Acceptor (listening, admission),
 * DaemonSession (one connection each), the DaemonRouter (names, groups,
 * taps, routing), the counters (daemon-stats.ts); it turns the sessions'
 * events into DaemonEvents and runs the output turn (taps first, then
 * every client's socket).
 */
import { EventEmitter } from 'node:events';
import type net from 'node:net';
import os from 'node:os';
import { DEFAULT_SPREAD_PORT, MAX_PROC_NAME, UNIX_SOCKET_DIR, isNameByte } from './constants.js';
import { Acceptor, type ListenSpec, type Settle, hostPort } from './daemon-acceptor.js';
import type { DaemonEvent, SessionEvent } from './daemon-events.js';
import type { DaemonFaults } from './daemon-faults.js';
import { DaemonRouter, type Tap } from './daemon-router.js';
import { DaemonSession, type SessionHost } from './daemon-session.js';
import { type DaemonStats, newCounters } from './daemon-stats.js';
import { TlsFront } from './daemon-tls.js';
import { DEFAULT_MAX_TLS_HANDSHAKES, type TlsServerFiles } from './tls.js';
import type tls from 'node:tls';
import type { Cidr } from '../cidr.js';
import { fnv1a } from '../fnv1a.js';
import { OptionError, intOption } from '../options.js';
import { errorMessage } from '../errors.js';

export type { CloseReason, DaemonEvent, RejectCause, SessionEvent } from './daemon-events.js';
export type { DaemonStats } from './daemon-stats.js';
export type { ListenSpec } from './daemon-acceptor.js';
export type { Tap } from './daemon-router.js';
export { DaemonFaults } from './daemon-faults.js';

/** @default 5000 — real daemons allow 1 s, in one read; we buffer and allow more. */
export const DEFAULT_HANDSHAKE_TIMEOUT = 5000;
/** Bytes queued toward one client before it is cut off. @default 64 MiB */
export const DEFAULT_SESSION_BUFFER = 64 * 1024 * 1024;
/** @default 4096 (real Spread: 997) */
export const DEFAULT_MAX_SESSIONS = 4096;
/**
 * TCP connections from one address not yet past the Spread handshake (a
 * client does it in one round trip: only a flood holds many). A farm behind
 * one NAT address that reconnects at once after a restart stays under it.
 * @default 128
 */
export const DEFAULT_MAX_PENDING_PER_ADDRESS = 128;
/** TCP connections from all addresses not yet past the Spread handshake. @default 1024 */
export const DEFAULT_MAX_PENDING = 1024;

export interface DaemonOptions {
  /** Daemon name in private groups (`#user#NAME`). @default the host's short name */
  name?: string;
  /** @default TCP port 4803 on all interfaces, and the unix socket /tmp/4803 */
  listen?: ListenSpec[];
  /** @default 5000 */
  handshakeTimeout?: number;
  /** @default 64 MiB */
  sessionBuffer?: number;
  /** @default 4096 */
  maxSessions?: number;
  /** TCP connections from one address in their handshake, past which new ones are closed unread. @default 128 */
  maxPendingPerAddress?: number;
  /** TCP connections from all addresses in their handshake, past which new ones are closed unread. @default 1024 */
  maxPending?: number;
  /** TCP clients allowed; empty allows everyone. Unix-socket clients are always allowed. */
  allow?: Cidr[];
  /** Certificate and key of the `tls` listen addresses; with `clientCa`, mutual TLS (and host tags bound to certificates). */
  tls?: TlsServerFiles;
  /** TLS handshakes in progress at once; more connections are closed unread. @default 64 */
  maxTlsHandshakes?: number;
  /** Tests only: fault switches (hang, refuse, drop), see DaemonFaults. */
  faults?: DaemonFaults;
}

/** A session buffer below one largest message (144000 + 48 + 100 x 32) would cut off anyone receiving one. */
export const MIN_SESSION_BUFFER = 256 * 1024;

/** Everything filled but the test-only fault policy. */
export type ResolvedDaemonOptions = Required<Omit<DaemonOptions, 'faults' | 'tls'>> & Pick<DaemonOptions, 'faults' | 'tls'>;

/** Defaults filled and checked (OptionError, code INVALID_ARGUMENT). */
export function resolveDaemonOptions(o: DaemonOptions = {}): ResolvedDaemonOptions {
  const name = o.name ?? defaultDaemonName();
  // Daemon names go into every private group name: 1..19 characters '$'..'~' except '#'.
  if (!(name.length >= 1 && name.length < MAX_PROC_NAME && [...name].every((c) => c !== '#' && isNameByte(c.charCodeAt(0))))) {
    throw new OptionError('name', `expected 1 to ${MAX_PROC_NAME - 1} printable ASCII characters without spaces, '!', '"' or '#' (it is part of every private group name), got ${JSON.stringify(name)}`);
  }
  const listen = o.listen ?? [{ port: DEFAULT_SPREAD_PORT }, { path: `${UNIX_SOCKET_DIR}/${DEFAULT_SPREAD_PORT}` }];
  if (listen.length === 0) throw new OptionError('listen', 'at least one address is needed');
  for (const l of listen) if ('port' in l) intOption('listen', l.port, 0, { min: 0, max: 65535 });
  const tlsListen = listen.some((l) => 'port' in l && l.tls);
  if (tlsListen && !o.tls) throw new OptionError('tls', 'a tls:// listen address needs a certificate and a key');
  if (o.tls && !tlsListen) throw new OptionError('tls', 'TLS files given but no tls:// listen address');
  return {
    name,
    listen,
    handshakeTimeout: intOption('handshakeTimeout', o.handshakeTimeout, DEFAULT_HANDSHAKE_TIMEOUT, { min: 1, unit: 'milliseconds' }),
    sessionBuffer: intOption('sessionBuffer', o.sessionBuffer, DEFAULT_SESSION_BUFFER, { min: MIN_SESSION_BUFFER, unit: 'bytes' }),
    maxSessions: intOption('maxSessions', o.maxSessions, DEFAULT_MAX_SESSIONS, { min: 1, unit: 'sessions' }),
    ...pendingCaps(o),
    allow: o.allow ?? [],
    tls: o.tls,
    maxTlsHandshakes: intOption('maxTlsHandshakes', o.maxTlsHandshakes, DEFAULT_MAX_TLS_HANDSHAKES, { min: 1, unit: 'handshakes' }),
    faults: o.faults,
  };
}

function pendingCaps(o: DaemonOptions): { maxPending: number; maxPendingPerAddress: number } {
  const maxPending = intOption('maxPending', o.maxPending, DEFAULT_MAX_PENDING, { min: 1, unit: 'connections' });
  // A per-address cap over the total would never be reached: a mistake, said as one.
  const perAddressDefault = Math.min(DEFAULT_MAX_PENDING_PER_ADDRESS, maxPending);
  const maxPendingPerAddress = intOption('maxPendingPerAddress', o.maxPendingPerAddress, perAddressDefault, { min: 1, max: maxPending, unit: 'connections' });
  return { maxPending, maxPendingPerAddress };
}

export function defaultDaemonName(): string {
  const short = os.hostname().split('.')[0] ?? 'localhost';
  const clean = [...short].filter((c) => isNameByte(c.charCodeAt(0))).join('').slice(0, MAX_PROC_NAME - 1);
  return clean || 'localhost';
}

export class SpreadDaemon extends EventEmitter implements SessionHost {
  readonly daemonName: string;
  readonly authMethods = ['NULL'] as const;
  private readonly acceptor: Acceptor;
  private readonly router: DaemonRouter<DaemonSession>;
  /** Every connection, in the handshake or past it. */
  private readonly all = new Set<DaemonSession>();
  /** Connections in their handshake, with what ends their count as pending (the acceptor's caps). */
  private readonly unsettled = new Map<DaemonSession, Settle>();
  private readonly counters = newCounters();
  private readonly tapFlushers: Array<() => void> = [];
  private readonly sessionBuffer: number;
  private readonly handshakeTimeout: number;
  private readonly faults: DaemonFaults | undefined;
  private readonly detachFaults: () => void;
  private dirty: DaemonSession[] = [];
  /** The TLS ports' handshakes and certificates, when there are TLS ports. */
  private readonly tlsFront: TlsFront | undefined;
  private flushScheduled = false;

  private constructor(opts: ResolvedDaemonOptions) {
    super();
    this.daemonName = opts.name;
    this.sessionBuffer = opts.sessionBuffer;
    this.handshakeTimeout = opts.handshakeTimeout;
    const seconds = Math.floor(Date.now() / 1000);
    this.router = new DaemonRouter(this.daemonName, [fnv1a(Buffer.from(this.daemonName, 'latin1')) | 0, seconds], this.counters);
    this.faults = opts.faults;
    // Reads the files: a bad one throws SP_ERR_TLS_FILE before anything listens.
    this.tlsFront =
      opts.tls &&
      new TlsFront(opts.tls, opts.maxTlsHandshakes, this.handshakeTimeout, {
        secure: (t, names, settle) => this.accepted(t, settle, names),
        refused: (remote, reason, cause) => this.report({ type: 'reject', remote, code: 0, reason, cause }),
      });
    this.acceptor = new Acceptor(
      { allow: opts.allow, maxSessions: opts.maxSessions, lingerMs: this.handshakeTimeout, maxPending: opts.maxPending, maxPendingPerAddress: opts.maxPendingPerAddress },
      {
        connections: () => this.all.size,
        faultRefusal: () => this.faults?.refuseHandshake ?? false,
        accepted: (sock, _local, settle) => this.accepted(sock, settle),
        acceptedTls: (sock, settle) => this.tlsFront!.take(sock, settle),
        event: (e) => this.report(e),
      },
    );
    this.detachFaults =
      this.faults?.attach({
        setPaused: (on) => {
          for (const s of this.all) (on ? s.pause() : s.resume());
        },
        dropAll: () => {
          for (const s of [...this.all]) s.close({ text: 'dropped by fault switch', cause: 'fault' });
        },
      }) ?? (() => {});
  }

  /** Throws SP_ERR_TLS_FILE for TLS files that cannot be used, SP_ERR_LISTEN for an address that cannot be bound. */
  static async start(options: DaemonOptions = {}): Promise<SpreadDaemon> {
    const opts = resolveDaemonOptions(options);
    const d = new SpreadDaemon(opts);
    const listen = opts.listen;
    try {
      for (const spec of listen) await d.listenOn(spec);
    } catch (e) {
      await d.close();
      throw e;
    }
    return d;
  }

  /** Bound TCP addresses, e.g. for tests that listen on port 0. */
  get tcp(): ReadonlyArray<{ host: string; port: number }> {
    return this.acceptor.tcp;
  }

  get unixPaths(): readonly string[] {
    return this.acceptor.unixPaths;
  }

  /** Every bound address: `HOST:PORT` ([v6]:PORT) for TCP, the path for unix sockets. */
  get addresses(): string[] {
    return [...this.tcp.map(hostPort), ...this.unixPaths];
  }

  /** SessionHost: a hung daemon (test fault) times no handshake out. */
  get hanging(): boolean {
    return this.faults?.hang ?? false;
  }

  /** Listen on one more address (e.g. /tmp/PORT once port 0 is bound). */
  listenOn(spec: ListenSpec): Promise<void> {
    return this.acceptor.listen(spec);
  }

  /** Bound TCP addresses that speak TLS. */
  get tlsAddresses(): ReadonlyArray<{ host: string; port: number }> {
    return this.acceptor.tcp.filter((a) => this.acceptor.tlsPorts.has(a.port));
  }

  /**
   * Read the TLS files again (SIGHUP: renewed certificates, no restart);
   * new connections use them. False when they cannot be used: the old ones
   * stay. Reported as a 'tls-reload' event either way.
   */
  reloadTls(): boolean {
    const front = this.tlsFront;
    if (!front) return false;
    const files = [front.files.cert, front.files.key, front.files.clientCa].filter(Boolean).join(', ');
    try {
      front.reload();
      this.report({ type: 'tls-reload', files });
      return true;
    } catch (e) {
      this.report({ type: 'tls-reload', files, error: errorMessage(e) });
      return false;
    }
  }

  /** `names`: mutual TLS, the client certificate's (its only host tags). */
  private accepted(sock: net.Socket | tls.TLSSocket, settle: Settle, names?: string[]): void {
    const s = new DaemonSession(sock, this, this.router, this.sessionBuffer, this.handshakeTimeout, names);
    this.all.add(s);
    this.unsettled.set(s, settle);
    if (this.hanging) s.pause();
  }

  /** Every event goes out here; the counters of refusals, cut-offs and protocol errors count them. */
  private report(e: DaemonEvent): void {
    if (e.type === 'reject') {
      this.counters.rejected++;
      if (e.cause === 'pending-per-address') this.counters.pendingRefusedPerAddress++;
      else if (e.cause === 'pending-total') this.counters.pendingRefusedTotal++;
    }
    else if (e.type === 'slow-session') this.counters.slowKilled++;
    else if (e.type === 'protocol-error') this.counters.protocolErrors++;
    else if (e.type === 'forged-tag') this.counters.forgedTags++;
    this.emit('event', e);
  }

  /** SessionHost: a session's open, overflow and close. */
  event(s: DaemonSession, e: SessionEvent): void {
    if (e.type !== 'overflow') {
      this.unsettled.get(s)?.();
      this.unsettled.delete(s);
    }
    if (e.type === 'open') {
      const v = s.libraryVersion;
      this.report({ type: 'connect', session: s.privateGroup, remote: s.remote, library: `${v[0]}.${v[1]}.${v[2]}`, membership: s.membership });
    } else if (e.type === 'forged') {
      this.report({ type: 'forged-tag', session: s.privateGroup, tag: e.tag, names: s.identity ?? [] });
    } else if (e.type === 'overflow') {
      this.report({ type: 'slow-session', session: s.privateGroup, queued: e.queued });
      // Closed once the flush in progress is done: the others' output of this turn goes first.
      queueMicrotask(() => s.close(`cut off: ${e.queued} bytes queued, over the ${this.sessionBuffer}-byte session buffer`));
    } else {
      const r = e.reason;
      const wasOpen = r.phase === 'open';
      if (r.protocolError !== undefined) this.report({ type: 'protocol-error', session: s.privateGroup, reason: r.protocolError });
      this.all.delete(s);
      this.router.release(s, wasOpen);
      // Every session that ends in its handshake is reported once: refusals, timeouts, garbage, a client that hung up.
      if (!wasOpen) this.report({ type: 'reject', remote: s.remote, code: r.rejectCode ?? 0, reason: r.text, cause: r.cause });
      else this.report({ type: 'disconnect', session: s.privateGroup, reason: r.text, graceful: r.graceful });
    }
  }

  /** SessionHost: refused sockets with their reject byte to send. */
  linger(sock: net.Socket): void {
    this.acceptor.linger(sock);
  }

  /** SessionHost: `s` has output this turn. */
  pending(s: DaemonSession): void {
    this.dirty.push(s);
    if (this.flushScheduled) return;
    this.flushScheduled = true;
    // After every socket that was readable this turn has been read: the most coalescing.
    setImmediate(() => this.flushOutput());
  }

  private flushOutput(): void {
    this.flushScheduled = false;
    // Buffering taps (the log writer) write before any client sees the turn's output:
    // an --ack publisher's own copy coming back then means "written".
    this.flushTaps();
    const list = this.dirty;
    this.dirty = [];
    for (const s of list) s.flushOut();
  }

  /** Subscribe in-process to data messages sent to `group` (the log writer). */
  tap(group: string, fn: Tap): () => void {
    return this.router.tap(group, fn);
  }

  /** Run `fn` before any output of a turn is handed to the clients' sockets (see flushOutput). */
  onFlushTaps(fn: () => void): void {
    this.tapFlushers.push(fn);
  }

  flushTaps(): void {
    for (const fn of this.tapFlushers) fn();
  }

  getStats(): DaemonStats {
    return { sessions: this.router.size, connections: this.all.size, pending: this.acceptor.pending, groups: this.router.groups(), tlsHandshaking: this.tlsFront?.handshaking ?? 0, ...this.counters };
  }

  /** Session names with their queued bytes, for SIGUSR1. */
  sessionList(): Array<{ name: string; remote: string; groups: string[]; queued: number; in: number; out: number }> {
    return [...this.router.sessions()].map((s) => ({ name: s.privateGroup, remote: s.remote, groups: [...s.groups], queued: s.queued, in: s.messagesIn, out: s.messagesOut }));
  }

  /** Stop listening, cut all sessions, remove our unix sockets. */
  async close(): Promise<void> {
    this.detachFaults();
    await this.acceptor.close(() => {
      for (const s of [...this.all]) s.close('daemon shutting down');
      this.tlsFront?.closeAll();
    });
  }
}
