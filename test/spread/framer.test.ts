/**
 * The daemon's hot path (bench/daemon.mjs): request boundaries found without
 * decoding (Framer) must be the frames MessageDecoder decodes, its errors the
 * same, and isPlainMulticast must never let through what checkRequest refuses.
 */
import { describe, expect, it } from 'vitest';
import { Framer, type FramerLimits } from '../../src/spread/framer.js';
import { checkRequest, isPlainMulticast, plainFrame } from '../../src/spread/daemon-rules.js';
import { DAEMON_LIMITS, MessageDecoder } from '../../src/spread/decoder.js';
import { encodeJoin, encodeKill, encodeMessage } from '../../src/spread/encode.js';
import { AGREED_MESS, HEADER_SIZE, JOIN_MESS, MAX_MESSAGE_BODY_LEN, REJECT_MESS, RELIABLE_MESS, SAFE_MESS, SELF_DISCARD } from '../../src/spread/constants.js';
import { prng, randomChunks } from '../helpers.js';

const LIMITS: FramerLimits = { ...DAEMON_LIMITS, maxBody: MAX_MESSAGE_BODY_LEN - HEADER_SIZE };
const ME = '#pub#localhost';

function frames(chunks: Buffer[]): Buffer[] {
  const out: Buffer[] = [];
  const f = new Framer((b, off, end) => out.push(Buffer.from(b.subarray(off, end))), LIMITS);
  for (const c of chunks) f.write(c);
  return out;
}

function errorOf(fn: () => void): string {
  try {
    fn();
  } catch (e) {
    return (e as Error).message;
  }
  return 'no error';
}

/** A header with the given num_groups and data_len, nothing after it. */
function header(numGroups: number, dataLen: number): Buffer {
  const h = encodeMessage(RELIABLE_MESS, ME, [], Buffer.alloc(0)).subarray(0, HEADER_SIZE);
  h.writeInt32LE(numGroups, 36);
  h.writeInt32LE(dataLen, 44);
  return h;
}

/** A REJECT_MESS frame carries the refused request's type after the header. */
function withOldType(b: Buffer): Buffer {
  const old = Buffer.alloc(4);
  old.writeUInt32LE((RELIABLE_MESS | 0x80000080) >>> 0);
  return Buffer.concat([b.subarray(0, HEADER_SIZE), old, b.subarray(HEADER_SIZE)]);
}

describe('Framer', () => {
  const stream = [
    encodeMessage(RELIABLE_MESS, ME, ['logs'], Buffer.from('a line\n')),
    encodeJoin(ME, 'logs'),
    encodeMessage(SAFE_MESS, ME, ['a', 'b', '#x#localhost'], Buffer.alloc(5000, 0x41)),
    withOldType(encodeMessage(AGREED_MESS | REJECT_MESS, ME, ['logs'], Buffer.from('with an old type'))),
    encodeMessage(RELIABLE_MESS, ME, ['logs'], Buffer.alloc(0)),
    encodeMessage(AGREED_MESS, ME, ['logs'], Buffer.from('big-endian'), { bigEndian: true }),
    encodeKill(ME),
  ];
  const all = Buffer.concat(stream);

  it('finds the same frames as the decoder, however the stream is cut', () => {
    expect(frames([all])).toEqual(stream);
    const rand = prng(7);
    for (let i = 0; i < 200; i++) expect(frames(randomChunks(all, rand, 1 + (i % 97)))).toEqual(stream);
    expect(frames([...all].map((b) => Buffer.from([b])))).toEqual(stream);
  });

  it('refuses a header past the limits with the decoder\'s own error, whole or cut in its header', () => {
    for (const h of [header(101, 1), header(-1, 1), header(1, 144_001), header(1, -5), header(100, MAX_MESSAGE_BODY_LEN - HEADER_SIZE - 3199)]) {
      const expected = errorOf(() => new MessageDecoder(() => {}, LIMITS).write(h));
      expect(expected).toMatch(/^bad Spread frame/);
      expect(errorOf(() => frames([stream[0]!, h]))).toBe(expected);
      expect(errorOf(() => frames([Buffer.concat([stream[0]!, h.subarray(0, 20)]), h.subarray(20)]))).toBe(expected);
      // And ever after, as the decoder: the stream is out of sync.
      const f = new Framer(() => {}, LIMITS);
      expect(() => f.write(h)).toThrow(expected);
      expect(() => f.write(stream[0]!)).toThrow(expected);
    }
  });
});

describe('isPlainMulticast', () => {
  const me = Buffer.from(ME, 'latin1');
  const decode = (b: Buffer) => {
    let frame;
    new MessageDecoder((f) => (frame = f), LIMITS).write(b);
    return frame!;
  };

  it('takes little-endian data messages from this session with a good hint', () => {
    for (const b of [
      encodeMessage(RELIABLE_MESS, ME, ['logs'], Buffer.from('x')),
      encodeMessage(SAFE_MESS | SELF_DISCARD, ME, ['a', 'b'], Buffer.alloc(0), { messType: -32768 }),
    ]) {
      expect(isPlainMulticast(b, 0, me)).toBe(true);
      expect(checkRequest(ME, decode(b))).toBeUndefined();
    }
  });

  it('leaves everything else to the Frame path', () => {
    const wrongHint = encodeMessage(RELIABLE_MESS, ME, ['logs'], Buffer.from('x'));
    wrongHint.writeUInt32LE((wrongHint.readUInt32LE(40) | 0x01) >>> 0, 40);
    const cases: Buffer[] = [
      encodeMessage(RELIABLE_MESS, '#pub#localhos', ['logs']), // a prefix of the name
      encodeMessage(RELIABLE_MESS, '#pub#localhostt', ['logs']), // longer
      encodeMessage(RELIABLE_MESS, '#bob#localhost', ['logs']),
      encodeMessage(RELIABLE_MESS | AGREED_MESS, ME, ['logs']),
      encodeMessage(RELIABLE_MESS | REJECT_MESS, ME, ['logs']),
      encodeMessage(RELIABLE_MESS, ME, []),
      encodeMessage(RELIABLE_MESS, ME, ['logs'], Buffer.from('x'), { bigEndian: true }),
      encodeJoin(ME, 'logs'),
      encodeKill(ME),
      encodeMessage(JOIN_MESS | RELIABLE_MESS, ME, ['logs']),
      wrongHint,
    ];
    for (const b of cases) expect(isPlainMulticast(b, 0, me)).toBe(false);
  });

  it('plainFrame is the Frame the decoder makes (what taps, i.e. the log writer, see)', () => {
    for (const [type, groups, messType] of [
      [RELIABLE_MESS, ['logs'], 0],
      [SAFE_MESS | SELF_DISCARD, ['a', 'b', 'a'], -32768],
      [AGREED_MESS, ['x'.repeat(31)], 32767],
      [AGREED_MESS | 0x100000, ['logs'], -1],
    ] as const) {
      const b = Buffer.concat([Buffer.from('junk before'), encodeMessage(type, ME, groups, Buffer.from('a line\n'), { messType })]);
      expect(isPlainMulticast(b, 11, me)).toBe(true);
      expect(plainFrame(b, 11, b.length, ME, groups)).toEqual(decode(b.subarray(11)));
    }
  });

  it('never passes a request checkRequest refuses (random mutations)', () => {
    const rand = prng(11);
    const base = encodeMessage(RELIABLE_MESS, ME, ['logs', 'other'], Buffer.from('a line'));
    for (let i = 0; i < 20_000; i++) {
      const b = Buffer.from(base);
      for (let k = 0; k < 1 + Math.floor(rand() * 3); k++) b[Math.floor(rand() * HEADER_SIZE)] = Math.floor(rand() * 256);
      b.writeInt32LE(2, 36);
      b.writeInt32LE(6, 44);
      if (isPlainMulticast(b, 0, me)) expect(checkRequest(ME, decode(b))).toBeUndefined();
    }
  });
});
