/**
 * Where syslog datagrams come in: UDP (`udp://HOST:PORT`) and unix datagram
 * sockets (`unix:PATH`, what nginx's `syslog:server=unix:` writes to). Node
 * has no unix datagram sockets, so those use the unix-dgram addon, loaded
 * only when asked for. Datagrams are handed on synchronously as they come:
 * the sockets are read at full speed whatever the daemon does (the
 * publisher's queue absorbs or drops, never the kernel buffer).
 *
 * Who may write to the unix socket may put lines into the logs, so it is
 * created 0660 (never world-writable by default): nginx's workers (user
 * www-data on Debian) need to be in its group. Run spread-pipe with group
 * www-data, or give `--syslog-group www-data` (root, or a member of that
 * group, may hand the socket to it). The socket is created under a strict
 * umask, so it is never writable by others, not even for an instant.
 */
import dgram from 'node:dgram';
import fs from 'node:fs';
import { isIP } from 'node:net';
import { ErrorCodes, SpreadPipeError, errorMessage } from '../errors.js';
import type { SyslogSpec } from '../spread/address.js';
import { OptionError, intOption } from '../options.js';
import { claimSocketPath, socketRemover } from '../socket-path.js';

export { type SyslogSpec, parseSyslogSpec } from '../spread/address.js';

/** Kernel receive buffer asked for, to ride out bursts (capped by net.core.rmem_max). @default 8 MiB */
export const DEFAULT_RECV_BUFFER = 8 * 1024 * 1024;
/** Mode of a unix socket we create: owner and group may send. @default 0o660 */
export const DEFAULT_SOCKET_MODE = 0o660;

const invalid = (message: string, cause?: unknown): SpreadPipeError => new SpreadPipeError(ErrorCodes.INVALID_ARGUMENT, message, { cause });
/** Bind failures carry LISTEN, as the daemon's and as claimSocketPath's refusals. */
const cannotListen = (where: string, e: Error): SpreadPipeError => new SpreadPipeError(ErrorCodes.LISTEN, `cannot listen on ${where}: ${e.message}`, { cause: e });

/** Socket mode from the command line: octal digits, e.g. 660 or 0666. */
export function parseSocketMode(text: string): number {
  if (!/^0?[0-7]{3}$/.test(text)) throw invalid(`bad socket mode "${text}": expected octal like 0660`);
  const mode = parseInt(text, 8);
  if (mode & 0o111) throw invalid(`bad socket mode "${text}": execute bits mean nothing on a socket`);
  return mode;
}

/** A group name (looked up in /etc/group) or a numeric gid. */
export function resolveGroup(text: string, groupFile = '/etc/group'): number {
  if (/^\d+$/.test(text)) return Number(text);
  let lines: string[];
  try {
    lines = fs.readFileSync(groupFile, 'utf8').split('\n');
  } catch (e) {
    throw invalid(`cannot look up group "${text}": ${errorMessage(e)}`, e);
  }
  for (const l of lines) {
    const [name, , gid] = l.split(':');
    if (name === text && gid && /^\d+$/.test(gid)) return Number(gid);
  }
  throw invalid(`no group "${text}" in ${groupFile}`);
}

export type DatagramHandler = (datagram: Buffer, source: SyslogSpec) => void;

export interface ListenerOptions {
  /** Mode of created unix sockets. @default 0o660 */
  socketMode?: number;
  /** Group (gid) given the unix sockets. @default the process's group */
  socketGroup?: number;
  /** SO_RCVBUF asked for on UDP sockets. @default 8 MiB */
  recvBuffer?: number;
  /** Errors of a socket after it is bound (it keeps being read). */
  onError?: (e: Error, source: SyslogSpec) => void;
}

/** Defaults filled and checked (OptionError, code INVALID_ARGUMENT). */
export function resolveListenerOptions(o: ListenerOptions = {}): ListenerOptions & { socketMode: number; recvBuffer: number } {
  const socketMode = intOption('socketMode', o.socketMode, DEFAULT_SOCKET_MODE, { min: 0, max: 0o777 });
  if (socketMode & 0o111) throw new OptionError('socketMode', `execute bits mean nothing on a socket, got 0${socketMode.toString(8)}`);
  return {
    ...o,
    socketMode,
    socketGroup: o.socketGroup === undefined ? undefined : intOption('socketGroup', o.socketGroup, 0, { min: 0, max: 2 ** 32 - 2 }),
    recvBuffer: intOption('recvBuffer', o.recvBuffer, DEFAULT_RECV_BUFFER, { min: 1, max: 2 ** 31 - 1, unit: 'bytes' }),
  };
}

export interface BoundSocket {
  /** "udp://127.0.0.1:5514" (the real port for port 0) or "unix:/run/x.sock". */
  label: string;
  /** Kernel receive buffer actually granted (UDP), in bytes. */
  recvBuffer?: number;
}

export class SyslogListener {
  /** Bound addresses ("udp://127.0.0.1:5514", "unix:/run/x.sock"), with the real port for port 0. */
  readonly bound: string[] = [];
  readonly sockets: BoundSocket[] = [];
  private readonly closers: Array<() => void> = [];

  private constructor(private readonly onDatagram: DatagramHandler) {}

  static async start(specs: readonly SyslogSpec[], onDatagram: DatagramHandler, options: ListenerOptions = {}): Promise<SyslogListener> {
    const opts = resolveListenerOptions(options);
    const l = new SyslogListener(onDatagram);
    try {
      for (const s of specs) {
        if (s.kind === 'udp') await l.udp(s, opts);
        else await l.unix(s, opts);
      }
    } catch (e) {
      l.close();
      throw e;
    }
    return l;
  }

  private async udp(s: Extract<SyslogSpec, { kind: 'udp' }>, opts: ListenerOptions): Promise<void> {
    const sock = dgram.createSocket({ type: isIP(s.host) === 6 ? 'udp6' : 'udp4' });
    await new Promise<void>((resolve, reject) => {
      sock.once('error', (e) => reject(cannotListen(s.label, e)));
      sock.bind(s.port, s.host, () => {
        sock.removeAllListeners('error');
        resolve();
      });
    });
    let recvBuffer: number | undefined;
    try {
      // Linux silently caps the request at net.core.rmem_max (and reports double what it keeps).
      sock.setRecvBufferSize(opts.recvBuffer ?? DEFAULT_RECV_BUFFER);
    } catch {
      // Keep the kernel default; recvBuffer below says what we have.
    }
    try {
      recvBuffer = sock.getRecvBufferSize();
    } catch {
      recvBuffer = undefined;
    }
    const a = sock.address();
    const label = `udp://${a.family === 'IPv6' ? `[${a.address}]` : a.address}:${a.port}`;
    // Reports name the socket as bound (the real port when 0 was asked).
    const src = { ...s, port: a.port, label };
    sock.on('error', (e) => opts.onError?.(e, src));
    sock.on('message', (b) => this.onDatagram(b, src));
    this.bound.push(label);
    this.sockets.push({ label, recvBuffer });
    this.closers.push(() => sock.close());
  }

  private async unix(s: Extract<SyslogSpec, { kind: 'unix' }>, opts: ListenerOptions): Promise<void> {
    let createSocket: typeof import('unix-dgram').createSocket;
    try {
      createSocket = (await import('unix-dgram')).createSocket;
    } catch (e) {
      throw invalid(`unix datagram sockets are not available here (the unix-dgram addon did not load): ${errorMessage(e)}`, e);
    }
    // Two bridges on one path would each get half of the lines.
    await claimSocketPath(s.path, 'dgram');
    const sock = createSocket('unix_dgram', (b) => this.onDatagram(b, s));
    // bind() is synchronous in unix-dgram: the umask covers exactly the creation of the file.
    const umask = setUmask(0o177);
    let bindError: Error | undefined;
    try {
      sock.once('error', (e: Error) => (bindError = e));
      sock.bind(s.path);
    } finally {
      if (umask !== undefined) process.umask(umask);
    }
    if (bindError) {
      sock.close();
      throw cannotListen(s.path, bindError);
    }
    sock.removeAllListeners('error');
    // Only our own socket is removed: another instance may have taken the path since.
    const unlink = socketRemover(s.path);
    try {
      if (opts.socketGroup !== undefined) fs.chownSync(s.path, -1, opts.socketGroup);
      fs.chmodSync(s.path, opts.socketMode ?? DEFAULT_SOCKET_MODE);
    } catch (e) {
      sock.close();
      unlink();
      throw invalid(`cannot set owner or mode of ${s.path}: ${errorMessage(e)}`, e);
    }
    sock.on('error', (e: Error) => opts.onError?.(e, s));
    this.bound.push(`unix:${s.path}`);
    this.sockets.push({ label: `unix:${s.path}` });
    this.closers.push(() => {
      sock.close();
      unlink();
    });
  }

  /** Stop receiving; our unix sockets are removed. Idempotent, synchronous (safe in an 'exit' handler). */
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

/** process.umask(mask), or undefined where it cannot be set (worker threads): chmod still follows. */
function setUmask(mask: number): number | undefined {
  try {
    return process.umask(mask);
  } catch {
    return undefined;
  }
}

