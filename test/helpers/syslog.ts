/** The syslog bridge under test, and datagram senders over UDP and unix sockets. */
import { type Proc, startCli } from './process.js';

export interface BridgeProc {
  proc: Proc;
  /** Bound UDP ports, in --syslog order. */
  udpPorts: number[];
}

/**
 * Run `spread-pipe --syslog ...` (pipe mode taking datagrams) and wait until
 * every --syslog socket is bound (one "listening on" line each).
 */
export async function startBridge(args: string[], opts: { env?: NodeJS.ProcessEnv; stdin?: 'pipe' | 'ignore' } = {}): Promise<BridgeProc> {
  const proc = startCli(args, opts);
  const n = args.filter((a) => a === '--syslog').length;
  const count = (s: string): number => s.split('\n').filter((l) => /listening on (udp|unix):/.test(l)).length;
  const err = await Promise.race([
    proc.waitStderr((s) => count(s) >= n),
    proc.exited.then((c) => {
      throw new Error(`bridge exited (${c}) before listening: ${proc.stderr()}`);
    }),
  ]);
  const udpPorts = [...err.matchAll(/listening on udp:\/\/[^\s]*:(\d+)/g)].map((m) => Number(m[1]));
  return { proc, udpPorts };
}

/** Send datagrams to 127.0.0.1:port (or `host`), each in order; resolves when all are handed to the kernel. */
export async function sendUdp(port: number, datagrams: Buffer[], host = '127.0.0.1'): Promise<void> {
  const dgram = await import('node:dgram');
  const sock = dgram.createSocket(host.includes(':') ? 'udp6' : 'udp4');
  try {
    for (const d of datagrams) await new Promise<void>((resolve, reject) => sock.send(d, port, host, (e) => (e ? reject(e) : resolve())));
  } finally {
    sock.close();
  }
}

/** Send datagrams to a unix datagram socket from an unbound socket, as nginx does (throws EAGAIN when its queue is full). */
export async function sendUnixDgram(file: string, datagrams: Buffer[]): Promise<void> {
  const { createSocket } = await import('unix-dgram');
  const c = createSocket('unix_dgram');
  const errors: Error[] = [];
  c.on('error', (e: Error) => errors.push(e));
  for (const d of datagrams) c.send(d, 0, d.length, file);
  c.close();
  if (errors.length) throw errors[0];
}
