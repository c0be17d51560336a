/**
 * The spool's read end: records handed out in id order, from memory while
 * the backlog fits the cache (the records just appended), from the segment
 * files otherwise. Whatever cannot be read (the end of a segment short of
 * the next one's first id, a bad record, the gap a failed write left) is
 * passed by one routine, skipTo(), that counts the records it skips.
 */
import fs from 'node:fs';
import { FRAME_HEADER, type FrameCheck } from '../record-frame.js';
import { MAX_RECORD, SEG_HEADER, headerCheck, parseRecord } from './format.js';
import type { Segment, SegmentList } from './segments.js';
import type { SpoolRecord, SpoolSink } from './types.js';

/** Bytes read from a segment at a time. */
export const READ_CHUNK = 1024 * 1024;

/** What the reader needs of the writer: where the records end, and their bytes on disk. */
export interface WriteEnd {
  readonly nextId: number;
  readonly pending: number;
  flush(): void;
}

interface Cached extends SpoolRecord {
  /** Segment and offset just past this record, where the reader stands after it. */
  seg: Segment;
  end: number;
}

/** The records appended last, in order, up to a byte budget. */
class RecordCache {
  private items: Cached[] = [];
  private head = 0;
  private bytes = 0;
  /** Appends after the cache filled up are on disk only, until the reader catches up. */
  gap = false;

  constructor(public budget: number) {}

  get empty(): boolean {
    return this.head >= this.items.length;
  }

  push(id: number, data: Buffer, route: string | undefined, seg: Segment, end: number): void {
    if (!this.gap && this.bytes + data.length <= this.budget) {
      this.items.push({ id, data, route, seg, end });
      this.bytes += data.length;
    } else this.gap = true;
  }

  peek(): Cached | undefined {
    return this.items[this.head];
  }

  /** Drop the first record. */
  take(): void {
    const c = this.items[this.head]!;
    this.items[this.head++] = undefined as unknown as Cached;
    this.bytes -= c.data.length;
    if (this.head >= 4096 && this.head * 2 >= this.items.length) {
      this.items = this.items.slice(this.head);
      this.head = 0;
    }
  }

  clear(gap: boolean): void {
    this.items = [];
    this.head = 0;
    this.bytes = 0;
    this.gap = gap;
  }
}

/** skipTo()'s event reasons (a gap is reported by the failed write itself). */
const SKIP_REASONS = {
  end: 'records missing at the end',
  bad: 'bad record (check or length)',
  header: 'segment header of an unknown format or of another segment',
} as const;

export class SegmentReader {
  /** The next record to hand out, and where it is on disk (seg undefined: not looked up since advance()). */
  private id = 0;
  private seg: Segment | undefined;
  private off = 0;
  private fd = -1;
  private fdFile = '';
  private buf = Buffer.alloc(0);
  /** Records handed out point into buf: the next read needs a new one. */
  private bufUsed = false;
  /**
   * What buf holds: bytes [bufStart, bufStart + bufLen) of segment file
   * bufFile. A read asks for 512 records (~128 KiB) and a chunk is 1 MiB:
   * the next read parses on in it rather than reading it again (#16).
   */
  private bufFile = '';
  private bufStart = 0;
  private bufLen = 0;
  private readonly cache: RecordCache;

  constructor(
    private readonly segments: SegmentList,
    private readonly writer: WriteEnd,
    private readonly sink: SpoolSink,
    memoryBytes: number,
  ) {
    this.cache = new RecordCache(memoryBytes);
  }

  /** Id of the next record read() hands out. */
  get next(): number {
    return this.id;
  }

  /** Whether appended() keeps records (a user that keeps its own copy turns it off: keepInMemory(false)). */
  get caching(): boolean {
    return this.cache.budget > 0;
  }

  /** A record just appended, ending at `end` in `seg`: kept in memory while the budget allows. */
  appended(id: number, data: Buffer, route: string | undefined, seg: Segment, end: number): void {
    this.cache.push(id, data, route, seg, end);
  }

  /** Keep no records in memory from now on (what is cached is dropped: read from disk if needed). */
  noCache(): void {
    this.cache.clear(this.writer.nextId > this.id);
    this.cache.budget = 0;
  }

  /**
   * The user took records up to `to` from its own memory: go past them
   * without reading. Where that is on disk is looked up only if the disk is
   * read again (the common case: never).
   */
  advance(to: number): void {
    if (to <= this.id) return;
    this.id = to;
    this.seg = undefined;
  }

  /** Hand out up to `maxRecords` records (and about `maxBytes`) in order, from memory or disk. */
  read(maxRecords: number, maxBytes = Infinity): SpoolRecord[] {
    const out: SpoolRecord[] = [];
    let bytes = 0;
    while (out.length < maxRecords && bytes < maxBytes && this.id < this.writer.nextId) {
      let c = this.cache.peek();
      while (c && c.id < this.id) {
        this.cache.take();
        c = this.cache.peek();
      }
      if (c && c.id === this.id) {
        this.cache.take();
        out.push({ id: c.id, data: c.data, route: c.route });
        bytes += c.data.length;
        this.seg = c.seg;
        this.off = c.end;
        this.id++;
        continue;
      }
      const until = c ? c.id : this.writer.nextId;
      if (this.seg === undefined) this.position(this.id);
      const before = this.id;
      const got = this.readDisk(maxRecords - out.length, maxBytes - bytes, until);
      if (got.length === 0 && this.id === before) {
        // Nothing readable where records should be (a failed write): on to where data resumes.
        this.skipTo(until, this.segments.startingAt(until), 'gap');
        continue;
      }
      for (const r of got) {
        out.push(r);
        bytes += r.data.length;
      }
    }
    if (this.id >= this.writer.nextId && this.cache.empty) this.cache.gap = false;
    return out;
  }

  /** Read again from record `id`, from disk (after a restart of the consumer's session). */
  rewind(id: number): void {
    this.cache.clear(this.writer.nextId > id);
    this.position(id);
  }

  /** The oldest segment, `removed`, was deleted: what was not read of it is gone. */
  removed(removed: Segment): void {
    const next = this.segments.oldest;
    if (this.fdFile === removed.file) {
      // In the background: the last close of a file being deleted is where the filesystem frees its blocks.
      fs.close(this.fd, () => {});
      this.fd = -1;
      this.fdFile = '';
    }
    for (let c = this.cache.peek(); c && c.id < next.first; c = this.cache.peek()) this.cache.take();
    if (this.id < next.first) this.position(next.first);
  }

  /** Put the reader at record `id` (scanning its segment from the start). */
  position(id: number): void {
    const seg = this.segments.holding(id);
    this.seg = seg;
    this.off = SEG_HEADER;
    this.id = seg.first;
    if (id > seg.first) this.readDisk(id - seg.first, Infinity, id, true);
    if (this.id < id) this.id = id;
  }

  close(): void {
    if (this.fd >= 0) fs.closeSync(this.fd);
    this.fd = -1;
  }

  /**
   * The one way past records that cannot be read: on to record `to`, at the
   * start of segment `next` (else at the end of this one), counting the
   * records skipped as corrupt. `why`: the end of a segment (an event only if
   * records are missing there), a bad record or an unusable segment header
   * (always an event), or the gap a failed write left (reported when the
   * write failed).
   */
  private skipTo(to: number, next: Segment | undefined, why: 'end' | 'bad' | 'header' | 'gap'): void {
    const seg = this.seg!;
    const missing = to - this.id;
    if (missing > 0) this.sink.stats.corrupt += missing;
    if (why === 'bad' || why === 'header' || (why === 'end' && missing > 0)) {
      this.sink.event({ type: 'corrupt', file: seg.file, records: missing, reason: SKIP_REASONS[why] });
    }
    if (next) {
      this.seg = next;
      this.off = SEG_HEADER;
    } else this.off = Math.max(this.off, seg.size);
    this.id = to;
  }

  /** How the frames of `seg` (open at this.fd) are checked, by its header; undefined if it is unusable. */
  private readHeader(seg: Segment): FrameCheck | undefined {
    const h = Buffer.alloc(SEG_HEADER);
    const n = fs.readSync(this.fd, h, 0, SEG_HEADER, 0);
    return headerCheck(h.subarray(0, n), seg.first);
  }

  /** Read records from disk at the reader, stopping before id `until`. */
  private readDisk(maxRecords: number, maxBytes: number, until: number, discard = false): SpoolRecord[] {
    const out: SpoolRecord[] = [];
    let bytes = 0;
    const cur = this.segments.newest;
    /** Frame length to read at once, when a record is longer than READ_CHUNK. */
    let whole = 0;
    while (out.length < maxRecords && bytes < maxBytes && this.id < until) {
      const seg = this.seg!;
      if (seg === cur && this.writer.pending > 0) this.writer.flush();
      if (this.off >= seg.size) {
        const next = this.segments.after(seg);
        if (!next) break;
        this.skipTo(next.first, next, 'end');
        continue;
      }
      if (this.fdFile !== seg.file) {
        if (this.fd >= 0) fs.closeSync(this.fd);
        this.fd = fs.openSync(this.segments.pathOf(seg), 'r');
        this.fdFile = seg.file;
        if (seg.check === undefined) seg.check = this.readHeader(seg) ?? null;
      }
      if (!seg.check) {
        // Not a segment of a format known here (or not of its name): none of its records can be trusted.
        const next = this.segments.after(seg);
        this.skipTo(next ? next.first : this.writer.nextId, next, 'header');
        if (!next) break;
        continue;
      }
      // The rest of the chunk read last, when the reader is inside it: parsed on, no system call.
      const inChunk = whole === 0 && this.bufFile === seg.file && this.off >= this.bufStart && this.off < this.bufStart + this.bufLen;
      let base = 0;
      let got: number;
      if (inChunk) {
        base = this.off - this.bufStart;
        got = this.bufLen;
      } else {
        const want = Math.min(seg.size - this.off, Math.max(READ_CHUNK, whole));
        // A fresh buffer per read: the records handed out are views into it.
        if (this.buf.length < FRAME_HEADER + MAX_RECORD || this.bufUsed) {
          this.buf = Buffer.allocUnsafe(Math.max(want, discard ? 0 : READ_CHUNK));
          this.bufUsed = false;
        }
        got = fs.readSync(this.fd, this.buf, 0, Math.min(want, this.buf.length), this.off);
        this.bufFile = seg.file;
        this.bufStart = this.off;
        this.bufLen = got;
      }
      let off = base;
      let progressed = false;
      while (out.length < maxRecords && bytes < maxBytes && this.id < until) {
        const r = parseRecord(this.buf, off, got, seg.check);
        if (r === undefined) break;
        if (r === 'bad') {
          off = -1;
          break;
        }
        if (!discard) {
          this.bufUsed = true;
          const rec: SpoolRecord = { id: this.id, data: r.data, route: r.route };
          out.push(rec);
          bytes += rec.data.length;
          this.sink.stats.readFromDisk++;
        }
        this.id++;
        off = r.end;
        progressed = true;
      }
      if (inChunk && off !== -1 && !progressed) {
        // The next record runs past the chunk: read from it on.
        this.bufLen = 0;
        continue;
      }
      if (off === -1 || (!progressed && (got < FRAME_HEADER || this.off + got >= seg.size || whole > 0))) {
        // A bad record, or one running past the end of the segment (or of the file): skip the rest of it.
        const next = this.segments.after(seg);
        this.skipTo(next ? next.first : this.writer.nextId, next, 'bad');
        if (!next) break;
        continue;
      }
      if (!progressed) {
        // A record longer than one read: read it again, whole.
        whole = FRAME_HEADER + this.buf.readUInt32LE(0);
        continue;
      }
      whole = 0;
      this.off += off - base;
    }
    return out;
  }
}
