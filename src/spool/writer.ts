/**
 * The spool's write end: records framed into a buffer and written with one
 * write(2) per event-loop turn (or per WRITE_CHUNK), the segment rolled when
 * full (the old one synced in the background), fdatasync when asked; and at
 * open, the torn tail of the newest segment cut off.
 *
 * Held (hold()): at the end of a turn, records the user has handed to the
 * kernel on a live session stay in the buffer, up to `holdMs`, and those
 * acknowledged meanwhile (committed()) are dropped from it unwritten: while
 * the daemon keeps up, the spool writes nothing. A record that waited
 * `holdMs`, one not handed over, and everything when the buffer is full, at
 * a roll, a read from disk and at close, is written. Ids dropped unwritten
 * are all acknowledged, so writing after them starts a new segment, named
 * by its first id, after the cursor has been written past them.
 *
 * A failed write leaves records missing from the file; the next append then
 * starts a new segment, named by its first id, so that ids stay right and the
 * reader counts the gap.
 */
import fs from 'node:fs';
import { ErrorCodes, SpreadPipeError, errorMessage } from '../errors.js';
import { type CrcArena, crcArena } from '../crc32.js';
import { FRAME_HEADER, sealFrame, sealFrameIn } from '../record-frame.js';
import { MAX_RECORD, SEG_HEADER, isSegmentHeader, parseRecord, payloadLength, writeLinePayload, writePayload } from './format.js';
import { type Segment, type SegmentList, syncDirLater } from './segments.js';
import type { SpoolSink } from './types.js';

/** Buffered appends are written once they reach this (unless held). */
export const WRITE_CHUNK = 256 * 1024;
/** The write buffer: what held records may take before they are written anyway. */
export const WRITE_BUFFER = 4 * 1024 * 1024;
/** Records in the buffer at most (their offsets are kept). */
const MAX_HELD = 1 << 18;

/** How a held writer learns what it may keep back (see hold()). */
export interface HoldPolicy {
  /** Longest a record stays unwritten, ms. */
  readonly holdMs: number;
  /** At the end of a turn: every record appended is in the kernel's hands on a live session (and those done with were committed). */
  readonly handedOver: () => boolean;
  /** Before a segment is started after records dropped unwritten: the cursor goes past them first. */
  readonly beforeGap: () => void;
  /** After: the segments before it hold acknowledged records only. */
  readonly afterGap: () => void;
}

export class SegmentWriter {
  private fd = -1;
  private id = 0;
  /** The write buffer, where records are framed and their CRCs computed (in WebAssembly: the spool's largest cost per line). */
  private readonly arena: CrcArena = crcArena(WRITE_BUFFER);
  /** The arena's buffer, or for a record too big for it a buffer of its own until the next flush. */
  private wbuf: Buffer = this.arena.buf;
  /** Records not yet written: wbuf[start, wlen), ids pendFirst.. */
  private start = 0;
  private wlen = 0;
  private pendFirst = 0;
  /** Id the newest segment file would give its next record. */
  private fileNext = 0;
  /** Records below this are acknowledged: dropped from the buffer unwritten. */
  private commitBelow = 0;
  private policy: HoldPolicy | undefined;
  /** When each turn's first record was framed (ids and ms, oldest first, from markHead on): how long the buffer's oldest has waited. */
  private markIds: number[] = [];
  private markTimes: number[] = [];
  private markHead = 0;
  private holdTimer: NodeJS.Timeout | undefined;
  /** Where each record in the buffer starts, by id - baseId, plus `shift` (what moving held records to the start took off). */
  private readonly offs = new Int32Array(MAX_HELD);
  private baseId = 0;
  private shift = 0;
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
    if (segments.length === 0 || segments.newest.size >= segmentBytes) this.fd = segments.create(this.id);
    else this.fd = fs.openSync(segments.pathOf(segments.newest), 'a');
    this.pendFirst = this.fileNext = this.commitBelow = this.baseId = this.id;
  }

  /** Keep back records handed over, as `policy` says (see the header); without, every turn's records are written at its end. */
  hold(policy: HoldPolicy | undefined): void {
    this.policy = policy && policy.holdMs > 0 ? policy : undefined;
  }

  /** Records below `id` are acknowledged: those still in the buffer need never be written. */
  committed(id: number): void {
    if (id > this.commitBelow) this.commitBelow = Math.min(id, this.id);
  }

  /** Id the next record gets. */
  get nextId(): number {
    return this.id;
  }

  /** Bytes framed and not yet written. */
  get pending(): number {
    return this.wlen - this.start;
  }

  /** Where the last record framed ends in the newest segment, once written. */
  get end(): number {
    return this.segments.newest.size + this.wlen - this.start;
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
    const pending = this.wlen - this.start;
    if (this.needRoll || (seg.size + pending + frameLen > this.segmentBytes && seg.size + pending > SEG_HEADER)) this.roll();
    return frameLen;
  }

  /**
   * Frame a record into the buffer; returns its id. Call schedule() once the
   * record is accounted for. Its frame header (length, CRC) is filled in when
   * it is written: a record dropped unwritten (hold()) costs no CRC.
   */
  write(data: Uint8Array, route: string | undefined): number {
    const start = this.room(FRAME_HEADER + payloadLength(data.length, route));
    this.wlen = writePayload(this.wbuf, start + FRAME_HEADER, data, route);
    this.offs[this.id - this.baseId] = start + this.shift;
    return this.id++;
  }

  /** write() of the record `prefix + line + LF`, framed in place: no copy of the line is made first. */
  writeLine(prefix: Uint8Array, line: Uint8Array, route: string | undefined): number {
    const start = this.room(FRAME_HEADER + payloadLength(prefix.length + line.length + 1, route));
    this.wlen = writeLinePayload(this.wbuf, start + FRAME_HEADER, prefix, line, route);
    this.offs[this.id - this.baseId] = start + this.shift;
    return this.id++;
  }

  /** Where record `id` (in the buffer) starts. */
  private offsetOf(id: number): number {
    return this.offs[id - this.baseId]! - this.shift;
  }

  /** Length and CRC of every record in the buffer, before it is written. */
  private sealAll(): void {
    const inArena = this.wbuf === this.arena.buf;
    for (let k = this.pendFirst; k < this.id; k++) {
      const start = this.offsetOf(k);
      const len = (k + 1 < this.id ? this.offsetOf(k + 1) : this.wlen) - start - FRAME_HEADER;
      if (inArena) sealFrameIn(this.arena, start, len);
      else sealFrame(this.wbuf, start, len);
    }
  }

  /** The buffer is empty: the next record starts it, and the offsets, afresh. */
  private emptied(): void {
    this.start = this.wlen = 0;
    this.pendFirst = this.baseId = this.id;
    this.shift = 0;
    this.wbuf = this.arena.buf;
    this.clearMarks();
  }

  /** Where a frame of `frameLen` bytes goes in the buffer (held records moved to its start, or written out, if it would not fit). */
  private room(frameLen: number): number {
    if (this.wlen + frameLen > this.wbuf.length || this.id - this.baseId >= MAX_HELD) {
      this.dropCommitted();
      if (this.start > 0 && this.wlen - this.start + frameLen <= this.wbuf.length / 2 && this.id - this.pendFirst < MAX_HELD / 2) {
        // Held records, few, behind acknowledged ones: moved to the start, with their offsets.
        this.wbuf.copyWithin(0, this.start, this.wlen);
        this.offs.copyWithin(0, this.pendFirst - this.baseId, this.id - this.baseId);
        this.baseId = this.pendFirst;
        this.shift += this.start;
        this.wlen -= this.start;
        this.start = 0;
      } else if (this.wlen + frameLen > this.wbuf.length || this.id - this.baseId >= MAX_HELD) this.flush();
      if (frameLen > this.wbuf.length) this.wbuf = Buffer.allocUnsafe(frameLen);
    }
    return this.wlen;
  }

  /**
   * After a record is framed: write the buffer now if it holds a chunk
   * (unless held), else decide at the end of this event-loop turn. Held, the
   * turn's first record (or the first since the buffer emptied) notes the time.
   */
  schedule(): void {
    if (this.policy !== undefined && (!this.flushScheduled || this.markHead >= this.markIds.length)) {
      this.markIds.push(this.id - 1);
      this.markTimes.push(Date.now());
    }
    if (this.policy === undefined && this.wlen - this.start >= WRITE_CHUNK) this.flush();
    else if (!this.flushScheduled) {
      this.flushScheduled = true;
      setImmediate(() => {
        this.flushScheduled = false;
        this.settle();
      });
    }
  }

  /** End of a turn: write what must be written, keep back what may wait (hold()). */
  private settle(): void {
    const p = this.policy;
    if (p === undefined) return this.flush();
    this.dropCommitted();
    if (this.wlen === this.start) return;
    // Records not handed over must survive a SIGKILL of this process: written now, with those before them.
    if (p.handedOver()) {
      this.dropCommitted();
      if (this.wlen === this.start) return;
      const waited = Date.now() - (this.markTimes[this.markHead] ?? Date.now());
      if (waited < p.holdMs) {
        if (this.holdTimer === undefined) {
          this.holdTimer = setTimeout(() => {
            this.holdTimer = undefined;
            this.settle();
          }, p.holdMs - waited);
          this.holdTimer.unref();
        }
        return;
      }
    }
    this.flush();
  }

  /** Let go of the acknowledged records at the start of the buffer, unwritten. */
  private dropCommitted(): void {
    // Not held: every record is written at the end of its turn, as it always was.
    if (this.policy === undefined) return;
    const k = Math.min(this.commitBelow, this.id);
    if (k <= this.pendFirst) return;
    if (k === this.id) return this.emptied();
    this.start = this.offsetOf(k);
    this.pendFirst = k;
    // The oldest record left is in the turn of the last mark at or before it.
    while (this.markHead + 1 < this.markIds.length && this.markIds[this.markHead + 1]! <= k) this.markHead++;
    if (this.markHead >= 64 && this.markHead * 2 >= this.markIds.length) {
      this.markIds = this.markIds.slice(this.markHead);
      this.markTimes = this.markTimes.slice(this.markHead);
      this.markHead = 0;
    }
  }

  private clearMarks(): void {
    this.markIds = [];
    this.markTimes = [];
    this.markHead = 0;
  }

  /** Write the buffered records now (those acknowledged meanwhile are dropped, unwritten). */
  flush(): void {
    this.dropCommitted();
    if (this.wlen === this.start || this.fd < 0) return;
    // Records before these were dropped unwritten: the file cannot hold the gap, a segment named by the id starts here.
    if (this.pendFirst !== this.fileNext) this.startAt(this.pendFirst);
    this.sealAll();
    const seg = this.segments.newest;
    const from = this.start;
    const n = this.wlen - from;
    const buf = this.wbuf;
    this.fileNext = this.id;
    this.emptied();
    try {
      let off = 0;
      while (off < n) off += fs.writeSync(this.fd, buf, from + off, n - off);
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
  }

  /** A new segment whose first record is `first`, past records dropped unwritten (all acknowledged). */
  private startAt(first: number): void {
    this.policy?.beforeGap();
    const old = this.fd;
    this.fd = -1;
    if (old >= 0) fs.fdatasync(old, () => fs.close(old, () => {}));
    try {
      this.fd = this.segments.create(first);
      this.fileNext = first;
      syncDirLater(this.segments.dir);
      this.policy?.afterGap();
    } catch (e) {
      this.needRoll = true;
      this.sink.stats.writeErrors++;
      this.sink.fail(`cannot start a spool segment in ${this.segments.dir}: ${errorMessage(e)}`);
    }
  }

  /** Close the current segment (synced in the background) and start the next. */
  roll(): void {
    this.flush();
    const old = this.fd;
    this.fd = -1;
    this.needRoll = false;
    if (old >= 0) fs.fdatasync(old, () => fs.close(old, () => {}));
    // Records framed and dropped unwritten since the flush are past the file's end: the new segment starts after them.
    this.dropCommitted();
    const first = this.wlen > this.start ? this.pendFirst : this.id;
    try {
      this.fd = this.segments.create(first);
      this.fileNext = first;
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
    clearTimeout(this.holdTimer);
    this.holdTimer = undefined;
    this.flush();
    if (this.fd < 0) return;
    try {
      if (sync) fs.fdatasyncSync(this.fd);
    } catch {
      // Reported by the writes themselves.
    }
    fs.closeSync(this.fd);
    this.fd = -1;
  }

  /** Validate the newest segment; cut a torn tail. Returns its record count, or -1 if its header is unusable. */
  private recoverTail(seg: Segment): number {
    const file = this.segments.pathOf(seg);
    const buf = fs.readFileSync(file);
    if (!isSegmentHeader(buf, seg.first)) return -1;
    let off = SEG_HEADER;
    let count = 0;
    for (;;) {
      const r = parseRecord(buf, off, buf.length);
      if (r === undefined || r === 'bad') break;
      off = r.end;
      count++;
    }
    if (off < buf.length) {
      this.sink.stats.tornBytes += buf.length - off;
      fs.truncateSync(file, off);
      this.sink.event({ type: 'corrupt', file: seg.file, records: 0, reason: `cut a torn tail of ${buf.length - off} bytes` });
      this.segments.resize(seg, off);
    }
    return count;
  }

  private resyncSize(seg: Segment): void {
    try {
      this.segments.resize(seg, fs.fstatSync(this.fd).size);
    } catch {
      // Keep the old size; reads stop at the first bad record anyway.
    }
  }
}
