/**
 * --spool DIR: an append-only, bounded queue of records on disk that
 * survives SIGTERM, SIGKILL and restarts of spread-pipe.
 *
 * Layout of DIR:
 *   NNNNNNNNNNNNNNNN.spool  segments, named by the id of their first record;
 *                           a 16-byte header (magic, first id), then records
 *                           framed as [u32 length][u32 check][payload]
 *                           (record-frame.ts; the payload: spool/format.ts).
 *                           Format 2 ("spspool2", written): the check is the
 *                           XXH32 of the payload seeded with length XOR the
 *                           first id; format 1 ("spspool1", spread-pipe 0.1.0,
 *                           read and never appended to): the CRC-32 of length
 *                           and payload. "spspoolR": format 2 written in the
 *                           file of an acknowledged segment; past its last
 *                           record, until cut, that file's old bytes
 *   spare.reuse             an acknowledged segment's file, to be the next
 *                           segment (spool/segments.ts); deleted at close and open
 *   cursor                  id of the first record not yet acknowledged (24 bytes, with its own CRC; spool/cursor.ts)
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
 * loses at most that interval. A torn or corrupt record (its check does not
 * match, its length runs past the end) ends what is read of that segment: it
 * is never returned, the tail of the last segment is cut off at open, and
 * the records skipped are counted (spool/writer.ts cuts, spool/reader.ts skips).
 *
 * Bounded: past `maxBytes`, whole oldest segments are deleted and the records
 * in them that were never read are counted as dropped.
 *
 * At-least-once: the cursor is written (in place, 24 bytes) when the
 * acknowledged id has moved by `cursorEvery` records and at close. After a
 * crash a restart reads again from the cursor, so what may repeat is at most
 * the records acknowledged since the last cursor write (< cursorEvery) plus
 * those read but not acknowledged; with --ack these keep their ids and
 * receivers drop them. A record reaches the file before it is handed out
 * (SpoolQueue), but after a power loss the file may lack ids that were sent:
 * `crashed` says the last user never closed the spool, and the publisher
 * sends what comes after the spool's records under a new stream.
 */
import { EventEmitter } from 'node:events';
import fs from 'node:fs';
import path from 'node:path';
import { ErrorCodes, SpreadPipeError, errorMessage } from './errors.js';
import { CursorFile } from './spool/cursor.js';
import { SEG_HEADER } from './spool/format.js';
import { lockSpool, unlockSpool } from './spool/lock.js';
import { readMeta, writeMeta } from './spool/meta.js';
import { SegmentReader } from './spool/reader.js';
import { SegmentList, syncDir } from './spool/segments.js';
import { type SpoolEvent, type SpoolRecord, type SpoolSink, type SpoolStats, newStats } from './spool/types.js';
import { SegmentWriter } from './spool/writer.js';
import { intOption } from './options.js';

export { MAX_RECORD } from './spool/format.js';
export type { SpoolEvent, SpoolRecord, SpoolStats } from './spool/types.js';

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

const LF = Buffer.from('\n');

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

/**
 * The facade over the parts in spool/: the writer (segments, buffer, sync),
 * the reader (cache, disk, skipping what is unreadable), the cursor; it adds
 * the bound (retention), the deletion of acknowledged segments, and meta.json.
 */
export class Spool extends EventEmitter {
  readonly stats: SpoolStats = newStats();
  /** What meta.json held at open; change with setMeta(). */
  meta: Record<string, unknown>;
  /**
   * The last user did not close the spool (a crash, SIGKILL, a power loss):
   * it may have sent records with ids from `nextRecordId` on that never
   * reached the file (appended in its last turn, or lost with the page cache),
   * so those ids may be known to receivers already (see Reliable.rotateFrom).
   */
  readonly crashed: boolean;
  private readonly maxBytes: number;
  private readonly segmentBytes: number;
  private readonly segments: SegmentList;
  private readonly writer: SegmentWriter;
  private readonly reader: SegmentReader;
  private readonly cursorFile: CursorFile;
  private syncTimer: NodeJS.Timeout | undefined;
  private closed = false;
  /** The write error last reported, until a write succeeds again. */
  private failing: string | undefined;
  private readonly sink: SpoolSink = {
    stats: this.stats,
    event: (e) => this.emit('event', e),
    fail: (message) => this.fail(message),
    ok: () => (this.failing = undefined),
  };

  private constructor(
    readonly dir: string,
    opts: Required<SpoolOptions>,
    crashed: boolean,
  ) {
    super();
    this.crashed = crashed;
    this.maxBytes = opts.maxBytes;
    const segmentBytes = (this.segmentBytes = opts.segmentBytes);
    this.meta = readMeta(dir);
    this.cursorFile = new CursorFile(dir, opts.cursorEvery, this.sink);
    this.segments = SegmentList.load(dir);
    this.segments.onDeleteError = (message) => this.fail(message);
    this.writer = new SegmentWriter(this.segments, segmentBytes, this.sink, this.cursorFile.stored);
    this.cursorFile.committed = Math.min(Math.max(this.cursorFile.stored, this.segments.oldest.first), this.writer.nextId);
    this.reader = new SegmentReader(this.segments, this.writer, this.sink, opts.memoryBytes);
    this.reader.position(this.cursorFile.committed);
    syncDir(dir);
    const interval = opts.syncInterval;
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
    const crashed = lockSpool(dir);
    try {
      return new Spool(dir, opts, crashed);
    } catch (e) {
      unlockSpool(dir);
      if (e instanceof SpreadPipeError) throw e;
      throw new SpreadPipeError(ErrorCodes.SPOOL, `cannot open spool ${dir}: ${errorMessage(e)}`, { cause: e });
    }
  }

  /** Records appended and not yet handed out by read(). */
  get unread(): number {
    return this.writer.nextId - this.reader.next;
  }

  /** Records appended and not yet acknowledged. */
  get unacked(): number {
    return this.writer.nextId - this.cursorFile.committed;
  }

  /** Bytes in segment files plus the write buffer. */
  get bytes(): number {
    return this.segments.bytes + this.writer.pending;
  }

  get segmentCount(): number {
    return this.segments.length;
  }

  /** Id the next append will get. */
  get nextRecordId(): number {
    return this.writer.nextId;
  }

  /** Id of the next record read() hands out. */
  get readNext(): number {
    return this.reader.next;
  }

  /** Id of the oldest record the spool still holds: records below it are acknowledged, or were dropped to stay in the bound. */
  get oldestId(): number {
    return this.segments.oldest.first;
  }

  /** First record not acknowledged (what the cursor file holds once written). */
  get cursor(): number {
    return this.cursorFile.committed;
  }

  /**
   * Append one record; returns its id. Written at the end of this event-loop
   * turn. The spool may keep `data` itself in memory: do not change it after.
   */
  append(data: Buffer, route?: string): number {
    this.makeRoomFor(data.length, route);
    const id = this.writer.write(data, route);
    return this.appended(id, this.reader.caching ? data : undefined, route);
  }

  /**
   * append() of `prefix + line + LF`, framed straight into the write buffer
   * (no copy of the line made first). `line` may be reused afterwards.
   */
  appendLine(prefix: Uint8Array, line: Uint8Array, route?: string): number {
    this.makeRoomFor(prefix.length + line.length + 1, route);
    const id = this.writer.writeLine(prefix, line, route);
    // Only a spool that keeps its own copies needs the line as one buffer (SpoolQueue keeps its own).
    return this.appended(id, this.reader.caching ? Buffer.concat([prefix, line, LF]) : undefined, route);
  }

  /**
   * The user keeps what it appends in its own memory and takes it from there
   * (SpoolQueue): the spool keeps no second copy; read() reads the disk.
   */
  keepInMemory(on: boolean): void {
    if (!on) this.reader.noCache();
  }

  /** The user took records below `to` from its own copies: read() goes on from `to`. */
  advanceRead(to: number): void {
    this.reader.advance(Math.min(to, this.writer.nextId));
  }

  private makeRoomFor(dataLen: number, route: string | undefined): void {
    if (this.closed) throw new SpreadPipeError(ErrorCodes.SPOOL, `spool ${this.dir} is closed`);
    const frameLen = this.writer.reserve(dataLen, route);
    if (this.segments.onDisk + frameLen > this.maxBytes) this.makeRoom(frameLen);
  }

  private appended(id: number, data: Buffer | undefined, route: string | undefined): number {
    this.stats.appended++;
    if (data) this.reader.appended(id, data, route, this.segments.newest, this.writer.end);
    this.writer.schedule();
    return id;
  }

  /** Hand out up to `maxRecords` records (and about `maxBytes`) in order, from memory or disk. */
  read(maxRecords: number, maxBytes = Infinity): SpoolRecord[] {
    return this.reader.read(maxRecords, maxBytes);
  }

  /**
   * Every record below `id` is acknowledged. Segments wholly below it are
   * deleted; the cursor file is written every `cursorEvery` records.
   */
  commit(id: number): void {
    const c = this.cursorFile;
    if (id <= c.committed) return;
    c.committed = Math.min(id, this.writer.nextId);
    // An acknowledged segment's file is kept to be written again while the bound has room for it.
    while (this.segments.length > 1 && this.segments.at(1)!.first <= c.committed) this.removeOldest(this.segments.onDisk + this.segmentBytes <= this.maxBytes, true);
    c.writeIfDue();
  }

  /**
   * Read again from the oldest unacknowledged record (after a restart of the
   * consumer's session, when it keeps no copy of what it had read).
   */
  rewind(): void {
    this.writer.flush();
    this.reader.rewind(Math.max(this.cursorFile.committed, this.segments.oldest.first));
  }

  /** Write the buffered records now. */
  flush(): void {
    this.writer.flush();
  }

  /** Replace meta.json (atomically; rare: once per new --ack stream). */
  setMeta(meta: Record<string, unknown>): void {
    writeMeta(this.dir, meta);
    this.meta = meta;
  }

  /** Flush, sync, write the cursor, unlock. Segments wholly acknowledged are deleted. */
  close(): void {
    if (this.closed) return;
    this.closed = true;
    clearInterval(this.syncTimer);
    // Everything acknowledged: leave an empty spool (the cursor keeps the next id), its segments not synced
    // first: the kernel then drops their dirty pages instead of writing out what is deleted a moment later
    // (up to a segment, 16 MiB, at every exit; Apache restarts piped loggers on each graceful restart).
    const acked = this.cursorFile.committed >= this.writer.nextId;
    this.writer.close(!acked);
    this.reader.close();
    this.segments.settleDeletes();
    // A spool at rest holds no spare file: its room is the disk's again.
    this.segments.dropSpare();
    if (acked) this.segments.removeAll();
    this.cursorFile.write();
    this.cursorFile.close();
    unlockSpool(this.dir);
  }

  /** Retention: delete oldest segments until `incoming` more bytes fit (the newest segment is kept), counting what is lost. */
  private makeRoom(incoming: number): void {
    // Files still being deleted hold their room until they are gone: wait for them rather than drop records.
    this.segments.settleDeletes();
    while (this.segments.onDisk + incoming > this.maxBytes) {
      // Room that holds no record goes first. (The old bytes of a file used again need no such step: it is
      // kept only with a segment's room to spare, and what it held only shrinks as it is written.)
      if (this.segments.spareBytes) {
        this.segments.dropSpare();
        continue;
      }
      if (this.segments.length === 1) {
        if (this.segments.oldest.size + this.writer.pending <= SEG_HEADER) return;
        this.writer.roll();
      }
      const seg = this.segments.oldest;
      const end = this.segments.at(1)!.first;
      const rId = this.reader.next;
      const unread = Math.max(0, end - Math.max(seg.first, rId));
      const unacked = Math.max(0, Math.min(end, rId) - Math.max(seg.first, this.cursorFile.committed));
      this.removeOldest();
      if (unread + unacked > 0) {
        this.stats.dropped += unread;
        this.stats.droppedUnacked += unacked;
        this.stats.droppedBytes += seg.size;
        this.emit('event', { type: 'drop', records: unread, unacked, bytes: seg.size } satisfies SpoolEvent);
      }
    }
  }

  private removeOldest(keep = false, later = false): void {
    this.reader.removed(this.segments.removeOldest(keep, later));
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

  private syncNow(): void {
    this.cursorFile.writeIfMoved();
    this.writer.sync();
  }
}
