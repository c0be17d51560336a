/**
 * The disk spool (issue 7): order, replay from the cursor after close and
 * after SIGKILL, the bound (oldest segments dropped and counted), torn and
 * corrupt records detected and skipped, never returned, and the lock.
 */
import fs from 'node:fs';
import path from 'node:path';
import { describe, expect, it, vi } from 'vitest';
import { Spool, type SpoolEvent, type SpoolOptions } from '../src/spool.js';
import { SPARE } from '../src/spool/segments.js';
import { ErrorCodes } from '../src/errors.js';
import { ROOT, defer, startProcess, tempDir } from './helpers.js';

const rec = (i: number): Buffer => Buffer.from(`line ${i} ${'x'.repeat(i % 97)}\n`);

function open(dir: string, opts: SpoolOptions = {}): Spool {
  const s = Spool.open(dir, { syncInterval: 0, ...opts });
  defer(() => s.close());
  return s;
}

function readAll(s: Spool, batch = 1000): { id: number; data: string; route: string | undefined }[] {
  const out = [];
  for (let r = s.read(batch); r.length; r = s.read(batch)) for (const x of r) out.push({ id: x.id, data: x.data.toString(), route: x.route });
  return out;
}

const segments = (dir: string): string[] => fs.readdirSync(dir).filter((f) => f.endsWith('.spool')).sort();

describe('Spool', () => {
  it('hands records back in order with their routes, from memory', () => {
    const s = open(tempDir());
    for (let i = 0; i < 100; i++) expect(s.append(rec(i), i % 2 ? 'a\u0000b' : undefined)).toBe(i);
    const got = readAll(s, 7);
    expect(got.map((g) => g.id)).toEqual([...Array(100).keys()]);
    expect(got[5]).toEqual({ id: 5, data: rec(5).toString(), route: 'a\u0000b' });
    expect(got[4]!.route).toBeUndefined();
    expect(s.stats.readFromDisk).toBe(0);
  });

  it('reads from disk past its memory budget, interleaved with appends, and keeps order', () => {
    const s = open(tempDir(), { memoryBytes: 2000, segmentBytes: 64 * 1024 });
    let next = 0;
    const got: number[] = [];
    for (let round = 0; round < 50; round++) {
      for (let i = 0; i < 300; i++) s.append(rec(next++));
      if (round % 3 === 0) s.flush();
      for (const r of s.read(round % 2 ? 1000 : 120)) {
        expect(r.data.toString()).toBe(rec(r.id).toString());
        got.push(r.id);
      }
    }
    for (const r of readAll(s)) got.push(r.id);
    expect(got).toEqual([...Array(next).keys()]);
    expect(s.stats.readFromDisk).toBeGreaterThan(1000);
    expect(segments(s.dir).length).toBeGreaterThan(1);
  });

  it('#16: a backlog read 512 records at a time goes on in the 1 MiB chunk read last: each record once, in order, across chunk ends, appends and a rewind', () => {
    const s = open(tempDir(), { memoryBytes: 0 });
    s.keepInMemory(false);
    // Log-line sizes, and every 97th up to ~20 KiB, so that records straddle the chunk ends at many offsets.
    const big = (i: number): Buffer => Buffer.from(`big ${i} ${'y'.repeat(i % 97 === 0 ? (i * 7919) % 20_000 : 150 + (i % 120))}\n`);
    let next = 0;
    for (; next < 8000; next++) s.append(big(next));
    s.flush();
    const reads = vi.spyOn(fs, 'readSync');
    const got: number[] = [];
    let bytes = 0;
    try {
      for (let r = s.read(512); r.length; r = s.read(512)) {
        for (const x of r) {
          expect(x.data.equals(big(x.id))).toBe(true);
          got.push(x.id);
          bytes += x.data.length;
        }
        if (next < 9000) {
          for (let k = 0; k < 100; k++, next++) s.append(big(next));
          s.flush();
        }
      }
      // One read per chunk (and per segment and record longer than the rest of one), not one per 512 records.
      expect(reads.mock.calls.length).toBeLessThan(Math.ceil(bytes / (1024 * 1024)) + 2 * s.segmentCount + 3);
    } finally {
      reads.mockRestore();
    }
    expect(got).toEqual([...Array(next).keys()]);
    s.commit(1500);
    s.rewind();
    const again = readAll(s, 512);
    expect(again.map((r) => r.id)).toEqual([...Array(next - 1500).keys()].map((i) => i + 1500));
    expect(again.every((r) => r.data === big(r.id).toString())).toBe(true);
  });

  it('#16: close() with everything acknowledged deletes the segments without syncing them first; with lines unacknowledged it syncs and keeps them', () => {
    const syncs = vi.spyOn(fs, 'fdatasyncSync');
    try {
      const dir = tempDir();
      const a = Spool.open(dir, { syncInterval: 0 });
      for (let i = 0; i < 100; i++) a.append(rec(i));
      a.commit(100);
      syncs.mockClear();
      a.close();
      // The cursor alone (it keeps the next id).
      expect(syncs.mock.calls.length).toBe(1);
      expect(segments(dir)).toEqual([]);
      const b = Spool.open(dir, { syncInterval: 0 });
      for (let i = 0; i < 100; i++) b.append(rec(i));
      b.commit(199);
      syncs.mockClear();
      b.close();
      expect(syncs.mock.calls.length).toBe(2);
      expect(segments(dir).length).toBe(1);
      const c = open(dir);
      expect(readAll(c).map((r) => r.id)).toEqual([199]);
    } finally {
      syncs.mockRestore();
    }
  });

  it('replays what was not acknowledged after close and reopen; ids continue', () => {
    const dir = tempDir();
    const a = Spool.open(dir, { syncInterval: 0, cursorEvery: 1 });
    for (let i = 0; i < 50; i++) a.append(rec(i));
    expect(a.read(30)).toHaveLength(30);
    a.commit(20); // 20..29 were read (sent) but not acknowledged
    a.close();
    const b = open(dir);
    expect(b.unacked).toBe(30);
    const got = readAll(b);
    expect(got.map((g) => g.id)).toEqual([...Array(30).keys()].map((i) => i + 20));
    expect(b.append(rec(50))).toBe(50);
  });

  it('an empty spool after everything was acknowledged: segments deleted, ids kept', () => {
    const dir = tempDir();
    const a = Spool.open(dir, { syncInterval: 0 });
    for (let i = 0; i < 10; i++) a.append(rec(i));
    readAll(a);
    a.commit(10);
    a.close();
    expect(segments(dir)).toEqual([]);
    const b = open(dir);
    expect(b.unread).toBe(0);
    expect(b.append(rec(0))).toBe(10);
  });

  it('deletes segments once every record in them is acknowledged', async () => {
    const s = open(tempDir(), { segmentBytes: 64 * 1024 });
    for (let i = 0; i < 5000; i++) s.append(rec(i));
    s.flush();
    const before = segments(s.dir).length;
    expect(before).toBeGreaterThan(3);
    readAll(s);
    // In the background (#16): the files go within a moment, without the event loop waiting for the disk.
    s.commit(4000);
    await vi.waitFor(() => expect(segments(s.dir).length).toBeLessThan(before), { timeout: 5000 });
    s.commit(5000);
    await vi.waitFor(() => expect(segments(s.dir)).toHaveLength(1), { timeout: 5000 });
  });

  it('rewind() reads again from the oldest unacknowledged record', () => {
    const s = open(tempDir(), { segmentBytes: 64 * 1024 });
    for (let i = 0; i < 3000; i++) s.append(rec(i));
    readAll(s);
    s.commit(1234);
    s.rewind();
    expect(readAll(s).map((g) => g.id)).toEqual([...Array(3000 - 1234).keys()].map((i) => i + 1234));
  });

  it('past its bound drops the oldest whole segments and counts every record lost', () => {
    const events: SpoolEvent[] = [];
    const s = open(tempDir(), { maxBytes: 256 * 1024, segmentBytes: 64 * 1024, memoryBytes: 0 });
    s.on('event', (e: SpoolEvent) => events.push(e));
    const n = 20_000;
    for (let i = 0; i < n; i++) s.append(rec(i));
    s.flush();
    expect(s.bytes).toBeLessThanOrEqual(256 * 1024);
    const got = readAll(s);
    // What is left is the newest records, contiguous and in order; the rest is counted.
    expect(got.length + s.stats.dropped).toBe(n);
    expect(got[got.length - 1]!.id).toBe(n - 1);
    expect(got.map((g) => g.id)).toEqual([...Array(got.length).keys()].map((i) => i + n - got.length));
    expect(s.stats.dropped).toBeGreaterThan(10_000);
    const dropEvents = events.filter((e) => e.type === 'drop');
    expect(dropEvents.reduce((a, e) => a + (e.type === 'drop' ? e.records : 0), 0)).toBe(s.stats.dropped);
  });

  it('records read but not acknowledged when dropped are counted apart', () => {
    const s = open(tempDir(), { maxBytes: 256 * 1024, segmentBytes: 64 * 1024, memoryBytes: 0 });
    for (let i = 0; i < 100; i++) s.append(rec(i));
    expect(s.read(100)).toHaveLength(100);
    for (let i = 100; i < 20_000; i++) s.append(rec(i));
    expect(s.stats.droppedUnacked).toBe(100);
    expect(s.stats.dropped + readAll(s).length).toBe(19_900);
  });

  it('a torn last record (power loss mid-write) is cut off at open, never returned', () => {
    const dir = tempDir();
    const a = Spool.open(dir, { syncInterval: 0 });
    for (let i = 0; i < 100; i++) a.append(rec(i));
    a.close();
    const [seg] = segments(dir);
    const file = path.join(dir, seg!);
    const size = fs.statSync(file).size;
    // Half of the last record is on disk.
    fs.truncateSync(file, size - 10);
    const b = Spool.open(dir, { syncInterval: 0 });
    expect(b.stats.tornBytes).toBeGreaterThan(0);
    const got = readAll(b);
    expect(got.map((g) => g.id)).toEqual([...Array(99).keys()]);
    expect(got.every((g) => g.data === rec(g.id).toString())).toBe(true);
    // Appending goes on after the last whole record.
    expect(b.append(rec(99))).toBe(99);
    b.close();
    const c = open(dir);
    expect(readAll(c).map((g) => g.data)).toEqual([...Array(100).keys()].map((i) => rec(i).toString()));
  });

  it('garbage after the last record (a torn length) is cut off too', () => {
    const dir = tempDir();
    const a = Spool.open(dir, { syncInterval: 0 });
    for (let i = 0; i < 10; i++) a.append(rec(i));
    a.close();
    const file = path.join(dir, segments(dir)[0]!);
    fs.appendFileSync(file, Buffer.from([0xff, 0xff, 0x00, 0x00, 1, 2, 3, 4, 5, 6, 7]));
    const b = open(dir);
    expect(b.stats.tornBytes).toBe(11);
    expect(readAll(b)).toHaveLength(10);
  });

  it('a corrupt record in an older segment ends that segment: skipped and counted, later segments intact', () => {
    const dir = tempDir();
    const a = Spool.open(dir, { syncInterval: 0, segmentBytes: 64 * 1024 });
    const n = 3000;
    for (let i = 0; i < n; i++) a.append(rec(i));
    a.close();
    const segs = segments(dir);
    expect(segs.length).toBeGreaterThan(2);
    const file = path.join(dir, segs[0]!);
    const buf = fs.readFileSync(file);
    buf[Math.floor(buf.length / 2)] ^= 0x55; // one flipped bit pattern mid-segment
    fs.writeFileSync(file, buf);
    const events: SpoolEvent[] = [];
    const b = open(dir);
    b.on('event', (e: SpoolEvent) => events.push(e));
    const got = readAll(b);
    expect(got.every((g) => g.data === rec(g.id).toString())).toBe(true);
    expect(got.length + b.stats.corrupt).toBe(n);
    expect(b.stats.corrupt).toBeGreaterThan(0);
    const second = Number(segs[1]!.slice(0, 16));
    expect(got.filter((g) => g.id >= second)).toHaveLength(n - second);
    expect(events.some((e) => e.type === 'corrupt')).toBe(true);
  });

  it('is locked against a second user; a dead owner\'s lock is taken over', () => {
    const dir = tempDir();
    const a = open(dir);
    expect(() => Spool.open(dir)).toThrow(expect.objectContaining({ code: ErrorCodes.SPOOL_LOCKED }));
    expect(a.crashed).toBe(false);
    a.close();
    const again = open(dir);
    // Closed before: not a crash.
    expect(again.crashed).toBe(false);
    again.close();
    // A lock left by a process that no longer exists: the spool was not closed (#16: Spool.crashed).
    fs.writeFileSync(path.join(dir, 'lock'), `999999999 ${fs.readFileSync('/proc/sys/kernel/random/boot_id', 'latin1').trim()}\n`);
    const b = open(dir);
    expect(b.unread).toBe(0);
    expect(b.crashed).toBe(true);
  });

  it('survives SIGKILL while appending: every record reported written is there, in order, no garbage', async () => {
    const dir = tempDir();
    const child = startProcess(process.execPath, [path.join(ROOT, 'test/fixtures/spool-child.mjs'), dir, String(64 * 1024 * 1024)], { stdin: 'ignore' });
    const out = await child.waitStdout((s) => /written (\d{5,})\n/.test(s.slice(-40)) && Number(/written (\d+)\n$/.exec(s)?.[1]) > 30_000);
    child.kill('SIGKILL');
    await child.exited;
    const reported = Number(/written (\d+)\n$/.exec(out)![1]);
    const s = open(dir);
    expect(s.crashed).toBe(true);
    // The cursor was persisted at most cursorEvery records behind the last commit.
    const cursor = s.cursor;
    expect(cursor).toBeGreaterThan(0);
    const got = readAll(s);
    expect(got[0]!.id).toBe(cursor);
    expect(got.length + cursor).toBe(s.nextRecordId);
    expect(s.nextRecordId).toBeGreaterThanOrEqual(reported);
    for (const g of got) {
      expect(g.data).toBe(`rec-${g.id}\n`);
      expect(g.route).toBe(g.id % 3 ? undefined : 'grp');
    }
  });
});

describe('#16: an acknowledged segment\'s file written again', () => {
  const SEG = 2 * 1024 * 1024;
  const big = (i: number): Buffer => Buffer.from(`line ${i} ${'y'.repeat(200 + (i % 61))}\n`);
  const range = (a: number, b: number): number[] => Array.from({ length: b - a }, (_, k) => a + k);
  const firstOf = (f: string): number => Number(f.slice(0, 16));

  /** Bytes of the files --spool-max bounds, as the directory holds them: segments and the spare. */
  const boundedBytes = (dir: string): number => fs.readdirSync(dir).reduce((sum, f) => sum + (f.endsWith('.spool') || f === SPARE ? fs.statSync(path.join(dir, f)).size : 0), 0);

  /** Append until `count` segments exist; returns the next id. */
  function fillTo(s: Spool, dir: string, count: number, n: number): number {
    while (segments(dir).length < count) s.append(big(n++));
    s.flush();
    return n;
  }

  it('#16: the next segment is written in the file of the one acknowledged; at rest every file holds its records and no more, and no spare is left', () => {
    const dir = tempDir();
    const s = Spool.open(dir, { syncInterval: 0, segmentBytes: SEG });
    let n = fillTo(s, dir, 2, 0);
    const [a, b] = segments(dir) as [string, string];
    const inode = fs.statSync(path.join(dir, a)).ino;
    s.commit(firstOf(b));
    expect(segments(dir)).toEqual([b]);
    expect(fs.statSync(path.join(dir, SPARE)).ino).toBe(inode);
    n = fillTo(s, dir, 2, n);
    const c = segments(dir)[1]!;
    expect(fs.statSync(path.join(dir, c)).ino).toBe(inode);
    expect(fs.readFileSync(path.join(dir, c)).subarray(0, 8).toString('latin1')).toBe('spspoolR');
    expect(fs.existsSync(path.join(dir, SPARE))).toBe(false);
    // Closed while the file used again is the newest, a few records in: cut at its last record.
    for (let i = 0; i < 100; i++) s.append(big(n++));
    s.flush();
    expect(fs.statSync(path.join(dir, c)).size).toBeGreaterThan(SEG / 2);
    s.close();
    expect(fs.statSync(path.join(dir, c)).size).toBeLessThan(100 * 300);
    const again = open(dir, { segmentBytes: SEG });
    const events: SpoolEvent[] = [];
    again.on('event', (e: SpoolEvent) => events.push(e));
    const got = readAll(again);
    expect(got.map((g) => g.id)).toEqual(range(firstOf(b), n));
    expect(got.every((g) => g.data === big(g.id).toString())).toBe(true);
    expect(again.stats).toMatchObject({ corrupt: 0, tornBytes: 0 });
    expect(events).toEqual([]);
    expect(fs.readdirSync(dir)).not.toContain(SPARE);
  });

  it('#16: after a crash in a file used again, its old bytes past the last record are cut without a report; every record written is read back', () => {
    const dir = tempDir();
    const s = Spool.open(dir, { syncInterval: 0, segmentBytes: SEG });
    let n = fillTo(s, dir, 2, 0);
    const b = segments(dir)[1]!;
    s.commit(firstOf(b));
    n = fillTo(s, dir, 2, n);
    for (let i = 0; i < 50; i++) s.append(big(n++));
    s.flush();
    // The spool as a SIGKILL leaves it: the files as written so far, the reused one longer than its records.
    const crashed = tempDir();
    for (const f of fs.readdirSync(dir)) if (f !== 'lock') fs.copyFileSync(path.join(dir, f), path.join(crashed, f));
    const reused = segments(crashed)[1]!;
    const before = fs.statSync(path.join(crashed, reused)).size;
    s.close();
    const events: SpoolEvent[] = [];
    const again = open(crashed, { segmentBytes: SEG });
    again.on('event', (e: SpoolEvent) => events.push(e));
    expect(fs.statSync(path.join(crashed, reused)).size).toBeLessThan(before);
    const got = readAll(again);
    expect(got.map((g) => g.id)).toEqual(range(firstOf(b), n));
    expect(got.every((g) => g.data === big(g.id).toString())).toBe(true);
    expect(again.stats).toMatchObject({ corrupt: 0, tornBytes: 0 });
    expect(events).toEqual([]);
    // Appends go on after the last record, in the same file.
    expect(again.append(big(n))).toBe(n);
  });

  it('#16: an acknowledged segment is deleted in the background: its room counts against --spool-max until it is gone, nothing is dropped for it, and close leaves none behind', () => {
    const dir = tempDir();
    const max = 5 * SEG - 64 * 1024;
    const s = Spool.open(dir, { syncInterval: 0, segmentBytes: SEG, maxBytes: max });
    let n = fillTo(s, dir, 5, 0);
    const d = segments(dir)[3]!;
    // Three acknowledged with no room for a spare beside them: all three deleted in the background.
    s.commit(firstOf(d));
    expect(fs.readdirSync(dir)).not.toContain(SPARE);
    // Filled on at once, past the room the files being deleted hold: the bound waits for them rather than drop records.
    const until = n + Math.ceil((2.5 * SEG) / 260);
    while (n < until) {
      s.append(big(n++));
      s.flush();
      expect(boundedBytes(dir)).toBeLessThanOrEqual(max);
    }
    expect(s.stats).toMatchObject({ dropped: 0, droppedUnacked: 0 });
    expect(readAll(s).map((g) => g.id)).toEqual(range(firstOf(d), n));
    s.commit(n);
    s.close();
    expect(fs.readdirSync(dir).filter((f) => f.endsWith('.spool') || f === SPARE)).toEqual([]);
  });

  it('#16: close right after an acknowledgement finishes the deletions still in flight', () => {
    const dir = tempDir();
    const s = Spool.open(dir, { syncInterval: 0, segmentBytes: SEG });
    const n = fillTo(s, dir, 5, 0);
    const last = segments(dir)[4]!;
    readAll(s);
    // Synced, as a segment is once the next one starts: deleting such a file takes the filesystem a while.
    for (const f of segments(dir)) {
      const fd = fs.openSync(path.join(dir, f), 'r');
      fs.fdatasyncSync(fd);
      fs.closeSync(fd);
    }
    s.commit(firstOf(last));
    s.close();
    expect(segments(dir)).toEqual([last]);
    expect(fs.readdirSync(dir)).not.toContain(SPARE);
    const again = open(dir, { segmentBytes: SEG });
    expect(readAll(again).map((g) => g.id)).toEqual(range(firstOf(last), n));
  });

  it('#16: a spare file left by a crash is deleted at open', () => {
    const dir = tempDir();
    const s = Spool.open(dir, { syncInterval: 0, segmentBytes: SEG });
    const n = fillTo(s, dir, 3, 0);
    s.commit(firstOf(segments(dir)[1]!));
    const crashed = tempDir();
    for (const f of fs.readdirSync(dir)) if (f !== 'lock') fs.copyFileSync(path.join(dir, f), path.join(crashed, f));
    s.close();
    expect(fs.readdirSync(crashed)).toContain(SPARE);
    const again = open(crashed, { segmentBytes: SEG });
    expect(fs.readdirSync(crashed)).not.toContain(SPARE);
    expect(readAll(again).map((g) => g.id)).toEqual(range(firstOf(segments(crashed)[0]!), n));
  });

  it('#16: the spare counts against --spool-max: kept only with a segment\'s room to spare, and deleted before any record is dropped', async () => {
    const tight = tempDir();
    // Four segments (three full) under a bound of four: no room for a fifth besides them.
    const t = Spool.open(tight, { syncInterval: 0, segmentBytes: SEG, maxBytes: 4 * SEG - 64 * 1024 });
    fillTo(t, tight, 4, 0);
    t.commit(firstOf(segments(tight)[1]!));
    await vi.waitFor(() => expect(segments(tight)).toHaveLength(3), { timeout: 5000 });
    expect(fs.readdirSync(tight)).not.toContain(SPARE);
    t.close();

    const dir = tempDir();
    const max = 5 * SEG;
    const s = Spool.open(dir, { syncInterval: 0, segmentBytes: SEG, maxBytes: max });
    let n = fillTo(s, dir, 2, 0);
    s.commit(firstOf(segments(dir)[1]!));
    expect(fs.readdirSync(dir)).toContain(SPARE);
    // Nothing acknowledged from here on: the bound is reached, and the spare goes first.
    while (fs.readdirSync(dir).includes(SPARE) && s.stats.dropped === 0) {
      s.append(big(n++));
      s.flush();
    }
    expect(s.stats.dropped).toBe(0);
    for (let i = 0; i < 60_000; i++) s.append(big(n++));
    s.flush();
    expect(s.stats.dropped).toBeGreaterThan(0);
    expect(fs.existsSync(path.join(dir, 'meta.json'))).toBe(false);
    expect(boundedBytes(dir)).toBeLessThanOrEqual(max);
    s.close();
  });
});
