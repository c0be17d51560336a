/**
 * What a --write writer has written from each --ack stream, kept on disk so
 * that a daemon killed and restarted still drops the lines a publisher sends
 * again (it resends what was unacknowledged when the daemon died).
 *
 * Before each write of a log file the writer appends one journal record:
 * the file (path, inode), its size before and after the write, and the ids
 * the write carries. At open the journal is replayed; the last record of each
 * file is checked against the file: size "after" (or a different inode: the
 * file was rotated since) means the write happened; size "before" means it
 * did not, and its ids are not taken as seen; anything between is a torn
 * write, cut back to "before". So a crash between the record and the write
 * costs nothing: the ids are not seen, the publisher resends them (the ack
 * leaves only after the write), and they are written once.
 *
 * Records are framed as the spool's are (record-frame.ts: length, CRC-32 of
 * length and payload); a torn last record is ignored. Journals written by
 * 0.1.0, whose CRC covered the payload alone, are still read. Past
 * COMPACT_BYTES the journal is rewritten as one snapshot of the windows.
 * Writes are write(2) without fsync: this covers a crash of the daemon, as
 * the log files themselves (written without fsync) do.
 */
import fs from 'node:fs';
import { DuplicateFilter, type SeenRange } from './dedup.js';
import { FRAME_HEADER, checkFrame, sealFrame } from './record-frame.js';

/** Journal size that triggers a rewrite as a snapshot. @default 4 MiB */
export const COMPACT_BYTES = 4 * 1024 * 1024;

const WRITE = 1;
const SNAPSHOT = 2;

interface WriteRecord {
  path: string;
  ino: number;
  before: number;
  after: number;
  changes: SeenRange[];
}

export interface JournalRecovery {
  records: number;
  /** Writes found not done (a crash between journal and write): their ids stay unseen. */
  undone: number;
  /** Files cut back to the size before a torn write. */
  truncated: string[];
  tornBytes: number;
}

/** Builds one record's payload after room for its frame header. */
class Enc {
  buf = Buffer.allocUnsafe(256);
  len = FRAME_HEADER;
  private need(n: number): void {
    if (this.len + n <= this.buf.length) return;
    const b = Buffer.allocUnsafe(Math.max(this.buf.length * 2, this.len + n));
    this.buf.copy(b, 0, 0, this.len);
    this.buf = b;
  }
  u8(v: number): void {
    this.need(1);
    this.buf[this.len++] = v;
  }
  u32(v: number): void {
    this.need(4);
    this.len = this.buf.writeUInt32LE(v >>> 0, this.len);
  }
  num(v: number): void {
    this.need(8);
    this.len = this.buf.writeDoubleLE(v, this.len);
  }
  str(s: string): void {
    const n = Buffer.byteLength(s);
    this.u32(n);
    this.need(n);
    this.len += this.buf.write(s, this.len);
  }
  bytes(b: Uint8Array): void {
    this.need(b.byteLength);
    this.buf.set(b, this.len);
    this.len += b.byteLength;
  }
  /** The record framed. */
  framed(): Buffer {
    sealFrame(this.buf, 0, this.len - FRAME_HEADER);
    return this.buf.subarray(0, this.len);
  }
}

class Dec {
  off = 0;
  constructor(private readonly b: Buffer) {}
  u8(): number {
    return this.b[this.off++]!;
  }
  u32(): number {
    const v = this.b.readUInt32LE(this.off);
    this.off += 4;
    return v;
  }
  num(): number {
    const v = this.b.readDoubleLE(this.off);
    this.off += 8;
    return v;
  }
  str(): string {
    const n = this.u32();
    const s = this.b.toString('utf8', this.off, this.off + n);
    this.off += n;
    return s;
  }
  bytes(n: number): Buffer {
    const v = this.b.subarray(this.off, this.off + n);
    this.off += n;
    return v;
  }
}

function encodeWrite(r: WriteRecord): Buffer {
  const e = new Enc();
  e.u8(WRITE);
  e.str(r.path);
  e.num(r.ino);
  e.num(r.before);
  e.num(r.after);
  e.u32(r.changes.length);
  for (const c of r.changes) {
    e.str(c.stream);
    e.u32(c.first);
    e.u32(c.count);
  }
  return e.framed();
}

function encodeSnapshot(f: DuplicateFilter): Buffer {
  const e = new Enc();
  e.u8(SNAPSHOT);
  e.u32(f.streamCount);
  for (const [name, w] of f.entries()) {
    e.str(name);
    e.num(w.top);
    e.bytes(new Uint8Array(w.bits.buffer, w.bits.byteOffset, w.bits.byteLength));
  }
  return e.framed();
}

export class SeenJournal {
  readonly recovery: JournalRecovery = { records: 0, undone: 0, truncated: [], tornBytes: 0 };
  private fd: number;
  private size: number;

  private constructor(
    readonly file: string,
    readonly filter: DuplicateFilter,
    private readonly compactBytes: number,
  ) {
    this.replay();
    this.fd = fs.openSync(file, 'a', 0o644);
    this.size = fs.fstatSync(this.fd).size;
  }

  /** Open (or create) the journal and rebuild `filter` from it, settling the last write of each file. */
  static open(file: string, filter: DuplicateFilter, compactBytes = COMPACT_BYTES): SeenJournal {
    return new SeenJournal(file, filter, compactBytes);
  }

  /** Before writing `after - before` bytes to the file open as `fd`: record the ids that write carries. */
  record(path: string, fd: number, bytes: number, changes: SeenRange[]): void {
    const st = fs.fstatSync(fd);
    const rec = encodeWrite({ path, ino: st.ino, before: st.size, after: st.size + bytes, changes });
    fs.writeSync(this.fd, rec);
    this.size += rec.length;
  }

  /** After the writes of a flush: rewrite as a snapshot when the journal grew past its bound. */
  maybeCompact(): void {
    if (this.size < this.compactBytes) return;
    const tmp = `${this.file}.tmp`;
    const snap = encodeSnapshot(this.filter);
    fs.writeFileSync(tmp, snap, { mode: 0o644 });
    fs.renameSync(tmp, this.file);
    fs.closeSync(this.fd);
    this.fd = fs.openSync(this.file, 'a', 0o644);
    this.size = snap.length;
  }

  close(): void {
    fs.closeSync(this.fd);
  }

  private replay(): void {
    let buf: Buffer;
    try {
      buf = fs.readFileSync(this.file);
    } catch {
      return; // no journal yet
    }
    const writes: WriteRecord[] = [];
    let snapshot: Buffer | undefined;
    let off = 0;
    for (;;) {
      const end = checkFrame(buf, off, buf.length, undefined, true); // 0.1.0's CRC scope too
      if (end < 0) break;
      const payload = buf.subarray(off + FRAME_HEADER, end);
      const d = new Dec(payload);
      off = end;
      this.recovery.records++;
      const type = d.u8();
      if (type === SNAPSHOT) {
        snapshot = payload;
        writes.length = 0;
      } else if (type === WRITE) {
        const r: WriteRecord = { path: d.str(), ino: d.num(), before: d.num(), after: d.num(), changes: [] };
        for (let n = d.u32(); n > 0; n--) r.changes.push({ stream: d.str(), first: d.u32(), count: d.u32() });
        writes.push(r);
      }
    }
    if (off < buf.length) {
      // A torn last record: its write never started (records go first). Drop it from the file too.
      this.recovery.tornBytes = buf.length - off;
      fs.truncateSync(this.file, off);
    }
    if (snapshot) this.loadSnapshot(snapshot);
    const last = new Map<string, WriteRecord>();
    for (const r of writes) last.set(r.path, r);
    const undone = new Set<WriteRecord>();
    for (const r of last.values()) if (!this.settle(r)) undone.add(r);
    this.recovery.undone = undone.size;
    for (const r of writes) if (!undone.has(r)) for (const c of r.changes) this.filter.markSeen(c);
  }

  /** Whether the last recorded write of a file took place; a torn one is cut back. */
  private settle(r: WriteRecord): boolean {
    let st: fs.Stats;
    try {
      st = fs.statSync(r.path);
    } catch {
      return true; // gone (rotated away): it was written before that
    }
    if (st.ino !== r.ino || st.size >= r.after || st.size < r.before) return true;
    if (st.size > r.before) {
      fs.truncateSync(r.path, r.before);
      this.recovery.truncated.push(r.path);
    }
    return false;
  }

  private loadSnapshot(payload: Buffer): void {
    const d = new Dec(payload);
    d.u8();
    const bytes = this.filter.windowSize / 8;
    for (let n = d.u32(); n > 0; n--) {
      const name = d.str();
      const top = d.num();
      const raw = d.bytes(bytes);
      const bits = new Uint32Array(bytes / 4);
      Buffer.from(bits.buffer).set(raw);
      this.filter.restore(name, top, bits);
    }
  }
}
