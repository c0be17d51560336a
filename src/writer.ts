/**
 * The one log writer of spread-pipe: the daemon's --write / --write-split and
 * `spread-pipe write` both append through it (routes in src/write/routes.ts
 * decide which file a message goes to). It appends each message to its file,
 * buffered for one event-loop turn and written in one write(2) per file, so
 * a burst costs few syscalls; flush() on SIGTERM writes everything accepted
 * before exit. It also keeps: a bounded set of open files (LRU), one lock per
 * open file (src/write/file-lock.ts), piped logs (`|program`), and lines and
 * bytes written per file and drops by reason, so the counters add up.
 *
 * No directory the admin did not name is created: `dir` given to append()
 * is the directory the admin named (a --write-split DIR, or the fixed part
 * of a path with strftime fields); it is made again when it went away (one
 * level, when its parent exists), and so is every level between it and the
 * file (`%Y/%m/%d`). Never `mkdir -p`: Node's recursive mkdirSync loops for
 * ever under procfs (`/proc/sys/nope`).
 *
 * Over 300 lines on purpose: one concern, appending to the files (what goes
 * where is src/write/).
 */
import fs from 'node:fs';
import path from 'node:path';
import { intOption } from './options.js';
import { FileLockedError, type FileLocks } from './write/file-lock.js';
import { DEFAULT_PIPE_BACKLOG, type PipeEvent, PipedLog } from './write/pipe-log.js';

/** Files kept open at once in split mode; older ones are closed (LRU). @default 128 */
export const DEFAULT_MAX_OPEN_FILES = 128;
/** Bytes buffered per file before a write is forced. @default 256 KiB */
export const DEFAULT_FILE_BUFFER = 256 * 1024;

/** A file that keeps failing is reported at most this often. @default 10 s */
export const ERROR_REPORT_INTERVAL = 10_000;

export interface WriterOptions {
  /** @default 128 */
  maxOpenFiles?: number;
  /** @default 256 KiB */
  fileBuffer?: number;
}

/** Defaults filled and checked (OptionError, code INVALID_ARGUMENT). */
export function resolveWriterOptions(o: WriterOptions = {}): Required<WriterOptions> {
  return {
    maxOpenFiles: intOption('maxOpenFiles', o.maxOpenFiles, DEFAULT_MAX_OPEN_FILES, { min: 1, unit: 'files' }),
    fileBuffer: intOption('fileBuffer', o.fileBuffer, DEFAULT_FILE_BUFFER, { min: 1, unit: 'bytes' }),
  };
}

/** Why a message was not written. */
/** 'pipe-died' counts lines (a program's pipe holds bytes, not messages): those its program had not read when it died. */
export type WriteDropReason = 'open-failed' | 'locked' | 'write-failed' | 'pipe-full' | 'pipe-died';

export type WriterEvent =
  | { type: 'open'; path: string }
  /** `dropped`: messages lost on this path since its previous report (they could not be written). */
  | { type: 'error'; path: string; message: string; dropped: number; reason: WriteDropReason }
  | { type: 'reopen'; files: number }
  | { type: 'pipe'; event: PipeEvent };

/** Lines and bytes written to one file (or handed to one program), since start. */
export interface FileStats {
  lines: number;
  bytes: number;
  /** Piped programs: lines and bytes handed over that the program had not read when it died (not in lines/bytes). */
  lostLines?: number;
  lostBytes?: number;
}

export interface WriterExtras {
  /** Take a lock per file opened (write mode and the daemon's --write). */
  locks?: FileLocks;
  /** Bytes held for one piped program. @default 8 MiB */
  pipeBacklog?: number;
  /** Files whose counters are kept for the report, at most. @default 100000 */
  maxFileStats?: number;
  /**
   * Milliseconds appends wait for more before they are written; 0: the end of
   * this event-loop turn. A real Spread daemon sends a message in two
   * writes, so a client that keeps up reads one message per turn: waiting a
   * few ms makes one write(2) of many. @default 0
   */
  flushDelay?: number;
}

/** A path that failed to open is tried again at most this often (not once per message). @default 1000 ms */
export const REOPEN_RETRY_MS = 1000;

/**
 * Told about each write before it is made, with the notes given to append()
 * for the data it carries (--ack duplicate dropping journals the ids there).
 */
export interface WriteHook {
  beforeWrite(path: string, fd: number, bytes: number, notes: unknown[]): void;
  /** After a flush of every file. */
  afterFlush(): void;
}

interface OpenFile {
  path: string;
  /** -1 for a pipe. */
  fd: number;
  pipe?: PipedLog;
  stats: FileStats;
  /** Bytes waiting to be written: copied in at append (no reference to the caller's buffer is kept). */
  buf: Buffer;
  bytes: number;
  /** Messages and lines in `buf`. */
  messages: number;
  lines: number;
  notes: unknown[];
}

const EMPTY = Buffer.alloc(0);
/** A file's buffer starts at this size and doubles up to fileBuffer. @default 16 KiB */
const INITIAL_BUFFER = 16 * 1024;

/**
 * A host tag made safe as a file name: only [A-Za-z0-9._-], no leading dot
 * (no `..`, no hidden files next to the dedup journal), bounded length.
 */
export function safeFileName(tag: string): string {
  const s = tag.replace(/[^A-Za-z0-9._-]/g, '_').slice(0, 100);
  return s === '' ? '_' : s.replace(/^\./, '_');
}

/**
 * open(2) for appending. When the file's directory is missing, `dir` (the
 * one the admin named) and the levels between it and the file are made, one
 * mkdir(2) each, never above `dir`, never `mkdir -p`.
 */
function openAppend(file: string, dir: string | undefined): number {
  try {
    return fs.openSync(file, 'a', 0o644);
  } catch (e) {
    if (dir === undefined || (e as NodeJS.ErrnoException).code !== 'ENOENT') throw e;
    const root = path.resolve(dir);
    const parent = path.dirname(path.resolve(file));
    const rel = path.relative(root, parent);
    if (rel.startsWith('..') || path.isAbsolute(rel)) throw e;
    const levels = [root, ...(rel ? rel.split(path.sep).map((_, i, a) => path.join(root, ...a.slice(0, i + 1))) : [])];
    for (const d of levels) {
      try {
        fs.mkdirSync(d, { mode: 0o755 });
      } catch (m) {
        if ((m as NodeJS.ErrnoException).code !== 'EEXIST') throw e;
      }
    }
    return fs.openSync(file, 'a', 0o644);
  }
}

/**
 * Lines in a message: its newlines, and one more when it lacks the last
 * (`nl`, which add() adds). One indexOf per line, no array, nothing allocated.
 */
function lineCount(data: Buffer, nl: number): number {
  let n = nl;
  let i = data.indexOf(0x0a);
  while (i >= 0) {
    n++;
    i = i + 1 < data.length ? data.indexOf(0x0a, i + 1) : -1;
  }
  return n;
}

/** Files with their own byte counter; --write-split makes one per web server. @default 10000 */
export const MAX_FILES_COUNTED = 10_000;
export const OTHER_FILES = '(other files)';

export class LogWriter {
  /** Messages and bytes appended (all files), failures, and messages not written. */
  readonly stats = { messages: 0, bytes: 0, errors: 0, dropped: 0, closedForLimit: 0 };
  /** Messages not written, by reason (they add up to stats.dropped). */
  readonly drops: Record<WriteDropReason, number> = { 'open-failed': 0, locked: 0, 'write-failed': 0, 'pipe-full': 0, 'pipe-died': 0 };
  /** Bytes written to each file since start (--metrics); at most MAX_FILES_COUNTED paths, the rest under OTHER_FILES. */
  readonly written = new Map<string, number>();
  private readonly files = new Map<string, OpenFile>();
  private readonly pipes = new Map<string, OpenFile>();
  private readonly perFile = new Map<string, FileStats>();
  /** The last entry of `files` (most recently used): moving it to the end again is a no-op worth skipping per message. */
  private newest: OpenFile | undefined;
  /** Per failing path: when it was last reported and what was lost since. */
  private readonly failing = new Map<string, { at: number; dropped: number; openFailedAt?: number; openReason?: WriteDropReason }>();
  private scheduled = false;
  private readonly locks: FileLocks | undefined;
  private readonly pipeBacklog: number;
  private readonly maxFileStats: number;
  private readonly flushDelay: number;

  constructor(
    private readonly onEvent: (e: WriterEvent) => void = () => {},
    private readonly maxOpen = DEFAULT_MAX_OPEN_FILES,
    private readonly fileBuffer = DEFAULT_FILE_BUFFER,
    private readonly hook?: WriteHook,
    extras: WriterExtras = {},
  ) {
    this.locks = extras.locks;
    this.pipeBacklog = extras.pipeBacklog ?? DEFAULT_PIPE_BACKLOG;
    this.maxFileStats = extras.maxFileStats ?? 100_000;
    this.flushDelay = extras.flushDelay ?? 0;
  }

  /**
   * Append a message to `file`, adding a newline only where it lacks one.
   * `note` goes to the write hook. `data` is copied at once into the file's
   * buffer (written at the end of the turn, or when full), so the caller may
   * reuse its buffer (a client reading into one buffer). `dir`: the directory the
   * admin named (see above); no directory above it is ever created.
   */
  append(file: string, data: Buffer, note?: unknown, dir?: string): void {
    const f = this.open(file, dir);
    if (!f) {
      this.stats.dropped++;
      return;
    }
    this.add(f, data, note);
  }

  /** Hand a message to `|command` (started on first use, restarted when it dies). */
  appendPipe(command: string, data: Buffer): void {
    let f = this.pipes.get(command);
    if (!f) {
      const stats = this.statsFor(`|${command}`);
      const pipe = new PipedLog(
        command,
        (event) => {
          if (event.type === 'lost') {
            // Counted as handed over when written to the pipe: moved to lost, so that handed = read + lost.
            stats.lines -= event.lines;
            stats.bytes -= event.bytes;
            stats.lostLines = (stats.lostLines ?? 0) + event.lines;
            stats.lostBytes = (stats.lostBytes ?? 0) + event.bytes;
            this.drops['pipe-died'] += event.lines;
            this.stats.dropped += event.lines;
          }
          this.onEvent({ type: 'pipe', event });
        },
        this.pipeBacklog,
      );
      f = { path: `|${command}`, fd: -1, pipe, stats, buf: EMPTY, bytes: 0, messages: 0, lines: 0, notes: [] };
      this.pipes.set(command, f);
    }
    this.add(f, data, undefined);
  }

  private add(f: OpenFile, data: Buffer, note: unknown): void {
    const nl = data.length === 0 || data[data.length - 1] !== 0x0a ? 1 : 0;
    const n = data.length + nl;
    if (f.bytes + n > f.buf.length) {
      // What is buffered goes first when this message would take it past fileBuffer (its notes with it).
      if (f.bytes > 0 && f.bytes + n > this.fileBuffer) this.write(f);
      if (f.bytes + n > f.buf.length) {
        // Small at first (many files may be open), doubling up to fileBuffer; one big message gets its size.
        const b = Buffer.allocUnsafe(Math.max(f.bytes + n, Math.min(this.fileBuffer, Math.max(INITIAL_BUFFER, f.buf.length * 2))));
        f.buf.copy(b, 0, 0, f.bytes);
        f.buf = b;
      }
    }
    if (note !== undefined) f.notes.push(note);
    // TypedArray set is a plain memcpy; Buffer#copy validates its arguments in JavaScript first.
    f.buf.set(data, f.bytes);
    f.bytes += data.length;
    if (nl) f.buf[f.bytes++] = 0x0a;
    f.messages++;
    f.lines += lineCount(data, nl);
    this.stats.messages++;
    this.stats.bytes += data.length;
    if (f.bytes >= this.fileBuffer) this.write(f);
    else if (!this.scheduled) {
      this.scheduled = true;
      const run = (): void => {
        this.scheduled = false;
        this.flush();
      };
      if (this.flushDelay > 0) setTimeout(run, this.flushDelay);
      else setImmediate(run);
    }
  }

  /** Split mode: the file for a message is DIR/<first token>.log. */
  appendSplit(dir: string, data: Buffer, note?: unknown): void {
    let end = data.indexOf(0x20);
    if (end < 0) end = Math.min(data.length, data.indexOf(0x0a) < 0 ? data.length : data.indexOf(0x0a));
    const tag = safeFileName(data.toString('latin1', 0, Math.min(end, 256)));
    this.append(path.join(dir, `${tag}.log`), data, note, dir);
  }

  /** Write every buffered byte now (synchronously: called on SIGTERM before exit). */
  flush(): void {
    for (const f of this.files.values()) this.write(f);
    for (const f of this.pipes.values()) this.write(f);
    this.hook?.afterFlush();
  }

  /**
   * SIGHUP: flush and close every file at once; each is reopened (created
   * anew after logrotate) on its next message, and those in `now` (the
   * current file of each file route) right away. Piped programs keep running.
   */
  reopen(now: Iterable<readonly [file: string, dir: string | undefined]> = []): void {
    const n = this.closeAll();
    // The files given are opened again at once (created anew after logrotate), not on their next message.
    for (const [file, dir] of now) this.open(file, dir);
    this.onEvent({ type: 'reopen', files: n });
  }

  /** Flush and close everything (exit); piped programs get end of input and are waited for. */
  async close(): Promise<void> {
    this.closeAll();
    await Promise.all([...this.pipes.values()].map((f) => f.pipe!.close()));
  }

  /** Lines and bytes written per file (and per piped program as `|command`). */
  fileStats(): ReadonlyMap<string, FileStats> {
    return this.perFile;
  }

  get openFiles(): number {
    return this.files.size;
  }

  private statsFor(file: string): FileStats {
    let st = this.perFile.get(file);
    if (!st) {
      st = { lines: 0, bytes: 0 };
      if (this.perFile.size < this.maxFileStats) this.perFile.set(file, st);
    }
    return st;
  }

  private closeAll(): number {
    this.flush();
    const n = this.files.size;
    for (const f of this.files.values()) this.closeFile(f);
    this.files.clear();
    this.newest = undefined;
    return n;
  }

  private closeFile(f: OpenFile): void {
    fs.closeSync(f.fd);
    this.locks?.release(f.path);
  }

  private open(file: string, dir?: string): OpenFile | undefined {
    let f = this.files.get(file);
    if (f) {
      // Map order is the LRU order: move to the end.
      if (f !== this.newest) {
        this.files.delete(file);
        this.files.set(file, f);
        this.newest = f;
      }
      return f;
    }
    // A path that just failed is not tried for every message of a burst.
    const failing = this.failing.get(file);
    if (failing?.openFailedAt !== undefined && Date.now() - failing.openFailedAt < REOPEN_RETRY_MS) {
      this.failed(file, '', 1, failing.openReason ?? 'open-failed', true);
      return undefined;
    }
    if (this.files.size >= this.maxOpen) {
      const [oldest] = this.files.values();
      this.write(oldest!);
      this.closeFile(oldest!);
      this.files.delete(oldest!.path);
      if (oldest === this.newest) this.newest = undefined;
      this.stats.closedForLimit++;
    }
    let fd: number;
    try {
      this.locks?.acquire(file);
    } catch (e) {
      if (e instanceof FileLockedError) {
        this.failed(file, e.message, 1, 'locked');
        this.openFailed(file, 'locked');
        return undefined;
      }
      // No lock file can be made (the directory is missing or read-only): the open below says why.
    }
    try {
      fd = openAppend(file, dir);
    } catch (e) {
      this.locks?.release(file);
      const missing = (e as NodeJS.ErrnoException).code === 'ENOENT' && !fs.existsSync(path.dirname(file));
      this.failed(file, `${(e as Error).message}${missing ? ` (directory ${path.dirname(file)} does not exist)` : ''}`, 1, 'open-failed');
      this.openFailed(file, 'open-failed');
      return undefined;
    }
    // A lock taken before the directory existed (made by openAppend) is taken now.
    try {
      this.locks?.acquire(file);
    } catch (e) {
      fs.closeSync(fd);
      const reason = e instanceof FileLockedError ? 'locked' : 'open-failed';
      this.failed(file, (e as Error).message, 1, reason);
      this.openFailed(file, reason);
      return undefined;
    }
    f = { path: file, fd, stats: this.statsFor(file), buf: EMPTY, bytes: 0, messages: 0, lines: 0, notes: [] };
    this.failing.delete(file);
    this.files.set(file, f);
    this.newest = f;
    this.onEvent({ type: 'open', path: file });
    return f;
  }

  private write(f: OpenFile): void {
    if (f.bytes === 0) return;
    // A pipe is written asynchronously: it gets its own copy; a file is written now, from the buffer.
    const buf = f.pipe ? Buffer.from(f.buf.subarray(0, f.bytes)) : f.buf.subarray(0, f.bytes);
    const messages = f.messages;
    const lines = f.lines;
    f.messages = 0;
    f.lines = 0;
    f.bytes = 0;
    if (f.pipe) {
      if (f.pipe.write(buf, messages)) {
        f.stats.lines += lines;
        f.stats.bytes += buf.length;
      } else {
        this.stats.dropped += messages;
        this.failed(f.path, `the program takes its input too slowly (${this.pipeBacklog} bytes held)`, messages, 'pipe-full');
      }
      return;
    }
    if (f.notes.length) {
      const notes = f.notes;
      f.notes = [];
      try {
        this.hook?.beforeWrite(f.path, f.fd, buf.length, notes);
      } catch (e) {
        // The data is still written: at worst a crash now costs repeats, not lines.
        this.failed(f.path, `before write: ${(e as Error).message}`, 0, 'write-failed');
      }
    }
    try {
      let off = 0;
      while (off < buf.length) off += fs.writeSync(f.fd, buf, off);
      f.stats.lines += lines;
      f.stats.bytes += buf.length;
      const key = this.written.has(f.path) || this.written.size < MAX_FILES_COUNTED ? f.path : OTHER_FILES;
      this.written.set(key, (this.written.get(key) ?? 0) + buf.length);
    } catch (e) {
      // ENOSPC, EIO: what this write held is gone (a torn tail at worst); say so, counted.
      this.stats.dropped += messages;
      this.failed(f.path, (e as Error).message, messages, 'write-failed');
    }
  }

  private openFailed(file: string, reason: WriteDropReason): void {
    const f = this.failing.get(file)!;
    f.openFailedAt = Date.now();
    f.openReason = reason;
  }

  /** Count every failure; report a path's first one, then at most once per interval. */
  private failed(path: string, message: string, dropped: number, reason: WriteDropReason, quiet = false): void {
    this.stats.errors++;
    this.drops[reason] += dropped;
    const now = Date.now();
    const f = this.failing.get(path);
    if (f && (quiet || now - f.at < ERROR_REPORT_INTERVAL)) {
      f.dropped += dropped;
      return;
    }
    this.failing.set(path, { at: now, dropped: 0, openFailedAt: f?.openFailedAt, openReason: f?.openReason });
    this.onEvent({ type: 'error', path, message, dropped: (f?.dropped ?? 0) + dropped, reason });
  }
}
