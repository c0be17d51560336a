/**
 * The daemon's built-in log writer (what spreadlogd does): append each
 * message to a file per group, or to one file per host tag (the first token
 * of the message) in a directory. Appends are buffered for one event-loop
 * turn and written in one write(2) per file, so a burst costs few syscalls;
 * flush() on SIGTERM writes everything accepted before exit.
 */
import fs from 'node:fs';
import path from 'node:path';
import { intOption } from './options.js';

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

export type WriterEvent =
  | { type: 'open'; path: string }
  /** `dropped`: messages lost on this path since its previous report (they could not be written). */
  | { type: 'error'; path: string; message: string; dropped: number }
  | { type: 'reopen'; files: number };

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
  fd: number;
  chunks: Buffer[];
  bytes: number;
  /** Messages in `chunks`. */
  messages: number;
  notes: unknown[];
}

const NL = Buffer.from('\n');

/**
 * A host tag made safe as a file name: only [A-Za-z0-9._-], no leading dot
 * (no `..`, no hidden files next to the dedup journal), bounded length.
 */
export function safeFileName(tag: string): string {
  const s = tag.replace(/[^A-Za-z0-9._-]/g, '_').slice(0, 100);
  return s === '' ? '_' : s.replace(/^\./, '_');
}

/**
 * open(2) for appending. Never `mkdir -p` (Node's recursive mkdirSync spins
 * for ever on procfs, and a typo must not make directories): only `dir`, the
 * one level the admin named, is made again when it is missing.
 */
function openAppend(file: string, dir: string | undefined): number {
  try {
    return fs.openSync(file, 'a', 0o644);
  } catch (e) {
    if (dir === undefined || (e as NodeJS.ErrnoException).code !== 'ENOENT') throw e;
    try {
      fs.mkdirSync(dir, { mode: 0o755 });
    } catch {
      throw e;
    }
    return fs.openSync(file, 'a', 0o644);
  }
}

export class LogWriter {
  /** Messages and bytes appended, by destination kind. */
  readonly stats = { messages: 0, bytes: 0, errors: 0, dropped: 0, closedForLimit: 0 };
  private readonly files = new Map<string, OpenFile>();
  /** The last entry of `files` (most recently used): moving it to the end again is a no-op worth skipping per message. */
  private newest: OpenFile | undefined;
  /** Per failing path: when it was last reported and what was lost since. */
  private readonly failing = new Map<string, { at: number; dropped: number }>();
  private scheduled = false;

  constructor(
    private readonly onEvent: (e: WriterEvent) => void = () => {},
    private readonly maxOpen = DEFAULT_MAX_OPEN_FILES,
    private readonly fileBuffer = DEFAULT_FILE_BUFFER,
    private readonly hook?: WriteHook,
  ) {}

  /**
   * Append a message to `file`, adding a newline only where it lacks one.
   * `note` goes to the write hook. `data` is kept, not copied, until the
   * flush at the end of this turn: its bytes must not change before then
   * (socket chunks and decoded frames never do). `dir`: the directory the
   * admin named (--write-split), made again if it went away; no other
   * directory is ever created.
   */
  append(file: string, data: Buffer, note?: unknown, dir?: string): void {
    const f = this.open(file, dir);
    if (!f) {
      this.stats.dropped++;
      return;
    }
    if (note !== undefined) f.notes.push(note);
    f.chunks.push(data);
    f.bytes += data.length;
    if (data.length === 0 || data[data.length - 1] !== 0x0a) {
      f.chunks.push(NL);
      f.bytes++;
    }
    f.messages++;
    this.stats.messages++;
    this.stats.bytes += data.length;
    if (f.bytes >= this.fileBuffer) this.write(f);
    else if (!this.scheduled) {
      this.scheduled = true;
      setImmediate(() => {
        this.scheduled = false;
        this.flush();
      });
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
    this.hook?.afterFlush();
  }

  /** SIGHUP: flush and close every file; each is reopened (created anew after logrotate) on its next message. */
  reopen(): void {
    const n = this.closeAll();
    this.onEvent({ type: 'reopen', files: n });
  }

  /** Flush and close everything (exit). */
  close(): void {
    this.closeAll();
  }

  private closeAll(): number {
    this.flush();
    const n = this.files.size;
    for (const f of this.files.values()) fs.closeSync(f.fd);
    this.files.clear();
    this.newest = undefined;
    return n;
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
    if (this.files.size >= this.maxOpen) {
      const [oldest] = this.files.values();
      this.write(oldest!);
      fs.closeSync(oldest!.fd);
      this.files.delete(oldest!.path);
      if (oldest === this.newest) this.newest = undefined;
      this.stats.closedForLimit++;
    }
    let fd: number;
    try {
      fd = openAppend(file, dir);
    } catch (e) {
      const missing = (e as NodeJS.ErrnoException).code === 'ENOENT' && !fs.existsSync(path.dirname(file));
      this.failed(file, `${(e as Error).message}${missing ? ` (directory ${path.dirname(file)} does not exist)` : ''}`, 1);
      return undefined;
    }
    f = { path: file, fd, chunks: [], bytes: 0, messages: 0, notes: [] };
    this.failing.delete(file);
    this.files.set(file, f);
    this.newest = f;
    this.onEvent({ type: 'open', path: file });
    return f;
  }

  private write(f: OpenFile): void {
    if (f.bytes === 0) return;
    const buf = f.chunks.length === 1 ? f.chunks[0]! : Buffer.concat(f.chunks, f.bytes);
    const messages = f.messages;
    f.messages = 0;
    f.chunks = [];
    f.bytes = 0;
    if (f.notes.length) {
      const notes = f.notes;
      f.notes = [];
      try {
        this.hook?.beforeWrite(f.path, f.fd, buf.length, notes);
      } catch (e) {
        // The data is still written: at worst a crash now costs repeats, not lines.
        this.failed(f.path, `before write: ${(e as Error).message}`, 0);
      }
    }
    try {
      let off = 0;
      while (off < buf.length) off += fs.writeSync(f.fd, buf, off);
    } catch (e) {
      // ENOSPC, EIO: what this write held is gone (a torn tail at worst); say so, counted.
      this.stats.dropped += messages;
      this.failed(f.path, (e as Error).message, messages);
    }
  }

  /** Count every failure; report a path's first one, then at most once per interval. */
  private failed(path: string, message: string, dropped: number): void {
    this.stats.errors++;
    const now = Date.now();
    const f = this.failing.get(path);
    if (f && now - f.at < ERROR_REPORT_INTERVAL) {
      f.dropped += dropped;
      return;
    }
    this.failing.set(path, { at: now, dropped: 0 });
    this.onEvent({ type: 'error', path, message, dropped: (f?.dropped ?? 0) + dropped });
  }
}
