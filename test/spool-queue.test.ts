/**
 * SpoolQueue (the spool as the publisher's queue) and FlushTracker, over a
 * real spool directory: what goes in comes back with its route and id, in
 * order, across the read-ahead and after a reopen; batches pack contiguous
 * ids only; put-back messages come first; clear() loses nothing.
 */
import fs from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { Spool, type SpoolOptions } from '../src/spool.js';
import { FlushTracker, SpoolQueue, routeText } from '../src/spool-queue.js';
import { type MessageRange } from '../src/outbound.js';
import { type PreparedSend, SpreadClient, prepareSend } from '../src/spread/client.js';
import { AGREED_MESS, RELIABLE_MESS } from '../src/spread/constants.js';
import { defer, startDaemon, tempDir, waitFor } from './helpers.js';

const a = prepareSend('logs', { service: RELIABLE_MESS });
const b = prepareSend(['logs', 'audit'], { service: AGREED_MESS });
const line = (i: number): Buffer => Buffer.from(`web1 line ${i} ${'y'.repeat(i % 13)}\n`);

function open(dir = tempDir(), opts: SpoolOptions = {}): Spool {
  const s = Spool.open(dir, { syncInterval: 0, ...opts });
  defer(() => s.close());
  return s;
}

function queue(spool: Spool): { q: SpoolQueue; errors: number[] } {
  const errors: number[] = [];
  return { q: new SpoolQueue(spool, (n) => errors.push(n)), errors };
}

const range = (): MessageRange<PreparedSend> => ({ route: a, buf: Buffer.alloc(0), start: 0, end: 0, lines: 0, id: undefined });

describe('SpoolQueue', () => {
  it('#12: hands back what was pushed, in order, with its route, a line id each, through the read-ahead', () => {
    const { q } = queue(open());
    for (let i = 0; i < 1500; i++) q.push(line(i), i % 3 ? a : b);
    q.pushLine(Buffer.from('web1 '), Buffer.from('last'), a);
    expect([q.length, q.lines]).toEqual([1501, 1501]);
    expect(q.full).toBe(false);
    const got: string[] = [];
    for (let i = 0, m = q.shift(); m; m = q.shift(), i++) {
      expect(m.id).toBe(i);
      expect(m.lines).toBe(1);
      expect(routeText(m.route)).toBe(routeText(i === 1500 || i % 3 ? a : b));
      got.push(m.body.toString());
    }
    expect(got).toEqual([...Array.from({ length: 1500 }, (_, i) => line(i).toString()), 'web1 last\n']);
    expect([q.length, q.lines]).toEqual([0, 0]);
  });

  it('#12: a route comes back as the same prepared route, and after a reopen as an equal one', () => {
    const dir = tempDir();
    const s1 = Spool.open(dir, { syncInterval: 0 });
    const q1 = new SpoolQueue(s1, () => {});
    q1.push(line(0), b);
    q1.push(line(1), b);
    expect(q1.shift()!.route).toBe(b);
    s1.close();
    const { q } = queue(open(dir));
    // Nothing was committed: both lines are sent again by the next run.
    const m = q.shift()!;
    expect(m.id).toBe(0);
    expect(m.route).not.toBe(b);
    expect([m.route.type, m.route.numGroups, m.route.groups.equals(b.groups)]).toEqual([b.type, 2, true]);
    expect(q.shift()!.route).toBe(m.route);
  });

  it('#12: take() packs following records with the same route and contiguous ids, within the bounds', () => {
    const { q } = queue(open());
    for (let i = 0; i < 6; i++) q.push(line(i), a);
    q.push(line(6), b);
    q.push(line(7), b);
    const first = q.take(1 << 20, 4)!;
    expect(first).toMatchObject({ id: 0, lines: 4, route: a });
    expect(first.body.toString()).toBe([0, 1, 2, 3].map((i) => line(i)).join(''));
    expect(first.size).toBe(first.body.length);
    // A byte bound that fits one line and a half.
    expect(q.take(line(4).length + 5, 100)).toMatchObject({ id: 4, lines: 1 });
    expect(q.take(1 << 20, 100)).toMatchObject({ id: 5, lines: 1, route: a });
    expect(q.take(1 << 20, 100)).toMatchObject({ id: 6, lines: 2, route: b });
    expect(q.take(1 << 20, 100)).toBeUndefined();
  });

  it('#12: a message put back comes first, keeps its id, and is never packed with a record whose id does not follow', () => {
    const { q } = queue(open());
    for (let i = 0; i < 5; i++) q.push(line(i), a);
    const m = q.take(1 << 20, 2)!;
    expect(m).toMatchObject({ id: 0, lines: 2 });
    q.shift(); // id 2 goes out
    q.unshift(m);
    expect(q.lines).toBe(2 + 2);
    // ids 0-1 then 3: not contiguous, so two messages.
    expect(q.take(1 << 20, 100)).toMatchObject({ id: 0, lines: 2 });
    expect(q.take(1 << 20, 100)).toMatchObject({ id: 3, lines: 2 });
  });

  it('#16: with reuseBlocks(), a message put back keeps its bytes while its memory block is filled again', () => {
    const { q } = queue(open(tempDir(), { memoryBytes: 64 * 1024 * 1024 }));
    q.reuseBlocks();
    const prefix = Buffer.from('web1 ');
    const long = (i: number): Buffer => Buffer.from(`line ${i} ${'z'.repeat(200)}`);
    // A block holds about 1230 of these: the first block full, the second begun.
    for (let i = 0; i < 1400; i++) q.pushLine(prefix, long(i), a);
    const out = range();
    expect(q.shiftInto(out)).toBe(true);
    const first = { ...out };
    // The rest goes out (the first block is retired), then the first line comes back (its session died first).
    while (q.shiftInto(range()));
    q.unshift({ body: first.buf.subarray(first.start, first.end), route: a, lines: 1, size: first.end - first.start, id: first.id! });
    // The second block fills up: the next one is the first block, filled again.
    for (let i = 0; i < 1400; i++) q.pushLine(prefix, long(1e6 + i), a);
    const back = q.shift()!;
    expect([back.id, back.body.toString()]).toEqual([first.id, `web1 ${long(0).toString()}\n`]);
    expect(q.shift()!.body.toString()).toBe(`web1 ${long(1e6).toString()}\n`);
  });

  it('#12: shiftInto() fills a range over the whole body, with the id', () => {
    const { q } = queue(open());
    q.push(line(7), a);
    const r = range();
    expect(q.shiftInto(r)).toBe(true);
    expect([r.buf.toString('latin1', r.start, r.end), r.lines, r.id, r.route]).toEqual([line(7).toString(), 1, 0, a]);
    expect(q.shiftInto(r)).toBe(false);
  });

  it('#16: a line taken to be sent is in the spool file already, before the end of the turn (its id may be on the wire next)', () => {
    const dir = tempDir();
    const s = open(dir);
    const q = new SpoolQueue(s, () => {});
    const file = (): number => fs.readdirSync(dir).filter((f) => f.endsWith('.spool')).reduce((n, f) => n + fs.statSync(path.join(dir, f)).size, 0);
    const empty = file();
    const tag = Buffer.from('web1 ');
    for (let i = 0; i < 3; i++) q.pushLine(tag, Buffer.from(`line ${i}`), a);
    // Appended and not taken: framed in the write buffer, written at the end of the turn.
    expect(file()).toBe(empty);
    const r = range();
    expect(q.shiftInto(r)).toBe(true);
    expect(r.id).toBe(0);
    // Taken: every pending record reached the file, in this same turn.
    expect(file()).toBeGreaterThan(empty);
    const after = file();
    q.pushLine(tag, Buffer.from('line 3'), a);
    expect(q.take(1 << 20, 100)!.id).toBe(1);
    expect(file()).toBeGreaterThan(after);
  });

  it('#12: clear() loses nothing: the lines stay in the spool for the next run', () => {
    const dir = tempDir();
    const s1 = Spool.open(dir, { syncInterval: 0 });
    const q1 = new SpoolQueue(s1, () => {});
    for (let i = 0; i < 10; i++) q1.push(line(i), a);
    q1.shift();
    expect(q1.clear()).toBe(0);
    s1.close();
    const { q } = queue(open(dir));
    expect(q.length).toBe(10);
  });

  it('#16: lines come back from memory while the spool keeps up, from disk past the memory budget (in order), then from memory again', () => {
    const s = open();
    const q = new SpoolQueue(s, () => {}, 2000);
    const tag = Buffer.from('web1 ');
    const texts: string[] = [];
    const put = (n: number): void => {
      for (let k = 0; k < n; k++) {
        const i = texts.length;
        q.pushLine(tag, Buffer.from(`line ${i}`), i % 2 ? a : b);
        texts.push(`web1 line ${i}\n`);
      }
    };
    let next = 0;
    const drain = (): void => {
      const r = range();
      while (q.shiftInto(r)) {
        expect(r.id).toBe(next);
        expect(r.buf.toString('latin1', r.start, r.end)).toBe(texts[next]);
        expect(r.route).toBe(next % 2 ? a : b);
        next++;
      }
      expect([q.length, q.lines]).toEqual([0, 0]);
    };
    put(10);
    drain();
    expect(s.stats.readFromDisk).toBe(0);
    // 500 lines of ~17 bytes outgrow 2000 bytes of memory: the rest is read back from disk.
    put(500);
    expect(q.length).toBe(500);
    drain();
    const fromDisk = s.stats.readFromDisk;
    expect(fromDisk).toBeGreaterThan(300);
    expect(fromDisk).toBeLessThan(500);
    // Caught up: memory serves again (a batch from memory too).
    put(20);
    drain();
    put(5);
    const m = q.take(1 << 20, 100)!;
    expect([m.id, m.lines, m.body.toString('latin1')]).toEqual([next, 1, texts[next]]);
    expect(s.stats.readFromDisk).toBe(fromDisk);
  });

  it('#16: what the bound deletes goes from memory too (counted by the spool); lines read ahead from a deleted segment are counted at clear()', () => {
    const s = open(tempDir(), { maxBytes: 256 * 1024, segmentBytes: 64 * 1024 });
    const dropped: number[] = [];
    s.on('event', (e) => e.type === 'drop' && dropped.push(e.records));
    // No memory budget: the backlog is read back from disk, 512 records at a time.
    const q = new SpoolQueue(s, () => {}, 0);
    const body = (i: number): Buffer => Buffer.from(`web1 ${String(i).padStart(8, '0')} ${'x'.repeat(100)}\n`);
    for (let i = 0; i < 1000; i++) q.push(body(i), a);
    // Read one: 512 records are read ahead into memory.
    expect(q.shift()!.id).toBe(0);
    // Far past the bound: the oldest segments go, the read-ahead's among them.
    for (let i = 1000; i < 4000; i++) q.push(body(i), a);
    const oldest = s.oldestId;
    expect(oldest).toBeGreaterThan(512);
    expect(dropped.reduce((x, y) => x + y, 0)).toBe(oldest - 512);
    // The 511 lines read ahead whose records are gone are lost at exit: counted.
    expect(q.clear()).toBe(511);
  });

  it('#16: lines in memory whose records the bound deleted are not handed out: the next one is the oldest the spool holds', () => {
    const s = open(tempDir(), { maxBytes: 256 * 1024, segmentBytes: 64 * 1024 });
    const dropped: number[] = [];
    s.on('event', (e) => e.type === 'drop' && dropped.push(e.records));
    const q = new SpoolQueue(s, () => {}, 8 * 1024 * 1024);
    const body = (i: number): Buffer => Buffer.from(`web1 ${String(i).padStart(8, '0')} ${'x'.repeat(100)}\n`);
    for (let i = 0; i < 4000; i++) q.push(body(i), a);
    const lost = dropped.reduce((x, y) => x + y, 0);
    expect(lost).toBe(s.oldestId);
    expect(q.length).toBe(4000 - lost);
    const m = q.shift()!;
    expect([m.id, m.body.toString()]).toEqual([lost, body(lost).toString()]);
    expect(s.stats.readFromDisk).toBe(0);
  });

  it('#12: a line the spool cannot take is reported to onError, one line each', () => {
    const s = open();
    const { q, errors } = queue(s);
    s.on('event', () => {});
    s.close();
    expect(q.push(line(0), a)).toBe(false);
    expect(errors).toEqual([1]);
  });
});

describe('FlushTracker', () => {
  it('#12: the spool may forget a message\'s lines only once the session handed it to the kernel', async () => {
    const { spec } = await startDaemon();
    const c = await SpreadClient.connect({ daemon: spec, membership: false });
    c.on('close', () => {});
    defer(() => c.destroy());
    const t = new FlushTracker();
    c.send(a, line(0));
    t.sent(1);
    c.send(a, Buffer.concat([line(1), line(2)]));
    t.sent(3);
    // Still in the session's write buffer: nothing reached the kernel yet.
    expect(t.flushed(c)).toBeUndefined();
    await waitFor(() => c.unsentMessages === 0);
    expect(t.flushed(c)).toBe(3);
    expect(t.flushed(c)).toBeUndefined();
    t.sent(4);
    // A new session: its count starts again; the id past everything handed out is returned.
    expect(t.reset()).toBe(4);
    expect(t.reset()).toBeUndefined();
  });
});
