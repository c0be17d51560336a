/**
 * `File = |program` (spreadlogd) and `--write 'GROUP=|program'`: the group's
 * lines go to the standard input of `/bin/sh -c program`, as Apache's piped
 * logs do. A program that dies is started again (at most once per
 * RESTART_INTERVAL); what arrives meanwhile is held, up to a bound, then
 * dropped and counted. Writes never block the writer: the pipe is written
 * asynchronously with a bounded backlog, so a slow program costs its own
 * lines (counted), not the other files'. What a dying program leaves
 * unread in its pipe is counted as lost (lines and bytes).
 */
import { type ChildProcess, spawn, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';

/** Bytes held for a program (not yet taken by it) before lines are dropped. @default 8 MiB */
export const DEFAULT_PIPE_BACKLOG = 8 * 1024 * 1024;
/** Least time between two starts of one program. @default 1000 ms */
export const RESTART_INTERVAL = 1000;

export type PipeEvent =
  | { type: 'start'; command: string; pid: number; restarts: number }
  | { type: 'exit'; command: string; code: number | null; signal: string | null }
  /** The program died with `bytes` (holding `lines` newlines) written to its pipe and not read: lost. */
  | { type: 'lost'; command: string; bytes: number; lines: number }
  | { type: 'error'; command: string; message: string };

/**
 * The program's stdin is a FIFO (named pipe, unlinked once open) of which
 * we hold a read end too, not the socket pair Node gives a child: when the
 * program dies, what it had not read is still in the pipe, so it is read
 * out, counted as lost (PipeEvent 'lost') and never handed to the next
 * program as a torn line. (What the program had read into its own buffers
 * but not yet handled dies with it; no one outside it can know that.)
 */
export class PipedLog {
  /** Messages dropped because the backlog was full. */
  dropped = 0;
  restarts = 0;
  /** Bytes and newlines written to the pipe and not read by a program that died. */
  readonly lost = { bytes: 0, lines: 0 };
  private child: ChildProcess | undefined;
  private closing = false;
  private restartTimer: NodeJS.Timeout | undefined;
  private lastStart = 0;
  /** Our read end (non-blocking): emptied when the program dies. */
  private readonly drainFd: number;
  /** Our write end, as a stream (never EPIPE: we hold a read end). */
  private readonly sink: net.Socket;

  constructor(
    readonly command: string,
    private readonly onEvent: (e: PipeEvent) => void = () => {},
    private readonly backlog = DEFAULT_PIPE_BACKLOG,
    private readonly shell = '/bin/sh',
  ) {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'spread-pipe-fifo-'));
    const fifo = path.join(dir, 'in');
    try {
      const r = spawnSync('mkfifo', ['-m', '600', fifo], { stdio: 'ignore' });
      if (r.status !== 0) throw new Error(`mkfifo ${fifo} failed${r.error ? `: ${r.error.message}` : ''}`);
      this.drainFd = fs.openSync(fifo, fs.constants.O_RDONLY | fs.constants.O_NONBLOCK);
      const w = fs.openSync(fifo, fs.constants.O_WRONLY | fs.constants.O_NONBLOCK);
      this.sink = new net.Socket({ fd: w, readable: false, writable: true });
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
    this.sink.on('error', (e) => this.onEvent({ type: 'error', command: this.command, message: e.message }));
    this.start();
  }

  get pid(): number | undefined {
    return this.child?.pid;
  }

  private start(): void {
    this.restartTimer = undefined;
    if (this.closing) return;
    this.lastStart = Date.now();
    // A blocking read end of its own for the program (ours is non-blocking), opened through ours: the FIFO has no name any more.
    const stdin = fs.openSync(`/proc/self/fd/${this.drainFd}`, fs.constants.O_RDONLY);
    let child: ChildProcess;
    try {
      // stdout and stderr are ours, as Apache's piped loggers share its error log.
      child = spawn(this.shell, ['-c', this.command], { stdio: [stdin, 'inherit', 'inherit'] });
    } finally {
      fs.closeSync(stdin);
    }
    this.child = child;
    child.on('error', (e) => this.onEvent({ type: 'error', command: this.command, message: e.message }));
    child.on('exit', (code, signal) => {
      if (this.child === child) this.child = undefined;
      if (this.closing) return;
      this.onEvent({ type: 'exit', command: this.command, code, signal });
      this.drain();
      const wait = Math.max(0, this.lastStart + RESTART_INTERVAL - Date.now());
      this.restartTimer = setTimeout(() => {
        this.restarts++;
        this.start();
      }, wait);
    });
    if (child.pid !== undefined) this.onEvent({ type: 'start', command: this.command, pid: child.pid, restarts: this.restarts });
  }

  /** Read out what the dead program left in the pipe: lost, counted. */
  private drain(): void {
    const buf = Buffer.allocUnsafe(64 * 1024);
    let bytes = 0;
    let lines = 0;
    for (;;) {
      let n: number;
      try {
        n = fs.readSync(this.drainFd, buf, 0, buf.length, null);
      } catch (e) {
        if ((e as NodeJS.ErrnoException).code === 'EAGAIN') break;
        throw e;
      }
      if (n <= 0) break;
      bytes += n;
      for (let i = buf.indexOf(0x0a); i >= 0 && i < n; i = buf.indexOf(0x0a, i + 1)) lines++;
    }
    if (!bytes) return;
    this.lost.bytes += bytes;
    this.lost.lines += lines;
    this.onEvent({ type: 'lost', command: this.command, bytes, lines });
  }

  /** Hand `buf` (holding `messages` messages) to the program; false when it was dropped (counted). */
  write(buf: Buffer, messages: number): boolean {
    // The pipe holds what it can while no program runs (the next one reads it); past that, Node holds it, up to the backlog.
    if (this.sink.destroyed || this.sink.writableLength + buf.length > this.backlog) {
      this.dropped += messages;
      return false;
    }
    this.sink.write(buf);
    return true;
  }

  /** Close the program's input and wait (bounded) for it to finish what it has. */
  async close(timeoutMs = 3000): Promise<void> {
    this.closing = true;
    clearTimeout(this.restartTimer);
    const c = this.child;
    const closeOurs = (): void => {
      this.sink.destroy();
      try {
        fs.closeSync(this.drainFd);
      } catch {
        // closed already
      }
    };
    if (!c || c.exitCode !== null || c.signalCode !== null) {
      closeOurs();
      return;
    }
    await new Promise<void>((resolve) => {
      const t = setTimeout(() => {
        c.kill('SIGTERM');
        resolve();
      }, timeoutMs);
      t.unref();
      c.once('exit', () => {
        clearTimeout(t);
        resolve();
      });
      // The program sees end of input once our write end is closed, after what it holds is written.
      this.sink.end(() => this.sink.destroy());
    });
    closeOurs();
  }
}
