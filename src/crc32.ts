/**
 * CRC-32 (IEEE 802.3, the zlib/gzip one) for record frames (record-frame.ts).
 *
 * Node has zlib.crc32 (20.15+, 22.2+), but each call into it costs about
 * 200 ns before the first byte, more than a whole short log line takes here,
 * so short inputs use a slicing-by-8 table in JavaScript (~0.5 ns/byte) and
 * long ones go to zlib. Both give the same value (tested).
 *
 * A writer that frames many records into one buffer of its own (the spool)
 * takes a CrcArena instead: its buffer lives in the memory of a small
 * WebAssembly module (crc32.wat) whose loop is about twice as fast again,
 * and which also computes the XXH32 that the spool's frames carry from
 * segment format 2 on (xxh32.ts, #16).
 */
import zlib from 'node:zlib';
import { CRC32_WASM } from './crc32-wasm.js';
import { xxh32 } from './xxh32.js';

/** Inputs at least this long go to zlib.crc32. */
const NATIVE_FROM = 1024;

const T = (() => {
  const t = new Int32Array(256 * 8);
  for (let n = 0; n < 256; n++) {
    let c = n;
    for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
    t[n] = c;
  }
  for (let n = 0; n < 256; n++) {
    let c = t[n]!;
    for (let k = 1; k < 8; k++) {
      c = t[c & 0xff]! ^ (c >>> 8);
      t[k * 256 + n] = c;
    }
  }
  return t;
})();

/** CRC-32 of buf[start, end), continuing from `crc` (0 to start). */
export function crc32(buf: Uint8Array, start = 0, end = buf.length, crc = 0): number {
  if (end - start >= NATIVE_FROM) return zlib.crc32(buf.subarray(start, end), crc);
  let c = ~crc;
  let i = start;
  for (; i + 8 <= end; i += 8) {
    const a = c ^ (buf[i]! | (buf[i + 1]! << 8) | (buf[i + 2]! << 16) | (buf[i + 3]! << 24));
    c =
      T[1792 + (a & 0xff)]! ^
      T[1536 + ((a >>> 8) & 0xff)]! ^
      T[1280 + ((a >>> 16) & 0xff)]! ^
      T[1024 + (a >>> 24)]! ^
      T[768 + buf[i + 4]!]! ^
      T[512 + buf[i + 5]!]! ^
      T[256 + buf[i + 6]!]! ^
      T[buf[i + 7]!]!;
  }
  for (; i < end; i++) c = T[(c ^ buf[i]!) & 0xff]! ^ (c >>> 8);
  return ~c >>> 0;
}

/** Bytes of the tables at the start of an arena's memory (crc32.wat). */
const TABLE_BYTES = 8 * 256 * 4;
const PAGE = 65536;

/** The little of the WebAssembly JS API used here (TypeScript's lib for Node has none without the DOM's). */
interface WasmApi {
  Module: new (bytes: Uint8Array) => object;
  Memory: new (d: { initial: number; maximum: number }) => { readonly buffer: ArrayBuffer };
  Instance: new (m: object, imports: object) => { readonly exports: Record<string, unknown> };
}
declare const WebAssembly: WasmApi | undefined;

let wasmModule: object | undefined;

/** A buffer whose CRC-32s and XXH32s are computed in WebAssembly (crc32.wat); see crcArena(). */
export interface CrcArena {
  /** `bytes` long, fixed: a view of the module's memory, which never grows. */
  readonly buf: Buffer;
  /** crc32(buf, start, end, crc), the same value. */
  crc(start: number, end: number, crc?: number): number;
  /** xxh32(buf, start, end, seed), the same value. */
  xxh32(start: number, end: number, seed: number): number;
  /**
   * sealFrame() of record-frame.ts for every frame in [start, end), each with
   * its length already written, in one call into the module (the WebAssembly
   * arena only; see sealFramesIn): CRC-32 frames, and XXH32 frames salted
   * with `salt`.
   */
  readonly sealAll?: (start: number, end: number) => void;
  readonly sealAllXxh32?: (start: number, end: number, salt: number) => void;
}

/**
 * A buffer of `bytes` bytes with its own CRC-32 module instance. Falls back
 * to the JavaScript loop where WebAssembly is missing, or with engine 'js'
 * (the value is the same: tested both ways).
 */
export function crcArena(bytes: number, engine: 'wasm' | 'js' = 'wasm'): CrcArena {
  const wasm = engine === 'js' || typeof WebAssembly === 'undefined' ? undefined : WebAssembly;
  if (!wasm) {
    const buf = Buffer.allocUnsafeSlow(bytes);
    return { buf, crc: (start, end, c = 0) => crc32(buf, start, end, c), xxh32: (start, end, seed) => xxh32(buf, start, end, seed) };
  }
  wasmModule ??= new wasm.Module(CRC32_WASM);
  const pages = Math.ceil((TABLE_BYTES + bytes) / PAGE);
  const mem = new wasm.Memory({ initial: pages, maximum: pages });
  new Int32Array(mem.buffer, 0, TABLE_BYTES / 4).set(T);
  const exports = new wasm.Instance(wasmModule, { env: { mem } }).exports;
  const wcrc = exports.crc as (p: number, n: number, c: number) => number;
  const wsealAll = exports.sealAll as (p: number, end: number) => void;
  const wxxh32 = exports.xxh32 as (p: number, n: number, seed: number) => number;
  const wsealAllXxh32 = exports.sealAllXxh32 as (p: number, end: number, salt: number) => void;
  const buf = Buffer.from(mem.buffer, TABLE_BYTES, bytes);
  return {
    buf,
    crc: (start, end, crc = 0) => wcrc(TABLE_BYTES + start, end - start, crc) >>> 0,
    xxh32: (start, end, seed) => wxxh32(TABLE_BYTES + start, end - start, seed) >>> 0,
    sealAll: (start, end) => wsealAll(TABLE_BYTES + start, TABLE_BYTES + end),
    sealAllXxh32: (start, end, salt) => wsealAllXxh32(TABLE_BYTES + start, TABLE_BYTES + end, salt),
  };
}
