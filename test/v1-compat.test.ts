/**
 * Files written by spread-pipe 0.1.0 stay readable (#12: the spool and the
 * dedup journal now share one record framing). test/fixtures/v1/ holds a
 * spool directory and a .seen journal written by the code of commit e07b36d
 * (test/fixtures/v1/make.mjs, whose content functions these mirror).
 */
import fs from 'node:fs';
import path from 'node:path';
import zlib from 'node:zlib';
import { describe, expect, it } from 'vitest';
import { DuplicateFilter, type SeenRange } from '../src/dedup.js';
import { FRAME_HEADER, checkFrame } from '../src/record-frame.js';
import { SeenJournal } from '../src/seen-journal.js';
import { Spool } from '../src/spool.js';
import { SEG_MAGIC, SEG_RE, segName, segmentCheck } from '../src/spool/format.js';
import { ROOT, defer, reframed, tempDir } from './helpers.js';

const FIXTURES = path.join(ROOT, 'test/fixtures/v1');

// As in make.mjs.
const N = 150;
const data = (i: number): Buffer => {
  if (i % 50 === 7) return Buffer.alloc(0);
  if (i === 77) return Buffer.from(Array.from({ length: 1500 }, (_, k) => (k * 7 + i) & 0xff));
  return Buffer.from(`web${i % 3} line ${i} \u00ff\u0001${'x'.repeat((i * 37) % 200)}\n`, 'latin1');
};
const route = (i: number): string | undefined => [undefined, '1e bench', '20 a b c', 'r\u00e9seau'][i % 4];
const JOURNAL_WRITES: SeenRange[][] = [
  [{ stream: 'A', first: 0, count: 100 }],
  [{ stream: 'B', first: 0, count: 10 }],
  [
    { stream: 'A', first: 100, count: 30 },
    { stream: 'B', first: 10, count: 5 },
  ],
  [
    { stream: 'C', first: 65530, count: 6 },
    { stream: 'C', first: 0, count: 4 },
  ],
];

function copyOf(name: string): string {
  const to = path.join(tempDir(), name);
  fs.cpSync(path.join(FIXTURES, name), to, { recursive: true });
  return to;
}

function open(dir: string): Spool {
  const s = Spool.open(dir, { syncInterval: 0, cursorEvery: 1, segmentBytes: 4096 });
  defer(() => s.close());
  return s;
}

function readAll(s: Spool): { id: number; data: Buffer; route: string | undefined }[] {
  const out = [];
  for (let r = s.read(1000); r.length; r = s.read(1000)) out.push(...r);
  return out;
}

/**
 * A 0.1.0 segment file as this version writes the same records (#16): the
 * format-2 magic, and every frame's check the XXH32 salted with the
 * segment's first id instead of the CRC-32; all else byte for byte.
 */
function asFormat2(old: Buffer, first: number): Buffer {
  return reframed(old, SEG_MAGIC, segmentCheck(first));
}

/** Every stream's window as comparable values, by name. */
function windows(f: DuplicateFilter): Record<string, { top: number; bits: string }> {
  const out: Record<string, { top: number; bits: string }> = {};
  for (const [name, w] of f.entries()) out[name] = { top: w.top, bits: Buffer.from(w.bits.buffer, w.bits.byteOffset, w.bits.byteLength).toString('hex') };
  return out;
}

function expectedFilter(writes: SeenRange[][]): DuplicateFilter {
  const f = new DuplicateFilter();
  for (const w of writes) for (const c of w) f.markSeen(c);
  return f;
}

describe('#12: files written by spread-pipe 0.1.0', () => {
  it('#12: a 0.1.0 spool opens at its cursor with its meta, every record intact, ids going on', () => {
    const dir = copyOf('spool');
    const s = open(dir);
    expect(s.cursor).toBe(40);
    expect(s.meta).toEqual({ stream: 'sq3kz9x1' });
    expect(s.unread).toBe(N - 40);
    expect(s.stats).toMatchObject({ corrupt: 0, tornBytes: 0 });
    const got = readAll(s);
    expect(got.map((r) => r.id)).toEqual([...Array(N - 40).keys()].map((i) => i + 40));
    for (const r of got) {
      expect(r.data.equals(data(r.id)), `record ${r.id}`).toBe(true);
      expect(r.route).toBe(route(r.id));
    }
    expect(s.append(Buffer.from('new\n'), 'x')).toBe(N);
    s.commit(100);
    s.close();
    // #16: 0.1.0's segments are read, never appended to: the new record starts a segment of today's format.
    const segs = fs.readdirSync(dir).filter((f) => SEG_RE.test(f)).sort();
    expect(segs).toEqual(['0000000000000081.spool', '0000000000000112.spool', '0000000000000142.spool', segName(N)]);
    for (const f of segs.slice(0, 3)) expect(fs.readFileSync(path.join(dir, f)).equals(fs.readFileSync(path.join(FIXTURES, 'spool', f))), f).toBe(true);
    expect(fs.readFileSync(path.join(dir, segName(N))).subarray(0, 8)).toEqual(SEG_MAGIC);
    const again = open(dir);
    expect(again.cursor).toBe(100);
    expect(readAll(again).map((r) => r.id)).toEqual([...Array(N - 99).keys()].map((i) => i + 100));
  });

  it('#16: the same appends, reads and commits today write the files 0.1.0 wrote but for the segment format: each magic and frame check', () => {
    const dir = path.join(tempDir(), 'spool');
    const s = Spool.open(dir, { syncInterval: 0, cursorEvery: 1, segmentBytes: 4096 });
    for (let i = 0; i < N; i++) s.append(data(i), route(i));
    s.read(60);
    s.commit(40);
    s.setMeta({ stream: 'sq3kz9x1' });
    s.close();
    const old = fs.readdirSync(path.join(FIXTURES, 'spool')).sort();
    expect(fs.readdirSync(dir).sort()).toEqual(old);
    for (const f of old) {
      const was = fs.readFileSync(path.join(FIXTURES, 'spool', f));
      const m = SEG_RE.exec(f);
      expect(fs.readFileSync(path.join(dir, f)).equals(m ? asFormat2(was, Number(m[1])) : was), f).toBe(true);
    }
  });

  it('#12: a 0.1.0 .seen journal (a snapshot, then write records) replays to the same windows', () => {
    const file = copyOf('out.log.seen');
    const f = new DuplicateFilter();
    const j = SeenJournal.open(file, f);
    j.close();
    expect(j.recovery).toEqual({ records: 3, undone: 0, truncated: [], tornBytes: 0 });
    expect(windows(f)).toEqual(windows(expectedFilter(JOURNAL_WRITES)));
  });

  it('#12: records appended today after 0.1.0 ones are replayed with them', () => {
    const file = copyOf('out.log.seen');
    const log = path.join(path.dirname(file), 'out.log');
    const fd = fs.openSync(log, 'a');
    defer(() => fs.closeSync(fd));
    const j = SeenJournal.open(file, new DuplicateFilter());
    const more: SeenRange[] = [{ stream: 'D', first: 7, count: 3 }];
    j.record(log, fd, 30, more);
    fs.writeSync(fd, Buffer.alloc(30, 0x61));
    j.close();
    const f = new DuplicateFilter();
    const k = SeenJournal.open(file, f);
    k.close();
    expect(k.recovery).toMatchObject({ records: 4, undone: 0, tornBytes: 0 });
    expect(windows(f)).toEqual(windows(expectedFilter([...JOURNAL_WRITES, more])));
  });

  it('#12: a torn last record of a 0.1.0 journal is cut off and its ids stay unseen', () => {
    const file = copyOf('out.log.seen');
    const size = fs.statSync(file).size;
    fs.truncateSync(file, size - 5);
    const f = new DuplicateFilter();
    const j = SeenJournal.open(file, f);
    j.close();
    expect(j.recovery.records).toBe(2);
    expect(j.recovery.tornBytes).toBeGreaterThan(0);
    expect(fs.statSync(file).size).toBe(size - 5 - j.recovery.tornBytes);
    expect(windows(f)).toEqual(windows(expectedFilter(JOURNAL_WRITES.slice(0, 3))));
  });
});

describe('#12: the dedup journal on the one record framing', () => {
  it('#12: records written today carry the CRC of length and payload (no legacy scope needed to read them)', () => {
    const file = path.join(tempDir(), 'out.log.seen');
    const fd = fs.openSync(path.join(path.dirname(file), 'out.log'), 'a');
    defer(() => fs.closeSync(fd));
    const j = SeenJournal.open(file, new DuplicateFilter());
    j.record('/x/out.log', fd, 10, [{ stream: 'A', first: 1, count: 2 }]);
    j.record('/x/out.log', fd, 10, [{ stream: 'A', first: 3, count: 2 }]);
    j.close();
    const buf = fs.readFileSync(file);
    let off = 0;
    let n = 0;
    for (let end = checkFrame(buf, off, buf.length); end > 0; end = checkFrame(buf, off, buf.length)) {
      expect(buf.readUInt32LE(off + 4)).toBe(zlib.crc32(buf.subarray(off + FRAME_HEADER, end), zlib.crc32(buf.subarray(off, off + 4))));
      off = end;
      n++;
    }
    expect([n, off]).toEqual([2, buf.length]);
  });
});
