/**
 * The daemon's built-in log writer (what spreadlogd does): append each
 * message to a file per group, or to one file per host tag (the first token
 * of the message) in a directory. Appends are buffered for one event-loop
 * turn and written in one write(2) per file, so a burst costs few syscalls;
 * flush() on SIGTERM writes everything accepted before exit.
 */
import fs from 'node:fs';
import path from 'node:path';

/** Files kept open at once in split mode; older ones are closed (LRU). @default 128 */
export const DEFAULT_MAX_OPEN_FILES = 128;
/** Bytes buffered per file before a write is forced. @default 256 KiB */
export const DEFAULT_FILE_BUFFER = 256 * 1024;

export type WriterEvent = { type: 'open'; path: string } | { type: 'error'; path: string; message: string } | { type: 'reopen'; files: number };

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
  notes: unknown[];
}

const NL = Buffer.from('\n');

/** A host tag made safe as a file name: no separators, no dot names, bounded length. */
export function safeFileName(tag: string): string {
  let s = tag.replace(/[^A-Za-z0-9._-]/g, '_').slice(0, 100);
  if (s === '' || /^\.+$/.test(s)) s = `_${s}`;
  return s;
}

export class LogWriter {
  /** Messages and bytes appended, by destination kind. */
  readonly stats = { messages: 0, bytes: 0, errors: 0, closedForLimit: 0 };
  private readonly files = new Map<string, OpenFile>();
  private scheduled = false;

  constructor(
    private readonly onEvent: (e: WriterEvent) => void = () => {},
    private readonly maxOpen = DEFAULT_MAX_OPEN_FILES,
    private readonly fileBuffer = DEFAULT_FILE_BUFFER,
    private readonly hook?: WriteHook,
  ) {}

  /** Append a message to `file`, adding a newline only where it lacks one. `note` goes to the write hook. */
  append(file: string, data: Buffer, note?: unknown): void {
    const f = this.open(file);
    if (!f) return;
    if (note !== undefined) f.notes.push(note);
    const copy = Buffer.from(data); // data is a view into a socket chunk
    f.chunks.push(copy);
    f.bytes += copy.length;
    if (copy.length === 0 || copy[copy.length - 1] !== 0x0a) {
      f.chunks.push(NL);
      f.bytes++;
    }
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
    this.append(path.join(dir, `${tag}.log`), data, note);
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
    return n;
  }

  private open(file: string): OpenFile | undefined {
    let f = this.files.get(file);
    if (f) {
      // Map order is the LRU order: move to the end.
      this.files.delete(file);
      this.files.set(file, f);
      return f;
    }
    if (this.files.size >= this.maxOpen) {
      const [oldest] = this.files.values();
      this.write(oldest!);
      fs.closeSync(oldest!.fd);
      this.files.delete(oldest!.path);
      this.stats.closedForLimit++;
    }
    try {
      fs.mkdirSync(path.dirname(file), { recursive: true });
      f = { path: file, fd: fs.openSync(file, 'a', 0o644), chunks: [], bytes: 0, notes: [] };
    } catch (e) {
      this.stats.errors++;
      this.onEvent({ type: 'error', path: file, message: (e as Error).message });
      return undefined;
    }
    this.files.set(file, f);
    this.onEvent({ type: 'open', path: file });
    return f;
  }

  private write(f: OpenFile): void {
    if (f.bytes === 0) return;
    const buf = f.chunks.length === 1 ? f.chunks[0]! : Buffer.concat(f.chunks, f.bytes);
    f.chunks = [];
    f.bytes = 0;
    if (f.notes.length) {
      const notes = f.notes;
      f.notes = [];
      try {
        this.hook?.beforeWrite(f.path, f.fd, buf.length, notes);
      } catch (e) {
        // The data is still written: at worst a crash now costs repeats, not lines.
        this.stats.errors++;
        this.onEvent({ type: 'error', path: f.path, message: `before write: ${(e as Error).message}` });
      }
    }
    try {
      let off = 0;
      while (off < buf.length) off += fs.writeSync(f.fd, buf, off);
    } catch (e) {
      this.stats.errors++;
      this.onEvent({ type: 'error', path: f.path, message: (e as Error).message });
    }
  }
}
