/**
 * The spool's write end: records framed into a buffer and written with one
 * write(2) per event-loop turn (or per WRITE_CHUNK), the segment rolled when
 * full (the old one synced in the background), fdatasync when asked; and at
 * open, the torn tail of the newest segment cut off.
 *
 * A failed write leaves records missing from the file; the next append then
 * starts a new segment, named by its first id, so that ids stay right and the
 * reader counts the gap.
 */
import fs from 'node:fs';
import { ErrorCodes, SpreadPipeError, errorMessage } from '../errors.js';
import { type CrcArena, crcArena } from '../crc32.js';
import { FRAME_HEADER, sealFrame, sealFramesIn } from '../record-frame.js';
import { MAX_RECORD, SEG_HEADER, headerCheck, isReusedHeader, parseRecord, payloadLength, writeLinePayload, writePayload } from './format.js';
import { type Segment, type SegmentList, syncDirLater } from './segments.js';
import type { SpoolSink } from './types.js';

/** Buffered appends are written once they reach this. */
export const WRITE_CHUNK = 256 * 1024;

export class SegmentWriter {
  private fd = -1;
  private id = 0;
  /** The write buffer, where records are framed and their checks computed (XXH32, in WebAssembly: crc32.wat). */
  private readonly arena: CrcArena = crcArena(WRITE_CHUNK * 2);
  /** The arena's buffer, or for a record too big for it a buffer of its own until the next flush. */
  private wbuf: Buffer = this.arena.buf;
  private wlen = 0;
  private flushScheduled = false;
  private needRoll = false;
  private dirty = false;
  private syncing = false;

  /** Recover the newest segment of `segments` and open it for appending (or start one). Ids go on from `minId` at least. */
  constructor(
    private readonly segments: SegmentList,
    private readonly segmentBytes: number,
    private readonly sink: SpoolSink,
    minId: number,
  ) {
    // The newest segment may end in a torn record: find its last whole one, cut the rest.
    while (segments.length) {
      const last = segments.newest;
      const count = this.recoverTail(last);
      if (count >= 0) {
        this.id = last.first + count;
        break;
      }
      segments.removeNewest();
    }
    // All acknowledged and deleted at the last close: the cursor alone keeps the next id.
    this.id = Math.max(this.id, minId);
    const last = segments.length ? segments.newest : undefined;
    // A segment of format 1 (0.1.0) is read, never appended to: one file, one check.
    const appendable = last !== undefined && last.check?.sum === 'xxh32' && last.size < segmentBytes;
    // One with no record in it goes: the new segment takes its name.
    if (last && !appendable && last.first === this.id) segments.removeNewest();
    this.fd = appendable ? fs.openSync(segments.pathOf(last), 'a') : segments.create(this.id);
  }

  /** Id the next record gets. */
  get nextId(): number {
    return this.id;
  }

  /** Bytes framed and not yet written. */
  get pending(): number {
    return this.wlen;
  }

  /** Where the last record framed ends in the newest segment, once written. */
  get end(): number {
    return this.segments.newest.size + this.wlen;
  }

  /**
   * Before write(): the length of the record's frame, after rolling to a new
   * segment if it does not fit in this one. Throws for a record over MAX_RECORD
   * and when no segment can be started.
   */
  reserve(dataLen: number, route: string | undefined): number {
    const payload = payloadLength(dataLen, route);
    if (payload > MAX_RECORD) throw new SpreadPipeError(ErrorCodes.INVALID_ARGUMENT, `spool record of ${payload} bytes is over ${MAX_RECORD}`);
    const frameLen = FRAME_HEADER + payload;
    const seg = this.segments.newest;
    if (this.needRoll || (seg.size + this.wlen + frameLen > this.segmentBytes && seg.size + this.wlen > SEG_HEADER)) this.roll();
    return frameLen;
  }

  /** Frame a record into the buffer; returns its id. Call schedule() once the record is accounted for. */
  write(data: Uint8Array, route: string | undefined): number {
    const start = this.room(FRAME_HEADER + payloadLength(data.length, route));
    this.wlen = writePayload(this.wbuf, start + FRAME_HEADER, data, route);
    this.seal(start);
    return this.id++;
  }

  /** write() of the record `prefix + line + LF`, framed in place: no copy of the line is made first. */
  writeLine(prefix: Uint8Array, line: Uint8Array, route: string | undefined): number {
    const start = this.room(FRAME_HEADER + payloadLength(prefix.length + line.length + 1, route));
    this.wlen = writeLinePayload(this.wbuf, start + FRAME_HEADER, prefix, line, route);
    this.seal(start);
    return this.id++;
  }

  /**
   * The record framed from `start` to the end of the buffer: its length now;
   * in the arena its check at flush(), all the buffer's frames in one call into
   * the module (nothing reads the buffer before it is written).
   */
  private seal(start: number): void {
    const len = this.wlen - start - FRAME_HEADER;
    const b = this.wbuf;
    if (b !== this.arena.buf) return sealFrame(b, start, len, this.segments.newest.check!);
    // Four stores, not writeUInt32LE: its argument checks measured slower on this, the hot path.
    b[start] = len & 0xff;
    b[start + 1] = (len >>> 8) & 0xff;
    b[start + 2] = (len >>> 16) & 0xff;
    b[start + 3] = len >>> 24;
  }

  /** Where a frame of `frameLen` bytes goes in the buffer (written out first if it would not fit). */
  private room(frameLen: number): number {
    if (this.wlen + frameLen > this.wbuf.length) {
      this.flush();
      if (frameLen > this.wbuf.length) this.wbuf = Buffer.allocUnsafe(frameLen);
    }
    return this.wlen;
  }

  /** Write the buffer now if it holds a chunk, else at the end of this event-loop turn. */
  schedule(): void {
    if (this.wlen >= WRITE_CHUNK) this.flush();
    else if (!this.flushScheduled) {
      this.flushScheduled = true;
      setImmediate(() => {
        this.flushScheduled = false;
        this.flush();
      });
    }
  }

  /** Write the buffered records now. */
  flush(): void {
    if (this.wlen === 0 || this.fd < 0) return;
    const seg = this.segments.newest;
    const n = this.wlen;
    if (this.wbuf === this.arena.buf) sealFramesIn(this.arena, 0, n, seg.check!);
    this.wlen = 0;
    try {
      let off = 0;
      while (off < n) off += fs.writeSync(this.fd, this.wbuf, off, n - off);
      this.segments.resize(seg, seg.size + n);
      this.dirty = true;
      this.sink.ok();
    } catch (e) {
      // What did not reach the file is missing there: the next append starts a new segment.
      this.sink.stats.writeErrors++;
      this.needRoll = true;
      this.resyncSize(seg);
      this.sink.fail(`cannot write spool ${seg.file}: ${errorMessage(e)}`);
    }
    this.wbuf = this.arena.buf;
  }

  /** Close the current segment (synced in the background) and start the next. */
  roll(): void {
    this.flush();
    const old = this.fd;
    this.fd = -1;
    this.needRoll = false;
    if (old >= 0) {
      this.cutReused(old, this.segments.newest);
      fs.fdatasync(old, () => fs.close(old, () => {}));
    }
    try {
      this.fd = this.segments.create(this.id);
      this.sink.ok();
      syncDirLater(this.segments.dir);
    } catch (e) {
      this.needRoll = true;
      this.sink.stats.writeErrors++;
      const message = `cannot start a spool segment in ${this.segments.dir}: ${errorMessage(e)}`;
      this.sink.fail(message);
      throw new SpreadPipeError(ErrorCodes.SPOOL, message, { cause: e });
    }
  }

  /** fdatasync in the background if anything was written since the last one. */
  sync(): void {
    if (!this.dirty || this.syncing || this.fd < 0) return;
    this.dirty = false;
    this.syncing = true;
    fs.fdatasync(this.fd, () => {
      this.syncing = false;
    });
  }

  /** Flush, sync (unless told not to: it is about to be deleted) and close the current segment. */
  close(sync = true): void {
    this.flush();
    if (this.fd < 0) return;
    this.cutReused(this.fd, this.segments.newest);
    try {
      if (sync) fs.fdatasyncSync(this.fd);
    } catch {
      // Reported by the writes themselves.
    }
    fs.closeSync(this.fd);
    this.fd = -1;
  }

  /**
   * A segment written in a file used again, left by the writer: cut the
   * file's old bytes past its end, so that the file holds the segment and no
   * more (a reader after a restart goes by the file's size).
   */
  private cutReused(fd: number, seg: Segment): void {
    if (!seg.reused) return;
    try {
      fs.ftruncateSync(fd, seg.size);
      seg.reused = 0;
    } catch {
      // Left as it is: the reader stops at the first frame that does not check, and counts what follows.
    }
  }

  /** Validate the newest segment; cut a torn tail. Returns its record count, or -1 if its header is unusable. */
  private recoverTail(seg: Segment): number {
    const file = this.segments.pathOf(seg);
    const buf = fs.readFileSync(file);
    const check = headerCheck(buf, seg.first);
    if (!check) return -1;
    seg.check = check;
    let off = SEG_HEADER;
    let count = 0;
    for (;;) {
      const r = parseRecord(buf, off, buf.length, check);
      if (r === undefined || r === 'bad') break;
      off = r.end;
      count++;
    }
    if (off < buf.length) {
      fs.truncateSync(file, off);
      // A file used again holds its old bytes past the records written in it (the process died before it
      // cut them): not torn, and not worth a report. A torn write there is cut with them.
      if (!isReusedHeader(buf)) {
        this.sink.stats.tornBytes += buf.length - off;
        this.sink.event({ type: 'corrupt', file: seg.file, records: 0, reason: `cut a torn tail of ${buf.length - off} bytes` });
      }
      this.segments.resize(seg, off);
    }
    return count;
  }

  private resyncSize(seg: Segment): void {
    // A file used again is longer than what was written in it: its size says nothing; the reader goes by seg.size.
    if (seg.reused) return;
    try {
      this.segments.resize(seg, fs.fstatSync(this.fd).size);
    } catch {
      // Keep the old size; reads stop at the first bad record anyway.
    }
  }
}
