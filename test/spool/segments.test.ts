/** The segment files of a spool directory (#12: spool/segments.ts). */
import fs from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { SEG_HEADER, headerCheck, segName, segmentCheck } from '../../src/spool/format.js';
import { SegmentList } from '../../src/spool/segments.js';
import { tempDir } from '../helpers.js';

describe('SegmentList', () => {
  it('#12: loads segments by name (oldest first), ignores other files, sums their bytes', () => {
    const dir = tempDir();
    fs.writeFileSync(path.join(dir, segName(300)), Buffer.alloc(50));
    fs.writeFileSync(path.join(dir, segName(7)), Buffer.alloc(20));
    fs.writeFileSync(path.join(dir, 'cursor'), Buffer.alloc(24));
    fs.writeFileSync(path.join(dir, '12.spool'), Buffer.alloc(99));
    const l = SegmentList.load(dir);
    expect([l.oldest.first, l.newest.first, l.length, l.bytes]).toEqual([7, 300, 2, 70]);
  });

  it('#12: create() writes the header; holding(), startingAt(), after() find segments by id', () => {
    const dir = tempDir();
    const l = SegmentList.load(dir);
    for (const first of [0, 10, 25]) fs.closeSync(l.create(first));
    expect(l.bytes).toBe(3 * SEG_HEADER);
    expect(headerCheck(fs.readFileSync(path.join(dir, segName(10))), 10)).toEqual(segmentCheck(10));
    expect(l.at(1)!.check).toEqual(segmentCheck(10));
    expect([0, 9, 10, 24, 25, 1000].map((id) => l.holding(id).first)).toEqual([0, 0, 10, 10, 25, 25]);
    expect(l.startingAt(10)?.first).toBe(10);
    expect(l.startingAt(11)).toBeUndefined();
    expect(l.after(l.oldest)?.first).toBe(10);
    expect(l.after(l.newest)).toBeUndefined();
  });

  it('#12: removing segments deletes their files and their bytes', () => {
    const dir = tempDir();
    const l = SegmentList.load(dir);
    for (const first of [0, 10, 25]) fs.closeSync(l.create(first));
    l.resize(l.oldest, 100);
    expect(l.bytes).toBe(100 + 2 * SEG_HEADER);
    expect(l.removeOldest().first).toBe(0);
    l.removeNewest();
    expect([l.length, l.bytes, fs.readdirSync(dir)]).toEqual([1, SEG_HEADER, [segName(10)]]);
    l.removeAll();
    expect([l.length, l.bytes, fs.readdirSync(dir)]).toEqual([0, 0, []]);
  });
});
