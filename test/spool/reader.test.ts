/**
 * The spool's read end (#12: spool/reader.ts): memory, then disk, in order;
 * what cannot be read is skipped by one routine that counts every record
 * missing (the end of a segment short of the next one, a bad record, the gap
 * of a failed write) and says so once.
 */
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import { describe, expect, it } from 'vitest';
import { CRC32_FRAMES, FRAME_HEADER, sealFrame } from '../../src/record-frame.js';
import { SEG_HEADER, SEG_MAGIC_V1, segName, segmentCheck, segmentHeader, writePayload } from '../../src/spool/format.js';
import { SegmentReader, type WriteEnd } from '../../src/spool/reader.js';
import { SegmentList } from '../../src/spool/segments.js';
import { type SpoolEvent, type SpoolSink, newStats } from '../../src/spool/types.js';
import { SegmentWriter } from '../../src/spool/writer.js';
import { ROOT, defer, tempDir } from '../helpers.js';

type TestSink = SpoolSink & { events: SpoolEvent[] };
const sink = (): TestSink => {
  const events: SpoolEvent[] = [];
  return { stats: newStats(), event: (e) => events.push(e), fail: () => {}, ok: () => {}, events };
};
const rec = (i: number): string => `rec ${i} ${'z'.repeat(i % 40)}\n`;

/**
 * Write a segment by hand: records `first`.. `first + count - 1`; returns the
 * offset where each record starts. Format 2 (today's), or 1 (0.1.0's: its
 * magic, CRC-32 frames).
 */
function segment(dir: string, first: number, count: number, format: 1 | 2 = 2): number[] {
  const buf = Buffer.alloc(SEG_HEADER + count * 100);
  segmentHeader(first).copy(buf);
  if (format === 1) SEG_MAGIC_V1.copy(buf);
  const check = format === 1 ? CRC32_FRAMES : segmentCheck(first);
  const starts: number[] = [];
  let off = SEG_HEADER;
  for (let i = first; i < first + count; i++) {
    starts.push(off);
    const end = writePayload(buf, off + FRAME_HEADER, Buffer.from(rec(i)), i % 3 ? undefined : 'g');
    sealFrame(buf, off, end - off - FRAME_HEADER, check);
    off = end;
  }
  fs.writeFileSync(path.join(dir, segName(first)), buf.subarray(0, off));
  return starts;
}

/** A write end that only says where the records end: the reader reads files made by hand. */
const ended = (nextId: number): WriteEnd => ({ nextId, pending: 0, flush: () => {} });

function reader(dir: string, end: WriteEnd, memoryBytes = 0, at = 0): { r: SegmentReader; s: TestSink; segments: SegmentList } {
  const segments = SegmentList.load(dir);
  const s = sink();
  const r = new SegmentReader(segments, end, s, memoryBytes);
  defer(() => r.close());
  r.position(at);
  return { r, s, segments };
}

function readAll(r: SegmentReader, batch = 7): number[] {
  const ids: number[] = [];
  for (let got = r.read(batch); got.length; got = r.read(batch)) {
    for (const g of got) {
      expect(g.data.toString()).toBe(rec(g.id));
      expect(g.route).toBe(g.id % 3 ? undefined : 'g');
      ids.push(g.id);
    }
  }
  return ids;
}

const range = (from: number, to: number): number[] => Array.from({ length: to - from }, (_, i) => from + i);

describe('SegmentReader', () => {
  it('#12: reads across segments in order, within maxRecords and about maxBytes', () => {
    const dir = tempDir();
    segment(dir, 0, 30);
    segment(dir, 30, 30);
    const { r, s } = reader(dir, ended(60));
    expect(r.read(5)).toHaveLength(5);
    const some = r.read(100, 50);
    expect(some.length).toBeGreaterThan(0);
    expect(some.length).toBeLessThan(10);
    expect(readAll(r)).toEqual(range(5 + some.length, 60));
    expect(s.stats).toMatchObject({ readFromDisk: 60, corrupt: 0 });
    expect(s.events).toEqual([]);
  });

  it('#16: segments of 0.1.0\'s format (CRC-32 frames) and of today\'s (XXH32) are read in order, each by its own check', () => {
    const dir = tempDir();
    segment(dir, 0, 10, 1);
    segment(dir, 10, 10, 1);
    segment(dir, 20, 10, 2);
    const { r, s } = reader(dir, ended(30));
    expect(readAll(r)).toEqual(range(0, 30));
    expect(s.stats).toMatchObject({ readFromDisk: 30, corrupt: 0 });
    expect(s.events).toEqual([]);
    // Each format's records fail the other's check: a magic rewritten by mistake is caught, not trusted.
    for (const [first, magic] of [[0, Buffer.from('spspool2')], [20, SEG_MAGIC_V1]] as const) {
      const file = path.join(dir, segName(first));
      const buf = fs.readFileSync(file);
      magic.copy(buf);
      fs.writeFileSync(file, buf);
    }
    const again = reader(dir, ended(30));
    expect(readAll(again.r)).toEqual(range(10, 20));
    expect(again.s.stats.corrupt).toBe(20);
    expect(again.s.events.map((e) => e.type === 'corrupt' && [e.file, e.records, e.reason])).toEqual([
      [segName(0), 10, 'bad record (check or length)'],
      [segName(20), 10, 'bad record (check or length)'],
    ]);
  });

  it('#16: a segment whose header is of no known format, or names another first id, is skipped whole: counted, one event', () => {
    const dir = tempDir();
    segment(dir, 0, 10);
    segment(dir, 10, 10);
    segment(dir, 20, 10);
    const unknown = path.join(dir, segName(0));
    const a = fs.readFileSync(unknown);
    a.write('spspool9', 0, 'latin1');
    fs.writeFileSync(unknown, a);
    // Segment 10's bytes under segment 20's name: its header names 10, and its frames are salted for 10.
    fs.copyFileSync(path.join(dir, segName(10)), path.join(dir, segName(20)));
    const { r, s } = reader(dir, ended(30));
    expect(readAll(r)).toEqual(range(10, 20));
    expect(s.stats.corrupt).toBe(20);
    const reason = 'segment header of an unknown format or of another segment';
    expect(s.events).toEqual([
      { type: 'corrupt', file: segName(0), records: 10, reason },
      { type: 'corrupt', file: segName(20), records: 10, reason },
    ]);
  });

  it('#16: a format-2 frame checks only in the segment it was written for (its check is salted with the first id)', () => {
    const dir = tempDir();
    segment(dir, 0, 10);
    segment(dir, 10, 10);
    // Segment 0's records behind segment 10's header: whole frames, lengths right, each check salted for 0.
    const f0 = fs.readFileSync(path.join(dir, segName(0)));
    const f10 = path.join(dir, segName(10));
    fs.writeFileSync(f10, Buffer.concat([fs.readFileSync(f10).subarray(0, SEG_HEADER), f0.subarray(SEG_HEADER)]));
    const { r, s } = reader(dir, ended(20));
    expect(readAll(r)).toEqual(range(0, 10));
    expect(s.stats.corrupt).toBe(10);
    expect(s.events).toEqual([{ type: 'corrupt', file: segName(10), records: 10, reason: 'bad record (check or length)' }]);
  });

  it('#12: a segment ending short of the next one\'s first id: the records missing are counted once, with one event', () => {
    const dir = tempDir();
    segment(dir, 0, 5);
    segment(dir, 8, 4);
    const { r, s } = reader(dir, ended(12));
    expect(readAll(r)).toEqual([...range(0, 5), ...range(8, 12)]);
    expect(s.stats.corrupt).toBe(3);
    expect(s.events).toEqual([{ type: 'corrupt', file: segName(0), records: 3, reason: 'records missing at the end' }]);
  });

  it('#12: a bad record ends its segment: the rest of it is counted up to the next segment', () => {
    const dir = tempDir();
    const starts = segment(dir, 0, 10);
    segment(dir, 10, 10);
    const file = path.join(dir, segName(0));
    const buf = fs.readFileSync(file);
    buf[starts[5]! + FRAME_HEADER + 2]! ^= 0x40;
    fs.writeFileSync(file, buf);
    const { r, s } = reader(dir, ended(20));
    expect(readAll(r)).toEqual([...range(0, 5), ...range(10, 20)]);
    expect(s.stats.corrupt).toBe(5);
    expect(s.events).toEqual([{ type: 'corrupt', file: segName(0), records: 5, reason: 'bad record (check or length)' }]);
  });

  it('#12: a bad record in the newest segment: counted up to the last id appended; the reader is then at the end', () => {
    const dir = tempDir();
    const starts = segment(dir, 0, 10);
    const file = path.join(dir, segName(0));
    const buf = fs.readFileSync(file);
    buf.writeUInt32LE(0, starts[7]!); // a zero length
    fs.writeFileSync(file, buf);
    const { r, s } = reader(dir, ended(10));
    expect(readAll(r)).toEqual(range(0, 7));
    expect(r.next).toBe(10);
    expect(s.stats.corrupt).toBe(3);
    expect(s.events).toEqual([{ type: 'corrupt', file: segName(0), records: 3, reason: 'bad record (check or length)' }]);
  });

  it('#12: records that never reached the disk (a failed write) before one kept in memory: counted, no event of their own', () => {
    const dir = tempDir();
    segment(dir, 0, 5);
    const { r, s, segments } = reader(dir, ended(10), 1 << 20);
    // 5..7 were lost by the write that failed; 8 and 9 are in memory (the write error was reported then).
    r.appended(8, Buffer.from(rec(8)), undefined, segments.newest, 0);
    r.appended(9, Buffer.from(rec(9)), 'g', segments.newest, 0);
    expect(r.read(100).map((g) => g.id)).toEqual([...range(0, 5), 8, 9]);
    expect(s.stats.corrupt).toBe(3);
    expect(s.events).toEqual([]);
  });

  it('#12: with the writer: appends come back from memory while the budget lasts, then from disk, in order', () => {
    const dir = tempDir();
    const segments = SegmentList.load(dir);
    const s = sink();
    const w = new SegmentWriter(segments, 4096, s, 0);
    defer(() => w.close());
    const r = new SegmentReader(segments, w, s, 2000);
    defer(() => r.close());
    r.position(0);
    const ids: number[] = [];
    for (let round = 0; round < 20; round++) {
      for (let i = 0; i < 40; i++) {
        const n = w.nextId;
        const data = Buffer.from(rec(n));
        const g = n % 3 ? undefined : 'g';
        w.reserve(data.length, g);
        const id = w.write(data, g);
        r.appended(id, data, g, segments.newest, w.end);
      }
      for (const g of r.read(round % 2 ? 15 : 60)) {
        expect(g.data.toString()).toBe(rec(g.id));
        ids.push(g.id);
      }
    }
    ids.push(...readAll(r));
    expect(ids).toEqual(range(0, 800));
    expect(s.stats.readFromDisk).toBeGreaterThan(0);
    expect(s.stats.readFromDisk).toBeLessThan(800);
    expect(s.stats.corrupt).toBe(0);
  });

  it('#12: position() and rewind() put the reader at any record, mid-segment', () => {
    const dir = tempDir();
    segment(dir, 0, 30);
    segment(dir, 30, 30);
    const { r } = reader(dir, ended(60), 0, 17);
    expect(readAll(r)).toEqual(range(17, 60));
    r.rewind(42);
    expect(readAll(r)).toEqual(range(42, 60));
    r.rewind(3);
    expect(readAll(r)).toEqual(range(3, 60));
  });

  it('#12: when the oldest segment is deleted unread, the reader goes on at the next one', () => {
    const dir = tempDir();
    segment(dir, 0, 30);
    segment(dir, 30, 30);
    const { r, segments } = reader(dir, ended(60));
    expect(r.read(10)).toHaveLength(10);
    r.removed(segments.removeOldest());
    expect(r.next).toBe(30);
    expect(readAll(r)).toEqual(range(30, 60));
  });

  it('#12: a record longer than one read (1 MiB) is read from disk, and skipped over at open, instead of hanging', () => {
    // In a child process with a time limit: the old reader looped forever, synchronously.
    const code = `
      import { Spool } from ${JSON.stringify(pathToFileURL(path.join(ROOT, 'dist/spool.js')).href)};
      const dir = process.env.SPOOL_DIR;
      let s = Spool.open(dir, { syncInterval: 0, memoryBytes: 0, cursorEvery: 1 });
      s.append(Buffer.from('a\\n'));
      s.append(Buffer.alloc(3 * 1024 * 1024, 0x42), 'g');
      s.append(Buffer.from('b\\n'));
      s.flush();
      const first = s.read(10).map((r) => r.id + ':' + r.data.length + ':' + r.route);
      s.commit(2);
      s.close();
      s = Spool.open(dir, { syncInterval: 0, memoryBytes: 0 });
      const second = s.read(10).map((r) => r.id + ':' + r.data.length);
      console.log(JSON.stringify({ first, second, corrupt: s.stats.corrupt }));
      s.close();
    `;
    const p = spawnSync(process.execPath, ['--input-type=module', '-e', code], { env: { ...process.env, SPOOL_DIR: tempDir() }, timeout: 30_000, encoding: 'utf8' });
    expect(p.stderr).toBe('');
    expect(p.status).toBe(0);
    expect(JSON.parse(p.stdout)).toEqual({ first: ['0:2:undefined', `1:${3 * 1024 * 1024}:g`, '2:2:undefined'], second: ['2:2'], corrupt: 0 });
  });
});
