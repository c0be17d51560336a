/**
 * Bounded-memory counting for `top`: whatever the stream, each structure here
 * holds at most a fixed number of keys.
 *   SpaceSaving     top-K (Metwally, Agrawal, El Abbadi 2005)
 *   HyperLogLog     distinct count sketch (Flajolet et al. 2007)
 *   DistinctCounter exact up to a cap, then HyperLogLog
 *   RecentSet       distinct keys seen in a sliding window, exact up to a cap
 */

interface Bucket {
  count: number;
  head: Counter | undefined;
  prev: Bucket | undefined;
  next: Bucket | undefined;
}

interface Counter {
  key: string;
  /** Overestimation bound: the count the evicted key had when this one took its place. */
  err: number;
  bucket: Bucket;
  prev: Counter | undefined;
  next: Counter | undefined;
}

/**
 * Space-saving top-K: `capacity` counters. A new key past capacity takes
 * over a smallest counter (count + 1, err = old count), so every key whose
 * true count exceeds total/capacity is kept, and counts are exact while no
 * more than `capacity` distinct keys were seen. Counters hang in buckets of
 * equal count, in a list by count ("Stream-Summary"), so an add is O(1)
 * whatever the capacity: no heap to sift when most keys are seen once.
 */
export class SpaceSaving {
  private readonly map = new Map<string, Counter>();
  /** The bucket with the smallest count. */
  private low: Bucket | undefined;
  /** Keys pushed out of the structure so far (0: every count is exact). */
  evictions = 0;
  /**
   * Once full, a key not seen before must pass a "doorkeeper" (one bit per
   * hash) before it may evict a counter: keys seen once (most URLs of a big
   * site) then cost a hash and a bit, not a map delete and insert. Counts
   * stay exact until the first eviction; after it a newcomer enters at
   * min + 1 as before, one hit later. Cleared when a quarter of its bits are set.
   */
  private readonly door = new Uint32Array(1 << 15);
  private doorSet = 0;
  /** Hits not counted: a newcomer's first, held at the doorkeeper. */
  held = 0;

  constructor(readonly capacity: number) {
    if (!Number.isInteger(capacity) || capacity < 1) throw new RangeError(`capacity ${capacity}`);
  }

  get size(): number {
    return this.map.size;
  }

  /** Every count so far is the true count. */
  get exact(): boolean {
    return this.evictions === 0 && this.held === 0;
  }

  add(key: string): void {
    const c = this.map.get(key);
    if (c !== undefined) {
      this.bump(c);
      return;
    }
    if (this.map.size < this.capacity) {
      let b = this.low;
      if (b === undefined || b.count !== 1) {
        b = { count: 1, head: undefined, prev: undefined, next: b };
        if (this.low !== undefined) this.low.prev = b;
        this.low = b;
      }
      const e: Counter = { key, err: 0, bucket: b, prev: undefined, next: b.head };
      if (b.head !== undefined) b.head.prev = e;
      b.head = e;
      this.map.set(key, e);
      return;
    }
    const h = murmur3(key) & 0xfffff;
    const word = h >>> 5;
    const bit = 1 << (h & 31);
    if ((this.door[word]! & bit) === 0) {
      this.door[word]! |= bit;
      this.held++;
      if (++this.doorSet > (1 << 20) / 4) {
        this.door.fill(0);
        this.doorSet = 0;
      }
      return;
    }
    const min = this.low!.head!;
    this.map.delete(min.key);
    this.evictions++;
    min.err = min.bucket.count;
    min.key = key;
    this.map.set(key, min);
    this.bump(min);
  }

  /** Move `c` from its bucket to the bucket of count + 1. */
  private bump(c: Counter): void {
    const b = c.bucket;
    const want = b.count + 1;
    let nb = b.next;
    // Alone in its bucket with no bucket of count + 1 next: the bucket itself moves up
    // (the usual case for the heaviest keys; no allocation, no relinking).
    if (b.head === c && c.next === undefined && (nb === undefined || nb.count !== want)) {
      b.count = want;
      return;
    }
    if (nb === undefined || nb.count !== want) {
      nb = { count: want, head: undefined, prev: b, next: b.next };
      if (b.next !== undefined) b.next.prev = nb;
      b.next = nb;
    }
    // unlink from b
    if (c.prev !== undefined) c.prev.next = c.next;
    else b.head = c.next;
    if (c.next !== undefined) c.next.prev = c.prev;
    if (b.head === undefined) {
      if (b.prev !== undefined) b.prev.next = b.next;
      else this.low = b.next;
      nb.prev = b.prev;
    }
    c.bucket = nb;
    c.prev = undefined;
    c.next = nb.head;
    if (nb.head !== undefined) nb.head.prev = c;
    nb.head = c;
  }

  /** The `n` largest counts, largest first; ties by key, so output is stable. */
  top(n: number): { key: string; count: number; err: number }[] {
    let last = this.low;
    while (last?.next !== undefined) last = last.next;
    const out: { key: string; count: number; err: number }[] = [];
    for (let b = last; b !== undefined && out.length < n; b = b.prev) {
      const same: Counter[] = [];
      for (let c = b.head; c !== undefined; c = c.next) same.push(c);
      same.sort((x, y) => (x.key < y.key ? -1 : x.key > y.key ? 1 : 0));
      for (const c of same) {
        if (out.length === n) break;
        out.push({ key: c.key, count: b.count, err: c.err });
      }
    }
    return out;
  }
}

/** MurmurHash3 (x86, 32-bit) of a latin1 string's bytes. */
export function murmur3(s: string, seed = 0): number {
  let h = seed >>> 0;
  const len = s.length;
  const n4 = len & ~3;
  let i = 0;
  for (; i < n4; i += 4) {
    let k = (s.charCodeAt(i) & 0xff) | ((s.charCodeAt(i + 1) & 0xff) << 8) | ((s.charCodeAt(i + 2) & 0xff) << 16) | ((s.charCodeAt(i + 3) & 0xff) << 24);
    k = Math.imul(k, 0xcc9e2d51);
    k = (k << 15) | (k >>> 17);
    k = Math.imul(k, 0x1b873593);
    h ^= k;
    h = (h << 13) | (h >>> 19);
    h = (Math.imul(h, 5) + 0xe6546b64) | 0;
  }
  const rem = len & 3;
  if (rem > 0) {
    let k = s.charCodeAt(i) & 0xff;
    if (rem > 1) k |= (s.charCodeAt(i + 1) & 0xff) << 8;
    if (rem > 2) k |= (s.charCodeAt(i + 2) & 0xff) << 16;
    k = Math.imul(k, 0xcc9e2d51);
    k = (k << 15) | (k >>> 17);
    k = Math.imul(k, 0x1b873593);
    h ^= k;
  }
  h ^= len;
  h ^= h >>> 16;
  h = Math.imul(h, 0x85ebca6b);
  h ^= h >>> 13;
  h = Math.imul(h, 0xc2b2ae35);
  h ^= h >>> 16;
  return h >>> 0;
}

/** HyperLogLog with 2^p one-byte registers (p = 14: 16 KiB, about 0.8% standard error). */
export class HyperLogLog {
  readonly registers: Uint8Array;
  private readonly p: number;
  private readonly m: number;

  constructor(p = 14) {
    this.p = p;
    this.m = 1 << p;
    this.registers = new Uint8Array(this.m);
  }

  add(key: string): void {
    this.addHash(murmur3(key));
  }

  addHash(h: number): void {
    const idx = h >>> (32 - this.p);
    const w = (h << this.p) | (1 << (this.p - 1));
    const rank = Math.clz32(w) + 1;
    if (rank > this.registers[idx]!) this.registers[idx] = rank;
  }

  merge(o: HyperLogLog): void {
    const r = this.registers;
    const s = o.registers;
    for (let i = 0; i < r.length; i++) if (s[i]! > r[i]!) r[i] = s[i]!;
  }

  clear(): void {
    this.registers.fill(0);
  }

  estimate(): number {
    const m = this.m;
    let sum = 0;
    let zeros = 0;
    for (let i = 0; i < m; i++) {
      const r = this.registers[i]!;
      sum += 2 ** -r;
      if (r === 0) zeros++;
    }
    const alpha = 0.7213 / (1 + 1.079 / m);
    let e = (alpha * m * m) / sum;
    if (e <= 2.5 * m && zeros > 0) e = m * Math.log(m / zeros);
    else if (e > 2 ** 32 / 30) e = -(2 ** 32) * Math.log(1 - e / 2 ** 32);
    return Math.round(e);
  }
}

/** @default 1,000,000: exact distinct counts up to here, a HyperLogLog past it */
export const DEFAULT_DISTINCT_CAP = 1_000_000;

/** Distinct keys: an exact set up to `cap`, then a HyperLogLog holding them all. */
export class DistinctCounter {
  private set: Set<string> | undefined = new Set();
  private hll: HyperLogLog | undefined;

  constructor(readonly cap = DEFAULT_DISTINCT_CAP) {}

  get exact(): boolean {
    return this.set !== undefined;
  }

  add(key: string): void {
    const s = this.set;
    if (s !== undefined) {
      if (s.size < this.cap || s.has(key)) {
        s.add(key);
        return;
      }
      this.hll = new HyperLogLog();
      for (const k of s) this.hll.add(k);
      this.set = undefined;
    }
    this.hll!.add(key);
  }

  count(): number {
    return this.set !== undefined ? this.set.size : this.hll!.estimate();
  }
}

/** @default 300 s: the "who's online" window */
export const DEFAULT_ONLINE_WINDOW_MS = 5 * 60_000;

/**
 * Distinct keys seen in the last `windowMs`, exact (to the second) while at
 * most `cap` are live: a Map kept in last-seen order (a key seen again moves
 * to the end), expired from the front. Past the cap it becomes one
 * HyperLogLog per tenth of the window, the estimate merging those inside it.
 */
export class RecentSet {
  private map: Map<string, number> | undefined = new Map();
  private slots: HyperLogLog[] = [];
  private slotStart: number[] = [];
  private readonly slotMs: number;

  constructor(
    readonly windowMs = DEFAULT_ONLINE_WINDOW_MS,
    readonly cap = DEFAULT_DISTINCT_CAP,
  ) {
    this.slotMs = Math.max(1000, Math.ceil(windowMs / 10));
  }

  get exact(): boolean {
    return this.map !== undefined;
  }

  /** `sec`: the current time in whole seconds. */
  add(key: string, sec: number): void {
    const map = this.map;
    if (map !== undefined) {
      const old = map.get(key);
      if (old === sec) return;
      if (old !== undefined) map.delete(key);
      else if (map.size >= this.cap) {
        this.toSketch();
        this.slotFor(sec * 1000).add(key);
        return;
      }
      map.set(key, sec);
      return;
    }
    this.slotFor(sec * 1000).add(key);
  }

  /** Forget what is older than the window; call once per interval. */
  expire(nowMs: number): void {
    const cutoff = Math.floor((nowMs - this.windowMs) / 1000);
    const map = this.map;
    if (map !== undefined) {
      for (const [k, t] of map) {
        if (t > cutoff) break;
        map.delete(k);
      }
      return;
    }
    while (this.slotStart.length > 0 && this.slotStart[0]! + this.slotMs <= nowMs - this.windowMs) {
      this.slotStart.shift();
      this.slots.shift();
    }
  }

  count(): number {
    if (this.map !== undefined) return this.map.size;
    const all = new HyperLogLog();
    for (const s of this.slots) all.merge(s);
    return all.estimate();
  }

  private slotFor(ms: number): HyperLogLog {
    const start = ms - (ms % this.slotMs);
    const n = this.slotStart.length;
    if (n > 0 && this.slotStart[n - 1]! >= start) return this.slots[n - 1]!;
    const h = new HyperLogLog();
    this.slots.push(h);
    this.slotStart.push(start);
    return h;
  }

  /** The map is in last-seen order, so the slots are made oldest first. */
  private toSketch(): void {
    for (const [k, t] of this.map!) this.slotFor(t * 1000).add(k);
    this.map = undefined;
  }
}

/**
 * Client addresses: distinct since start and distinct in the online window,
 * from ONE map (address -> second last seen) while at most `cap` addresses
 * were seen: one lookup per line, and the window's count kept per second (a
 * ring of counts: an address seen again moves from its old second to the
 * new one). Past the cap both become sketches: a DistinctCounter holding a
 * HyperLogLog of every address, and a RecentSet of sliding HyperLogLogs
 * started from the addresses still in the window; the map is dropped.
 */
export class ClientSet {
  private map: Map<string, number> | undefined = new Map();
  private readonly ring: Float64Array;
  private readonly ringSec: Float64Array;
  private readonly windowSec: number;
  private all: DistinctCounter | undefined;
  private recent: RecentSet | undefined;

  constructor(
    readonly cap = DEFAULT_DISTINCT_CAP,
    readonly windowMs = DEFAULT_ONLINE_WINDOW_MS,
  ) {
    this.windowSec = Math.max(1, Math.ceil(windowMs / 1000));
    this.ring = new Float64Array(this.windowSec);
    this.ringSec = new Float64Array(this.windowSec).fill(-1);
  }

  get exact(): boolean {
    return this.map !== undefined;
  }

  /** `sec`: now in whole seconds. */
  add(key: string, sec: number): void {
    const map = this.map;
    if (map === undefined) {
      this.all!.add(key);
      this.recent!.add(key, sec);
      return;
    }
    const old = map.get(key);
    if (old === sec) return;
    if (old === undefined && map.size >= this.cap) {
      this.toSketches(sec);
      this.add(key, sec);
      return;
    }
    map.set(key, sec);
    if (old !== undefined) {
      const j = old % this.windowSec;
      if (this.ringSec[j] === old) this.ring[j]!--;
    }
    const i = sec % this.windowSec;
    if (this.ringSec[i] !== sec) {
      this.ringSec[i] = sec;
      this.ring[i] = 0;
    }
    this.ring[i]!++;
  }

  distinct(): number {
    return this.map !== undefined ? this.map.size : this.all!.count();
  }

  /** Addresses seen in the window ending at `nowMs` (to the second). */
  online(nowMs: number): number {
    if (this.map === undefined) {
      this.recent!.expire(nowMs);
      return this.recent!.count();
    }
    const cutoff = Math.floor((nowMs - this.windowMs) / 1000);
    let n = 0;
    for (let i = 0; i < this.windowSec; i++) if (this.ringSec[i]! > cutoff) n += this.ring[i]!;
    return n;
  }

  private toSketches(sec: number): void {
    const all = new DistinctCounter(0);
    const recent = new RecentSet(this.windowMs, 0);
    const cutoff = sec - this.windowSec;
    // Oldest first, so that the sliding sketches are made in time order.
    const live = [...this.map!].filter(([, t]) => t > cutoff).sort((a, b) => a[1] - b[1]);
    for (const k of this.map!.keys()) all.add(k);
    for (const [k, t] of live) recent.add(k, t);
    this.map = undefined;
    this.all = all;
    this.recent = recent;
  }
}
