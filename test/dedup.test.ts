/**
 * --ack, receiver side (issue 7): the per-stream sliding window, duplicate
 * lines dropped across the 16-bit wrap, partial batches, a restarted
 * publisher (same stream from a spool, or a new stream), and plain senders
 * left alone.
 */
import { describe, expect, it } from 'vitest';
import { RECEIVER_WINDOW, SEQ_MODULO, encodeMarker, newStreamName, seqMessType } from '../src/ack.js';
import { DuplicateFilter, SeqWindow } from '../src/dedup.js';

const sender = (stream: string, daemon = 'localhost'): string => `#${stream}#${daemon}`;
const lines = (...ls: string[]): Buffer => Buffer.from(ls.map((l) => `${l}\n`).join(''));

describe('SeqWindow', () => {
  it('new, duplicate, and ids skipped on the way', () => {
    const w = new SeqWindow(64);
    expect(w.see(10)).toBe('new');
    expect(w.see(10)).toBe('dup');
    expect(w.see(11)).toBe('new');
    expect(w.see(15)).toBe('new');
    expect(w.see(13)).toBe('new'); // skipped, then arrived late
    expect(w.see(13)).toBe('dup');
    expect(w.see(12)).toBe('new');
    expect(w.see(11)).toBe('dup');
  });

  it('works across the wrap, every line once', () => {
    const w = new SeqWindow(1024);
    const start = SEQ_MODULO - 300;
    for (let i = 0; i < 600; i++) expect(w.see((start + i) & 0xffff)).toBe('new');
    // A resend of the last 200 (straddling 0) is all duplicates.
    for (let i = 400; i < 600; i++) expect(w.see((start + i) & 0xffff)).toBe('dup');
    expect(w.see((start + 600) & 0xffff)).toBe('new');
  });

  it('a slide past the whole window forgets what was seen', () => {
    const w = new SeqWindow(64);
    for (let i = 0; i < 10; i++) w.see(i);
    expect(w.see(1000)).toBe('new');
    // 5 is now far behind (more than the window): the stream is taken as starting over.
    expect(w.see(5)).toBe('reset');
    expect(w.see(6)).toBe('new');
  });

  it('an id within the window whose slot was reused is not mistaken for a duplicate', () => {
    const w = new SeqWindow(32);
    for (let i = 0; i < 32; i++) w.see(i);
    // 40 slides the window: 32..39 were never seen though slots 0..7 were set.
    expect(w.see(40)).toBe('new');
    for (let i = 33; i < 40; i++) expect(w.see(i)).toBe('new');
    expect(w.see(9)).toBe('dup'); // 9 is still inside the window (40 - 9 < 32) and was seen
    expect(w.see(10)).toBe('dup');
    expect(w.see(8)).toBe('reset'); // 40 - 8 = 32: outside, cannot be a resend
  });

  it('only powers of two up to half the wrap', () => {
    expect(() => new SeqWindow(1000)).toThrow(RangeError);
    expect(() => new SeqWindow(SEQ_MODULO)).toThrow(RangeError);
  });
});

describe('DuplicateFilter', () => {
  it('#16: a stream\'s acknowledgement marker is never a line: skipped, counted, the ids untouched; a plain sender\'s identical bytes pass', () => {
    const f = new DuplicateFilter();
    const st = newStreamName();
    const m = encodeMarker(5);
    expect(f.filter(sender(st), seqMessType(5), m)).toBeNull();
    expect(f.stats.markers).toBe(1);
    expect(f.stats.messages).toBe(0);
    // Id 5 was not taken by the marker.
    expect(f.filter(sender(st), seqMessType(5), lines('a'))?.toString()).toBe('a\n');
    expect(f.filter('#plain#localhost', 5, m)).toBe(m);
    expect(f.stats.markers).toBe(1);
  });

  it('passes plain senders untouched, even with equal message types', () => {
    const f = new DuplicateFilter();
    const d = lines('x');
    expect(f.filter('#sp123#localhost', 0, d)).toBe(d);
    expect(f.filter('#sp123#localhost', 0, d)).toBe(d);
    expect(f.stats.messages).toBe(0);
  });

  it('drops a resent single-line message, across failover to another daemon', () => {
    const f = new DuplicateFilter();
    const s = newStreamName();
    for (let id = 0; id < 5; id++) expect(f.filter(sender(s, 'a'), seqMessType(id), lines(`l${id}`))).not.toBeNull();
    // The ack of 3 and 4 was lost with daemon a: resent through daemon b.
    expect(f.filter(sender(s, 'b'), seqMessType(3), lines('l3'))).toBeNull();
    expect(f.filter(sender(s, 'b'), seqMessType(4), lines('l4'))).toBeNull();
    expect(f.filter(sender(s, 'b'), seqMessType(5), lines('l5'))?.toString()).toBe('l5\n');
    expect(f.stats).toMatchObject({ messages: 8, duplicateLines: 2, duplicateMessages: 2 });
  });

  it('keeps only the new lines of a batch that overlaps what was seen', () => {
    const f = new DuplicateFilter();
    const s = newStreamName();
    f.filter(sender(s), seqMessType(100), lines('a', 'b', 'c'));
    // After a restart the same lines were batched differently: 102..105.
    const out = f.filter(sender(s), seqMessType(102), lines('c', 'd', 'e', 'f'));
    expect(out?.toString()).toBe('d\ne\nf\n');
    expect(f.stats).toMatchObject({ duplicateLines: 1, partial: 1 });
    // A batch with a duplicate in the middle (a late line arrived meanwhile).
    f.filter(sender(s), seqMessType(110), lines('k'));
    expect(f.filter(sender(s), seqMessType(109), lines('j', 'k', 'l'))?.toString()).toBe('j\nl\n');
    // Unterminated last line counts as a line.
    expect(f.filter(sender(s), seqMessType(111), Buffer.from('l\nm'))?.toString()).toBe('m');
  });

  it('every id exactly once over two wraps with resends of up to the ack window', () => {
    const f = new DuplicateFilter();
    const s = newStreamName();
    let delivered = 0;
    let redelivered = 0;
    let next = 0;
    const total = 2 * SEQ_MODULO + 123;
    let seed = 7;
    const rand = (n: number): number => ((seed = (seed * 1103515245 + 12345) & 0x7fffffff) % n);
    while (next < total) {
      const k = 1 + rand(20);
      const body = lines(...Array.from({ length: k }, (_, i) => `l${next + i}`));
      delivered += f.filter(sender(s), seqMessType(next), body) ? k : 0;
      if (rand(150) === 0) {
        // A reconnect: resend up to 8000 lines back, in different batches.
        const back = Math.min(next, rand(8000));
        for (let id = next - back; id < next + k; ) {
          const m = Math.min(1 + rand(30), next + k - id);
          if (f.filter(sender(s), seqMessType(id), lines(...Array.from({ length: m }, (_, i) => `l${id + i}`)))) redelivered++;
          id += m;
        }
      }
      next += k;
    }
    expect(delivered).toBe(next);
    expect(redelivered).toBe(0);
    expect(f.stats.duplicateLines).toBeGreaterThan(10_000);
    expect(f.stats.resets).toBe(0);
  });

  it('a restarted publisher without spool is a new stream: nothing of it is dropped', () => {
    const f = new DuplicateFilter();
    const a = newStreamName();
    for (let id = 0; id < 10; id++) f.filter(sender(a), seqMessType(id), lines(`a${id}`));
    const b = newStreamName(); // the new process: new name, ids from 0 again
    for (let id = 0; id < 10; id++) expect(f.filter(sender(b), seqMessType(id), lines(`b${id}`))).not.toBeNull();
    expect(f.streamCount).toBe(2);
  });

  it('a restarted publisher with spool keeps its stream: the replay of lines already received is dropped', () => {
    const f = new DuplicateFilter();
    const s = newStreamName();
    for (let id = 70_000; id < 71_000; id++) f.filter(sender(s), seqMessType(id), lines(`x${id}`));
    // The new process replays from its persisted cursor (behind what was received), in batches.
    let fresh = 0;
    for (let id = 69_900; id < 71_100; id += 50) {
      const out = f.filter(sender(s), seqMessType(id), lines(...Array.from({ length: 50 }, (_, i) => `x${id + i}`)));
      if (out) fresh += out.toString().split('\n').length - 1;
    }
    expect(fresh).toBe(100 + 100); // 69900..69999 were never received here; 71000..71099 are new
  });

  it('forgets the least recently heard stream past maxStreams', () => {
    const f = new DuplicateFilter(RECEIVER_WINDOW, 2);
    const [a, b, c] = [newStreamName(), newStreamName(), newStreamName()];
    f.filter(sender(a), 0, lines('a'));
    f.filter(sender(b), 0, lines('b'));
    f.filter(sender(a), seqMessType(1), lines('a'));
    f.filter(sender(c), 0, lines('c')); // b goes
    expect(f.streamCount).toBe(2);
    expect(f.stats.evicted).toBe(1);
    expect(f.filter(sender(a), seqMessType(1), lines('a'))).toBeNull();
    expect(f.filter(sender(b), 0, lines('b'))).not.toBeNull(); // forgotten: delivered again
  });

  it('takeChanges() lists the ids newly seen, as runs, for a journal; markSeen() replays them', () => {
    const f = new DuplicateFilter();
    f.trackChanges();
    const s = newStreamName();
    f.filter(sender(s), seqMessType(SEQ_MODULO - 2), lines('a', 'b', 'c', 'd'));
    f.filter(sender(s), seqMessType(0), lines('c', 'd', 'e'));
    const changes = f.takeChanges();
    expect(changes).toEqual([
      { stream: s, first: SEQ_MODULO - 2, count: 4 },
      { stream: s, first: 2, count: 1 },
    ]);
    expect(f.takeChanges()).toEqual([]);
    const g = new DuplicateFilter();
    for (const c of changes) g.markSeen(c);
    expect(g.filter(sender(s), seqMessType(1), lines('d', 'e', 'f'))?.toString()).toBe('f\n');
  });

  it('restore() puts back a window from a snapshot', () => {
    const f = new DuplicateFilter();
    const s = newStreamName();
    f.filter(sender(s), seqMessType(500), lines('a', 'b'));
    const [[name, w]] = [...f.entries()];
    const g = new DuplicateFilter();
    g.restore(name, w.top, w.bits);
    expect(g.filter(sender(s), seqMessType(501), lines('b'))).toBeNull();
    expect(g.filter(sender(s), seqMessType(502), lines('c'))).not.toBeNull();
  });
});
