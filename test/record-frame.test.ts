/**
 * The one record framing of the spool and the dedup journal (#12): length,
 * CRC-32 of length and payload; incomplete and bad told apart, fed whole
 * and byte by byte.
 */
import zlib from 'node:zlib';
import { describe, expect, it } from 'vitest';
import { FRAME_BAD, FRAME_HEADER, FRAME_INCOMPLETE, checkFrame, frameCrc, sealFrame } from '../src/record-frame.js';

function framed(payload: Buffer): Buffer {
  const b = Buffer.alloc(FRAME_HEADER + payload.length);
  payload.copy(b, FRAME_HEADER);
  sealFrame(b, 0, payload.length);
  return b;
}

describe('record frame', () => {
  it('#12: the header is the u32 LE length and the CRC-32 of the length field and the payload', () => {
    const b = framed(Buffer.from('abc'));
    expect(b.subarray(0, 4)).toEqual(Buffer.from([3, 0, 0, 0]));
    expect(b.readUInt32LE(4)).toBe(zlib.crc32(Buffer.from([3, 0, 0, 0, 0x61, 0x62, 0x63])));
    expect(frameCrc(b, 0, 3)).toBe(b.readUInt32LE(4));
    expect(checkFrame(b, 0, b.length)).toBe(b.length);
  });

  it('#12: frames one after another, at any offset, short and long payloads (the zlib CRC path)', () => {
    const payloads = [1, 2, 7, 8, 9, 1023, 1024, 5000].map((n) => Buffer.from(Array.from({ length: n }, (_, k) => (k * 31 + n) & 0xff)));
    const all = Buffer.concat([Buffer.from('junk'), ...payloads.map(framed)]);
    let off = 4;
    for (const p of payloads) {
      const end = checkFrame(all, off, all.length);
      expect(all.subarray(off + FRAME_HEADER, end)).toEqual(p);
      off = end;
    }
    expect(off).toBe(all.length);
    expect(checkFrame(all, off, all.length)).toBe(FRAME_INCOMPLETE);
  });

  it('#12: fed byte by byte, a frame is incomplete until its last byte', () => {
    const b = framed(Buffer.from('hello world'));
    for (let n = 0; n < b.length; n++) expect(checkFrame(b, 0, n), `limit ${n}`).toBe(FRAME_INCOMPLETE);
    expect(checkFrame(b, 0, b.length)).toBe(b.length);
  });

  it('#12: any flipped bit, in the length, the CRC or the payload, is bad or incomplete, never a record', () => {
    const b = framed(Buffer.from('0123456789abcdef'));
    for (let i = 0; i < b.length * 8; i++) {
      const c = Buffer.from(b);
      c[i >> 3]! ^= 1 << (i & 7);
      const r = checkFrame(c, 0, c.length);
      expect(r === FRAME_BAD || r === FRAME_INCOMPLETE, `bit ${i}: ${r}`).toBe(true);
    }
  });

  it('#12: a length of 0 or over maxLen is bad at once, before the payload is there', () => {
    const zero = Buffer.alloc(8); // zero-filled blocks, as after a crash of the machine
    expect(checkFrame(zero, 0, zero.length)).toBe(FRAME_BAD);
    const big = framed(Buffer.alloc(100, 1));
    expect(checkFrame(big, 0, 8, 99)).toBe(FRAME_BAD);
    expect(checkFrame(big, 0, 8, 100)).toBe(FRAME_INCOMPLETE);
    expect(checkFrame(big, 0, big.length, 100)).toBe(big.length);
  });

  it('#12: a CRC of the payload alone (0.1.0 journals) passes only when asked for', () => {
    const b = framed(Buffer.from('old record'));
    b.writeUInt32LE(zlib.crc32(b.subarray(FRAME_HEADER)), 4);
    expect(checkFrame(b, 0, b.length)).toBe(FRAME_BAD);
    expect(checkFrame(b, 0, b.length, undefined, true)).toBe(b.length);
    b[FRAME_HEADER]! ^= 1;
    expect(checkFrame(b, 0, b.length, undefined, true)).toBe(FRAME_BAD);
  });
});
