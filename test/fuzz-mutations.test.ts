/**
 * More fuzzing in CI, bounded in time like test/fuzz.test.ts (FUZZ_MS per
 * target, default 3000; FUZZ_SEED replays, printed when a target fails), on
 * what that file does not look at:
 * - the decoder gets frames of both directions with stacked mutations (1..3
 *   of flips, edge int32s at header offsets in either byte order, cuts,
 *   splices, repeats, inserts, dropped ranges) and the daemon's maxBody
 *   limit; every frame it gives out is well formed and inside the limits,
 *   unmutated real frames come back byte for byte, an error is for good;
 * - the syslog parser gets syslog tokens (PRI, version, SD brackets, CR LF
 *   NUL, BOM, timestamps) put into its headers, and any maxLength; a record
 *   is the same twice, its PRI in range, its host and tag printable tokens,
 *   its message a view of the datagram with no NUL, CR or LF.
 */
import fs from 'node:fs';
import path from 'node:path';
import { describe, expect, it, onTestFailed } from 'vitest';
import { ErrorCodes, SpreadPipeError } from '../src/errors.js';
import { CLIENT_LIMITS, DAEMON_LIMITS, type Frame, MessageDecoder, type RequestLimits } from '../src/spread/decoder.js';
import { REJECT_MESS } from '../src/spread/constants.js';
import { SYSLOG_ERRORS, parseSyslog } from '../src/syslog/parse.js';
import { ROOT, captureFiles, loadCapture, prng, randomChunks, stepBytes } from './helpers.js';

const FUZZ_MS = Number(process.env.FUZZ_MS ?? 3000);
const BASE_SEED = process.env.FUZZ_SEED !== undefined ? Number(process.env.FUZZ_SEED) : (Date.now() ^ (process.pid << 16)) >>> 0;

/** A seeded PRNG for one target; its seed is printed if the test fails. */
function seeded(target: number): { rand: () => number; seed: number } {
  const seed = (BASE_SEED + target) >>> 0;
  onTestFailed(() => console.error(`fuzz target ${target} failed: replay with FUZZ_SEED=${BASE_SEED} (target seed ${seed})`));
  return { rand: prng(seed), seed };
}

const pick = <T>(rand: () => number, xs: readonly T[]): T => xs[Math.floor(rand() * xs.length)]!;
const int = (rand: () => number, n: number): number => Math.floor(rand() * n);
const INTERESTING = [0, 1, -1, 2, 31, 32, 33, 100, 101, 255, 256, 0x7fff, 0x8000, 0xffff, 65536, 144000, 144001, 0x7fffffff, -0x80000000, 0x80000000 | 0];

/** Byte-level mutations, stacked 1..3 times; `corpus` supplies splices. */
function mutate(b: Buffer, rand: () => number, corpus: readonly Buffer[]): Buffer {
  let out = Buffer.from(b);
  for (let k = 1 + int(rand, 3); k > 0; k--) {
    switch (int(rand, 8)) {
      case 0: // flip bytes
        for (let n = 1 + int(rand, 4); n > 0 && out.length; n--) out[int(rand, out.length)] = int(rand, 256);
        break;
      case 1: // an int32 set to an edge value, at a header offset or anywhere
        if (out.length >= 4) {
          const o = rand() < 0.6 ? pick(rand, [0, 36, 40, 44, 48].filter((x) => x + 4 <= out.length)) : int(rand, out.length - 3);
          if (o !== undefined) rand() < 0.5 ? out.writeInt32LE(pick(rand, INTERESTING), o) : out.writeInt32BE(pick(rand, INTERESTING), o);
        }
        break;
      case 2: // cut
        out = out.subarray(0, int(rand, out.length + 1));
        break;
      case 3: {
        // splice in part of another input
        const other = pick(rand, corpus);
        const at = int(rand, out.length + 1);
        const from = int(rand, other.length + 1);
        out = Buffer.concat([out.subarray(0, at), other.subarray(from, from + int(rand, 300)), out.subarray(at)]);
        break;
      }
      case 4: {
        // repeat a range
        const a = int(rand, out.length + 1);
        const e = Math.min(out.length, a + int(rand, 200));
        out = Buffer.concat([out.subarray(0, e), out.subarray(a, e), out.subarray(e)]);
        break;
      }
      case 5: {
        // insert random bytes
        const at = int(rand, out.length + 1);
        const ins = Buffer.alloc(1 + int(rand, 16));
        for (let i = 0; i < ins.length; i++) ins[i] = int(rand, 256);
        out = Buffer.concat([out.subarray(0, at), ins, out.subarray(at)]);
        break;
      }
      case 6: // a single bit
        if (out.length) out[int(rand, out.length)] ^= 1 << int(rand, 8);
        break;
      default: {
        // drop a range
        const a = int(rand, out.length + 1);
        out = Buffer.concat([out.subarray(0, a), out.subarray(Math.min(out.length, a + 1 + int(rand, 64)))]);
      }
    }
  }
  return out;
}

function randomBytes(rand: () => number, max: number): Buffer {
  const b = Buffer.alloc(int(rand, max));
  for (let i = 0; i < b.length; i++) b[i] = int(rand, 256);
  return b;
}

/** Every framed message of every capture, both directions. */
function captureFrames(): Buffer[] {
  const out: Buffer[] = [];
  for (const f of captureFiles()) for (const s of loadCapture(f).steps) if (s.hex && s.decoded?.kind === 'message') out.push(stepBytes(s));
  return out;
}

/** Run `step` until FUZZ_MS has passed; returns the number of iterations. */
function forAWhile(step: (i: number) => void): number {
  const end = Date.now() + FUZZ_MS;
  let i = 0;
  while (Date.now() < end) step(i++);
  return i;
}

describe(`fuzz: the incremental decoder, stacked mutations (FUZZ_SEED=${BASE_SEED})`, () => {
  const frames = captureFrames();

  /** Everything one stream gives: frames (raw hex), the error, and the most it buffered. */
  function run(chunks: Buffer[], limits: RequestLimits): { raws: string[]; error?: string; maxBuffered: number } {
    const raws: string[] = [];
    const maxGroups = limits.maxGroups!;
    const maxDataLen = limits.maxDataLen!;
    const d = new MessageDecoder((f: Frame) => {
      // Well formed whatever came in: sizes add up and stay in the limits.
      const head = 48 + ((f.type & REJECT_MESS) !== 0 ? 4 : 0);
      expect(f.raw.length).toBe(head + 32 * f.groups.length + f.data.length);
      expect(f.groups.length).toBeLessThanOrEqual(maxGroups);
      expect(f.data.length).toBeLessThanOrEqual(maxDataLen);
      if (limits.maxBody !== undefined) expect(f.data.length + 32 * f.groups.length).toBeLessThanOrEqual(limits.maxBody);
      raws.push(f.raw.toString('hex'));
    }, limits);
    let maxBuffered = 0;
    const bound = 52 + 32 * maxGroups + maxDataLen;
    for (const c of chunks) {
      try {
        d.write(c);
      } catch (e) {
        if (!(e instanceof SpreadPipeError) || e.code !== ErrorCodes.PROTOCOL) throw e;
        // Out of sync for good.
        expect(() => d.write(Buffer.from([0x80]))).toThrow(e);
        return { raws, error: e.message, maxBuffered };
      }
      maxBuffered = Math.max(maxBuffered, d.buffered);
      expect(d.buffered).toBeLessThanOrEqual(bound);
    }
    return { raws, maxBuffered };
  }

  it(`random and mutated real frames for ${FUZZ_MS} ms`, () => {
    const { rand } = seeded(1);
    const LIMITS: RequestLimits[] = [DAEMON_LIMITS, CLIENT_LIMITS, { maxGroups: 3, maxDataLen: 300 }, { ...DAEMON_LIMITS, maxBody: 100_000 }, { maxGroups: 0, maxDataLen: 0 }];
    let errors = 0;
    let clean = 0;
    const n = forAWhile((i) => {
      const limits = pick(rand, LIMITS);
      const parts: Buffer[] = [];
      let mutated = false;
      for (let k = 1 + int(rand, 6); k > 0; k--) {
        const f = pick(rand, frames);
        if (i % 5 === 0) {
          parts.push(randomBytes(rand, 400));
          mutated = true;
        } else if (rand() < 0.5) {
          parts.push(mutate(f, rand, frames));
          mutated = true;
        } else parts.push(f);
      }
      const input = Buffer.concat(parts);
      try {
        check(input, limits, mutated ? undefined : parts);
      } catch (e) {
        throw new Error(`iteration ${i}, limits ${JSON.stringify(limits)}, input ${input.toString('hex').slice(0, 2000)}: ${(e as Error).message}`);
      }
    });
    expect(n).toBeGreaterThan(50);
    expect(errors).toBeGreaterThan(0);
    expect(clean).toBeGreaterThan(0);

    function check(input: Buffer, limits: RequestLimits, unmutated: Buffer[] | undefined): void {
      const whole = run([input], limits);
      // Any chunking, down to single bytes, gives the same frames and the same error.
      const chunked = run(randomChunks(input, rand, pick(rand, input.length < 5000 ? [1, 3, 48, 52, 500, 70_000] : [48, 52, 500, 70_000])), limits);
      expect(chunked.raws).toEqual(whole.raws);
      expect(chunked.error).toEqual(whole.error);
      if (whole.error) errors++;
      if (unmutated && limits === CLIENT_LIMITS) {
        // Real frames, unmutated: exactly what was sent, frame by frame.
        expect(whole.raws).toEqual(unmutated.map((p) => p.toString('hex')));
        clean++;
      }
    }
  });
});

describe(`fuzz: the syslog parser, header-aware mutations (FUZZ_SEED=${BASE_SEED})`, () => {
  const load = (f: string): Record<string, unknown> => JSON.parse(fs.readFileSync(path.join(ROOT, 'test', 'fixtures', 'syslog', f), 'utf8')) as Record<string, unknown>;
  const b64 = (xs: unknown): Buffer[] => ((xs as string[] | undefined) ?? []).map((s) => Buffer.from(s, 'base64'));
  const nginx = load('nginx.json');
  const real = [...b64(nginx.datagrams), ...b64(nginx.unixDatagrams), ...b64(load('rsyslog.json').datagrams)];
  const TOKENS = ['<', '>', '<0>', '<191>', '<192>', '<13>1 ', '1 ', '- ', '[', ']', '"', '\\', ': ', ' ', '\n', '\r\n', '\0', '\x7f', '\xef\xbb\xbf', 'Jan  1 00:00:00 ', '2026-11-23T07:01:03Z '].map((s) =>
    Buffer.from(s, 'latin1'),
  );

  /** Syslog-aware mutations on top of the byte-level ones: tokens put where headers are. */
  function mutateDatagram(b: Buffer, rand: () => number): Buffer {
    if (rand() < 0.5) return mutate(b, rand, real);
    const at = rand() < 0.7 ? int(rand, Math.min(b.length, 80) + 1) : int(rand, b.length + 1);
    const tok = pick(rand, TOKENS);
    return rand() < 0.5 ? Buffer.concat([b.subarray(0, at), tok, b.subarray(at)]) : Buffer.concat([b.subarray(0, at), tok, b.subarray(Math.min(b.length, at + tok.length))]);
  }

  it(`random and mutated real datagrams for ${FUZZ_MS} ms`, () => {
    const { rand } = seeded(3);
    expect(real.length).toBeGreaterThan(10);
    for (const d of real) expect(parseSyslog(d).ok).toBe(true);
    const small = real.filter((d) => d.length < 4000);
    const reasons = new Set<string>();
    let records = 0;
    const n = forAWhile((i) => {
      let d: Buffer;
      if (i % 4 === 0) d = randomBytes(rand, 300);
      else {
        d = pick(rand, small);
        for (let k = 1 + int(rand, 3); k > 0; k--) d = mutateDatagram(d, rand);
      }
      const max = rand() < 0.1 ? int(rand, d.length + 2) : undefined;
      try {
        checkOne(d, max);
      } catch (e) {
        throw new Error(`iteration ${i}: ${JSON.stringify(d.toString('latin1'))} max ${max}: ${(e as Error).message}`);
      }
    });
    expect(n).toBeGreaterThan(1000);
    expect(records).toBeGreaterThan(0);
    expect(reasons.size).toBeGreaterThan(3);

    function checkOne(d: Buffer, max: number | undefined): void {
      const r = parseSyslog(d, max);
      // Pure: the same answer twice.
      expect(parseSyslog(d, max)).toEqual(r);
      if (!r.ok) {
        expect(SYSLOG_ERRORS).toContain(r.error);
        reasons.add(r.error);
        return;
      }
      records++;
      const m = r.record.message;
      expect(r.record.facility).toBeGreaterThanOrEqual(0);
      expect(r.record.facility).toBeLessThanOrEqual(23);
      expect(r.record.severity).toBeGreaterThanOrEqual(0);
      expect(r.record.severity).toBeLessThanOrEqual(7);
      expect(['3164', '5424']).toContain(r.record.format);
      // One line downstream: no NUL, CR or LF; and a view of the datagram, not a copy.
      expect(m.indexOf(0x0a) < 0 && m.indexOf(0x0d) < 0 && m.indexOf(0) < 0).toBe(true);
      expect(m.buffer === d.buffer && m.byteOffset >= d.byteOffset && m.byteOffset + m.length <= d.byteOffset + d.length).toBe(true);
      for (const s of [r.record.host, r.record.tag]) if (s !== undefined) expect(/^[\x21-\x7e]+$/.test(s)).toBe(true);
    }
  });
});
