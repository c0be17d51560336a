/** The spool's write end (#12: spool/writer.ts): framing, one write per turn, rolling, the torn tail at open. */
import fs from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { ErrorCodes } from '../../src/errors.js';
import { CRC32_FRAMES } from '../../src/record-frame.js';
import { MAX_RECORD, SEG_HEADER, SEG_MAGIC, SEG_MAGIC_V1, headerCheck, parseRecord, segName } from '../../src/spool/format.js';
import { SegmentList } from '../../src/spool/segments.js';
import { type SpoolEvent, type SpoolSink, newStats } from '../../src/spool/types.js';
import { SegmentWriter, WRITE_CHUNK } from '../../src/spool/writer.js';
import { defer, reframed, tempDir } from '../helpers.js';

type TestSink = SpoolSink & { events: SpoolEvent[] };
const sink = (): TestSink => {
  const events: SpoolEvent[] = [];
  return { stats: newStats(), event: (e) => events.push(e), fail: () => {}, ok: () => {}, events };
};
const rec = (i: number): Buffer => Buffer.from(`line ${i} ${'y'.repeat(i % 50)}\n`);
const route = (i: number): string | undefined => (i % 2 ? `r${i}` : undefined);
const turn = (): Promise<void> => new Promise((r) => setImmediate(r));

function open(dir: string, segmentBytes = 4096, minId = 0): { w: SegmentWriter; segments: SegmentList; s: TestSink } {
  const segments = SegmentList.load(dir);
  const s = sink();
  const w = new SegmentWriter(segments, segmentBytes, s, minId);
  defer(() => w.close());
  return { w, segments, s };
}

function append(w: SegmentWriter, data: Buffer, r: string | undefined): number {
  w.reserve(data.length, r);
  const id = w.write(data, r);
  w.schedule();
  return id;
}

/** The records of a segment file, checking its header (format 2: what is written today). */
function recordsOf(file: string): { data: string; route: string | undefined }[] {
  const buf = fs.readFileSync(file);
  const check = headerCheck(buf, Number(path.basename(file).slice(0, 16)));
  expect(buf.subarray(0, 8)).toEqual(SEG_MAGIC);
  expect(check?.sum).toBe('xxh32');
  const out = [];
  let off = SEG_HEADER;
  for (let r = parseRecord(buf, off, buf.length, check!); r && r !== 'bad'; r = parseRecord(buf, off, buf.length, check!)) {
    out.push({ data: r.data.toString(), route: r.route });
    off = r.end;
  }
  expect(off).toBe(buf.length);
  return out;
}

/** A segment of ten records, closed; its directory and file. */
function tenRecords(): { dir: string; file: string } {
  const dir = tempDir();
  const a = open(dir, 1 << 20);
  for (let i = 0; i < 10; i++) append(a.w, rec(i), route(i));
  a.w.close();
  return { dir, file: path.join(dir, segName(0)) };
}

/** Rewrite a segment file in 0.1.0's format (its magic, CRC-32 frames), as 0.1.0 left it. */
function toFormat1(file: string): void {
  fs.writeFileSync(file, reframed(fs.readFileSync(file), SEG_MAGIC_V1, CRC32_FRAMES));
}

describe('SegmentWriter', () => {
  it('#12: frames records after the segment header, written once at the end of the event-loop turn', async () => {
    const dir = tempDir();
    const { w, segments } = open(dir, 1 << 20);
    for (let i = 0; i < 100; i++) expect(append(w, rec(i), route(i))).toBe(i);
    const file = path.join(dir, segName(0));
    expect(fs.statSync(file).size).toBe(SEG_HEADER);
    expect(w.pending).toBeGreaterThan(0);
    await turn();
    expect(w.pending).toBe(0);
    expect(fs.statSync(file).size).toBe(w.end);
    expect(segments.bytes).toBe(w.end);
    expect(recordsOf(file)).toEqual([...Array(100).keys()].map((i) => ({ data: rec(i).toString(), route: route(i) })));
  });

  it('#12: a buffer of WRITE_CHUNK bytes is written at once, without waiting for the turn to end', () => {
    const { w, segments } = open(tempDir(), 64 << 20);
    const big = Buffer.alloc(10_000, 0x41);
    for (let i = 0; i < 100; i++) {
      append(w, big, undefined);
      expect(w.pending).toBeLessThan(WRITE_CHUNK);
    }
    expect(segments.bytes).toBeGreaterThan(w.end - WRITE_CHUNK);
    expect(segments.bytes + w.pending).toBe(w.end);
  });

  it('#12: a full segment rolls to one named by its first id; ids run on across segments', () => {
    const dir = tempDir();
    const { w, segments } = open(dir, 4096);
    for (let i = 0; i < 500; i++) append(w, rec(i), route(i));
    w.flush();
    const files = fs.readdirSync(dir).sort();
    expect(files.length).toBeGreaterThan(5);
    expect(segments.length).toBe(files.length);
    let next = 0;
    for (const f of files) {
      expect(Number(f.slice(0, 16))).toBe(next);
      expect(fs.statSync(path.join(dir, f)).size).toBeLessThanOrEqual(4096);
      const got = recordsOf(path.join(dir, f));
      expect(got).toEqual(got.map((_, k) => ({ data: rec(next + k).toString(), route: route(next + k) })));
      next += got.length;
    }
    expect(next).toBe(500);
    expect(w.nextId).toBe(500);
  });

  it('#12: a record over MAX_RECORD is refused before anything is written', () => {
    const { w } = open(tempDir());
    expect(() => w.reserve(MAX_RECORD, undefined)).toThrow(expect.objectContaining({ code: ErrorCodes.INVALID_ARGUMENT }));
    expect([w.nextId, w.pending]).toEqual([0, 0]);
    expect(() => w.reserve(MAX_RECORD - 1, undefined)).not.toThrow();
  });

  it('#12: at open, a torn tail of the newest segment is cut off and counted; appends go on after the last whole record', () => {
    const { dir, file } = tenRecords();
    const whole = fs.statSync(file).size;
    fs.appendFileSync(file, Buffer.from([20, 0, 0, 0, 1, 2, 3, 4, 5]));
    const b = open(dir, 1 << 20);
    expect(b.w.nextId).toBe(10);
    expect(b.s.stats.tornBytes).toBe(9);
    expect(b.s.events).toEqual([{ type: 'corrupt', file: segName(0), records: 0, reason: 'cut a torn tail of 9 bytes' }]);
    expect(fs.statSync(file).size).toBe(whole);
    expect(b.segments.bytes).toBe(whole);
    append(b.w, rec(10), undefined);
    b.w.flush();
    expect(recordsOf(file)).toHaveLength(11);
  });

  it('#16: a newest segment of 0.1.0\'s format gets its torn tail cut, and no appends: they start a segment of today\'s', () => {
    const { dir, file } = tenRecords();
    toFormat1(file);
    const v1 = fs.readFileSync(file);
    fs.appendFileSync(file, Buffer.from([20, 0, 0, 0, 1, 2, 3]));
    const b = open(dir, 1 << 20);
    expect(b.w.nextId).toBe(10);
    expect(b.s.stats.tornBytes).toBe(7);
    append(b.w, rec(10), undefined);
    b.w.flush();
    expect(fs.readFileSync(file).equals(v1)).toBe(true);
    expect(fs.readdirSync(dir).sort()).toEqual([segName(0), segName(10)]);
    expect(recordsOf(path.join(dir, segName(10)))).toEqual([{ data: rec(10).toString(), route: undefined }]);
  });

  it('#16: a newest segment of 0.1.0\'s format with no record in it gives its name to the new one', () => {
    const dir = tempDir();
    const a = open(dir, 4096, 70);
    a.w.close();
    toFormat1(path.join(dir, segName(70)));
    const b = open(dir, 4096);
    expect(b.segments.length).toBe(1);
    expect(append(b.w, rec(0), undefined)).toBe(70);
    b.w.flush();
    expect(recordsOf(path.join(dir, segName(70)))).toHaveLength(1);
  });

  it('#12: a newest segment with an unusable header is deleted; the one before it is appended to', () => {
    const dir = tempDir();
    const a = open(dir, 4096);
    for (let i = 0; i < 200; i++) append(a.w, rec(i), undefined);
    a.w.close();
    const files = fs.readdirSync(dir).sort();
    expect(files.length).toBeGreaterThan(1);
    const last = files[files.length - 1]!;
    fs.writeFileSync(path.join(dir, last), Buffer.from('not a spool segment'));
    const b = open(dir, 4096);
    expect(fs.existsSync(path.join(dir, last))).toBe(false);
    expect(b.w.nextId).toBe(Number(last.slice(0, 16)));
  });

  it('#12: an empty directory starts at `minId` (the cursor of a spool emptied at close)', () => {
    const dir = tempDir();
    const { w } = open(dir, 4096, 500);
    expect(fs.readdirSync(dir)).toEqual([segName(500)]);
    expect(append(w, rec(0), undefined)).toBe(500);
  });
});
