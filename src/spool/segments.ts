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
  check?: FrameCheck | null;
}

export class SegmentList {
  private list: Segment[] = [];
  /** Bytes in all segment files. */
  bytes = 0;

  private constructor(readonly dir: string) {}

  /** The segments in `dir`, by name. */
  static load(dir: string): SegmentList {
    const l = new SegmentList(dir);
    const files = fs
      .readdirSync(dir)
      .filter((f) => SEG_RE.test(f))
      .sort();
    for (const file of files) {
      const size = fs.statSync(path.join(dir, file)).size;
      l.list.push({ first: Number(SEG_RE.exec(file)![1]), file, size });
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

  /** Create the segment for records from `first` on; returns its fd, open for writing after the header. */
  create(first: number): number {
    const file = segName(first);
    const fd = fs.openSync(path.join(this.dir, file), 'w', 0o644);
    fs.writeSync(fd, segmentHeader(first));
    this.list.push({ first, file, size: SEG_HEADER, check: segmentCheck(first) });
    this.bytes += SEG_HEADER;
    return fd;
  }

  /** `seg` holds `size` bytes on disk now. */
  resize(seg: Segment, size: number): void {
    this.bytes += size - seg.size;
    seg.size = size;
  }

  /** Delete the oldest segment; returns it. */
  removeOldest(): Segment {
    const seg = this.list.shift()!;
    this.remove(seg);
    return seg;
  }

  /** Delete the newest segment (its header was unusable at open). */
  removeNewest(): void {
    this.remove(this.list.pop()!);
  }

  removeAll(): void {
    for (const s of this.list) fs.rmSync(this.pathOf(s), { force: true });
    this.list = [];
    this.bytes = 0;
  }

  private remove(seg: Segment): void {
    fs.rmSync(this.pathOf(seg), { force: true });
    this.bytes -= seg.size;
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
