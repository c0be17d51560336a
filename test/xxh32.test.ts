/** XXH32 (#16: the check of the spool's format-2 frames): the reference values, in JavaScript and in the arena's module. */
import crypto from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { crcArena } from '../src/crc32.js';
import { xxh32 } from '../src/xxh32.js';

// Published values of the reference implementation (seed 0).
const KNOWN: [string, number][] = [
  ['', 0x02cc5d05],
  ['abc', 0x32d153ff],
  ['Nobody inspects the spammish repetition', 0xe2293b2f],
];

describe('xxh32', () => {
  it.each(KNOWN)('#16: the reference value of %j', (text, value) => {
    const b = Buffer.from(text, 'latin1');
    expect(xxh32(b, 0, b.length, 0)).toBe(value);
    const padded = Buffer.concat([Buffer.from('junk'), b, Buffer.from('more')]);
    expect(xxh32(padded, 4, 4 + b.length, 0)).toBe(value);
  });

  it.each(['wasm', 'js'] as const)('#16: an arena (%s) gives the reference values and the JavaScript value on every length, offset and seed', (engine) => {
    const a = crcArena(5000, engine);
    for (const [text, value] of KNOWN) {
      a.buf.write(text, 100, 'latin1');
      expect(a.xxh32(100, 100 + text.length, 0)).toBe(value);
    }
    const b = crypto.randomBytes(5000);
    b.copy(a.buf);
    for (let len = 0; len < 700; len += len < 70 ? 1 : 29) {
      for (const off of [0, 1, 3, 7, 13]) {
        for (const seed of [0, 1, 0x9e3779b1, 0xffffffff, len]) expect(a.xxh32(off, off + len, seed), `len ${len} off ${off} seed ${seed}`).toBe(xxh32(b, off, off + len, seed));
      }
    }
    expect(a.xxh32(0, 5000, 7)).toBe(xxh32(b, 0, 5000, 7));
    expect(a.xxh32(4983, 5000, 7)).toBe(xxh32(b, 4983, 5000, 7));
  });

  it('#16: one byte changed anywhere, or one length more or less, changes the value', () => {
    const b = crypto.randomBytes(300);
    const v = xxh32(b, 0, 300, 300);
    for (let i = 0; i < 300; i++) {
      b[i]! ^= 1 << (i % 8);
      expect(xxh32(b, 0, 300, 300), `byte ${i}`).not.toBe(v);
      b[i]! ^= 1 << (i % 8);
    }
    expect(xxh32(b, 0, 299, 300)).not.toBe(v);
    expect(xxh32(b, 0, 300, 301)).not.toBe(v);
  });
});
