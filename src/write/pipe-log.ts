/**
 * `File = |program` (spreadlogd) and `--write 'GROUP=|program'`: the group's
 * lines go to the standard input of `/bin/sh -c program`, as Apache's piped
 * logs do. A program that dies is started again (at most once per
 * RESTART_INTERVAL); what arrives meanwhile is held, up to a bound, then
 * dropped and counted. Writes never block the writer: the pipe is written
 * asynchronously with a bounded backlog, so a slow program costs its own
 * lines (counted), not the other files'.
 */
import { type ChildProcess, spawn } from 'node:child_process';

/** Bytes held for a program (not yet taken by it) before lines are dropped. @default 8 MiB */
export const DEFAULT_PIPE_BACKLOG = 8 * 1024 * 1024;
/** Least time between two starts of one program. @default 1000 ms */
export const RESTART_INTERVAL = 1000;

export type PipeEvent =
  | { type: 'start'; command: string; pid: number; restarts: number }
  | { type: 'exit'; command: string; code: number | null; signal: string | null }
  | { type: 'error'; command: string; message: string };

export class PipedLog {
  /** Messages dropped because the backlog was full. */
  dropped = 0;
  restarts = 0;
  private child: ChildProcess | undefined;
  /** Held while no program runs. */
  private held: Buffer[] = [];
  private heldBytes = 0;
  private closing = false;
  private restartTimer: NodeJS.Timeout | undefined;
  private lastStart = 0;

  constructor(
    readonly command: string,
    private readonly onEvent: (e: PipeEvent) => void = () => {},
    private readonly backlog = DEFAULT_PIPE_BACKLOG,
    private readonly shell = '/bin/sh',
  ) {
    this.start();
  }

  get pid(): number | undefined {
    return this.child?.pid;
  }

  private start(): void {
    this.restartTimer = undefined;
    if (this.closing) return;
    this.lastStart = Date.now();
    // stdout and stderr are ours, as Apache's piped loggers share its error log.
    const child = spawn(this.shell, ['-c', this.command], { stdio: ['pipe', 'inherit', 'inherit'] });
    this.child = child;
    child.stdin!.on('error', () => {
      // EPIPE: the program is gone; 'exit' restarts it.
    });
    child.on('error', (e) => this.onEvent({ type: 'error', command: this.command, message: e.message }));
    child.on('exit', (code, signal) => {
      if (this.child === child) this.child = undefined;
      if (this.closing) return;
      this.onEvent({ type: 'exit', command: this.command, code, signal });
      const wait = Math.max(0, this.lastStart + RESTART_INTERVAL - Date.now());
      this.restartTimer = setTimeout(() => {
        this.restarts++;
        this.start();
      }, wait);
    });
    if (child.pid !== undefined) this.onEvent({ type: 'start', command: this.command, pid: child.pid, restarts: this.restarts });
    if (this.held.length) {
      const held = this.held;
      this.held = [];
      this.heldBytes = 0;
      for (const b of held) child.stdin!.write(b);
    }
  }

  /** Hand `buf` (holding `messages` messages) to the program; false when it was dropped (counted). */
  write(buf: Buffer, messages: number): boolean {
    const c = this.child;
    if (c && c.stdin && !c.stdin.destroyed && c.exitCode === null) {
      if (c.stdin.writableLength + buf.length > this.backlog) {
        this.dropped += messages;
        return false;
      }
      c.stdin.write(buf);
      return true;
    }
    if (this.heldBytes + buf.length > this.backlog) {
      this.dropped += messages;
      return false;
    }
    this.held.push(buf);
    this.heldBytes += buf.length;
    return true;
  }

  /** Close the program's input and wait (bounded) for it to finish what it has. */
  async close(timeoutMs = 3000): Promise<void> {
    this.closing = true;
    clearTimeout(this.restartTimer);
    const c = this.child;
    if (!c || c.exitCode !== null || c.signalCode !== null) return;
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
      c.stdin!.end();
    });
  }
}
