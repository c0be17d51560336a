/**
 * xxHash32 (Yann Collet's XXH32, the reference algorithm), the check of the
 * spool's record frames from segment format 2 on (#16; record-frame.ts).
 *
 * Why not CRC-32 there: the spool computes one check per line on its hot
 * path, and CRC-32 without a carry-less multiply is a table lookup per byte
 * (0.6-0.9 ns/byte in WebAssembly on this VM, the largest single part of
 * what --spool cost per line). XXH32's four lanes are four independent
 * multiply-rotate chains, one WebAssembly SIMD vector (crc32.wat): about a
 * fifth of the time per record. It detects a torn or flipped record as a
 * 32-bit CRC does (a random change passes with odds of 2^-32); RocksDB
 * checks its blocks with the same family (XXH3) by default for the same
 * reason.
 *
 * This is the JavaScript form, for reading (a record read back is checked
 * once) and where WebAssembly is missing; the writer seals in the module.
 */
const P1 = 0x9e3779b1 | 0;
const P2 = 0x85ebca77 | 0;
const P3 = 0xc2b2ae3d | 0;
const P4 = 0x27d4eb2f | 0;
const P5 = 0x165667b1 | 0;

const rotl = (x: number, r: number): number => (x << r) | (x >>> (32 - r));

const u32 = (b: Uint8Array, i: number): number => b[i]! | (b[i + 1]! << 8) | (b[i + 2]! << 16) | (b[i + 3]! << 24);

/** XXH32 of buf[start, end) with `seed` (an unsigned 32-bit value). */
export function xxh32(buf: Uint8Array, start: number, end: number, seed: number): number {
  const n = end - start;
  let p = start;
  let h: number;
  if (n >= 16) {
    let v1 = (seed + P1 + P2) | 0;
    let v2 = (seed + P2) | 0;
    let v3 = seed | 0;
    let v4 = (seed - P1) | 0;
    for (; p + 16 <= end; p += 16) {
      v1 = Math.imul(rotl((v1 + Math.imul(u32(buf, p), P2)) | 0, 13), P1);
      v2 = Math.imul(rotl((v2 + Math.imul(u32(buf, p + 4), P2)) | 0, 13), P1);
      v3 = Math.imul(rotl((v3 + Math.imul(u32(buf, p + 8), P2)) | 0, 13), P1);
      v4 = Math.imul(rotl((v4 + Math.imul(u32(buf, p + 12), P2)) | 0, 13), P1);
    }
    h = (rotl(v1, 1) + rotl(v2, 7) + rotl(v3, 12) + rotl(v4, 18)) | 0;
  } else h = (seed + P5) | 0;
  h = (h + n) | 0;
  for (; p + 4 <= end; p += 4) h = Math.imul(rotl((h + Math.imul(u32(buf, p), P3)) | 0, 17), P4);
  for (; p < end; p++) h = Math.imul(rotl((h + Math.imul(buf[p]!, P5)) | 0, 11), P1);
  h ^= h >>> 15;
  h = Math.imul(h, P2);
  h ^= h >>> 13;
  h = Math.imul(h, P3);
  h ^= h >>> 16;
  return h >>> 0;
}
