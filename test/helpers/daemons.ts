/** Daemons for tests: the built-in daemon in this process or as a child process, free ports, TCP and HTTP probes, a recording client. */
import path from 'node:path';
import type { DaemonOptions, SpreadDaemon } from '../../src/spread/daemon.js';
import { type Proc, defer, startCli, waitFor } from './process.js';

/** Start the built-in daemon in this process on 127.0.0.1, port 0; closed after the test. */
export async function startDaemon(opts: DaemonOptions = {}): Promise<{ daemon: SpreadDaemon; port: number; spec: string }> {
  const { SpreadDaemon } = await import('../../src/spread/daemon.js');
  const daemon = await SpreadDaemon.start({ name: 'localhost', listen: [{ host: '127.0.0.1', port: 0 }], ...opts });
  defer(() => daemon.close());
  const port = daemon.tcp[0]!.port;
  return { daemon, port, spec: `${port}@127.0.0.1` };
}

/** A port nothing listens on right now (for "no daemon there" and for servers given a port). */
export async function freePort(): Promise<number> {
  const net = await import('node:net');
  const srv = net.createServer();
  await new Promise<void>((r) => srv.listen(0, '127.0.0.1', r));
  const port = (srv.address() as import('node:net').AddressInfo).port;
  await new Promise((r) => srv.close(r));
  return port;
}

/** Wait until something accepts TCP connections on 127.0.0.1:port (a server started as a child process). */
export async function waitForTcp(port: number, timeoutMs: number, what: () => string): Promise<void> {
  const net = await import('node:net');
  const accepts = (): Promise<boolean> =>
    new Promise<boolean>((resolve) => {
      const s = net.connect({ host: '127.0.0.1', port }, () => {
        s.destroy();
        resolve(true);
      });
      s.on('error', () => resolve(false));
    });
  // The server's output is read when the wait fails, not when it starts (it says why then).
  await waitFor(accepts, timeoutMs, `port ${port}`).catch((e: Error) => {
    throw new Error(`${e.message}: ${what()}`);
  });
}

/**
 * GET `path(i)` for i in 0..n-1 over `concurrency` keep-alive connections;
 * `after(i)` runs before the worker's next request. Returns the statuses by i.
 */
export async function httpRequests(opts: {
  url: string;
  n: number;
  concurrency: number;
  path: (i: number) => string;
  headers: (i: number) => Record<string, string>;
  after?: (i: number) => Promise<unknown>;
}): Promise<number[]> {
  const http = await import('node:http');
  const agent = new http.Agent({ keepAlive: true, maxSockets: opts.concurrency });
  const status: number[] = [];
  let next = 0;
  const worker = async (): Promise<void> => {
    while (next < opts.n) {
      const i = next++;
      status[i] = await new Promise<number>((resolve, reject) => {
        http
          .get(`${opts.url}${opts.path(i)}`, { agent, headers: opts.headers(i) }, (res) => {
            res.resume();
            res.on('end', () => resolve(res.statusCode ?? 0));
          })
          .on('error', reject);
      });
      await opts.after?.(i);
    }
  };
  await Promise.all(Array.from({ length: opts.concurrency }, worker));
  agent.destroy();
  return status;
}

/** A SpreadClient that records every message event; destroyed after the test. */
export async function connectClient(
  spec: string,
  name?: string,
  membership = true,
): Promise<{ c: import('../../src/spread/client.js').SpreadClient; events: import('../../src/spread/client.js').SpreadEvent[] }> {
  const { SpreadClient } = await import('../../src/spread/client.js');
  const c = await SpreadClient.connect({ daemon: spec, name, membership });
  defer(() => c.destroy());
  const events: import('../../src/spread/client.js').SpreadEvent[] = [];
  c.on('message', (e) => events.push(e));
  c.on('close', () => {});
  return { c, events };
}

export interface DaemonProc {
  proc: Proc;
  port: number;
  spec: string;
  /** SIGKILL the daemon (if running) and start it again on the same port. */
  restart(): Promise<DaemonProc>;
}

/**
 * Run `spread-pipe --daemon` as a child process on 127.0.0.1 (port 0 unless
 * `port` is given), for kill / restart / SIGSTOP fault tests.
 */
export async function startDaemonProcess(args: string[] = [], port = 0): Promise<DaemonProc> {
  const proc = startCli(['--daemon', '--name', 'localhost', '--no-unix', '--listen', `127.0.0.1:${port}`, ...args], { stdin: 'ignore' });
  const err = await Promise.race([
    proc.waitStderr((s) => /listening on 127\.0\.0\.1:\d+/.test(s)),
    proc.exited.then((c) => {
      throw new Error(`daemon exited (${c}) before listening: ${proc.stderr()}`);
    }),
  ]);
  const bound = Number(/listening on 127\.0\.0\.1:(\d+)/.exec(err)![1]);
  return {
    proc,
    port: bound,
    spec: `${bound}@127.0.0.1`,
    restart: async () => {
      if (proc.child.exitCode === null && proc.child.signalCode === null) {
        proc.kill('SIGKILL');
        await proc.exited;
      }
      return startDaemonProcess(args, bound);
    },
  };
}
