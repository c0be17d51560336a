/**
 * --spool DIR: an append-only, bounded queue of records on disk that
 * survives SIGTERM, SIGKILL and restarts of spread-pipe.
 *
 * Layout of DIR:
 *   NNNNNNNNNNNNNNNN.spool  segments, named by the id of their first record;
 *                           a 16-byte header, then records framed as
 *                           [u32 length][u32 CRC-32 of length and payload][payload]
 *   cursor                  id of the first record not yet acknowledged (24 bytes, with its own CRC)
 *   meta.json               small state kept for the user of the spool (the --ack stream name)
 *   lock                    "PID BOOT-ID" of the process using the spool
 *
 * Record ids are implicit (a segment's first id plus the record's index) and
 * never reused, so they can serve as line ids for --ack.
 *
 * Durability: appends are framed into a buffer and written with one write(2)
 * per event-loop turn (or per 256 KiB), so a crash of the process (SIGKILL)
 * loses at most the records appended in the turn it died in; fdatasync runs
 * when a segment is full (before the next one is used) and every
 * `syncInterval` ms while there are new writes, so a crash of the machine
 * loses at most that interval. A torn or corrupt record (its CRC does not
 * match, its length runs past the end) ends what is read of that segment: it
 * is never returned, the tail of the last segment is cut off at open, and
 * the records skipped are counted.
 *
 * Bounded: past `maxBytes`, whole oldest segments are deleted and the records
 * in them that were never read are counted as dropped.
 *
 * At-least-once: the cursor is written (in place, 24 bytes) when the
 * acknowledged id has moved by `cursorEvery` records and at close. After a
 * crash a restart reads again from the cursor, so what may repeat is at most
 * the records acknowledged since the last cursor write (< cursorEvery) plus
 * those read but not acknowledged; with --ack these keep their ids and
 * receivers drop them.
 */
import { EventEmitter } from 'node:events';
import fs from 'node:fs';
import path from 'node:path';
import { crc32 } from './crc32.js';
import { ErrorCodes, SpreadPipeError, errorMessage } from './errors.js';
import { CUR_MAGIC, FRAME, MAX_RECORD, READ_CHUNK, SEG_HEADER, SEG_MAGIC, SEG_RE, WRITE_CHUNK, frameCrc, parseFrame, readU64, segName, writeU64 } from './spool-format.js';
import { lockSpool, unlockSpool } from './spool-lock.js';
import { intOption } from './options.js';

export { MAX_RECORD } from './spool-format.js';

/** @default 256 MiB */
export const DEFAULT_SPOOL_MAX = 256 * 1024 * 1024;
/** Largest segment file; smaller when the bound is small (an eighth of it). @default 16 MiB */
export const DEFAULT_SEGMENT_BYTES = 16 * 1024 * 1024;
/** Records kept in memory as well, so a short backlog is not read back from disk. @default 8 MiB */
export const DEFAULT_SPOOL_MEMORY = 8 * 1024 * 1024;
/** ms between fdatasync calls while records are being written. @default 1000 */
export const DEFAULT_SYNC_INTERVAL = 1000;
/** Acknowledged records between cursor writes. Must stay well under dedup's RECEIVER_WINDOW minus the ack window. @default 1024 */
export const DEFAULT_CURSOR_EVERY = 1024;

export interface SpoolOptions {
  /** @default 256 MiB */
  maxBytes?: number;
  /** @default min(16 MiB, maxBytes / 8), at least 64 KiB */
  segmentBytes?: number;
  /** @default 8 MiB */
  memoryBytes?: number;
  /** @default 1000 */
  syncInterval?: number;
  /** @default 1024 */
  cursorEvery?: number;
}

/** The smallest bound: four of the smallest segments. @default 256 KiB */
export const MIN_SPOOL_MAX = 4 * 64 * 1024;

/** Defaults filled and checked (OptionError, code INVALID_ARGUMENT). */
export function resolveSpoolOptions(o: SpoolOptions = {}): Required<SpoolOptions> {
  const maxBytes = intOption('maxBytes', o.maxBytes, DEFAULT_SPOOL_MAX, { min: MIN_SPOOL_MAX, unit: 'bytes' });
  return {
    maxBytes,
    segmentBytes: intOption('segmentBytes', o.segmentBytes, Math.max(64 * 1024, Math.min(DEFAULT_SEGMENT_BYTES, Math.floor(maxBytes / 8))), { min: 1, unit: 'bytes' }),
    memoryBytes: intOption('memoryBytes', o.memoryBytes, DEFAULT_SPOOL_MEMORY, { min: 0, unit: 'bytes' }),
    syncInterval: intOption('syncInterval', o.syncInterval, DEFAULT_SYNC_INTERVAL, { min: 0, unit: 'milliseconds' }),
    cursorEvery: intOption('cursorEvery', o.cursorEvery, DEFAULT_CURSOR_EVERY, { min: 1, unit: 'records' }),
  };
}

export interface SpoolRecord {
  readonly id: number;
  readonly data: Buffer;
  /** Opaque routing text stored with the record (the publisher's group list). */
  readonly route: string | undefined;
}

export interface SpoolStats {
  appended: number;
  /** Records deleted unread to stay under maxBytes. */
  dropped: number;
  /** Records deleted to stay under maxBytes after they were read but before they were acknowledged. */
  droppedUnacked: number;
  droppedBytes: number;
  /** Records skipped as torn or corrupt (CRC, length), or missing after a failed write. */
  corrupt: number;
  /** Bytes of a torn tail cut off at open. */
  tornBytes: number;
  writeErrors: number;
  readFromDisk: number;
}

export type SpoolEvent =
  | { type: 'drop'; records: number; unacked: number; bytes: number }
  | { type: 'corrupt'; file: string; records: number; reason: string }
  | { type: 'error'; message: string };

interface Segment {
  first: number;
  file: string;
  /** Bytes on disk (excluding what is still in the write buffer). */
  size: number;
}

interface Cached extends SpoolRecord {
  /** Segment and offset just past this record, where the reader stands after it. */
  seg: Segment;
  end: number;
}

export class Spool extends EventEmitter {
  readonly stats: SpoolStats = { appended: 0, dropped: 0, droppedUnacked: 0, droppedBytes: 0, corrupt: 0, tornBytes: 0, writeErrors: 0, readFromDisk: 0 };
  /** What meta.json held at open; change with setMeta(). */
  meta: Record<string, unknown>;
  private readonly maxBytes: number;
  private readonly segmentBytes: number;
  private readonly memoryBytes: number;
  private readonly cursorEvery: number;
  private segments: Segment[] = [];
  private fd = -1;
  private nextId = 0;
  private wbuf = Buffer.allocUnsafe(WRITE_CHUNK * 2);
  private wlen = 0;
  private flushScheduled = false;
  private needRoll = false;
  private diskBytes = 0;
  /** Reader: the next record to hand out. */
  private rId = 0;
  private rSeg: Segment | undefined;
  private rOff = 0;
  private rfd = -1;
  private rfdFile = '';
  private rbuf = Buffer.alloc(0);
  /** Records handed out point into rbuf: the next read needs a new one. */
  private rbufUsed = false;
  private cache: Cached[] = [];
  private cacheHead = 0;
  private cacheBytes = 0;
  /** Appends after the cache filled up are on disk only, until the reader catches up. */
  private cacheGap = false;
  private committed = 0;
  private persisted = -1;
  private readonly cursorFd: number;
  private syncTimer: NodeJS.Timeout | undefined;
  private dirty = false;
  private syncing = false;
  private closed = false;
  /** The write error last reported, until a write succeeds again. */
  private failing: string | undefined;

  private constructor(
    readonly dir: string,
    opts: SpoolOptions,
  ) {
    super();
    this.maxBytes = opts.maxBytes ?? DEFAULT_SPOOL_MAX;
    this.segmentBytes = opts.segmentBytes ?? Math.max(64 * 1024, Math.min(DEFAULT_SEGMENT_BYTES, Math.floor(this.maxBytes / 8)));
    this.memoryBytes = opts.memoryBytes ?? DEFAULT_SPOOL_MEMORY;
    this.cursorEvery = opts.cursorEvery ?? DEFAULT_CURSOR_EVERY;
    this.meta = this.readMeta();
    this.cursorFd = fs.openSync(path.join(dir, 'cursor'), fs.constants.O_RDWR | fs.constants.O_CREAT, 0o644);
    this.load();
    const interval = opts.syncInterval ?? DEFAULT_SYNC_INTERVAL;
    if (interval > 0) {
      this.syncTimer = setInterval(() => this.syncNow(), interval);
      this.syncTimer.unref();
    }
  }

  /** Open (creating it if needed) and lock a spool directory. Throws SPOOL_LOCKED or SPOOL. */
  static open(dir: string, options: SpoolOptions = {}): Spool {
    const opts = resolveSpoolOptions(options);
    try {
      // Not recursive: Node's recursive mkdir spins forever where a parent cannot hold directories
      // (/proc), and a parent the admin did not name is not ours to create.
      fs.mkdirSync(dir, { mode: 0o750 });
    } catch (e) {
      const code = (e as NodeJS.ErrnoException).code;
      if (code !== 'EEXIST') {
        const why = code === 'ENOENT' ? `its parent directory ${path.dirname(path.resolve(dir))} does not exist or cannot hold directories` : errorMessage(e);
        throw new SpreadPipeError(ErrorCodes.SPOOL, `cannot create spool directory ${dir}: ${why}`, { cause: e });
      }
      if (!fs.statSync(dir).isDirectory()) throw new SpreadPipeError(ErrorCodes.SPOOL, `cannot use ${dir} as the spool directory: it exists and is not a directory`);
    }
    lockSpool(dir);
    try {
      return new Spool(dir, opts);
    } catch (e) {
      unlockSpool(dir);
      if (e instanceof SpreadPipeError) throw e;
      throw new SpreadPipeError(ErrorCodes.SPOOL, `cannot open spool ${dir}: ${errorMessage(e)}`, { cause: e });
    }
  }

  /** Records appended and not yet handed out by read(). */
  get unread(): number {
    return this.nextId - this.rId;
  }

  /** Records appended and not yet acknowledged. */
  get unacked(): number {
    return this.nextId - this.committed;
  }

  /** Bytes in segment files plus the write buffer. */
  get bytes(): number {
    return this.diskBytes + this.wlen;
  }

  get segmentCount(): number {
    return this.segments.length;
  }

  /** Id the next append will get. */
  get nextRecordId(): number {
    return this.nextId;
  }

  /** First record not acknowledged (what the cursor file holds once written). */
  get cursor(): number {
    return this.committed;
  }

  /**
   * Append one record; returns its id. Written at the end of this event-loop
   * turn. The spool may keep `data` itself in memory: do not change it after.
   */
  append(data: Buffer, route?: string): number {
    if (this.closed) throw new SpreadPipeError(ErrorCodes.SPOOL, `spool ${this.dir} is closed`);
    const routeLen = route === undefined ? 0 : Buffer.byteLength(route, 'latin1');
    const payload = 1 + (route === undefined ? 0 : 2 + routeLen) + data.length;
    if (payload > MAX_RECORD) throw new SpreadPipeError(ErrorCodes.INVALID_ARGUMENT, `spool record of ${payload} bytes is over ${MAX_RECORD}`);
    const frameLen = FRAME + payload;
    const seg = this.segments[this.segments.length - 1]!;
    if (this.needRoll || (seg.size + this.wlen + frameLen > this.segmentBytes && seg.size + this.wlen > SEG_HEADER)) this.roll();
    if (this.bytes + frameLen > this.maxBytes) this.enforceBound(frameLen);
    if (this.wlen + frameLen > this.wbuf.length) {
      this.flush();
      if (frameLen > this.wbuf.length) this.wbuf = Buffer.allocUnsafe(frameLen);
    }
    const b = this.wbuf;
    const start = this.wlen;
    b.writeUInt32LE(payload, start);
    let q = start + FRAME;
    b[q++] = route === undefined ? 0 : 1;
    if (route !== undefined) {
      b.writeUInt16LE(routeLen, q);
      q += 2;
      q += b.write(route, q, 'latin1');
    }
    q += data.copy(b, q);
    b.writeUInt32LE(frameCrc(b, start, payload), start + 4);
    this.wlen = q;
    const id = this.nextId++;
    this.stats.appended++;
    const last = this.segments[this.segments.length - 1]!;
    if (!this.cacheGap && this.cacheBytes + data.length <= this.memoryBytes) {
      this.cache.push({ id, data, route, seg: last, end: last.size + this.wlen });
      this.cacheBytes += data.length;
    } else this.cacheGap = true;
    if (this.wlen >= WRITE_CHUNK) this.flush();
    else if (!this.flushScheduled) {
      this.flushScheduled = true;
      setImmediate(() => {
        this.flushScheduled = false;
        this.flush();
      });
    }
    return id;
  }

  /** Hand out up to `maxRecords` records (and about `maxBytes`) in order, from memory or disk. */
  read(maxRecords: number, maxBytes = Infinity): SpoolRecord[] {
    const out: SpoolRecord[] = [];
    let bytes = 0;
    while (out.length < maxRecords && bytes < maxBytes && this.rId < this.nextId) {
      let c = this.cache[this.cacheHead];
      while (c && c.id < this.rId) {
        this.takeCached();
        c = this.cache[this.cacheHead];
      }
      if (c && c.id === this.rId) {
        this.takeCached();
        out.push({ id: c.id, data: c.data, route: c.route });
        bytes += c.data.length;
        this.rSeg = c.seg;
        this.rOff = c.end;
        this.rId++;
        continue;
      }
      const until = c ? c.id : this.nextId;
      const before = this.rId;
      const got = this.readDisk(maxRecords - out.length, maxBytes - bytes, until);
      if (got.length === 0 && this.rId === before) {
        // Nothing readable where records should be (a failed write): skip to where data resumes.
        this.skipTo(until);
        continue;
      }
      for (const r of got) {
        out.push(r);
        bytes += r.data.length;
      }
    }
    if (this.rId >= this.nextId && this.cacheHead >= this.cache.length) this.cacheGap = false;
    return out;
  }

  /**
   * Every record below `id` is acknowledged. Segments wholly below it are
   * deleted; the cursor file is written every `cursorEvery` records.
   */
  commit(id: number): void {
    if (id <= this.committed) return;
    this.committed = Math.min(id, this.nextId);
    while (this.segments.length > 1 && this.segments[1]!.first <= this.committed) this.removeOldest();
    if (this.committed - this.persisted >= this.cursorEvery) this.writeCursor();
  }

  /**
   * Read again from the oldest unacknowledged record (after a restart of the
   * consumer's session, when it keeps no copy of what it had read).
   */
  rewind(): void {
    this.flush();
    const target = Math.max(this.committed, this.segments[0]!.first);
    this.cache = [];
    this.cacheHead = 0;
    this.cacheBytes = 0;
    this.cacheGap = this.nextId > target;
    this.position(target);
  }

  /** Write the buffered records now. */
  flush(): void {
    if (this.wlen === 0 || this.fd < 0) return;
    const seg = this.segments[this.segments.length - 1]!;
    const n = this.wlen;
    this.wlen = 0;
    try {
      let off = 0;
      while (off < n) off += fs.writeSync(this.fd, this.wbuf, off, n - off);
      seg.size += n;
      this.diskBytes += n;
      this.dirty = true;
      this.failing = undefined;
    } catch (e) {
      // What did not reach the file is missing there; the next append starts a new segment so
      // that ids stay right, and the reader counts the gap as corrupt.
      this.stats.writeErrors++;
      this.needRoll = true;
      this.resyncSize(seg);
      this.fail(`cannot write spool ${seg.file}: ${errorMessage(e)}`);
    }
    if (this.wbuf.length > WRITE_CHUNK * 2) this.wbuf = Buffer.allocUnsafe(WRITE_CHUNK * 2);
  }

  /** Replace meta.json (atomically; rare: once per new --ack stream). */
  setMeta(meta: Record<string, unknown>): void {
    const file = path.join(this.dir, 'meta.json');
    const tmp = `${file}.tmp`;
    const fd = fs.openSync(tmp, 'w', 0o644);
    try {
      fs.writeSync(fd, `${JSON.stringify(meta)}\n`);
      fs.fdatasyncSync(fd);
    } finally {
      fs.closeSync(fd);
    }
    fs.renameSync(tmp, file);
    this.syncDir();
    this.meta = meta;
  }

  /** Flush, sync, write the cursor, unlock. Segments wholly acknowledged are deleted. */
  close(): void {
    if (this.closed) return;
    this.flush();
    this.closed = true;
    clearInterval(this.syncTimer);
    if (this.fd >= 0) {
      try {
        fs.fdatasyncSync(this.fd);
      } catch {
        // Reported by the writes themselves.
      }
      fs.closeSync(this.fd);
      this.fd = -1;
    }
    if (this.rfd >= 0) fs.closeSync(this.rfd);
    this.rfd = -1;
    if (this.committed >= this.nextId) {
      // Everything acknowledged: leave an empty spool; the cursor keeps the next id.
      for (const s of this.segments) fs.rmSync(path.join(this.dir, s.file), { force: true });
      this.segments = [];
      this.diskBytes = 0;
    }
    this.writeCursor();
    try {
      fs.fdatasyncSync(this.cursorFd);
    } catch {
      // Best effort; an older cursor only means more repeats.
    }
    fs.closeSync(this.cursorFd);
    unlockSpool(this.dir);
  }

  // ---- opening -----------------------------------------------------------

  private readMeta(): Record<string, unknown> {
    try {
      const v: unknown = JSON.parse(fs.readFileSync(path.join(this.dir, 'meta.json'), 'utf8'));
      return v && typeof v === 'object' ? (v as Record<string, unknown>) : {};
    } catch {
      return {};
    }
  }

  private readCursor(): number {
    const b = Buffer.alloc(24);
    const n = fs.readSync(this.cursorFd, b, 0, 24, 0);
    if (n < 24 || !b.subarray(0, 8).equals(CUR_MAGIC) || crc32(b, 0, 16) !== b.readUInt32LE(16)) return -1;
    return readU64(b, 8);
  }

  private load(): void {
    const files = fs
      .readdirSync(this.dir)
      .filter((f) => SEG_RE.test(f))
      .sort();
    for (const file of files) {
      const first = Number(SEG_RE.exec(file)![1]);
      const size = fs.statSync(path.join(this.dir, file)).size;
      this.segments.push({ first, file, size });
    }
    const cursor = this.readCursor();
    // The newest segment may end in a torn record: find its last whole one, cut the rest.
    while (this.segments.length) {
      const last = this.segments[this.segments.length - 1]!;
      const count = this.scanLast(last);
      if (count >= 0) {
        this.nextId = last.first + count;
        break;
      }
      fs.rmSync(path.join(this.dir, last.file), { force: true });
      this.segments.pop();
    }
    // All acknowledged and deleted at the last close: the cursor alone keeps the next id.
    this.nextId = Math.max(this.nextId, cursor);
    for (const s of this.segments) this.diskBytes += s.size;
    if (this.segments.length === 0 || this.segments[this.segments.length - 1]!.size >= this.segmentBytes) this.newSegment();
    else this.fd = fs.openSync(path.join(this.dir, this.segments[this.segments.length - 1]!.file), 'a');
    this.committed = Math.max(cursor, this.segments[0]!.first);
    if (this.committed > this.nextId) this.committed = this.nextId;
    this.persisted = cursor;
    this.position(this.committed);
    this.syncDir();
  }

  /** Validate the last segment; cut a torn tail. Returns its record count, or -1 if its header is unusable. */
  private scanLast(seg: Segment): number {
    const file = path.join(this.dir, seg.file);
    const buf = fs.readFileSync(file);
    if (buf.length < SEG_HEADER || !buf.subarray(0, 8).equals(SEG_MAGIC) || readU64(buf, 8) !== seg.first) return -1;
    let off = SEG_HEADER;
    let count = 0;
    for (;;) {
      const r = parseFrame(buf, off, buf.length);
      if (r === undefined || r === 'bad') break;
      off = r.end;
      count++;
    }
    if (off < buf.length) {
      this.stats.tornBytes += buf.length - off;
      fs.truncateSync(file, off);
      this.emit('event', { type: 'corrupt', file: seg.file, records: 0, reason: `cut a torn tail of ${buf.length - off} bytes` } satisfies SpoolEvent);
      seg.size = off;
    }
    return count;
  }

  private newSegment(): void {
    const first = this.nextId;
    const file = segName(first);
    const header = Buffer.alloc(SEG_HEADER);
    SEG_MAGIC.copy(header, 0);
    writeU64(header, 8, first);
    const fd = fs.openSync(path.join(this.dir, file), 'w', 0o644);
    fs.writeSync(fd, header);
    this.fd = fd;
    this.segments.push({ first, file, size: SEG_HEADER });
    this.diskBytes += SEG_HEADER;
  }

  /** Close the full segment (synced in the background) and start the next. */
  private roll(): void {
    this.flush();
    const old = this.fd;
    this.fd = -1;
    this.needRoll = false;
    if (old >= 0) fs.fdatasync(old, () => fs.close(old, () => {}));
    try {
      this.newSegment();
      this.failing = undefined;
      this.syncDir();
    } catch (e) {
      this.needRoll = true;
      this.stats.writeErrors++;
      this.fail(`cannot start a spool segment in ${this.dir}: ${errorMessage(e)}`);
      throw new SpreadPipeError(ErrorCodes.SPOOL, `cannot start a spool segment in ${this.dir}: ${errorMessage(e)}`, { cause: e });
    }
  }

  // ---- bound and acknowledgement ----------------------------------------

  /** Delete oldest segments until `incoming` more bytes fit (the newest segment is kept). */
  private enforceBound(incoming: number): void {
    while (this.bytes + incoming > this.maxBytes) {
      if (this.segments.length === 1) {
        if (this.segments[0]!.size + this.wlen <= SEG_HEADER) return;
        this.roll();
      }
      const seg = this.segments[0]!;
      const end = this.segments[1]!.first;
      const unread = Math.max(0, end - Math.max(seg.first, this.rId));
      const unacked = Math.max(0, Math.min(end, this.rId) - Math.max(seg.first, this.committed));
      this.removeOldest();
      if (unread + unacked > 0) {
        this.stats.dropped += unread;
        this.stats.droppedUnacked += unacked;
        this.stats.droppedBytes += seg.size;
        this.emit('event', { type: 'drop', records: unread, unacked, bytes: seg.size } satisfies SpoolEvent);
      }
    }
  }

  private removeOldest(): void {
    const seg = this.segments.shift()!;
    const next = this.segments[0]!;
    fs.rmSync(path.join(this.dir, seg.file), { force: true });
    this.diskBytes -= seg.size;
    if (this.rfdFile === seg.file) {
      fs.closeSync(this.rfd);
      this.rfd = -1;
      this.rfdFile = '';
    }
    while (this.cacheHead < this.cache.length && this.cache[this.cacheHead]!.id < next.first) this.takeCached();
    if (this.rId < next.first) this.position(next.first);
  }

  /**
   * Report a write error once while it lasts: a broken disk fails every
   * append, and one line per line read would flood the log. Every record lost
   * is still counted (by the caller, or as corrupt when read).
   */
  private fail(message: string): void {
    if (message === this.failing) return;
    this.failing = message;
    this.emit('event', { type: 'error', message } satisfies SpoolEvent);
  }

  private writeCursor(): void {
    const b = Buffer.alloc(24);
    CUR_MAGIC.copy(b, 0);
    writeU64(b, 8, this.committed);
    b.writeUInt32LE(crc32(b, 0, 16), 16);
    try {
      // 24 bytes written in place at offset 0: one sector, no rename needed.
      fs.writeSync(this.cursorFd, b, 0, 24, 0);
      this.persisted = this.committed;
    } catch (e) {
      this.stats.writeErrors++;
      this.fail(`cannot write spool cursor: ${errorMessage(e)}`);
    }
  }

  private syncNow(): void {
    if (this.committed !== this.persisted) this.writeCursor();
    if (!this.dirty || this.syncing || this.fd < 0) return;
    this.dirty = false;
    this.syncing = true;
    fs.fdatasync(this.fd, () => {
      this.syncing = false;
    });
  }

  private syncDir(): void {
    try {
      const fd = fs.openSync(this.dir, 'r');
      try {
        fs.fsyncSync(fd);
      } finally {
        fs.closeSync(fd);
      }
    } catch {
      // Not every filesystem syncs directories; the data files are synced anyway.
    }
  }

  private resyncSize(seg: Segment): void {
    try {
      const size = fs.fstatSync(this.fd).size;
      this.diskBytes += size - seg.size;
      seg.size = size;
    } catch {
      // Keep the old size; reads stop at the first bad record anyway.
    }
  }

  // ---- reading -----------------------------------------------------------

  private takeCached(): void {
    const c = this.cache[this.cacheHead]!;
    this.cache[this.cacheHead++] = undefined as unknown as Cached;
    this.cacheBytes -= c.data.length;
    if (this.cacheHead >= 4096 && this.cacheHead * 2 >= this.cache.length) {
      this.cache = this.cache.slice(this.cacheHead);
      this.cacheHead = 0;
    }
  }

  /** Put the reader at record `id` (scanning its segment from the start). */
  private position(id: number): void {
    let i = this.segments.length - 1;
    while (i > 0 && this.segments[i]!.first > id) i--;
    const seg = this.segments[i]!;
    this.rSeg = seg;
    this.rOff = SEG_HEADER;
    this.rId = seg.first;
    if (id > seg.first) this.readDisk(id - seg.first, Infinity, id, true);
    if (this.rId < id) this.rId = id;
  }

  private skipTo(id: number): void {
    this.stats.corrupt += id - this.rId;
    const i = this.segments.findIndex((s) => s.first >= id);
    if (i >= 0 && this.segments[i]!.first === id) {
      this.rSeg = this.segments[i];
      this.rOff = SEG_HEADER;
    }
    this.rId = id;
  }

  /** Read records from disk at the reader, stopping before id `until`. */
  private readDisk(maxRecords: number, maxBytes: number, until: number, discard = false): SpoolRecord[] {
    const out: SpoolRecord[] = [];
    let bytes = 0;
    const cur = this.segments[this.segments.length - 1]!;
    while (out.length < maxRecords && bytes < maxBytes && this.rId < until) {
      const seg = this.rSeg!;
      if (seg === cur && this.wlen > 0) this.flush();
      if (this.rOff >= seg.size) {
        const i = this.segments.indexOf(seg);
        const next = this.segments[i + 1];
        if (!next) break;
        if (next.first > this.rId) {
          this.stats.corrupt += next.first - this.rId;
          this.emit('event', { type: 'corrupt', file: seg.file, records: next.first - this.rId, reason: 'records missing at the end' } satisfies SpoolEvent);
        }
        this.rSeg = next;
        this.rOff = SEG_HEADER;
        this.rId = next.first;
        continue;
      }
      if (this.rfdFile !== seg.file) {
        if (this.rfd >= 0) fs.closeSync(this.rfd);
        this.rfd = fs.openSync(path.join(this.dir, seg.file), 'r');
        this.rfdFile = seg.file;
      }
      const want = Math.min(seg.size - this.rOff, READ_CHUNK);
      // A fresh buffer per read: the records handed out are views into it.
      if (this.rbuf.length < FRAME + MAX_RECORD || this.rbufUsed) {
        this.rbuf = Buffer.allocUnsafe(Math.max(want, discard ? 0 : READ_CHUNK));
        this.rbufUsed = false;
      }
      const got = fs.readSync(this.rfd, this.rbuf, 0, Math.min(want, this.rbuf.length), this.rOff);
      let off = 0;
      let progressed = false;
      while (out.length < maxRecords && bytes < maxBytes && this.rId < until) {
        const r = parseFrame(this.rbuf, off, got);
        if (r === undefined) break;
        if (r === 'bad') {
          off = -1;
          break;
        }
        if (!discard) {
          this.rbufUsed = true;
          const rec: SpoolRecord = { id: this.rId, data: r.data, route: r.route };
          out.push(rec);
          bytes += rec.data.length;
          this.stats.readFromDisk++;
        }
        this.rId++;
        off = r.end;
        progressed = true;
      }
      if (off === -1 || (!progressed && (got < FRAME || this.rOff + got >= seg.size))) {
        // Corrupt record, or a record running past the end of the segment: skip the rest of it.
        const i = this.segments.indexOf(seg);
        const next = this.segments[i + 1];
        const missing = next ? next.first - this.rId : this.nextId - this.rId;
        this.stats.corrupt += missing;
        this.emit('event', { type: 'corrupt', file: seg.file, records: missing, reason: 'bad record (CRC or length)' } satisfies SpoolEvent);
        if (!next) {
          this.rOff = seg.size;
          this.rId = this.nextId;
          break;
        }
        this.rSeg = next;
        this.rOff = SEG_HEADER;
        this.rId = next.first;
        continue;
      }
      this.rOff += off;
    }
    return out;
  }
}
