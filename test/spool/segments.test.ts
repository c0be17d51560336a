/** The segment files of a spool directory (#12: spool/segments.ts). */
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import { describe, expect, it } from 'vitest';
import { SEG_HEADER, headerCheck, segName, segmentCheck } from '../../src/spool/format.js';
import { SegmentList } from '../../src/spool/segments.js';
import { ROOT, tempDir } from '../helpers.js';

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

  it('#16: segments loaded, created, made in the spare file and cut share one hidden class (the append path stays monomorphic)', () => {
    // V8's own answer, in a child with natives syntax: a field added after creation or deleted (the old
    // `delete seg.reused`) gives a segment another map, and the writer's per-record code deoptimises.
    const code = `
      import { Spool } from ${JSON.stringify(pathToFileURL(path.join(ROOT, 'dist/spool.js')).href)};
      const dir = process.env.SPOOL_DIR;
      const opts = { syncInterval: 0, maxBytes: 16 * 1024 * 1024, segmentBytes: 1536 * 1024 };
      const rec = Buffer.alloc(1000, 0x61);
      let s = Spool.open(dir, opts);
      for (let i = 0; i < 4000; i++) s.append(rec, 'r');
      s.close();
      s = Spool.open(dir, opts);
      const loaded = s.segments.at(0);
      let reused = 0;
      for (let i = 0; i < 12000; i++) {
        s.append(rec, 'r');
        if (i % 500 === 0) { s.flush(); s.commit(s.nextRecordId - 100); }
        if (s.segments.newest.reused) reused++;
      }
      s.flush();
      const list = [loaded, ...Array.from({ length: s.segmentCount }, (_, i) => s.segments.at(i))];
      // Read as the append path reads them (a map V8 deprecated meanwhile is migrated on access).
      for (const x of list) void (x.first + x.size + x.reused + (x.check ? 1 : 0));
      const same = list.every((x) => %HaveSameMap(x, list[0]));
      console.log(JSON.stringify({ segments: list.length, reused: reused > 0, cut: list.some((x) => x.reused === 0 && x !== list[list.length - 1]), same }));
      s.close();
    `;
    const p = spawnSync(process.execPath, ['--allow-natives-syntax', '--input-type=module', '-e', code], { env: { ...process.env, SPOOL_DIR: tempDir() }, timeout: 30_000, encoding: 'utf8' });
    expect(p.stderr).toBe('');
    expect(JSON.parse(p.stdout)).toEqual({ segments: expect.any(Number), reused: true, cut: true, same: true });
    expect(JSON.parse(p.stdout).segments).toBeGreaterThan(2);
  });
});
