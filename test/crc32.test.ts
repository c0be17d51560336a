/** The record frames' checks in the arena (crc32.wat): CRC-32 agrees with zlib's on every length and offset (issue 7); XXH32 frames sealed together equal those sealed one by one (#16). */
import crypto from 'node:crypto';
import zlib from 'node:zlib';
import { describe, expect, it } from 'vitest';
import { execFileSync } from 'node:child_process';
import path from 'node:path';
import { type CrcArena, crc32, crcArena } from '../src/crc32.js';
import { FRAME_BAD, FRAME_HEADER, type FrameCheck, checkFrame, sealFrame, sealFramesIn, xxh32Frames } from '../src/record-frame.js';

/**
 * Frames of `lens` bytes of random payload back to back from 0: in the arena with only their lengths
 * written (for sealFramesIn), in `plain` sealed one by one by sealFrame() with `check`. Returns where each ends.
 */
function layFrames(a: CrcArena, plain: Buffer, lens: readonly number[], check?: FrameCheck): number[] {
  let p = 0;
  const ends: number[] = [];
  for (const len of lens) {
    const payload = crypto.randomBytes(len);
    payload.copy(a.buf, p + FRAME_HEADER);
    payload.copy(plain, p + FRAME_HEADER);
    a.buf.writeUInt32LE(len, p);
    sealFrame(plain, p, len, check);
    p += FRAME_HEADER + len;
    ends.push(p);
  }
  return ends;
}

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

  it.each(['wasm', 'js'] as const)('#16: an arena (%s) gives zlib\'s value on every length, offset and chain, up to its last byte', (engine) => {
    const a = crcArena(5000, engine);
    const b = crypto.randomBytes(5000);
    b.copy(a.buf);
    for (let len = 0; len < 1100; len += len < 40 ? 1 : 37) {
      for (const off of [0, 1, 3, 7]) expect(a.crc(off, off + len)).toBe(zlib.crc32(b.subarray(off, off + len)));
    }
    expect(a.crc(0, 5000)).toBe(zlib.crc32(b));
    expect(a.crc(4993, 5000)).toBe(zlib.crc32(b.subarray(4993)));
    expect(a.crc(10, 20, a.crc(0, 10))).toBe(zlib.crc32(b.subarray(0, 20)));
    // Two arenas are two memories: one's tables and data do not reach the other.
    const other = crcArena(64, engine);
    other.buf.fill(0x5a);
    expect(a.crc(0, 64)).toBe(zlib.crc32(b.subarray(0, 64)));
    expect(other.crc(0, 64)).toBe(zlib.crc32(Buffer.alloc(64, 0x5a)));
  });

  it.each(['wasm', 'js'] as const)('#16: a frame sealed in an arena (%s) is the frame sealFrame() makes, and checks', (engine) => {
    const a = crcArena(4096, engine);
    const plain = Buffer.alloc(4096);
    const payload = crypto.randomBytes(300);
    payload.copy(a.buf, 11 + FRAME_HEADER);
    payload.copy(plain, 11 + FRAME_HEADER);
    a.buf.writeUInt32LE(300, 11);
    sealFramesIn(a, 11, 11 + FRAME_HEADER + 300);
    sealFrame(plain, 11, 300);
    expect(Buffer.from(a.buf.subarray(11, 11 + FRAME_HEADER + 300))).toEqual(plain.subarray(11, 11 + FRAME_HEADER + 300));
    expect(checkFrame(Buffer.from(a.buf), 11, 4096)).toBe(11 + FRAME_HEADER + 300);
  });

  it.each(['wasm', 'js'] as const)('#16: frames sealed together in an arena (%s) are the frames sealFrame() makes one by one', (engine) => {
    const a = crcArena(64 * 1024, engine);
    const plain = Buffer.alloc(64 * 1024);
    const ends = layFrames(a, plain, [1, 7, 8, 9, 300, 4096, 2, 250]);
    const p = ends.at(-1)!;
    sealFramesIn(a, 0, p);
    expect(Buffer.from(a.buf.subarray(0, p))).toEqual(plain.subarray(0, p));
    const got: number[] = [];
    for (let off = 0; off < p; off = checkFrame(Buffer.from(a.buf), off, p)) got.push(off);
    expect(got.slice(1)).toEqual(ends.slice(0, -1));
  });

  it.each(['wasm', 'js'] as const)('#16: XXH32 frames sealed together in an arena (%s) are the frames sealFrame() makes one by one, and check only with their salt', (engine) => {
    const check = xxh32Frames(0x12345678);
    const a = crcArena(64 * 1024, engine);
    const plain = Buffer.alloc(64 * 1024);
    const ends = layFrames(a, plain, [1, 7, 15, 16, 17, 31, 32, 300, 4096, 2, 250], check);
    const p = ends.at(-1)!;
    sealFramesIn(a, 0, p, check);
    expect(Buffer.from(a.buf.subarray(0, p))).toEqual(plain.subarray(0, p));
    const got: number[] = [];
    for (let off = 0; off < p; off = checkFrame(plain, off, p, undefined, false, check)) got.push(off);
    expect(got.slice(1)).toEqual(ends.slice(0, -1));
    // Another salt, or the CRC-32 scope, does not take them.
    expect(checkFrame(plain, 0, p, undefined, false, xxh32Frames(0x12345679))).toBe(FRAME_BAD);
    expect(checkFrame(plain, 0, p)).toBe(FRAME_BAD);
  });

  it('#16: XXH32 frames hashed four side by side (any mix of lengths, short ones between) are sealed as one by one', () => {
    const check = xxh32Frames(0x9e3779b1);
    const a = crcArena(512 * 1024);
    const plain = Buffer.alloc(512 * 1024);
    // Runs of four or more long frames whose shortest is each one of the four in turn, runs cut short by
    // a frame under one stripe, and a last run that ends the buffer before four.
    const lens: number[] = [];
    for (let i = 0; i < 400; i++) lens.push(i % 9 === 8 ? i % 16 : 16 + ((i * 7919) % 600));
    lens.push(16, 17, 47);
    const ends = layFrames(a, plain, lens, check);
    sealFramesIn(a, 0, ends.at(-1)!, check);
    ends.forEach((end, i) => {
      const off = end - FRAME_HEADER - lens[i]!;
      expect(a.buf.readUInt32LE(off + 4), `frame ${i} of ${lens[i]} bytes`).toBe(plain.readUInt32LE(off + 4));
    });
  });

  it('#16: src/crc32-wasm.ts holds exactly what src/crc32.wat compiles to', () => {
    const script = path.resolve(__dirname, '..', 'scripts', 'crc32-wasm.mjs');
    expect(() => execFileSync(process.execPath, [script, '--check'])).not.toThrow();
  });
});
