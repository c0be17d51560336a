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
  ENDIAN_MARKER,
  HEADER_SIZE,
  JOIN_MESS,
  KILL_MESS,
  LEAVE_MESS,
  MAX_GROUP_NAME,
  MAX_MESSAGE_BODY_LEN,
  MAX_PROC_NAME,
  REGULAR_MESS,
  REJECT_NOT_UNIQUE,
  REJECT_QUOTA,
  SELF_DISCARD,
  UNIX_SOCKET_DIR,
  isNameByte,
  rejectCodeName,
} from './constants.js';
import type { Frame } from './decoder.js';
import { encodeRejectCode } from './encode.js';
import { GroupTable } from './groups.js';
import { DaemonSession, type SessionHost } from './daemon-session.js';
import { type Cidr, cidrMatch } from '../cidr.js';
import { validateGroupName } from './address.js';

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

/** Status events for the operator; the CLI prints them, tests assert on them. */
export type DaemonEvent =
  | { type: 'listening'; address: string }
  | { type: 'connect'; session: string; remote: string; library: string; membership: boolean }
  | { type: 'reject'; remote: string; code: number; reason: string }
  | { type: 'disconnect'; session: string; reason: string; graceful: boolean }
  | { type: 'slow-session'; session: string; queued: number }
  | { type: 'protocol-error'; session: string; reason: string };

export interface DaemonStats {
  sessions: number;
  groups: Array<[string, number]>;
  messagesIn: number;
  deliveries: number;
  bytesIn: number;
  rejected: number;
  slowKilled: number;
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
  /**
   * Fault switches for tests. `hang`: accept connections but read nothing and
   * answer nothing, like a stopped process (existing sessions stop being read too).
   */
  readonly faults = { hang: false };
  private readonly servers: net.Server[] = [];
  private readonly sessions = new Map<string, DaemonSession>();
  private readonly all = new Set<DaemonSession>();
  private readonly table: GroupTable;
  private readonly taps = new Map<string, Tap[]>();
  private readonly tapFlushers: Array<() => void> = [];
  private readonly opts: Required<Omit<DaemonOptions, 'name' | 'listen'>>;
  private readonly stats = { messagesIn: 0, deliveries: 0, bytesIn: 0, rejected: 0, slowKilled: 0 };

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
  }

  static async start(opts: DaemonOptions = {}): Promise<SpreadDaemon> {
    const d = new SpreadDaemon(opts);
    const listen = opts.listen ?? [{ port: DEFAULT_SPREAD_PORT }, { path: `${UNIX_SOCKET_DIR}/${DEFAULT_SPREAD_PORT}` }];
    try {
      for (const spec of listen) await d.listen(spec);
    } catch (e) {
      await d.close();
      throw e;
    }
    return d;
  }

  private async listen(spec: ListenSpec): Promise<void> {
    const server = net.createServer({ noDelay: true }, (sock) => this.onConnection(sock, 'path' in spec));
    this.servers.push(server);
    if ('path' in spec) {
      removeStaleSocket(spec.path);
      await new Promise<void>((resolve, reject) => server.once('error', reject).listen(spec.path, resolve));
      fs.chmodSync(spec.path, 0o666); // as real Spread: any local user may connect
      this.unixPaths.push(spec.path);
      this.emit('event', { type: 'listening', address: spec.path } satisfies DaemonEvent);
    } else {
      await new Promise<void>((resolve, reject) => server.once('error', reject).listen({ host: spec.host, port: spec.port }, resolve));
      const a = server.address() as net.AddressInfo;
      this.tcp.push({ host: a.address, port: a.port });
      this.emit('event', { type: 'listening', address: a.family === 'IPv6' ? `[${a.address}]:${a.port}` : `${a.address}:${a.port}` } satisfies DaemonEvent);
    }
  }

  private onConnection(sock: net.Socket, local: boolean): void {
    const remote = local ? 'unix' : `${sock.remoteAddress}:${sock.remotePort}`;
    if (!local && this.opts.allow.length && !this.opts.allow.some((c) => cidrMatch(c, sock.remoteAddress ?? ''))) {
      this.stats.rejected++;
      this.emit('event', { type: 'reject', remote, code: -9, reason: 'address not allowed (--allow)' } satisfies DaemonEvent);
      this.rejectSocket(sock, -9);
      return;
    }
    if (this.all.size >= this.opts.maxSessions) {
      this.stats.rejected++;
      this.emit('event', { type: 'reject', remote, code: REJECT_QUOTA, reason: `${this.all.size} sessions already` } satisfies DaemonEvent);
      this.rejectSocket(sock, REJECT_QUOTA);
      return;
    }
    sock.setKeepAlive(true, 30_000);
    const s = new DaemonSession(sock, this, this.opts.sessionBuffer, this.opts.handshakeTimeout);
    this.all.add(s);
    if (this.faults.hang) s.pause();
  }

  /** Refused before any session exists: one reject byte; tracked so close() can cut it. */
  private rejectSocket(sock: net.Socket, code: number): void {
    this.handshakes.add(sock);
    sock.on('close', () => this.handshakes.delete(sock));
    sock.on('error', () => {});
    sock.end(encodeRejectCode(code));
    sock.setTimeout(this.opts.handshakeTimeout, () => sock.destroy());
  }
  private readonly handshakes = new Set<net.Socket>();

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
  private nameSeq = 0;

  opened(s: DaemonSession): void {
    const v = s.libraryVersion;
    this.emit('event', { type: 'connect', session: s.privateGroup, remote: s.remote, library: `${v[0]}.${v[1]}.${v[2]}`, membership: s.membership } satisfies DaemonEvent);
  }

  rejected(s: DaemonSession, code: number, reason: string): void {
    this.stats.rejected++;
    this.emit('event', { type: 'reject', remote: s.remote, code, reason: code ? `${rejectCodeName(code)}: ${reason}` : reason } satisfies DaemonEvent);
  }

  closed(s: DaemonSession, reason: string, graceful: boolean, wasOpen: boolean): void {
    this.all.delete(s);
    if (s.privateGroup && this.sessions.get(s.privateGroup) === s) this.sessions.delete(s.privateGroup);
    if (!wasOpen) {
      if (!graceful && s.privateGroup === '') this.emit('event', { type: 'reject', remote: s.remote, code: 0, reason } satisfies DaemonEvent);
      return;
    }
    this.table.disconnect(s);
    this.emit('event', { type: 'disconnect', session: s.privateGroup, reason, graceful } satisfies DaemonEvent);
  }

  overflow(s: DaemonSession, queued: number): void {
    this.stats.slowKilled++;
    this.emit('event', { type: 'slow-session', session: s.privateGroup, queued } satisfies DaemonEvent);
    s.close(`cut off: ${queued} bytes queued, over the ${this.opts.sessionBuffer}-byte session buffer`);
  }

  /** Handle one framed request from an open session (PROTOCOL.md 6 and 9). */
  request(s: DaemonSession, f: Frame): void {
    const why = checkRequest(s, f);
    if (why) {
      this.emit('event', { type: 'protocol-error', session: s.privateGroup, reason: why } satisfies DaemonEvent);
      s.close(`bad request: ${why}`);
      return;
    }
    this.stats.messagesIn++;
    this.stats.bytesIn += f.raw.length;
    const t = f.type;
    if (t & REGULAR_MESS) return this.multicast(s, f);
    if (t & JOIN_MESS) {
      const g = f.groups[0]!;
      if (!validGroup(g)) return s.close(`bad request: join of illegal group name ${JSON.stringify(g)}`);
      this.table.join(s, g);
    } else if (t & LEAVE_MESS) {
      this.table.leave(s, f.groups[0]!);
    } else if (t & KILL_MESS) {
      s.close('disconnect requested', true);
    }
  }

  private multicast(s: DaemonSession, f: Frame): void {
    const out = f.bigEndianHeader ? toLittleEndianHeader(f.raw) : f.raw;
    const skip = f.type & SELF_DISCARD ? s : undefined;
    const seen = new Set<DaemonSession>();
    // A destination listed twice still means one copy per member (and per tap).
    for (const g of f.groups.length > 1 ? new Set(f.groups) : f.groups) {
      if (g.charCodeAt(0) === 0x23 /* # */) {
        const target = this.sessions.get(g);
        if (target && target.open) seen.add(target);
        continue;
      }
      const members = this.table.members(g);
      if (members) for (const m of members) seen.add(m as DaemonSession);
      const taps = this.taps.get(g);
      if (taps) for (const tap of taps) tap(f);
    }
    for (const m of seen) {
      if (m === skip) continue;
      m.deliver(out);
      this.stats.deliveries++;
    }
  }

  /** Subscribe in-process to data messages sent to `group` (the log writer). */
  tap(group: string, fn: Tap): () => void {
    const list = this.taps.get(group) ?? [];
    list.push(fn);
    this.taps.set(group, list);
    return () => this.taps.set(group, (this.taps.get(group) ?? []).filter((x) => x !== fn));
  }

  /**
   * Run `fn` before any output of a turn is handed to the clients' sockets: a
   * tap that buffers (the log writer) writes there, so that nothing a client
   * sees (an --ack publisher's own copy) gets ahead of the file.
   */
  onFlushTaps(fn: () => void): void {
    this.tapFlushers.push(fn);
  }

  flushTaps(): void {
    for (const fn of this.tapFlushers) fn();
  }

  /** Set or clear the hang fault: while set, no session is read. */
  setHang(on: boolean): void {
    this.faults.hang = on;
    for (const s of this.all) (on ? s.pause() : s.resume());
  }

  /** Cut every session at once, as a daemon crash would (tests). */
  dropAllSessions(): void {
    for (const s of [...this.all]) s.close('dropped by fault switch');
  }

  getStats(): DaemonStats {
    return { sessions: this.sessions.size, groups: this.table.summary(), ...this.stats };
  }

  /** Session names with their queued bytes, for SIGUSR1. */
  sessionList(): Array<{ name: string; remote: string; groups: string[]; queued: number; in: number; out: number }> {
    return [...this.sessions.values()].map((s) => ({ name: s.privateGroup, remote: s.remote, groups: [...s.groups], queued: s.queued, in: s.messagesIn, out: s.messagesOut }));
  }

  /** Stop listening, cut all sessions, remove unix sockets. */
  async close(): Promise<void> {
    const closing = this.servers.map((srv) => new Promise<void>((r) => srv.close(() => r())));
    // server.close() waits for open connections: cut the sessions first.
    for (const s of [...this.all]) s.close('daemon shutting down');
    for (const sock of this.handshakes) sock.destroy();
    await Promise.all(closing);
    for (const p of this.unixPaths) fs.rmSync(p, { force: true });
  }
}

function validGroup(g: string): boolean {
  try {
    validateGroupName(g);
    return true;
  } catch {
    return false;
  }
}

/** Section 9 checks, in the real daemon's order; returns why the request is refused. */
function checkRequest(s: DaemonSession, f: Frame): string | undefined {
  const svc = f.type & REGULAR_MESS;
  const req = f.type & (JOIN_MESS | LEAVE_MESS | KILL_MESS);
  const bits = popcount(svc) + popcount(req);
  if (bits !== 1) return `service type 0x${f.type.toString(16)} needs exactly one delivery or request bit`;
  if (f.sender !== s.privateGroup) return `sender "${f.sender}" is not this session (${s.privateGroup})`;
  if ((f.hint & ~0x00ffff00) !== 0) return `hint 0x${f.hint.toString(16)} has reserved bits set`;
  if (f.data.length + MAX_GROUP_NAME * f.groups.length > MAX_MESSAGE_BODY_LEN - HEADER_SIZE) return 'message too long';
  if (req && f.groups.length !== 1) return `request with ${f.groups.length} groups`;
  return undefined;
}

function popcount(v: number): number {
  let n = 0;
  for (let x = v; x; x &= x - 1) n++;
  return n;
}

/** A big-endian client's header, converted as real daemons do: type, num_groups, data_len; not hint. */
function toLittleEndianHeader(raw: Buffer): Buffer {
  const out = Buffer.from(raw);
  out.writeUInt32LE(((raw.readUInt32BE(0) & ~ENDIAN_MARKER) | ENDIAN_MARKER) >>> 0, 0);
  out.writeInt32LE(raw.readInt32BE(36), 36);
  out.writeInt32LE(raw.readInt32BE(44), 44);
  return out;
}

function removeStaleSocket(path: string): void {
  try {
    if (fs.lstatSync(path).isSocket()) fs.rmSync(path);
  } catch {
    // Not there: nothing to remove.
  }
}

function hash32(s: string): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < s.length; i++) h = Math.imul(h ^ s.charCodeAt(i), 0x01000193);
  return h | 0;
}
