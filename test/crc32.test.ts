/** The spool's CRC-32 (issue 7) agrees with zlib's on every length and offset. */
import crypto from 'node:crypto';
import zlib from 'node:zlib';
import { describe, expect, it } from 'vitest';
import { crc32 } from '../src/crc32.js';

describe('crc32', () => {
  it('known value', () => {
    expect(crc32(Buffer.from('123456789'))).toBe(0xcbf43926);
    expect(crc32(Buffer.alloc(0))).toBe(0);
  });

  it('matches zlib.crc32 on random data, short and long, at any offset, and chained', () => {
    const b = crypto.randomBytes(5000);
    for (let len = 0; len < 1100; len += len < 40 ? 1 : 37) {
      for (const off of [0, 1, 3, 7]) expect(crc32(b, off, off + len)).toBe(zlib.crc32(b.subarray(off, off + len)));
    }
    expect(crc32(b, 0, 4000)).toBe(zlib.crc32(b.subarray(0, 4000)));
    expect(crc32(b, 10, 20, crc32(b, 0, 10))).toBe(zlib.crc32(b.subarray(0, 20)));
    expect(crc32(b, 100, 3000, crc32(b, 0, 100))).toBe(zlib.crc32(b.subarray(0, 3000)));
  });
});
