/**
 * The segment files of a spool directory, oldest first, and the bytes they
 * hold: the list the writer grows, the reader walks and retention trims.
 */
import fs from 'node:fs';
import path from 'node:path';
import type { FrameCheck } from '../record-frame.js';
import { SEG_HEADER, SEG_RE, segName, segmentCheck, segmentHeader } from './format.js';

export interface Segment {
  /** Id of its first record (also its name). */
  readonly first: number;
  readonly file: string;
  /** Bytes on disk (excluding what is still in the writer's buffer). */
  size: number;
  /**
   * How its frames are checked, by its header's format, once the header was
   * read (a segment of this process's: format 2); null: the header is unusable.
   */
  check: FrameCheck | null | undefined;
  /**
   * Written in a file used again (create() in the spare): the bytes that file held. Until
   * the writer cuts it at `size` (roll, close), its old bytes lie past `size`. 0: a file of its own.
   */
  reused: number;
}

/**
 * A segment with every field set from the start, in one order: segments then
 * share one hidden class, so the writer's per-record look at the newest one
 * stays monomorphic (#16: a field added later, or deleted, changed the class
 * and deoptimised the append path's compiled code).
 */
function segment(first: number, file: string, size: number, check: FrameCheck | undefined, reused: number): Segment {
  return { first, file, size, check, reused };
}

/**
 * The file of an acknowledged segment kept to be written again (no segment:
 * its name is not one of SEG_RE). A fresh file costs the kernel a page of
 * page cache allocated per 4 KiB written and freed again when the segment is
 * deleted: 240 MB in 16 MiB segments took 110-160 ms of CPU that way against
 * 47-73 ms overwriting a renamed one (#16).
 */
export const SPARE = 'spare.reuse';
/** Files smaller than this are not worth keeping (a small --spool-max, or a segment cut short). */
const MIN_SPARE = 1024 * 1024;

export class SegmentList {
  private list: Segment[] = [];
  /** Bytes in all segment files (up to each one's size: what it holds). */
  bytes = 0;
  /** Bytes of the spare file; 0: there is none. */
  private spare = 0;
  /** Files of acknowledged segments being deleted in the background (removeOldest(_, true)), and their bytes. */
  private readonly deleting = new Map<string, number>();
  private deletingBytes = 0;
  /** Told when a background deletion fails (the file stays, deleted at the next open's first commit). */
  onDeleteError: (message: string) => void = () => {};

  private constructor(readonly dir: string) {}

  /** The segments in `dir`, by name. */
  static load(dir: string): SegmentList {
    const l = new SegmentList(dir);
    // One left by a process that did not close the spool: what it held was acknowledged.
    fs.rmSync(path.join(dir, SPARE), { force: true });
    const files = fs
      .readdirSync(dir)
      .filter((f) => SEG_RE.test(f))
      .sort();
    for (const file of files) {
      const size = fs.statSync(path.join(dir, file)).size;
      l.list.push(segment(Number(SEG_RE.exec(file)![1]), file, size, undefined, 0));
      l.bytes += size;
    }
    return l;
  }

  get length(): number {
    return this.list.length;
  }

  get oldest(): Segment {
    return this.list[0]!;
  }

  /** The one appended to. */
  get newest(): Segment {
    return this.list[this.list.length - 1]!;
  }

  at(i: number): Segment | undefined {
    return this.list[i];
  }

  after(seg: Segment): Segment | undefined {
    return this.list[this.list.indexOf(seg) + 1];
  }

  /** The segment whose first record is `id`, if one starts there. */
  startingAt(id: number): Segment | undefined {
    const s = this.list.find((x) => x.first >= id);
    return s?.first === id ? s : undefined;
  }

  /** The segment holding record `id`: the newest that starts at or before it (else the oldest). */
  holding(id: number): Segment {
    let i = this.list.length - 1;
    while (i > 0 && this.list[i]!.first > id) i--;
    return this.list[i]!;
  }

  pathOf(seg: Segment): string {
    return path.join(this.dir, seg.file);
  }

  /**
   * Bytes on disk: the segments', the spare's, those of files still being
   * deleted, and the old bytes past the newest segment's end in a file used
   * again (the others were cut at their end when the writer left them). What
   * --spool-max bounds.
   */
  get onDisk(): number {
    const n = this.newest;
    return this.bytes + this.spare + this.deletingBytes + (n?.reused ? Math.max(0, n.reused - n.size) : 0);
  }

  /** Bytes of the spare file (0: none). */
  get spareBytes(): number {
    return this.spare;
  }

  /**
   * Create the segment for records from `first` on, in the spare file if
   * there is one; returns its fd, open for writing after the header.
   */
  create(first: number): number {
    const file = segName(first);
    const p = path.join(this.dir, file);
    let fd = -1;
    let reused = 0;
    if (this.spare) {
      reused = this.spare;
      this.spare = 0;
      try {
        fs.renameSync(path.join(this.dir, SPARE), p);
        fd = fs.openSync(p, 'r+');
      } catch {
        // A fresh file instead; the spare, if it is still there, goes (nothing counts it any more).
        reused = 0;
        fs.rmSync(path.join(this.dir, SPARE), { force: true });
      }
    }
    if (fd < 0) fd = fs.openSync(p, 'w', 0o644);
    // Written at the file's offset, 0 after open: the records follow it there.
    fs.writeSync(fd, segmentHeader(first, reused > 0));
    this.list.push(segment(first, file, SEG_HEADER, segmentCheck(first), reused));
    this.bytes += SEG_HEADER;
    return fd;
  }

  /** `seg` holds `size` bytes on disk now. */
  resize(seg: Segment, size: number): void {
    this.bytes += size - seg.size;
    seg.size = size;
  }

  /**
   * Delete the oldest segment; returns it. `keep`: its records are all
   * acknowledged and the bound has room: its file becomes the spare, if
   * there is none yet, to be written again by the next create(). `later`:
   * deleted in the background (its bytes count on disk until it is gone).
   */
  removeOldest(keep = false, later = false): Segment {
    const seg = this.list.shift()!;
    if (keep && this.spare === 0 && seg.size >= MIN_SPARE) {
      try {
        fs.renameSync(this.pathOf(seg), path.join(this.dir, SPARE));
        this.bytes -= seg.size;
        this.spare = seg.size;
        return seg;
      } catch {
        // Deleted instead.
      }
    }
    if (later) this.removeLater(seg);
    else this.remove(seg);
    return seg;
  }

  /**
   * Finish the background deletions now: the bound needs their room (what
   * onDisk counts must be gone before more is deleted for it), or the spool
   * closes and leaves no file behind.
   */
  settleDeletes(): void {
    for (const p of [...this.deleting.keys()]) {
      fs.rmSync(p, { force: true });
      this.deleted(p);
    }
  }

  /** Delete the spare file (the bound needs its room, or the spool closes). */
  dropSpare(): void {
    if (this.spare === 0) return;
    fs.rmSync(path.join(this.dir, SPARE), { force: true });
    this.spare = 0;
  }

  /** Delete the newest segment (its header was unusable at open). */
  removeNewest(): void {
    this.remove(this.list.pop()!);
  }

  removeAll(): void {
    this.settleDeletes();
    this.dropSpare();
    for (const s of this.list) fs.rmSync(this.pathOf(s), { force: true });
    this.list = [];
    this.bytes = 0;
  }

  private remove(seg: Segment): void {
    fs.rmSync(this.pathOf(seg), { force: true });
    this.bytes -= seg.size;
  }

  /**
   * unlink(2) in the background: deleting a synced 16 MiB file took 8-36 ms
   * of wall time on ext4 here (the filesystem frees its blocks; about 1-2 ms
   * of it CPU), and stalled the event loop, stdin with it, that long once per
   * segment acknowledged (#16; `CASES=delete node bench/spool.mjs`). A name
   * is never used again for another segment while it is being deleted:
   * segments are named by their first id, and ids only grow.
   */
  private removeLater(seg: Segment): void {
    const p = this.pathOf(seg);
    this.bytes -= seg.size;
    this.deleting.set(p, seg.size);
    this.deletingBytes += seg.size;
    fs.unlink(p, (e) => {
      this.deleted(p);
      // The file stays, below the cursor: the next open's first commit deletes it.
      if (e && e.code !== 'ENOENT') this.onDeleteError(`cannot delete acknowledged spool segment ${p}: ${e.message}`);
    });
  }

  private deleted(p: string): void {
    const n = this.deleting.get(p);
    if (n === undefined) return;
    this.deleting.delete(p);
    this.deletingBytes -= n;
  }
}

/** fsync a directory, so that files created or renamed in it stay after a crash of the machine. */
export function syncDir(dir: string): void {
  try {
    const fd = fs.openSync(dir, 'r');
    try {
      fs.fsyncSync(fd);
    } finally {
      fs.closeSync(fd);
    }
  } catch {
    // Not every filesystem syncs directories; the data files are synced anyway.
  }
}

/**
 * syncDir() in the background: for a segment started mid-stream, whose data
 * is synced in the background too (a crash of the machine loses at most the
 * sync interval either way), without stalling the event loop on the disk.
 */
export function syncDirLater(dir: string): void {
  fs.open(dir, 'r', (err, fd) => {
    if (err) return;
    fs.fsync(fd, () => fs.close(fd, () => {}));
  });
}
