/** The spool's cursor record and file (#12: spool/cursor.ts). */
import fs from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { CURSOR_BYTES, CursorFile, decodeCursor, encodeCursor } from '../../src/spool/cursor.js';
import { type SpoolSink, newStats } from '../../src/spool/types.js';
import { tempDir } from '../helpers.js';

function sink(): SpoolSink & { failures: string[] } {
  const failures: string[] = [];
  return { stats: newStats(), event: () => {}, fail: (m) => failures.push(m), ok: () => {}, failures };
}

describe('cursor record', () => {
  it('#12: 24 bytes: magic, u64 LE id, CRC-32 of those 16, zeros; ids past 2^32 round-trip', () => {
    const b = encodeCursor(0x1_2345_6789);
    expect(b.length).toBe(CURSOR_BYTES);
    expect(b.toString('latin1', 0, 8)).toBe('spcursr1');
    expect(b.readBigUInt64LE(8)).toBe(0x1_2345_6789n);
    expect(b.subarray(20)).toEqual(Buffer.alloc(4));
    for (const id of [0, 1, 40, 2 ** 32 - 1, 2 ** 32, 2 ** 53 - 1]) expect(decodeCursor(encodeCursor(id))).toBe(id);
  });

  it('#12: short, foreign or corrupt bytes are no cursor (-1)', () => {
    const b = encodeCursor(1234);
    expect(decodeCursor(b, 23)).toBe(-1);
    expect(decodeCursor(Buffer.alloc(24))).toBe(-1);
    for (const i of [0, 8, 12, 16]) {
      const c = Buffer.from(b);
      c[i]! ^= 0x10;
      expect(decodeCursor(c), `byte ${i}`).toBe(-1);
    }
  });
});

describe('CursorFile', () => {
  it('#12: a new file holds nothing (-1); written ids are found again at the next open', () => {
    const dir = tempDir();
    const a = new CursorFile(dir, 10, sink());
    expect(a.stored).toBe(-1);
    a.committed = 77;
    a.write();
    a.close();
    expect(fs.readFileSync(path.join(dir, 'cursor'))).toEqual(encodeCursor(77));
    const b = new CursorFile(dir, 10, sink());
    expect(b.stored).toBe(77);
    b.close();
  });

  it('#12: writeIfDue() writes once the id moved by `every`; writeIfMoved() on any move', () => {
    const dir = tempDir();
    const file = path.join(dir, 'cursor');
    const c = new CursorFile(dir, 10, sink());
    const stored = (): number => decodeCursor(fs.readFileSync(file));
    // Nothing written counts as -1.
    c.committed = 8;
    c.writeIfDue();
    expect(stored()).toBe(-1);
    c.committed = 9;
    c.writeIfDue();
    expect(stored()).toBe(9);
    c.committed = 18;
    c.writeIfDue();
    expect(stored()).toBe(9);
    c.committed = 19;
    c.writeIfDue();
    expect(stored()).toBe(19);
    c.committed = 20;
    c.writeIfMoved();
    expect(stored()).toBe(20);
    c.writeIfMoved();
    expect(stored()).toBe(20);
    c.close();
  });

  it('#12: a write that fails is counted and reported', () => {
    const dir = tempDir();
    const s = sink();
    const c = new CursorFile(dir, 1, s);
    c.close(); // its fd is gone: the write fails with EBADF
    c.committed = 5;
    c.write();
    expect(s.stats.writeErrors).toBe(1);
    expect(s.failures[0]).toMatch(/^cannot write spool cursor: /);
  });
});
