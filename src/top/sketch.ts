/**
 * Bounded-memory counting for `top`: whatever the stream, each structure here
 * holds at most a fixed number of keys.
 *   SpaceSaving     top-K (Metwally, Agrawal, El Abbadi 2005)
 *   HyperLogLog     distinct count sketch (Flajolet et al. 2007)
 *   DistinctCounter exact up to a cap, then HyperLogLog
 *   RecentSet       distinct keys seen in a sliding window, exact up to a cap
 */

/** No counter or bucket (the lists' end). */
const NONE = -1;
/** A counter's fields in `SpaceSaving.ctr`, CS int32s a counter. */
const C_OFF = 0;
const C_LEN = 1;
const C_HASH = 2;
const C_BUCKET = 3;
const C_PREV = 4;
const C_NEXT = 5;
const CS = 6;
/** A bucket's links in `SpaceSaving.bl`, BS int32s a bucket (its count is in `bCount`). */
const B_HEAD = 0;
const B_PREV = 1;
const B_NEXT = 2;
const BS = 3;

/**
 * Space-saving top-K: `capacity` counters. A new key past capacity takes
 * over a smallest counter (count + 1, err = old count), so every key whose
 * true count exceeds total/capacity is kept, and counts are exact while no
 * more than `capacity` distinct keys were seen. Counters hang in buckets of
 * equal count, in a list by count ("Stream-Summary"), so an add is O(1)
 * whatever the capacity: no heap to sift when most keys are seen once.
 *
 * Keys are looked up by their bytes (`addBytes`) in a table of our own
 * (linear probing on murmur3, the key compared byte by byte) and kept as
 * bytes in one arena: a line's fields are counted without making a string
 * or an object, and a key becomes a string only when top() shows it.
 *
 * Counters, buckets and the table are typed arrays indexed by number, not
 * objects linked by reference: tens of thousands of long-lived objects made
 * every young-generation collection copy and promote them (most of top's
 * GC time), and a lookup read scattered objects where it now reads a few
 * adjacent words; the table keeps each slot's hash beside its counter's
 * index, one cache line for both.
 */
export class SpaceSaving {
  /** Open addressing, linear probing: [tagged hash (0: empty), counter index] per slot; at most 5/8 full. */
  private tab: Int32Array;
  private mask: number;
  /** Keys in the table. */
  private count = 0;
  /** Counters made, indices 0..made-1: one is never freed, only taken over (out of the table meanwhile). */
  private made = 0;
  /** Counters: CS int32s each. */
  private ctr: Int32Array;
  /** Overestimation bound per counter: the count the evicted key had when this one took its place. */
  private err: Float64Array;
  /** Buckets: their count, and BS int32s of links each; free ones chained through B_NEXT from `freeBucket`. */
  private bCount: Float64Array;
  private bl: Int32Array;
  private buckets = 0;
  private freeBucket = NONE;
  /** The bucket with the smallest count. */
  private low = NONE;
  /** Keys pushed out of the structure so far (0: every count is exact). */
  evictions = 0;
  /**
   * Once full, a key not seen before must pass a "doorkeeper" (one bit per
   * hash) before it may evict a counter: keys seen once (most URLs of a big
   * site) then cost a hash and a bit, not a table delete and insert. Counts
   * stay exact until the first eviction; after it a newcomer enters at
   * min + 1 as before, one hit later. Cleared when a quarter of its bits are set.
   */
  private readonly door = new Uint32Array(1 << 15);
  private doorSet = 0;
  /** Hits not counted: a newcomer's first, held at the doorkeeper. */
  held = 0;
  /** The keys' bytes, back to back; an evicted key's bytes are garbage until the next compaction. */
  private arena = Buffer.allocUnsafeSlow(MIN_ARENA);
  /** The arena read through a DataView, eight bytes a step (sameBytes). */
  private arenaView = new DataView(this.arena.buffer, this.arena.byteOffset, this.arena.length);
  private used = 0;
  private garbage = 0;

  constructor(readonly capacity: number) {
    if (!Number.isInteger(capacity) || capacity < 1) throw new RangeError(`capacity ${capacity}`);
    this.tab = new Int32Array(2 * MIN_SLOTS);
    this.mask = MIN_SLOTS - 1;
    const n = Math.min(capacity, MIN_COUNTERS);
    this.ctr = new Int32Array(n * CS);
    this.err = new Float64Array(n);
    // One bucket more than counters: bump() makes the new one before it frees the old.
    this.bCount = new Float64Array(n + 1);
    this.bl = new Int32Array((n + 1) * BS);
  }

  get size(): number {
    return this.count;
  }

  /** Every count so far is the true count. */
  get exact(): boolean {
    return this.evictions === 0 && this.held === 0;
  }

  /** Count one hit of a latin1 key (one char per byte). */
  add(key: string): void {
    const b = Buffer.from(key, 'latin1');
    this.addBytes(b, 0, b.length);
  }

  /** Count one hit of the key b[s, e) (made a string, when it is, as latin1). `h`: murmur3Bytes(b, s, e). */
  addBytes(b: Uint8Array, s: number, e: number, h = murmur3Bytes(b, s, e)): void {
    const tab = this.tab;
    const ctr = this.ctr;
    const mask = this.mask;
    const n = e - s;
    const hi = tagged(h);
    for (let i = hi & mask; ; i = (i + 1) & mask) {
      const t = tab[2 * i]!;
      if (t !== hi) {
        if (t === 0) break;
        continue;
      }
      const c = tab[2 * i + 1]!;
      const k = c * CS;
      if (ctr[k + C_LEN] === n && sameBytes(this.arena, this.arenaView, ctr[k + C_OFF]!, b, s, n)) {
        this.bump(c);
        return;
      }
    }
    if (this.count < this.capacity) {
      const c = this.made++;
      if (c * CS >= this.ctr.length) this.growCounters();
      let bk = this.low;
      if (bk === NONE || this.bCount[bk] !== 1) bk = this.newBucket(1, NONE, bk);
      const k = c * CS;
      const ct = this.ctr;
      ct[k + C_OFF] = this.store(b, s, n);
      ct[k + C_LEN] = n;
      ct[k + C_HASH] = hi;
      this.err[c] = 0;
      this.pushFront(c, bk);
      this.insert(c, hi);
      return;
    }
    const dh = h & 0xfffff;
    const word = dh >>> 5;
    const bit = 1 << (dh & 31);
    if ((this.door[word]! & bit) === 0) {
      this.door[word]! |= bit;
      this.held++;
      if (++this.doorSet > (1 << 20) / 4) {
        this.door.fill(0);
        this.doorSet = 0;
      }
      return;
    }
    const min = this.bl[this.low * BS + B_HEAD]!;
    const k = min * CS;
    this.remove(min, ctr[k + C_HASH]!);
    this.evictions++;
    this.err[min] = this.bCount[ctr[k + C_BUCKET]!]!;
    this.garbage += ctr[k + C_LEN]!;
    const off = this.store(b, s, n);
    const ct = this.ctr;
    ct[k + C_OFF] = off;
    ct[k + C_LEN] = n;
    ct[k + C_HASH] = hi;
    this.insert(min, hi);
    this.bump(min);
  }

  /** Copy a key into the arena; returns its offset. */
  private store(b: Uint8Array, s: number, n: number): number {
    if (this.used + n > this.arena.length) this.makeRoom(n);
    const a = this.arena;
    const off = this.used;
    if (n > 64) a.set(b.subarray(s, s + n), off);
    else for (let i = 0; i < n; i++) a[off + i] = b[s + i]!;
    this.used += n;
    return off;
  }

  /** Compact the arena (when half of it is garbage) or double it, so that n more bytes fit. */
  private makeRoom(n: number): void {
    const live = this.used - this.garbage;
    let size = this.arena.length;
    while (live + n > size / 2) size *= 2;
    const old = this.arena;
    const a = Buffer.allocUnsafeSlow(size);
    const ctr = this.ctr;
    let off = 0;
    // Every counter made, not only those in the table: an eviction compacts with its counter out of it.
    for (let c = 0; c < this.made; c++) {
      const k = c * CS;
      const o = ctr[k + C_OFF]!;
      const len = ctr[k + C_LEN]!;
      old.copy(a, off, o, o + len);
      ctr[k + C_OFF] = off;
      off += len;
    }
    this.arena = a;
    this.arenaView = new DataView(a.buffer, a.byteOffset, a.length);
    this.used = off;
    this.garbage = 0;
  }

  /** A counter's key as a string (latin1: one char per byte). */
  private keyOf(c: number): string {
    const o = this.ctr[c * CS + C_OFF]!;
    return latin1(this.arena, o, o + this.ctr[c * CS + C_LEN]!);
  }

  /** Double the counter arrays (and the buckets with them), up to capacity. */
  private growCounters(): void {
    const n = Math.min(this.capacity, (this.ctr.length / CS) * 2);
    const ctr = new Int32Array(n * CS);
    ctr.set(this.ctr);
    this.ctr = ctr;
    const err = new Float64Array(n);
    err.set(this.err);
    this.err = err;
    const bCount = new Float64Array(n + 1);
    bCount.set(this.bCount);
    this.bCount = bCount;
    const bl = new Int32Array((n + 1) * BS);
    bl.set(this.bl);
    this.bl = bl;
  }

  /** A bucket of `count` between `prev` and `next` (either NONE), linked in. */
  private newBucket(count: number, prev: number, next: number): number {
    let b = this.freeBucket;
    if (b !== NONE) this.freeBucket = this.bl[b * BS + B_NEXT]!;
    else b = this.buckets++;
    const bl = this.bl;
    this.bCount[b] = count;
    bl[b * BS + B_HEAD] = NONE;
    bl[b * BS + B_PREV] = prev;
    bl[b * BS + B_NEXT] = next;
    if (prev !== NONE) bl[prev * BS + B_NEXT] = b;
    else this.low = b;
    if (next !== NONE) bl[next * BS + B_PREV] = b;
    return b;
  }

  /** Counter `c` first in bucket `bk`. */
  private pushFront(c: number, bk: number): void {
    const ctr = this.ctr;
    const bl = this.bl;
    const head = bl[bk * BS + B_HEAD]!;
    const k = c * CS;
    ctr[k + C_BUCKET] = bk;
    ctr[k + C_PREV] = NONE;
    ctr[k + C_NEXT] = head;
    if (head !== NONE) ctr[head * CS + C_PREV] = c;
    bl[bk * BS + B_HEAD] = c;
  }

  private insert(c: number, hi: number): void {
    if (++this.count * 8 > (this.mask + 1) * 5) this.grow();
    const tab = this.tab;
    const mask = this.mask;
    let i = hi & mask;
    while (tab[2 * i] !== 0) i = (i + 1) & mask;
    tab[2 * i] = hi;
    tab[2 * i + 1] = c;
  }

  /** Take counter `c` (tagged hash `hi`) out of the table, moving back the entries behind it (no tombstones). */
  private remove(c: number, hi: number): void {
    const tab = this.tab;
    const mask = this.mask;
    let i = hi & mask;
    while (tab[2 * i + 1] !== c || tab[2 * i] === 0) i = (i + 1) & mask;
    for (let j = (i + 1) & mask; ; j = (j + 1) & mask) {
      const t = tab[2 * j]!;
      if (t === 0) break;
      const home = t & mask;
      // The entry at j stays where it is when its home slot lies cyclically in (i, j].
      if (i <= j ? i < home && home <= j : i < home || home <= j) continue;
      tab[2 * i] = t;
      tab[2 * i + 1] = tab[2 * j + 1]!;
      i = j;
    }
    tab[2 * i] = 0;
    this.count--;
  }

  private grow(): void {
    const old = this.tab;
    const slots = old.length; // twice the old slot count: the new one
    const tab = new Int32Array(slots * 2);
    const mask = slots - 1;
    for (let j = 0; j < old.length; j += 2) {
      const t = old[j]!;
      if (t === 0) continue;
      let i = t & mask;
      while (tab[2 * i] !== 0) i = (i + 1) & mask;
      tab[2 * i] = t;
      tab[2 * i + 1] = old[j + 1]!;
    }
    this.tab = tab;
    this.mask = mask;
  }

  /** Move counter `c` from its bucket to the bucket of count + 1. */
  private bump(c: number): void {
    const ctr = this.ctr;
    const bl = this.bl;
    const k = c * CS;
    const b = ctr[k + C_BUCKET]!;
    const want = this.bCount[b]! + 1;
    let nb = bl[b * BS + B_NEXT]!;
    // Alone in its bucket with no bucket of count + 1 next: the bucket itself moves up
    // (the usual case for the heaviest keys; no relinking).
    const prev = ctr[k + C_PREV]!;
    const next = ctr[k + C_NEXT]!;
    if (prev === NONE && next === NONE && (nb === NONE || this.bCount[nb] !== want)) {
      this.bCount[b] = want;
      return;
    }
    if (nb === NONE || this.bCount[nb] !== want) nb = this.newBucket(want, b, nb);
    // unlink from b
    if (prev !== NONE) ctr[prev * CS + C_NEXT] = next;
    else bl[b * BS + B_HEAD] = next;
    if (next !== NONE) ctr[next * CS + C_PREV] = prev;
    if (bl[b * BS + B_HEAD] === NONE) {
      // b is empty: out of the list (nb follows it), and free.
      const bp = bl[b * BS + B_PREV]!;
      if (bp !== NONE) bl[bp * BS + B_NEXT] = nb;
      else this.low = nb;
      bl[nb * BS + B_PREV] = bp;
      bl[b * BS + B_NEXT] = this.freeBucket;
      this.freeBucket = b;
    }
    this.pushFront(c, nb);
  }

  /** The `n` largest counts, largest first; ties by key, so output is stable. */
  top(n: number): { key: string; count: number; err: number }[] {
    const bl = this.bl;
    let last = this.low;
    while (last !== NONE && bl[last * BS + B_NEXT] !== NONE) last = bl[last * BS + B_NEXT]!;
    const out: { key: string; count: number; err: number }[] = [];
    for (let b = last; b !== NONE && out.length < n; b = bl[b * BS + B_PREV]!) {
      const want = n - out.length;
      // The `want` smallest keys of the bucket, in order (a bucket may hold thousands).
      const same: { key: string; err: number }[] = [];
      for (let c = bl[b * BS + B_HEAD]!; c !== NONE; c = this.ctr[c * CS + C_NEXT]!) {
        const key = this.keyOf(c);
        if (same.length === want && !(key < same[want - 1]!.key)) continue;
        let i = same.length === want ? want - 1 : same.length;
        while (i > 0 && key < same[i - 1]!.key) {
          same[i] = same[i - 1]!;
          i--;
        }
        same[i] = { key, err: this.err[c]! };
      }
      for (const c of same) out.push({ key: c.key, count: this.bCount[b]!, err: c.err });
    }
    return out;
  }
}

/** A hash as SpaceSaving's `hashes` holds it: 0 marks an empty slot, so a hash of 0 is kept as 1. */
function tagged(h: number): number {
  return h | 0 || 1;
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

/**
 * MurmurHash3 (x86, 32-bit) of b[s, e): murmur3() of the same bytes as a latin1 string.
 * Written out like murmur3() rather than sharing its steps as functions: that
 * measured 8-15% slower per key, and this runs for every field of every line.
 */
export function murmur3Bytes(b: Uint8Array, s: number, e: number, seed = 0): number {
  let h = seed >>> 0;
  const len = e - s;
  const n4 = s + (len & ~3);
  let i = s;
  for (; i < n4; i += 4) {
    let k = b[i]! | (b[i + 1]! << 8) | (b[i + 2]! << 16) | (b[i + 3]! << 24);
    k = Math.imul(k, 0xcc9e2d51);
    k = (k << 15) | (k >>> 17);
    k = Math.imul(k, 0x1b873593);
    h ^= k;
    h = (h << 13) | (h >>> 19);
    h = (Math.imul(h, 5) + 0xe6546b64) | 0;
  }
  const rem = len & 3;
  if (rem > 0) {
    let k = b[i]!;
    if (rem > 1) k |= b[i + 1]! << 8;
    if (rem > 2) k |= b[i + 2]! << 16;
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

/**
 * a[ao, ao + n) and b[bo, bo + n) hold the same bytes; `av` views `a`.
 * Eight bytes per step through DataViews: half the time of a byte loop on a
 * 100-byte user agent (most of what a hit on a long key costs).
 */
function sameBytes(a: Uint8Array, av: DataView, ao: number, b: Uint8Array, bo: number, n: number): boolean {
  let i = 0;
  if (n >= 8) {
    const bv = viewOf(b);
    const ob = viewArrayOffset + bo;
    for (; i + 8 <= n; i += 8) {
      if (av.getInt32(ao + i, true) !== bv.getInt32(ob + i, true) || av.getInt32(ao + i + 4, true) !== bv.getInt32(ob + i + 4, true)) return false;
    }
    if (i + 4 <= n) {
      if (av.getInt32(ao + i, true) !== bv.getInt32(ob + i, true)) return false;
      i += 4;
    }
  }
  for (; i < n; i++) if (a[ao + i] !== b[bo + i]) return false;
  return true;
}

/**
 * A DataView of the last ArrayBuffer a key came in (the read buffer, usually):
 * one view per buffer, not per key; and the last array itself with its
 * offset there, so that keys from one buffer (top's read buffer, every
 * message) cost no `buffer` or `byteOffset` getter each.
 */
let viewArray: Uint8Array | undefined;
let viewArrayOffset = 0;
let viewBuffer: ArrayBufferLike | undefined;
let view: DataView | undefined;
function viewOf(b: Uint8Array): DataView {
  if (b !== viewArray) {
    viewArray = b;
    viewArrayOffset = b.byteOffset;
    if (b.buffer !== viewBuffer) {
      viewBuffer = b.buffer;
      view = new DataView(b.buffer);
    }
  }
  return view!;
}

type Latin1 = Uint8Array & { latin1Slice?: (start: number, end: number) => string };

/** b[s, e) as a latin1 string: Buffer's own latin1Slice, without toString's argument checks. */
function latin1(b: Uint8Array, s: number, e: number): string {
  const f = (b as Latin1).latin1Slice;
  return f !== undefined ? f.call(b, s, e) : Buffer.from(b.buffer, b.byteOffset + s, e - s).toString('latin1');
}

/** Smallest table, counter arrays and arena of a SpaceSaving. */
const MIN_SLOTS = 1024;
/** Counters allocated at first (doubled up to the capacity). */
const MIN_COUNTERS = 1024;
const MIN_ARENA = 16 * 1024;

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

  /** A key by its murmur3 hash alone: for a set past its cap (every set made with cap 0). */
  addHash(h: number, sec: number): void {
    if (this.map !== undefined) {
      if (this.map.size < this.cap) throw new RangeError('RecentSet.addHash before the cap: keys are needed');
      this.toSketch();
    }
    this.slotFor(sec * 1000).addHash(h);
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
 * Canonical dotted-quad IPv4 text (no leading zeros, each part 0-255) as a
 * 32-bit number, or -1: only text that the number spells back exactly, so a
 * key's identity is its bytes as before.
 */
export function ipv4Of(b: Uint8Array, s: number, e: number): number {
  const n = e - s;
  if (n < 7 || n > 15) return -1;
  let ip = 0;
  let part = 0;
  let digits = 0;
  let dots = 0;
  for (let i = s; i < e; i++) {
    const c = b[i]!;
    if (c === 0x2e) {
      if (digits === 0 || ++dots > 3) return -1;
      ip = ip * 256 + part;
      part = 0;
      digits = 0;
    } else if (c >= 0x30 && c <= 0x39) {
      if (digits > 0 && part === 0) return -1;
      part = part * 10 + (c - 0x30);
      if (++digits > 3 || part > 255) return -1;
    } else {
      return -1;
    }
  }
  if (dots !== 3 || digits === 0) return -1;
  return ip * 256 + part;
}

function ipv4Text(ip: number): string {
  return `${ip >>> 24}.${(ip >>> 16) & 255}.${(ip >>> 8) & 255}.${ip & 255}`;
}

/**
 * IPv4 address -> second last seen, open addressing on 8 bytes a slot (a Map
 * of strings takes ~60): the address and its second + 1 (0: an empty slot)
 * side by side in one Uint32Array, so a probe reads one cache line, not one
 * in each of two arrays (most of what a client's lookup cost). Seconds are
 * whole Unix seconds, below 2^32 - 1 until 2106.
 */
class V4Table {
  private t = new Uint32Array(2 * 1024);
  private mask = 1023;
  size = 0;

  /** The slot holding `ip`, or the empty one it would take. */
  slot(ip: number): number {
    const t = this.t;
    const mask = this.mask;
    let i = Math.imul(ip, 0x9e3779b1) >>> 0;
    i = (i ^ (i >>> 16)) & mask;
    while (t[2 * i + 1] !== 0 && t[2 * i] !== ip) i = (i + 1) & mask;
    return i;
  }

  /** The second in slot `i`; NaN when empty. */
  secAt(i: number): number {
    const v = this.t[2 * i + 1]!;
    return v === 0 ? NaN : v - 1;
  }

  /** Set slot `i` (from slot()) to `ip` seen at `sec`. */
  put(i: number, ip: number, sec: number): void {
    const t = this.t;
    if (t[2 * i + 1] === 0) {
      t[2 * i] = ip;
      t[2 * i + 1] = sec + 1;
      if (++this.size * 2 > this.mask + 1) this.grow();
      return;
    }
    t[2 * i + 1] = sec + 1;
  }

  *entries(): IterableIterator<[number, number]> {
    const t = this.t;
    for (let i = 0; i < t.length; i += 2) if (t[i + 1] !== 0) yield [t[i]!, t[i + 1]! - 1];
  }

  private grow(): void {
    const old = this.t;
    this.t = new Uint32Array(old.length * 2);
    this.mask = old.length - 1;
    for (let j = 0; j < old.length; j += 2) {
      if (old[j + 1] === 0) continue;
      const i = this.slot(old[j]!);
      this.t[2 * i] = old[j]!;
      this.t[2 * i + 1] = old[j + 1]!;
    }
  }
}

/**
 * Client addresses: distinct since start and distinct in the online window,
 * from ONE table (address -> second last seen) while at most `cap` addresses
 * were seen: one lookup per line, and the window's count kept per second (a
 * ring of counts: an address seen again moves from its old second to the
 * new one). IPv4 addresses are held as numbers (V4Table), every other
 * spelling in a Map. Past the cap both become sketches: a HyperLogLog of
 * every address, and a RecentSet of sliding HyperLogLogs started from the
 * addresses still in the window; the tables are dropped.
 */
export class ClientSet {
  private v4: V4Table | undefined = new V4Table();
  private map: Map<string, number> | undefined = new Map();
  private readonly ring: Float64Array;
  private readonly ringSec: Float64Array;
  private readonly windowSec: number;
  private all: HyperLogLog | undefined;
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
    const b = Buffer.from(key, 'latin1');
    this.addBytes(b, 0, b.length, sec);
  }

  /** The address b[s, e) seen at `sec` (whole seconds); `h`: murmur3Bytes(b, s, e) if the caller has it. */
  addBytes(b: Uint8Array, s: number, e: number, sec: number, h?: number): void {
    const map = this.map;
    if (map === undefined) {
      const hh = h ?? murmur3Bytes(b, s, e);
      this.all!.addHash(hh);
      this.recent!.addHash(hh, sec);
      return;
    }
    const v4 = this.v4!;
    const ip = ipv4Of(b, s, e);
    let old: number;
    let slot = 0;
    let key = '';
    if (ip >= 0) {
      slot = v4.slot(ip);
      old = v4.secAt(slot);
    } else {
      key = latin1(b, s, e);
      old = map.get(key) ?? NaN;
    }
    if (old === sec) return;
    const isNew = old !== old;
    if (isNew && v4.size + map.size >= this.cap) {
      this.toSketches(sec);
      this.addBytes(b, s, e, sec, h);
      return;
    }
    if (ip >= 0) v4.put(slot, ip, sec);
    else map.set(key, sec);
    if (!isNew) {
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
    return this.map !== undefined ? this.v4!.size + this.map.size : this.all!.estimate();
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
    const all = new HyperLogLog();
    const recent = new RecentSet(this.windowMs, 0);
    const cutoff = sec - this.windowSec;
    const every: [string, number][] = [...this.map!];
    for (const [ip, t] of this.v4!.entries()) every.push([ipv4Text(ip), t]);
    for (const [k] of every) all.add(k);
    // Oldest first, so that the sliding sketches are made in time order.
    const live = every.filter(([, t]) => t > cutoff).sort((a, b) => a[1] - b[1]);
    for (const [k, t] of live) recent.add(k, t);
    this.map = undefined;
    this.v4 = undefined;
    this.all = all;
    this.recent = recent;
  }
}
