/**
 * The spool's cursor: the id of the first record not yet acknowledged, in a
 * file of one 24-byte record (magic, u64 id, CRC-32 of those 16 bytes, 4
 * zero bytes) written in place at offset 0: one sector, so no rename.
 *
 * It is written once the id has moved by `every` records (and when asked: by
 * the sync timer, at close), so after a crash what may repeat is fewer than
 * `every` acknowledged records.
 */
import fs from 'node:fs';
import path from 'node:path';
import { crc32 } from '../crc32.js';
import { errorMessage } from '../errors.js';
import { readU64, writeU64 } from './format.js';
import type { SpoolSink } from './types.js';

export const CUR_MAGIC = Buffer.from('spcursr1', 'latin1');
export const CURSOR_BYTES = 24;

export function encodeCursor(id: number): Buffer {
  const b = Buffer.alloc(CURSOR_BYTES);
  CUR_MAGIC.copy(b, 0);
  writeU64(b, 8, id);
  b.writeUInt32LE(crc32(b, 0, 16), 16);
  return b;
}

/** The id a cursor record holds, or -1 if `b` (of which `n` bytes were read) is not one. */
export function decodeCursor(b: Buffer, n = b.length): number {
  if (n < CURSOR_BYTES || !b.subarray(0, 8).equals(CUR_MAGIC) || crc32(b, 0, 16) !== b.readUInt32LE(16)) return -1;
  return readU64(b, 8);
}

export class CursorFile {
  /** What the file held at open: -1 if nothing usable. */
  readonly stored: number;
  /** First record not acknowledged. */
  committed = 0;
  private persisted: number;
  private readonly fd: number;

  constructor(
    dir: string,
    private readonly every: number,
    private readonly sink: SpoolSink,
  ) {
    this.fd = fs.openSync(path.join(dir, 'cursor'), fs.constants.O_RDWR | fs.constants.O_CREAT, 0o644);
    const b = Buffer.alloc(CURSOR_BYTES);
    this.stored = decodeCursor(b, fs.readSync(this.fd, b, 0, CURSOR_BYTES, 0));
    this.persisted = this.stored;
  }

  /** Write `committed` if it moved by `every` records since last written. */
  writeIfDue(): void {
    if (this.committed - this.persisted >= this.every) this.write();
  }

  /** Write `committed` if it moved at all. */
  writeIfMoved(): void {
    if (this.committed !== this.persisted) this.write();
  }

  write(): void {
    try {
      fs.writeSync(this.fd, encodeCursor(this.committed), 0, CURSOR_BYTES, 0);
      this.persisted = this.committed;
    } catch (e) {
      this.sink.stats.writeErrors++;
      this.sink.fail(`cannot write spool cursor: ${errorMessage(e)}`);
    }
  }

  /** Sync and close (the caller writes first). */
  close(): void {
    try {
      fs.fdatasyncSync(this.fd);
    } catch {
      // Best effort; an older cursor only means more repeats.
    }
    fs.closeSync(this.fd);
  }
}
