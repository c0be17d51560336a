/**
 * SpreadDaemon: a minimal one-daemon Spread that speaks the client protocol,
 * so real Spread clients (spuser, spreadlogd, mod_log_spread) and our own
 * client work against it unchanged. One daemon means one total order: every
 * request is handled to completion, in arrival order, on one thread.
 */
import { EventEmitter } from 'node:events';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import {
  DEFAULT_SPREAD_PORT,
  JOIN_MESS,
  KILL_MESS,
  LEAVE_MESS,
  MAX_PROC_NAME,
  REGULAR_MESS,
  REJECT_AUTH,
  REJECT_NOT_UNIQUE,
  REJECT_QUOTA,
  SELF_DISCARD,
  UNIX_SOCKET_DIR,
  isNameByte,
} from './constants.js';
import type { Frame } from './decoder.js';
import { encodeRejectCode } from './encode.js';
import { GroupTable, type Member } from './groups.js';
import { DaemonSession, type SessionHost } from './daemon-session.js';
import { checkRequest, plainFrame, toLittleEndianHeader } from './daemon-rules.js';
import { type Cidr, cidrMatch } from '../cidr.js';
import { ErrorCodes, SpreadPipeError } from '../errors.js';
import { OptionError, intOption } from '../options.js';

/** @default 5000 — real daemons allow 1 s, in one read; we buffer and allow more. */
export const DEFAULT_HANDSHAKE_TIMEOUT = 5000;
/** Bytes queued toward one client before it is cut off. @default 64 MiB */
export const DEFAULT_SESSION_BUFFER = 64 * 1024 * 1024;
/** @default 4096 (real Spread: 997) */
export const DEFAULT_MAX_SESSIONS = 4096;

export type ListenSpec = { host?: string; port: number } | { path: string };

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
  /** TCP clients allowed; empty allows everyone. Unix-socket clients are always allowed. */
  allow?: Cidr[];
}

/** A session buffer below one largest message (144000 + 48 + 100 x 32) would cut off anyone receiving one. */
export const MIN_SESSION_BUFFER = 256 * 1024;

export type ResolvedDaemonOptions = Required<DaemonOptions>;

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
  return {
    name,
    listen,
    handshakeTimeout: intOption('handshakeTimeout', o.handshakeTimeout, DEFAULT_HANDSHAKE_TIMEOUT, { min: 1, unit: 'milliseconds' }),
    sessionBuffer: intOption('sessionBuffer', o.sessionBuffer, DEFAULT_SESSION_BUFFER, { min: MIN_SESSION_BUFFER, unit: 'bytes' }),
    maxSessions: intOption('maxSessions', o.maxSessions, DEFAULT_MAX_SESSIONS, { min: 1, unit: 'sessions' }),
    allow: o.allow ?? [],
  };
}

/** Status events for the operator; the CLI prints them, tests assert on them. */
export type DaemonEvent =
  | { type: 'listening'; address: string }
  | { type: 'connect'; session: string; remote: string; library: string; membership: boolean }
  /** Refused or dropped before the handshake completed; code 0 when no reject byte was sent. */
  | { type: 'reject'; remote: string; code: number; reason: string; cause: RejectCause }
  | { type: 'disconnect'; session: string; reason: string; graceful: boolean }
  | { type: 'slow-session'; session: string; queued: number }
  | { type: 'protocol-error'; session: string; reason: string }
  /** Trouble that is not one session's: e.g. accept() failing for lack of descriptors. */
  | { type: 'error'; reason: string };

/**
 * Why a connection ended before its handshake completed, as a stable key
 * (reports count them by it): refused before anything was read (`not-allowed`
 * by --allow, `quota`, `fault`), refused by the handshake (`version`,
 * `illegal-name`, `name-in-use`, `auth`), or dropped in it
 * (`handshake-timeout`, `not-spread`: bytes no Spread client sends,
 * `hung-up`, `socket-error`, `dropped`: the daemon closing).
 */
export type RejectCause =
  | 'not-allowed'
  | 'quota'
  | 'fault'
  | 'version'
  | 'illegal-name'
  | 'name-in-use'
  | 'auth'
  | 'handshake-timeout'
  | 'not-spread'
  | 'hung-up'
  | 'socket-error'
  | 'dropped';

export interface DaemonStats {
  /** Sessions past the handshake. */
  sessions: number;
  /** Connections, in the handshake or past it. */
  connections: number;
  groups: Array<[string, number]>;
  messagesIn: number;
  deliveries: number;
  bytesIn: number;
  rejected: number;
  slowKilled: number;
  protocolErrors: number;
}

/**
 * Fault switches for other tests (pipe-mode reconnect / failover):
 * - `hang`: accept connections but read nothing and answer nothing, like a
 *   SIGSTOPped daemon; existing sessions stop being read too, so clients'
 *   writes back up. Handshakes do not time out meanwhile. Setting it false
 *   resumes every session.
 * - `refuseHandshake`: a reject code (e.g. REJECT_QUOTA, -3) sent to every new
 *   connection before anything is read; false (the default) to serve normally.
 * See also `dropAllSessions()`.
 */
export interface DaemonFaults {
  hang: boolean;
  refuseHandshake: false | number;
}

/** A subscriber inside the daemon process (the log writer): sees data messages to its group. */
export type Tap = (frame: Frame) => void;

export function defaultDaemonName(): string {
  const short = os.hostname().split('.')[0] ?? 'localhost';
  const clean = [...short].filter((c) => isNameByte(c.charCodeAt(0))).join('').slice(0, MAX_PROC_NAME - 1);
  return clean || 'localhost';
}

export class SpreadDaemon extends EventEmitter implements SessionHost {
  readonly daemonName: string;
  readonly authMethods = ['NULL'] as const;
  /** Bound TCP addresses and unix paths, e.g. for tests that listen on port 0. */
  readonly tcp: Array<{ host: string; port: number }> = [];
  readonly unixPaths: string[] = [];
  /** See DaemonFaults. */
  readonly faults: DaemonFaults;
  private readonly servers: net.Server[] = [];
  private readonly sessions = new Map<string, DaemonSession>();
  private readonly all = new Set<DaemonSession>();
  /** Sockets left with only a reject byte to send. */
  private readonly lingering = new Set<net.Socket>();
  private readonly unixInodes = new Map<string, number>();
  private readonly table: GroupTable;
  private readonly taps = new Map<string, Tap[]>();
  private readonly tapFlushers: Array<() => void> = [];
  private readonly opts: Required<Omit<DaemonOptions, 'name' | 'listen'>>;
  private readonly stats = { messagesIn: 0, deliveries: 0, bytesIn: 0, rejected: 0, slowKilled: 0, protocolErrors: 0 };
  private dirty: DaemonSession[] = [];
  private flushScheduled = false;
  private seq = 0;
  private nameSeq = 0;

  private constructor(opts: DaemonOptions) {
    super();
    this.daemonName = opts.name ?? defaultDaemonName();
    this.opts = {
      handshakeTimeout: opts.handshakeTimeout ?? DEFAULT_HANDSHAKE_TIMEOUT,
      sessionBuffer: opts.sessionBuffer ?? DEFAULT_SESSION_BUFFER,
      maxSessions: opts.maxSessions ?? DEFAULT_MAX_SESSIONS,
      allow: opts.allow ?? [],
    };
    const seconds = Math.floor(Date.now() / 1000);
    this.table = new GroupTable([hash32(this.daemonName), seconds]);
    let hang = false;
    const setHang = (on: boolean): void => {
      hang = on;
      for (const s of this.all) (on ? s.pause() : s.resume());
    };
    this.faults = {
      get hang() {
        return hang;
      },
      set hang(on: boolean) {
        setHang(on);
      },
      refuseHandshake: false,
    };
  }

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

  /** Every bound address: `HOST:PORT` ([v6]:PORT) for TCP, the path for unix sockets. */
  get addresses(): string[] {
    return [...this.tcp.map(hostPort), ...this.unixPaths];
  }

  get hanging(): boolean {
    return this.faults.hang;
  }

  /** Listen on one more address (e.g. /tmp/PORT once port 0 is bound). */
  async listenOn(spec: ListenSpec): Promise<void> {
    const server = net.createServer({ noDelay: true }, (sock) => this.onConnection(sock, 'path' in spec));
    const bind = (target: net.ListenOptions): Promise<void> =>
      new Promise<void>((resolve, reject) => {
        server.once('error', (e) => reject(new SpreadPipeError(ErrorCodes.LISTEN, `cannot listen on ${'path' in spec ? spec.path : `${spec.host ?? '*'}:${spec.port}`}: ${e.message}`, { cause: e })));
        server.listen(target, resolve);
      });
    if ('path' in spec) {
      await claimUnixPath(spec.path);
      await bind({ path: spec.path });
      this.servers.push(server);
      fs.chmodSync(spec.path, 0o666); // as real Spread: any local user may connect
      this.unixInodes.set(spec.path, fs.lstatSync(spec.path).ino);
      this.unixPaths.push(spec.path);
    } else {
      await bind({ host: spec.host, port: spec.port });
      this.servers.push(server);
      const a = server.address() as net.AddressInfo;
      this.tcp.push({ host: a.address, port: a.port });
    }
    const at = 'path' in spec ? spec.path : hostPort(this.tcp.at(-1)!);
    // Once listening, errors (EMFILE on accept) are reported, and the daemon goes on.
    server.on('error', (e) => this.emit('event', { type: 'error', reason: `${at}: ${e.message}` } satisfies DaemonEvent));
    this.emit('event', { type: 'listening', address: at } satisfies DaemonEvent);
  }

  private onConnection(sock: net.Socket, local: boolean): void {
    const remote = local ? 'unix' : `${sock.remoteAddress}:${sock.remotePort}`;
    let refuse: [number, string, RejectCause] | undefined;
    if (!local && this.opts.allow.length && !this.opts.allow.some((c) => cidrMatch(c, sock.remoteAddress ?? ''))) refuse = [REJECT_AUTH, 'address not allowed (--allow)', 'not-allowed'];
    else if (this.all.size >= this.opts.maxSessions) refuse = [REJECT_QUOTA, `${this.all.size} sessions already`, 'quota'];
    else if (this.faults.refuseHandshake !== false) refuse = [this.faults.refuseHandshake, 'refused by fault switch', 'fault'];
    if (refuse) {
      // Before anything is read, as real daemons refuse over quota.
      this.stats.rejected++;
      this.emit('event', { type: 'reject', remote, code: refuse[0], reason: refuse[1], cause: refuse[2] } satisfies DaemonEvent);
      sock.on('error', () => {});
      sock.end(encodeRejectCode(refuse[0]));
      this.linger(sock);
      return;
    }
    sock.setKeepAlive(true, 30_000);
    const s = new DaemonSession(sock, this, this.opts.sessionBuffer, this.opts.handshakeTimeout);
    this.all.add(s);
    if (this.faults.hang) s.pause();
  }

  linger(sock: net.Socket): void {
    this.lingering.add(sock);
    sock.on('close', () => this.lingering.delete(sock));
    sock.on('error', () => {});
    // A client that never closes its side must not hold the descriptor.
    sock.setTimeout(this.opts.handshakeTimeout, () => sock.destroy());
  }

  register(s: DaemonSession, name: string): string | number {
    let n = name;
    if (n === '') {
      // Real daemons invent r<random>-<fd>; we have no fd, so a counter.
      do n = `r${Math.floor(Math.random() * 9999)}-${(this.nameSeq = (this.nameSeq + 1) % 1000)}`;
      while (this.sessions.has(`#${n}#${this.daemonName}`));
    }
    const pg = `#${n}#${this.daemonName}`;
    if (this.sessions.has(pg)) return REJECT_NOT_UNIQUE;
    this.sessions.set(pg, s);
    return pg;
  }

  opened(s: DaemonSession): void {
    const v = s.libraryVersion;
    this.emit('event', { type: 'connect', session: s.privateGroup, remote: s.remote, library: `${v[0]}.${v[1]}.${v[2]}`, membership: s.membership } satisfies DaemonEvent);
  }

  rejected(s: DaemonSession, code: number, reason: string, cause: RejectCause): void {
    this.stats.rejected++;
    this.emit('event', { type: 'reject', remote: s.remote, code, reason, cause } satisfies DaemonEvent);
  }

  closed(s: DaemonSession, reason: string, graceful: boolean, wasOpen: boolean, rejected: boolean, cause: RejectCause): void {
    this.all.delete(s);
    if (s.privateGroup && this.sessions.get(s.privateGroup) === s) this.sessions.delete(s.privateGroup);
    if (!wasOpen) {
      // Every session that ends in its handshake is reported once: timeouts, garbage, a client that hung up.
      if (!rejected) {
        this.stats.rejected++;
        this.emit('event', { type: 'reject', remote: s.remote, code: 0, reason, cause } satisfies DaemonEvent);
      }
      return;
    }
    this.table.disconnect(s);
    this.emit('event', { type: 'disconnect', session: s.privateGroup, reason, graceful } satisfies DaemonEvent);
  }

  overflow(s: DaemonSession, queued: number): void {
    this.stats.slowKilled++;
    this.emit('event', { type: 'slow-session', session: s.privateGroup, queued } satisfies DaemonEvent);
    // Closed once the flush in progress is done: the others' output of this turn goes first.
    queueMicrotask(() => s.close(`cut off: ${queued} bytes queued, over the ${this.opts.sessionBuffer}-byte session buffer`));
  }

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

  /** Handle one framed request from an open session (PROTOCOL.md 6 and 9). */
  request(s: DaemonSession, f: Frame): void {
    const why = checkRequest(s.privateGroup, f);
    if (why) return this.refused(s, why);
    this.stats.messagesIn++;
    this.stats.bytesIn += f.raw.length;
    const t = f.type;
    if (t & REGULAR_MESS) this.multicast(s, f);
    else if (t & JOIN_MESS) this.table.join(s, f.groups[0]!);
    else if (t & LEAVE_MESS) this.table.leave(s, f.groups[0]!);
    else if (t & KILL_MESS) s.close('disconnect requested', true);
  }

  refused(s: DaemonSession, reason: string): void {
    this.stats.protocolErrors++;
    this.emit('event', { type: 'protocol-error', session: s.privateGroup, reason } satisfies DaemonEvent);
    s.close(`bad request: ${reason}`);
  }

  /** The hot path (SessionHost.forward): a checked plain multicast, forwarded as it came. */
  forward(s: DaemonSession, buf: Buffer, off: number, end: number, groups: readonly string[]): void {
    this.stats.messagesIn++;
    this.stats.bytesIn += end - off;
    // Taps (the log writer) take a Frame: made only for a group that has one.
    let f: Frame | undefined;
    if (this.taps.size) for (const g of groups) if (this.taps.get(g)?.length) f ??= plainFrame(buf, off, end, s.privateGroup, groups);
    this.route(s, buf, off, end, buf.readUInt32LE(off), groups, f);
  }

  private multicast(s: DaemonSession, f: Frame): void {
    const out = f.bigEndianHeader ? toLittleEndianHeader(f.raw) : f.raw;
    this.route(s, out, 0, out.length, f.type, f.groups, f);
  }

  /** Deliver `buf[off, end)` to the destinations' members once each (and to taps, given the Frame). */
  private route(s: DaemonSession, buf: Buffer, off: number, end: number, type: number, groups: readonly string[], f: Frame | undefined): void {
    const skip = type & SELF_DISCARD ? s : undefined;
    // Each session is stamped with the message's number, so that one listed in several
    // destinations gets one copy, without a per-message set.
    const mark = ++this.seq;
    for (let i = 0; i < groups.length; i++) {
      const g = groups[i]!;
      if (i > 0 && groups.indexOf(g) < i) continue; // listed twice: taps too see it once
      if (g.charCodeAt(0) === 0x23 /* # */) {
        const target = this.sessions.get(g);
        if (target && target.open) this.send(target, buf, off, end, mark, skip);
        continue;
      }
      const members = this.table.members(g);
      if (members) for (let j = 0; j < members.length; j++) this.send(members[j] as DaemonSession, buf, off, end, mark, skip);
      const taps = f && this.taps.get(g);
      if (taps) for (const tap of taps) tap(f);
    }
  }

  private send(m: DaemonSession, buf: Buffer, off: number, end: number, mark: number, skip: Member | undefined): void {
    if (m.mark === mark) return;
    m.mark = mark;
    if (m === skip) return;
    m.deliverRange(buf, off, end);
    this.stats.deliveries++;
  }

  /** Subscribe in-process to data messages sent to `group` (the log writer). */
  tap(group: string, fn: Tap): () => void {
    const list = this.taps.get(group) ?? [];
    list.push(fn);
    this.taps.set(group, list);
    return () => this.taps.set(group, (this.taps.get(group) ?? []).filter((x) => x !== fn));
  }

  /** Run `fn` before any output of a turn is handed to the clients' sockets (see flushOutput). */
  onFlushTaps(fn: () => void): void {
    this.tapFlushers.push(fn);
  }

  flushTaps(): void {
    for (const fn of this.tapFlushers) fn();
  }

  /** Same as `faults.hang = on`. */
  setHang(on: boolean): void {
    this.faults.hang = on;
  }

  /** Cut every session at once, as a daemon crash would (tests). */
  dropAllSessions(): void {
    for (const s of [...this.all]) s.close('dropped by fault switch', false, 'fault');
  }

  getStats(): DaemonStats {
    return { sessions: this.sessions.size, connections: this.all.size, groups: this.table.summary(), ...this.stats };
  }

  /** Session names with their queued bytes, for SIGUSR1. */
  sessionList(): Array<{ name: string; remote: string; groups: string[]; queued: number; in: number; out: number }> {
    return [...this.sessions.values()].map((s) => ({ name: s.privateGroup, remote: s.remote, groups: [...s.groups], queued: s.queued, in: s.messagesIn, out: s.messagesOut }));
  }

  /** Stop listening, cut all sessions, remove our unix sockets. */
  async close(): Promise<void> {
    const closing = this.servers.map((srv) => new Promise<void>((r) => srv.close(() => r())));
    // server.close() waits for open connections: cut the sessions first.
    for (const s of [...this.all]) s.close('daemon shutting down');
    for (const sock of this.lingering) sock.destroy();
    await Promise.all(closing);
    for (const [p, ino] of this.unixInodes) {
      // Only if it is still ours: a successor may already have claimed the path.
      try {
        if (fs.lstatSync(p).ino === ino) fs.rmSync(p, { force: true });
      } catch {
        // Already gone.
      }
    }
    this.unixInodes.clear();
  }
}

/**
 * A socket file left by a dead daemon is removed (as real Spread does), but
 * not one a live daemon still answers on, and never a file that is not a socket.
 */
async function claimUnixPath(path: string): Promise<void> {
  let st: fs.Stats;
  try {
    st = fs.lstatSync(path);
  } catch {
    return;
  }
  if (!st.isSocket()) throw new SpreadPipeError(ErrorCodes.LISTEN, `cannot listen on ${path}: exists and is not a socket`);
  const live = await new Promise<boolean>((resolve) => {
    const c = net.connect({ path });
    c.once('connect', () => {
      c.destroy();
      resolve(true);
    });
    c.once('error', () => resolve(false));
  });
  if (live) throw new SpreadPipeError(ErrorCodes.LISTEN, `cannot listen on ${path}: another daemon is serving it`);
  fs.rmSync(path, { force: true });
}

function hostPort(a: { host: string; port: number }): string {
  return a.host.includes(':') ? `[${a.host}]:${a.port}` : `${a.host}:${a.port}`;
}

function hash32(s: string): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < s.length; i++) h = Math.imul(h ^ s.charCodeAt(i), 0x01000193);
  return h | 0;
}
