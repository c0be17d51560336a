/**
 * Where syslog datagrams come in: UDP (`udp://HOST:PORT`) and unix datagram
 * sockets (`unix:PATH`, what nginx's `syslog:server=unix:` writes to). Node
 * has no unix datagram sockets, so those use the unix-dgram addon, loaded
 * only when asked for. Datagrams are handed on as they come: the sockets
 * are read at full speed whatever the daemon does (the queue absorbs or
 * drops, never the kernel buffer).
 */
import dgram from 'node:dgram';
import fs from 'node:fs';
import { createRequire } from 'node:module';
import { isIP } from 'node:net';
import { ErrorCodes, SpreadPipeError } from '../errors.js';

export type SyslogSpec = { kind: 'udp'; host: string; port: number; label: string } | { kind: 'unix'; path: string; label: string };

/** Kernel receive buffer asked for, to ride out bursts (capped by net.core.rmem_max). @default 8 MiB */
export const DEFAULT_RECV_BUFFER = 8 * 1024 * 1024;
/** Mode of a unix socket we create: owner and group may send. @default 0o660 */
export const DEFAULT_SOCKET_MODE = 0o660;

export function parseSyslogSpec(text: string): SyslogSpec {
  const bad = (why: string): SpreadPipeError => new SpreadPipeError(ErrorCodes.INVALID_ARGUMENT, `bad --syslog "${text}": ${why}`);
  if (text.startsWith('unix:')) {
    const path = text.slice(5);
    if (!path.startsWith('/')) throw bad('expected unix:/absolute/path');
    return { kind: 'unix', path, label: text };
  }
  const m = /^udp:\/\/(?:\[([^\]]+)\]|([^:/]+)):(\d{1,5})$/.exec(text);
  if (!m) throw bad('expected udp://HOST:PORT or unix:/path');
  const host = m[1] ?? m[2]!;
  const port = Number(m[3]);
  if (port < 0 || port > 65535) throw bad(`port ${port} outside 0..65535`);
  if (!isIP(host) && host !== 'localhost') throw bad(`"${host}" is not an IP address`);
  return { kind: 'udp', host, port, label: text };
}

export type DatagramHandler = (datagram: Buffer, source: SyslogSpec) => void;

interface UnixDgramSocket {
  on(ev: 'message', fn: (b: Buffer) => void): void;
  on(ev: 'error', fn: (e: Error) => void): void;
  once(ev: 'listening' | 'error', fn: (e?: Error) => void): void;
  bind(path: string): void;
  close(): void;
}

export class SyslogListener {
  /** Bound addresses ("udp://127.0.0.1:5514", "unix:/run/x.sock"), with the real port for port 0. */
  readonly bound: string[] = [];
  private readonly closers: Array<() => void> = [];

  private constructor(private readonly onDatagram: DatagramHandler) {}

  static async start(specs: readonly SyslogSpec[], onDatagram: DatagramHandler, opts: { socketMode?: number; onError?: (e: Error) => void } = {}): Promise<SyslogListener> {
    const l = new SyslogListener(onDatagram);
    try {
      for (const s of specs) {
        if (s.kind === 'udp') await l.udp(s, opts.onError);
        else await l.unix(s, opts.socketMode ?? DEFAULT_SOCKET_MODE, opts.onError);
      }
    } catch (e) {
      l.close();
      throw e;
    }
    return l;
  }

  private async udp(s: Extract<SyslogSpec, { kind: 'udp' }>, onError?: (e: Error) => void): Promise<void> {
    const sock = dgram.createSocket({ type: isIP(s.host) === 6 ? 'udp6' : 'udp4', recvBufferSize: DEFAULT_RECV_BUFFER });
    await new Promise<void>((resolve, reject) => {
      sock.once('error', reject);
      sock.bind(s.port, s.host, () => {
        sock.removeListener('error', reject);
        resolve();
      });
    });
    sock.on('error', (e) => onError?.(e));
    sock.on('message', (b) => this.onDatagram(b, s));
    const a = sock.address();
    this.bound.push(`udp://${a.family === 'IPv6' ? `[${a.address}]` : a.address}:${a.port}`);
    this.closers.push(() => sock.close());
  }

  private async unix(s: Extract<SyslogSpec, { kind: 'unix' }>, mode: number, onError?: (e: Error) => void): Promise<void> {
    let mod: { createSocket(type: 'unix_dgram', fn?: (b: Buffer) => void): UnixDgramSocket };
    try {
      mod = createRequire(import.meta.url)('unix-dgram');
    } catch (e) {
      throw new SpreadPipeError(ErrorCodes.INVALID_ARGUMENT, `unix datagram sockets are not available here: ${(e as Error).message}`, { cause: e });
    }
    removeStaleSocket(s.path);
    const sock = mod.createSocket('unix_dgram', (b) => this.onDatagram(b, s));
    await new Promise<void>((resolve, reject) => {
      sock.once('error', (e) => reject(new SpreadPipeError(ErrorCodes.INVALID_ARGUMENT, `cannot listen on ${s.path}: ${e?.message}`)));
      sock.once('listening', () => resolve());
      sock.bind(s.path);
    });
    sock.on('error', (e) => onError?.(e));
    fs.chmodSync(s.path, mode);
    this.bound.push(`unix:${s.path}`);
    this.closers.push(() => {
      sock.close();
      fs.rmSync(s.path, { force: true });
    });
  }

  /** Stop receiving; unix sockets are removed. */
  close(): void {
    for (const c of this.closers.splice(0)) {
      try {
        c();
      } catch {
        // Closing the rest matters more.
      }
    }
  }
}

function removeStaleSocket(path: string): void {
  try {
    if (fs.lstatSync(path).isSocket()) fs.rmSync(path);
    else throw new SpreadPipeError(ErrorCodes.INVALID_ARGUMENT, `${path} exists and is not a socket`);
  } catch (e) {
    if (e instanceof SpreadPipeError) throw e;
  }
}
