/**
 * The one helper module for tests that start servers and processes: every
 * resource is registered and torn down after each test, pass or fail.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { once } from 'node:events';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterEach, expect } from 'vitest';

export const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
export const CLI = path.join(ROOT, 'dist', 'main.js');

type Cleanup = () => unknown | Promise<unknown>;
const cleanups: Cleanup[] = [];

/** Register something to undo after the current test, in reverse order. */
export function defer(fn: Cleanup): void {
  cleanups.push(fn);
}

afterEach(async () => {
  while (cleanups.length) {
    const fn = cleanups.pop()!;
    try {
      await fn();
    } catch {
      // Cleanup must go on for the others.
    }
  }
});

/** A fresh temporary directory, removed after the test. */
export function tempDir(prefix = 'spread-pipe-test-'): string {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), prefix));
  defer(() => fs.rmSync(dir, { recursive: true, force: true }));
  return dir;
}

/** Resolve when `check` returns a truthy value; reject after `timeoutMs`. Polls, bounded. */
export async function waitFor<T>(check: () => T | Promise<T>, timeoutMs = 10_000, what = 'condition'): Promise<NonNullable<T>> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const v = await check();
    if (v) return v as NonNullable<T>;
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

/** `p`, or a rejection naming `what` after `timeoutMs`; the timer is cleared either way. */
export async function withTimeout<T>(p: Promise<T>, timeoutMs: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  try {
    return await Promise.race([
      p,
      new Promise<never>((_, reject) => {
        timer = setTimeout(() => reject(new Error(`timed out after ${timeoutMs} ms waiting for ${what}`)), timeoutMs);
      }),
    ]);
  } finally {
    clearTimeout(timer);
  }
}

export interface Proc {
  child: ChildProcess;
  /** Everything written to stdout so far. */
  stdout(): Buffer;
  stderr(): string;
  /** Resolves with the exit code (or signal name). */
  exited: Promise<number | string>;
  /** Wait until stdout (as latin1 text) satisfies `pred`. */
  waitStdout(pred: (s: string) => boolean, timeoutMs?: number): Promise<string>;
  waitStderr(pred: (s: string) => boolean, timeoutMs?: number): Promise<string>;
  kill(signal?: NodeJS.Signals): void;
}

/** Start any command; it is killed (SIGKILL if SIGTERM is ignored) after the test. */
export function startProcess(cmd: string, args: string[], opts: { env?: NodeJS.ProcessEnv; cwd?: string; stdin?: 'pipe' | 'ignore' | number } = {}): Proc {
  const child = spawn(cmd, args, {
    cwd: opts.cwd ?? ROOT,
    env: { ...process.env, ...opts.env },
    stdio: [opts.stdin ?? 'pipe', 'pipe', 'pipe'],
  });
  const out: Buffer[] = [];
  let err = '';
  child.stdout!.on('data', (b: Buffer) => out.push(b));
  child.stderr!.on('data', (b: Buffer) => (err += b.toString()));
  const exited = new Promise<number | string>((resolve) => {
    child.on('exit', (code, signal) => resolve(code ?? signal ?? -1));
  });
  defer(async () => {
    if (child.exitCode !== null || child.signalCode !== null) return;
    child.kill('SIGTERM');
    const t = setTimeout(() => child.kill('SIGKILL'), 3000);
    await exited;
    clearTimeout(t);
  });
  const stdout = (): Buffer => Buffer.concat(out);
  return {
    child,
    stdout,
    stderr: () => err,
    exited,
    waitStdout: (pred, timeoutMs = 10_000) => waitFor(() => (pred(stdout().toString('latin1')) ? stdout().toString('latin1') : ''), timeoutMs, `stdout of ${cmd}`),
    waitStderr: (pred, timeoutMs = 10_000) => waitFor(() => (pred(err) ? err : ''), timeoutMs, `stderr of ${cmd}: ${JSON.stringify(err.slice(-300))}`),
    kill: (signal = 'SIGTERM') => void child.kill(signal),
  };
}

/** Start the built CLI (`node dist/main.js ARGS`); `stdin` may be an open file descriptor (`< file`). Run `npm run build` first (npm test does). */
export function startCli(args: string[], opts: { env?: NodeJS.ProcessEnv; stdin?: 'pipe' | 'ignore' | number } = {}): Proc {
  return startProcess(process.execPath, [CLI, ...args], opts);
}

/** Write all of `data` to the process's stdin and close it. */
export async function feedStdin(p: Proc, data: Buffer | string, close = true): Promise<void> {
  const stdin = p.child.stdin!;
  if (!stdin.write(data)) await once(stdin, 'drain');
  if (close) stdin.end();
}

// ---- Daemons -------------------------------------------------------------

import type { SpreadDaemon, DaemonOptions } from '../src/spread/daemon.js';

/** Start the built-in daemon in this process on 127.0.0.1, port 0; closed after the test. */
export async function startDaemon(opts: DaemonOptions = {}): Promise<{ daemon: SpreadDaemon; port: number; spec: string }> {
  const { SpreadDaemon } = await import('../src/spread/daemon.js');
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
): Promise<{ c: import('../src/spread/client.js').SpreadClient; events: import('../src/spread/client.js').SpreadEvent[] }> {
  const { SpreadClient } = await import('../src/spread/client.js');
  const c = await SpreadClient.connect({ daemon: spec, name, membership });
  defer(() => c.destroy());
  const events: import('../src/spread/client.js').SpreadEvent[] = [];
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

// ---- Captures (golden vectors from real Spread) ---------------------------

export const CAPTURE_DIR = path.join(ROOT, 'test', 'fixtures', 'captures');

export interface CaptureStep {
  conn: string;
  dir: 'c2d' | 'd2c';
  /** One protocol unit's exact bytes; absent for `eof` / `reset` events. */
  hex?: string;
  len?: number;
  event?: 'eof' | 'reset';
  note?: string;
  /** The capture analyser's reading of the bytes (see the captures' README). */
  decoded?: Record<string, any>;
}

export interface Capture {
  file: string;
  scenario: string;
  daemon_version: string;
  connections?: { conn: string; client: string }[];
  steps: CaptureStep[];
  client_output?: Record<string, string[]>;
}

const captureCache = new Map<string, Capture>();

/** Every capture file in test/fixtures/captures, sorted. */
export function captureFiles(): string[] {
  return fs.readdirSync(CAPTURE_DIR).filter((f) => f.endsWith('.json')).sort();
}

export function loadCapture(file: string): Capture {
  let c = captureCache.get(file);
  if (!c) {
    c = { ...(JSON.parse(fs.readFileSync(path.join(CAPTURE_DIR, file), 'utf8')) as Omit<Capture, 'file'>), file };
    captureCache.set(file, c);
  }
  return c;
}

export function stepBytes(s: CaptureStep): Buffer {
  return Buffer.from(s.hex ?? '', 'hex');
}

/** A step carrying one framed message (after the handshake). */
export function isFrameStep(s: CaptureStep): boolean {
  return !!s.hex && s.decoded?.kind === 'message';
}

/** Major version of the daemon that made a capture ("5.0.1 (test policy build)" -> 5). */
export function captureDaemonMajor(c: Capture): number {
  return Number(/^(\d+)\./.exec(c.daemon_version)![1]);
}

/** The library version a connection announced in its connect request. */
export function connLibVersion(c: Capture, conn: string): number[] | undefined {
  return c.steps.find((s) => s.conn === conn && s.decoded?.kind === 'connect_request')?.decoded!.lib_version as number[] | undefined;
}

/** Deterministic PRNG (mulberry32): random tests print their seed and reproduce from it. */
export function prng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** `buf` cut into pieces of 1..maxPiece bytes chosen by `rand`. */
export function randomChunks(buf: Buffer, rand: () => number, maxPiece: number): Buffer[] {
  const out: Buffer[] = [];
  for (let off = 0; off < buf.length; ) {
    const n = 1 + Math.floor(rand() * maxPiece);
    out.push(buf.subarray(off, off + n));
    off += n;
  }
  return out;
}

// ---- Fault tests (issue 7) ---------------------------------------------------

/** Access-log-like lines "n GET /n HTTP/1.1" for n in [from, to); a publisher run with -h HOST tags them. */
export function numberedLines(from: number, to: number): string {
  let s = '';
  for (let i = from; i < to; i++) s += `${i} GET /${i} HTTP/1.1\n`;
  return s;
}

/** Feed numbered lines in chunks, yielding to the event loop between chunks so faults can land mid-stream. */
export async function feedLines(p: Proc, from: number, to: number, chunk = 200): Promise<void> {
  const stdin = p.child.stdin!;
  for (let i = from; i < to; i += chunk) {
    if (!stdin.write(numberedLines(i, Math.min(to, i + chunk)))) await once(stdin, 'drain');
    await new Promise((r) => setImmediate(r));
  }
}

/** The numbers of the lines of `host` in a file (or in text), in file order. */
export function lineNumbers(fileOrText: string, host: string, isText = false): number[] {
  const text = isText ? fileOrText : fs.existsSync(fileOrText) ? fs.readFileSync(fileOrText, 'latin1') : '';
  const out: number[] = [];
  const prefix = `${host} `;
  for (const l of text.split('\n')) if (l.startsWith(prefix)) out.push(Number(l.split(' ')[1]));
  return out;
}

/** A counter from the exit report (or SIGUSR1 line) on a publisher's stderr, e.g. counter(err, 'spool-full'). */
export function counter(stderr: string, name: string): number {
  const all = [...stderr.matchAll(new RegExp(`[ :]${name}=(\\d+)`, 'g'))];
  return all.length ? Number(all[all.length - 1]![1]) : NaN;
}

export interface ExitCounters {
  read: number;
  sentLines: number;
  queued: number;
  /** Lines dropped, by reason. */
  dropped: Record<string, number>;
  notices: number;
  /** Lines taken from datagrams (--syslog), 0 without. */
  syslogLines: number;
  /** Lines a previous run left in the spool (--spool), 0 without. */
  carried: number;
}

/**
 * #11: the pipe-mode exit report adds up. Every line that came in (read from
 * stdin, taken from datagrams, or left in the spool by a previous run) was
 * sent, dropped for a counted reason, or is still queued:
 * read + syslog lines + spool_carried = sent_lines + dropped (all reasons) + queued.
 * Gap notices are counted apart (notices=N) and in none of these.
 */
export function expectCountersAddUp(stderr: string): ExitCounters {
  const lines = stderr.split('\n');
  const exit = lines.filter((l) => /exit: read=/.test(l)).pop();
  expect(exit, `no exit report in: ${stderr.slice(-600)}`).toBeDefined();
  const num = (name: string, text = exit!): number => {
    const m = new RegExp(`[ :]${name}=(\\d+)`).exec(text);
    return m ? Number(m[1]) : NaN;
  };
  const dropPart = /dropped: (.*?) notices=/.exec(exit!);
  expect(dropPart, `no drop counters in: ${exit}`).not.toBeNull();
  const dropped: Record<string, number> = {};
  for (const kv of dropPart![1]!.split(' ')) {
    const [k, v] = kv.split('=');
    dropped[k!] = Number(v);
  }
  const syslogExit = lines.filter((l) => /exit: syslog /.test(l)).pop();
  const c: ExitCounters = {
    read: num('read'),
    sentLines: num('sent_lines'),
    queued: num('queued'),
    dropped,
    notices: num('notices'),
    syslogLines: syslogExit ? num('lines', syslogExit) : 0,
    carried: /spool_carried=/.test(exit!) ? num('spool_carried') : 0,
  };
  for (const [k, v] of Object.entries(c)) if (typeof v === 'number') expect(Number.isInteger(v), `${k} in: ${exit}`).toBe(true);
  const droppedAll = Object.values(dropped).reduce((a, b) => a + b, 0);
  expect(c.sentLines + droppedAll + c.queued, `sent_lines + dropped + queued != lines in: ${exit}`).toBe(c.read + c.syslogLines + c.carried);
  return c;
}

// ---- Syslog bridge (issue 5) ---------------------------------------------------

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

// ---- Failover, spool and fuzz tests (issue 7) -----------------------------------

/** Like numberedLines, each line padded to about `width` bytes (lineNumbers still reads its number). */
export function paddedLines(from: number, to: number, width: number): string {
  let s = '';
  for (let i = from; i < to; i++) {
    const head = `${i} GET /${i} HTTP/1.1 `;
    s += `${head}${'x'.repeat(Math.max(0, width - head.length - 1))}\n`;
  }
  return s;
}

/** Feed padded numbered lines in chunks, yielding between chunks (see feedLines). */
export async function feedPaddedLines(p: Proc, from: number, to: number, width: number, chunk = 100): Promise<void> {
  const stdin = p.child.stdin!;
  for (let i = from; i < to; i += chunk) {
    if (!stdin.write(paddedLines(i, Math.min(to, i + chunk), width))) await once(stdin, 'drain');
    await new Promise((r) => setImmediate(r));
  }
}
