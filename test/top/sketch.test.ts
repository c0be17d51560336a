import { describe, expect, it } from 'vitest';
import { ClientSet, DistinctCounter, HyperLogLog, RecentSet, SpaceSaving, ipv4Of, murmur3, murmur3Bytes } from '../../src/top/sketch.js';
import { prng } from '../helpers.js';

describe('SpaceSaving (#14)', () => {
  it('#14: exact while the keys fit; ties ordered by key', () => {
    const s = new SpaceSaving(100);
    const counts: Record<string, number> = { a: 5, b: 3, c: 3, d: 1, e: 9 };
    const order: string[] = [];
    for (const [k, n] of Object.entries(counts)) for (let i = 0; i < n; i++) order.push(k);
    const r = prng(1);
    order.sort(() => r() - 0.5);
    for (const k of order) s.add(k);
    expect(s.top(4)).toEqual([
      { key: 'e', count: 9, err: 0 },
      { key: 'a', count: 5, err: 0 },
      { key: 'b', count: 3, err: 0 },
      { key: 'c', count: 3, err: 0 },
    ]);
    expect(s.evictions).toBe(0);
  });

  it('#14: keys counted from bytes inside a bigger buffer are the same keys as strings (latin1, one char per byte)', () => {
    const s = new SpaceSaving(100);
    const b = Buffer.from('xx/a yy/b zz/\xe9 /a /a/ /b', 'latin1');
    const at = (k: string, from = 0) => [b.indexOf(k, from, 'latin1'), b.indexOf(k, from, 'latin1') + Buffer.byteLength(k, 'latin1')] as const;
    s.addBytes(b, ...at('/a'));
    s.addBytes(b, ...at('/a', 12));
    s.add('/a');
    s.addBytes(b, ...at('/b'));
    s.addBytes(b, ...at('/\xe9'));
    s.addBytes(b, ...at('/a/'));
    s.add('/\xe9');
    expect(s.top(10)).toEqual([
      { key: '/a', count: 3, err: 0 },
      { key: '/\xe9', count: 2, err: 0 },
      { key: '/a/', count: 1, err: 0 },
      { key: '/b', count: 1, err: 0 },
    ]);
  });

  it('#14: keys with one hash, of every length to 40 and differing in one byte anywhere, unaligned in their buffers, are told apart by their bytes; so are hashes 0 and 1', () => {
    const s = new SpaceSaving(100_000);
    const want = new Map<string, number>();
    const r = prng(7);
    const count = (key: string, h?: number): void => {
      // The key at a random offset in a buffer of its own: the 8-byte compare steps start anywhere.
      const pad = Math.floor(r() * 13);
      const b = Buffer.alloc(pad + key.length + 5, 0x7c);
      b.write(key, pad, 'latin1');
      if (h === undefined) s.addBytes(b, pad, pad + key.length);
      else s.addBytes(b, pad, pad + key.length, h);
      want.set(key, (want.get(key) ?? 0) + 1);
    };
    for (let len = 0; len <= 40; len++) {
      const base = 'abcdefghijklmnopqrstuvwxyz0123456789ABCDEFGH'.slice(0, len);
      // One hash for every key of a length: each lookup compares the bytes of all of them.
      for (let k = 0; k < 1 + (len % 3); k++) count(base, 5000 + len);
      for (let pos = 0; pos < len; pos++) for (let k = 0; k < 1 + ((len + pos) % 3); k++) count(`${base.slice(0, pos)}\xff${base.slice(pos + 1)}`, 5000 + len);
    }
    // Hashes given by the caller (each key keeps its own): 0 (how an empty slot is marked) and 1 are held
    // alike in the table, 1024 starts at slot 0 as 0 does; the keys share one run of slots.
    const given: [string, number][] = [['/same/a', 0], ['/same/b', 0], ['/same/ab', 1], ['/same/\xe9', 1], ['/same/c', 1024]];
    for (let k = 0; k < 3; k++) for (const [key, h] of given) count(key, h);
    expect(s.evictions).toBe(0);
    const got = new Map(s.top(want.size + 1).map((t) => [t.key, t.count]));
    expect(got).toEqual(want);
  });

  it('#14: counts kept in typed arrays stay exact through many bucket moves (buckets freed and reused, counters grown past their first arrays)', () => {
    const s = new SpaceSaving(5000);
    const want = new Map<string, number>();
    const r = prng(11);
    for (let i = 0; i < 200_000; i++) {
      // Skewed: a few keys climb through thousands of buckets, most stay low; every bucket between is made and freed.
      const k = `/z/${Math.floor(4000 * r() ** 3)}`;
      s.add(k);
      want.set(k, (want.get(k) ?? 0) + 1);
    }
    expect(s.exact).toBe(true);
    const got = s.top(want.size);
    expect(new Map(got.map((t) => [t.key, t.count]))).toEqual(want);
    // Largest first, ties by key.
    for (let i = 1; i < got.length; i++) expect(got[i - 1]!.count > got[i]!.count || (got[i - 1]!.count === got[i]!.count && got[i - 1]!.key < got[i]!.key)).toBe(true);
  });

  it('#14: the arena compacted during an eviction keeps every live key, the newest counter\'s too', () => {
    const s = new SpaceSaving(3);
    s.add('/a');
    s.add('/b');
    // The last counter made: a compaction in the middle of an eviction once skipped it.
    const hot = `/hot/${'h'.repeat(100)}`;
    for (let i = 0; i < 1000; i++) s.add(hot);
    // Long newcomers, each seen twice (past the doorkeeper), evict the small counters again and again:
    // their bytes fill the arena, which is compacted while a counter is being taken over.
    for (let i = 0; i < 400; i++) for (let k = 0; k < 2; k++) s.add(`/cold/${i}/${'c'.repeat(200)}`);
    s.add(hot);
    expect(s.top(1)).toEqual([{ key: hot, count: 1001, err: 0 }]);
    expect(s.size).toBe(3);
  });

  it('#14: counts stay exact through the table growing, and evictions keep every other key findable', () => {
    const s = new SpaceSaving(3000);
    for (let r = 0; r < 3; r++) for (let i = 0; i < 3000; i++) s.add(`/k/${i}`);
    expect(s.size).toBe(3000);
    expect(s.top(3000).every((t) => t.count === 3 && t.err === 0)).toBe(true);
    // Past capacity, newcomers (each seen twice: once held at the doorkeeper) evict ones of count 3.
    for (let i = 0; i < 500; i++) for (let r = 0; r < 2; r++) s.add(`/new/${i}`);
    expect(s.size).toBe(3000);
    for (let i = 0; i < 500; i++) s.add(`/new/${i}`);
    const top = new Map(s.top(3000).map((t) => [t.key, t]));
    for (let i = 0; i < 500; i++) expect(top.get(`/new/${i}`)?.count).toBe(5);
    expect([...top.keys()].filter((k) => k.startsWith('/k/')).length).toBe(2500);
  });

  it('#14: a million distinct keys keep at most `capacity` counters, and heavy keys stay on top', () => {
    const s = new SpaceSaving(1000);
    const r = prng(7);
    for (let i = 0; i < 1_000_000; i++) {
      s.add(r() < 0.1 ? `/hot/${i % 5}` : `/cold/${i}`);
    }
    expect(s.size).toBe(1000);
    expect(s.evictions).toBeGreaterThan(0);
    const top = s.top(5);
    expect(top.map((t) => t.key).sort()).toEqual(['/hot/0', '/hot/1', '/hot/2', '/hot/3', '/hot/4']);
    // Each hot key had ~20,000 hits; space-saving overestimates by at most err.
    for (const t of top) {
      expect(t.count - t.err).toBeLessThanOrEqual(21_000);
      expect(t.count).toBeGreaterThanOrEqual(19_000);
    }
  });
});

describe('distinct counts (#14)', () => {
  it('#14: murmur3 matches the reference vectors', () => {
    expect(murmur3('')).toBe(0);
    expect(murmur3('', 1)).toBe(0x514e28b7);
    expect(murmur3('hello')).toBe(0x248bfa47);
    expect(murmur3('The quick brown fox jumps over the lazy dog')).toBe(0x2e4ff723);
  });

  it('#14: murmur3Bytes over a range equals murmur3 of the same bytes as a latin1 string', () => {
    const r = prng(3);
    for (let n = 0; n < 40; n++) {
      const bytes = Buffer.from(Array.from({ length: n + 8 }, () => Math.floor(r() * 256)));
      const s = 3;
      const e = 3 + n;
      expect(murmur3Bytes(bytes, s, e)).toBe(murmur3(bytes.toString('latin1', s, e)));
      expect(murmur3Bytes(bytes, s, e, 7)).toBe(murmur3(bytes.toString('latin1', s, e), 7));
    }
  });

  it('#14: ipv4Of takes only canonical dotted quads, whose number spells back the same bytes', () => {
    const v = (t: string) => ipv4Of(Buffer.from(t, 'latin1'), 0, t.length);
    expect(v('10.0.0.1')).toBe(0x0a000001);
    expect(v('255.255.255.255')).toBe(0xffffffff);
    expect(v('0.0.0.0')).toBe(0);
    for (const t of ['010.0.0.1', '10.0.0.01', '256.0.0.1', '1.2.3', '1.2.3.4.5', '1..2.3', '.1.2.3', '1.2.3.', '::1', 'a.b.c.d', '1.2.3.4 ', '1111.2.3.4']) expect(v(t), t).toBe(-1);
  });

  it('#14: HyperLogLog is within 2% at 10k and 2M keys', () => {
    for (const n of [10_000, 2_000_000]) {
      const h = new HyperLogLog();
      for (let i = 0; i < n; i++) h.add(`10.${(i >> 16) & 255}.${(i >> 8) & 255}.${i & 255}-${i >> 24}`);
      expect(Math.abs(h.estimate() - n) / n).toBeLessThan(0.02);
    }
  });

  it('#14: DistinctCounter is exact up to its cap, then an estimate that saw every key', () => {
    const d = new DistinctCounter(1000);
    for (let i = 0; i < 1000; i++) d.add(`c${i}`);
    for (let i = 0; i < 1000; i++) d.add(`c${i}`);
    expect(d.exact).toBe(true);
    expect(d.count()).toBe(1000);
    for (let i = 1000; i < 50_000; i++) d.add(`c${i}`);
    expect(d.exact).toBe(false);
    expect(Math.abs(d.count() - 50_000) / 50_000).toBeLessThan(0.02);
  });

  it('#14: RecentSet counts the keys seen in the window, to the second', () => {
    const r = new RecentSet(300_000, 1_000_000);
    r.add('a', 0);
    r.add('b', 100);
    r.add('a', 200); // seen again: lives on
    r.expire(299_000);
    expect(r.count()).toBe(2);
    r.expire(401_000); // b last seen at 100 s
    expect(r.count()).toBe(1);
    r.expire(501_000);
    expect(r.count()).toBe(0);
    expect(r.exact).toBe(true);
  });

  it('#14: RecentSet past its cap becomes sliding sketches, still expiring', () => {
    const r = new RecentSet(300_000, 100);
    for (let i = 0; i < 5000; i++) r.add(`k${i}`, 10);
    expect(r.exact).toBe(false);
    expect(Math.abs(r.count() - 5000) / 5000).toBeLessThan(0.03);
    for (let i = 0; i < 1000; i++) r.add(`n${i}`, 200);
    r.expire(400_000);
    expect(Math.abs(r.count() - 1000) / 1000).toBeLessThan(0.05);
  });
});

describe('ClientSet (#14)', () => {
  it('#14: one map gives distinct since start and distinct in the window, to the second', () => {
    const c = new ClientSet(1_000_000, 300_000);
    c.add('a', 0);
    c.add('b', 100);
    c.add('a', 200); // moves from second 0 to second 200
    c.add('a', 200);
    c.add('c', 250);
    expect(c.distinct()).toBe(3);
    expect(c.online(299_000)).toBe(3);
    expect(c.online(401_000)).toBe(2); // b (100 s) left the window
    expect(c.online(501_000)).toBe(1); // a (200 s) too
    expect(c.online(551_000)).toBe(0);
    c.add('b', 600); // seen again after it left: online again, not a new distinct one
    expect(c.online(600_000)).toBe(1);
    expect(c.distinct()).toBe(3);
    expect(c.exact).toBe(true);
  });

  it('#14: IPv4 (held as numbers) and other spellings are each their own address', () => {
    const c = new ClientSet(1_000_000, 300_000);
    for (const k of ['10.0.0.1', '010.0.0.1', '::1', 'host.example', '10.0.0.1', '::1', '10.0.0.2']) c.add(k, 5);
    expect(c.distinct()).toBe(5);
    expect(c.online(6_000)).toBe(5);
    c.add('10.0.0.1', 400);
    c.add('::1', 400);
    expect(c.online(401_000)).toBe(2);
    expect(c.distinct()).toBe(5);
  });

  it('#14: past the cap both figures become estimates that kept every address', () => {
    const c = new ClientSet(1000, 300_000);
    for (let i = 0; i < 20_000; i++) c.add(`10.0.${i >> 8}.${i & 255}`, i < 10_000 ? 10 : 500);
    expect(c.exact).toBe(false);
    expect(Math.abs(c.distinct() - 20_000) / 20_000).toBeLessThan(0.03);
    // Only the 10,000 seen at 500 s are inside the window at 700 s.
    expect(Math.abs(c.online(700_000) - 10_000) / 10_000).toBeLessThan(0.05);
  });
});
