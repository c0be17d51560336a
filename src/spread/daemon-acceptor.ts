/**
 * The daemon's front door: it listens on TCP addresses and unix paths
 * (claiming a path a dead daemon left), admits or refuses each connection
 * before anything is read (--allow, the session quota, a test fault), keeps
 * refused sockets only until their reject byte is out, and on close stops
 * listening and removes the unix sockets that are still its own.
 *
 * Hostile clients: a TCP connection counts as pending from its 'connection'
 * event until its Spread handshake is done (or it closes). Past the caps
 * (per remote address, and in all) a new one is destroyed at once, before
 * any session object or buffer exists for it, and reported (cause
 * `pending-per-address` / `pending-total`). Any TCP listener goes through
 * track(): a TLS listener calls it on the raw socket's 'connection', so its
 * TLS handshake counts as pending too.
 */
import fs from 'node:fs';
import net from 'node:net';
import { REJECT_AUTH, REJECT_QUOTA } from './constants.js';
import { encodeRejectCode } from './encode.js';
import type { DaemonEvent, RejectCause } from './daemon-events.js';
import { type Cidr, cidrMatch } from '../cidr.js';
import { ErrorCodes, SpreadPipeError } from '../errors.js';
import { claimSocketPath, socketRemover } from '../socket-path.js';

export type ListenSpec = { host?: string; port: number; tls?: boolean } | { path: string };

export interface AcceptorOptions {
  /** TCP clients allowed; empty allows everyone. Unix-socket clients are always allowed. */
  allow: readonly Cidr[];
  /** Connections (in the handshake or past it) beyond which new ones get REJECT_QUOTA. */
  maxSessions: number;
  /** How long a refused socket may take to read its reject byte and close. */
  lingerMs: number;
  /** TCP connections not yet past the Spread handshake, from one remote address. */
  maxPendingPerAddress: number;
  /** TCP connections not yet past the Spread handshake, from all addresses. */
  maxPending: number;
}

/** Called when a pending connection's handshake is done; closing it does the same. Idempotent. */
export type Settle = () => void;

export interface AcceptorHooks {
  /** Connections open now, for the quota. */
  connections(): number;
  /** A test fault's reject code for every new connection, or false. */
  faultRefusal(): false | number;
  /** A connection past admission; `settle` once its handshake is done. */
  accepted(sock: net.Socket, local: boolean, settle: Settle): void;
  /** A connection past admission on a TLS port: the TLS front takes it (see daemon-tls.ts), with its `settle`. */
  acceptedTls(sock: net.Socket, settle: Settle): void;
  /** Reports: listening, reject (admission), error (accept failures). */
  event(e: DaemonEvent): void;
}

export class Acceptor {
  /** Bound TCP addresses and unix paths, e.g. for tests that listen on port 0. */
  readonly tcp: Array<{ host: string; port: number }> = [];
  readonly unixPaths: string[] = [];
  /** Bound TCP ports that speak TLS. */
  readonly tlsPorts = new Set<number>();
  private readonly servers: net.Server[] = [];
  /** Sockets left with only a reject byte to send. */
  private readonly lingering = new Set<net.Socket>();
  private readonly removers: Array<() => void> = [];
  /** Pending TCP connections per remote address (only addresses with some), and in all. */
  private readonly pendingBy = new Map<string, number>();
  private pendingCount = 0;

  constructor(
    private readonly opts: AcceptorOptions,
    private readonly hooks: AcceptorHooks,
  ) {}

  /** Listen on one more address (e.g. /tmp/PORT once port 0 is bound). */
  async listen(spec: ListenSpec): Promise<void> {
    const local = 'path' in spec;
    const tlsPort = !local && spec.tls === true;
    const server = net.createServer({ noDelay: true }, (sock) => this.onConnection(sock, local, tlsPort));
    const bind = (target: net.ListenOptions): Promise<void> =>
      new Promise<void>((resolve, reject) => {
        server.once('error', (e) => reject(new SpreadPipeError(ErrorCodes.LISTEN, `cannot listen on ${local ? spec.path : `${spec.host ?? '*'}:${spec.port}`}: ${e.message}`, { cause: e })));
        server.listen(target, resolve);
      });
    let at: string;
    if (local) {
      await claimSocketPath(spec.path, 'stream');
      await bind({ path: spec.path });
      this.servers.push(server);
      fs.chmodSync(spec.path, 0o666); // as real Spread: any local user may connect
      this.removers.push(socketRemover(spec.path));
      this.unixPaths.push(spec.path);
      at = spec.path;
    } else {
      await bind({ host: spec.host, port: spec.port });
      this.servers.push(server);
      const a = server.address() as net.AddressInfo;
      this.tcp.push({ host: a.address, port: a.port });
      at = hostPort(this.tcp.at(-1)!);
      if (tlsPort) {
        this.tlsPorts.add(a.port);
        at = `tls://${at}`;
      }
    }
    // Once listening, errors (EMFILE on accept) are reported, and the daemon goes on.
    server.on('error', (e) => this.hooks.event({ type: 'error', reason: `${at}: ${e.message}` }));
    this.hooks.event({ type: 'listening', address: at });
  }

  /** TCP connections not yet past their handshake, from all addresses. */
  get pending(): number {
    return this.pendingCount;
  }

  /**
   * Count a new TCP connection as pending; over a cap it is destroyed at
   * once, reported, and undefined is returned. Otherwise the Settle to call
   * when its handshake is done (its close calls it too).
   */
  track(sock: net.Socket): Settle | undefined {
    const addr = sock.remoteAddress ?? '';
    const mine = this.pendingBy.get(addr) ?? 0;
    const { maxPendingPerAddress, maxPending } = this.opts;
    if (mine >= maxPendingPerAddress || this.pendingCount >= maxPending) {
      const perAddress = mine >= maxPendingPerAddress;
      sock.on('error', () => {});
      sock.destroy();
      this.hooks.event({
        type: 'reject',
        remote: `${addr}:${sock.remotePort}`,
        code: 0,
        reason: perAddress
          ? `${mine} connections from ${addr} already in their handshake (--max-pending-per-address ${maxPendingPerAddress})`
          : `${this.pendingCount} connections already in their handshake (--max-pending ${maxPending})`,
        cause: perAddress ? 'pending-per-address' : 'pending-total',
      });
      return undefined;
    }
    this.pendingBy.set(addr, mine + 1);
    this.pendingCount++;
    let settled = false;
    const settle = (): void => {
      if (settled) return;
      settled = true;
      this.pendingCount--;
      const n = (this.pendingBy.get(addr) ?? 1) - 1;
      if (n > 0) this.pendingBy.set(addr, n);
      else this.pendingBy.delete(addr);
    };
    sock.once('close', settle);
    return settle;
  }

  private onConnection(sock: net.Socket, local: boolean, tlsPort: boolean): void {
    const settle = local ? () => {} : this.track(sock);
    if (!settle) return;
    const refusal = this.admission(sock, local);
    if (!refusal) {
      sock.setKeepAlive(true, 30_000);
      if (tlsPort) this.hooks.acceptedTls(sock, settle);
      else this.hooks.accepted(sock, local, settle);
      return;
    }
    const [code, reason, cause] = refusal;
    // Before anything is read, as real daemons refuse over quota.
    this.hooks.event({ type: 'reject', remote: local ? 'unix' : `${sock.remoteAddress}:${sock.remotePort}`, code, reason, cause });
    sock.on('error', () => {});
    // A TLS client could not read a plaintext reject byte: it is only closed.
    if (tlsPort) return void sock.destroy();
    sock.end(encodeRejectCode(code));
    this.linger(sock);
  }

  private admission(sock: net.Socket, local: boolean): [number, string, RejectCause] | undefined {
    const { allow, maxSessions } = this.opts;
    if (!local && allow.length && !allow.some((c) => cidrMatch(c, sock.remoteAddress ?? ''))) return [REJECT_AUTH, 'address not allowed (--allow)', 'not-allowed'];
    const n = this.hooks.connections();
    if (n >= maxSessions) return [REJECT_QUOTA, `${n} sessions already`, 'quota'];
    const fault = this.hooks.faultRefusal();
    if (fault !== false) return [fault, 'refused by fault switch', 'fault'];
    return undefined;
  }

  /** Keep `sock` until its last bytes are out; destroyed on close() at the latest. */
  linger(sock: net.Socket): void {
    this.lingering.add(sock);
    sock.on('close', () => this.lingering.delete(sock));
    sock.on('error', () => {});
    // A client that never closes its side must not hold the descriptor.
    sock.setTimeout(this.opts.lingerMs, () => sock.destroy());
  }

  /**
   * Stop listening; `cutSessions` ends the accepted connections (server.close()
   * waits for them); then the unix sockets still ours are removed.
   */
  async close(cutSessions: () => void): Promise<void> {
    const closing = this.servers.map((srv) => new Promise<void>((r) => srv.close(() => r())));
    cutSessions();
    for (const sock of this.lingering) sock.destroy();
    await Promise.all(closing);
    // Only if still ours: a successor may already have claimed the path.
    for (const remove of this.removers.splice(0)) remove();
  }
}

export function hostPort(a: { host: string; port: number }): string {
  return a.host.includes(':') ? `[${a.host}]:${a.port}` : `${a.host}:${a.port}`;
}
