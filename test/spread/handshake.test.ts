/**
 * Handshake parsers against the captured handshakes of real daemons and
 * clients: every version branch (3.14: two version bytes, no auth; 3.15.2: a
 * patch byte, no auth; 3.16+: auth exchange), every reject code, and
 * incremental parsing (null until a unit is complete, bytes past it left
 * alone).
 */
import { describe, expect, it } from 'vitest';
import { REJECT_AUTH, REJECT_ILLEGAL_NAME, REJECT_NO_NAME, REJECT_NOT_UNIQUE, REJECT_QUOTA, REJECT_VERSION } from '../../src/spread/constants.js';
import { encodeAccept, encodeAuthChoice, encodeAuthList, encodeConnectRequest, encodeJoin } from '../../src/spread/encode.js';
import { parseAccept, parseAuthChoice, parseAuthList, parseConnectRequest } from '../../src/spread/handshake.js';
import { ErrorCodes } from '../../src/errors.js';
import { type Capture, type CaptureStep, loadCapture, stepBytes } from '../helpers.js';

const SCENARIOS = ['reject_version_and_old_libraries', 'reject_illegal_name', 'auth_and_handshake_timing', 'connect_flags_priority_and_empty_name', 'reject_not_unique', 'reject_messages_testpolicy'];
const CAPTURES: Capture[] = SCENARIOS.flatMap((s) =>
  ['', '_400', '_3173'].flatMap((suffix) => {
    try {
      return [loadCapture(`${s}${suffix}.json`)];
    } catch {
      return [];
    }
  }),
);

/** Handshake steps of one connection: everything before its first framed message. */
function handshake(cap: Capture, conn: string): CaptureStep[] {
  const steps = cap.steps.filter((s) => s.conn === conn);
  const end = steps.findIndex((s) => s.decoded?.kind === 'message');
  return (end < 0 ? steps : steps.slice(0, end)).filter((s) => s.hex);
}

const conns = (cap: Capture): string[] => [...new Set(cap.steps.map((s) => s.conn))];

/** Every proper prefix parses to null, or to the same reject the whole unit gives. */
function expectIncremental<T>(bytes: Buffer, parse: (b: Buffer) => T | null, label: string): void {
  const full = parse(bytes);
  for (let k = 0; k < bytes.length; k++) {
    const p = parse(bytes.subarray(0, k)) as { kind?: string } | null;
    if (p === null) continue;
    expect(p.kind, `${label}: prefix of ${k} bytes`).toBe('reject');
    expect(p, `${label}: prefix of ${k} bytes`).toEqual(full);
  }
}

describe('daemon side: connect requests and auth choices from the captures', () => {
  for (const cap of CAPTURES) {
    for (const conn of conns(cap)) {
      const steps = handshake(cap, conn);
      const req = steps.find((s) => s.decoded?.kind === 'connect_request');
      if (!req) continue;
      it(`${cap.file} ${conn}`, () => {
        const d = req.decoded!;
        const parts = steps.filter((s) => s.dir === 'c2d' && s.decoded?.kind === 'connect_request');
        // A unit written in pieces ([part i of n]) is parsed whole: we buffer, unlike the real daemons (PROTOCOL.md 3.6).
        const bytes = Buffer.concat(parts.map(stepBytes));
        const answer = steps.find((s) => s.dir === 'd2c');
        const p = parseConnectRequest(bytes);
        expectIncremental(bytes, parseConnectRequest, `${cap.file} ${conn}`);
        if (bytes.length < d.lib_version.length + 2 + d.name_len) {
          // raw_short: 3 name bytes of 5 announced. Still incomplete for us; the real daemon's single read refused it.
          expect(p).toBeNull();
          expect(answer?.decoded).toMatchObject({ kind: 'reject_connect', code: REJECT_ILLEGAL_NAME });
          return;
        }
        if (answer?.decoded?.kind === 'reject_connect' && [REJECT_VERSION, REJECT_ILLEGAL_NAME].includes(answer.decoded.code)) {
          expect(p).toEqual({ kind: 'reject', code: answer.decoded.code });
          return;
        }
        expect(p).toEqual({
          kind: 'request',
          version: [...d.lib_version, 0].slice(0, 3),
          hasPatch: d.lib_version.length === 3,
          needsAuth: d.lib_version[0] * 10000 + d.lib_version[1] * 100 + (d.lib_version[2] ?? 0) >= 31600,
          membership: d.group_membership,
          priority: d.priority_nibble,
          name: d.name,
          consumed: bytes.length,
        });
        // With framed messages behind it in the same read, only the request is consumed.
        expect(parseConnectRequest(Buffer.concat([bytes, encodeJoin('#x#y', 'g')]))).toMatchObject({ consumed: bytes.length });

        const choice = steps.find((s) => s.decoded?.kind === 'auth_choice');
        // The auth list is sent exactly to libraries 3.16 and newer (if the daemon answers at all).
        const sentList = steps.some((s) => s.decoded?.kind === 'auth_list');
        if (sentList || steps.some((s) => s.decoded?.kind === 'accept')) expect(sentList, 'auth list sent').toBe((p as { needsAuth: boolean }).needsAuth);
        if (!choice) return;
        const cb = stepBytes(choice);
        expectIncremental(cb, (b) => parseAuthChoice(b), `${cap.file} ${conn} auth choice`);
        const after = steps[steps.indexOf(choice) + 1];
        const c = parseAuthChoice(cb);
        if (cb.length < 90) expect(c).toBeNull();
        else if (c?.kind === 'reject') expect(after?.decoded).toMatchObject({ kind: 'reject_connect', code: REJECT_AUTH });
        else expect(c).toEqual({ kind: 'auth', methods: ['NULL'], consumed: 90 });
      });
    }
  }

  it('covers the version branches: <3.1 refused, 3.14 two bytes, 3.15.2 patch without auth, 3.16 auth', () => {
    const cap = loadCapture('reject_version_and_old_libraries.json');
    const reqOf = (conn: string) => parseConnectRequest(stepBytes(handshake(cap, conn)[0]!));
    expect(reqOf('v2_9')).toEqual({ kind: 'reject', code: REJECT_VERSION });
    expect(reqOf('v3_0')).toEqual({ kind: 'reject', code: REJECT_VERSION });
    expect(reqOf('v3_14')).toMatchObject({ version: [3, 14, 0], hasPatch: false, needsAuth: false, consumed: 7 });
    expect(reqOf('v3_15_2')).toMatchObject({ version: [3, 15, 2], hasPatch: true, needsAuth: false, consumed: 8 });
    expect(reqOf('v3_16_0')).toMatchObject({ version: [3, 16, 0], hasPatch: true, needsAuth: true, consumed: 8 });
    // REJECT_VERSION is decided from the version bytes alone.
    expect(parseConnectRequest(Buffer.from('0209', 'hex'))).toEqual({ kind: 'reject', code: REJECT_VERSION });
    expect(parseConnectRequest(Buffer.from('0300', 'hex'))).toEqual({ kind: 'reject', code: REJECT_VERSION });
    expect(parseConnectRequest(Buffer.from('0301', 'hex'))).toBeNull();
    expect(parseConnectRequest(Buffer.from('030f', 'hex'))).toBeNull(); // 3.15: the patch byte is still to come
  });

  it('refuses name lengths outside 0..10 before the name arrives, and illegal characters', () => {
    expect(parseConnectRequest(Buffer.from('050001010b', 'hex'))).toEqual({ kind: 'reject', code: REJECT_ILLEGAL_NAME });
    expect(parseConnectRequest(Buffer.from('05000101ff', 'hex'))).toEqual({ kind: 'reject', code: REJECT_ILLEGAL_NAME });
    for (const bad of ['bad#name', 'a b', 'tab\there', 'caf\u00e9', 'x\u007f']) {
      expect(parseConnectRequest(encodeConnectRequest({ membership: true, name: bad })), bad).toEqual({ kind: 'reject', code: REJECT_ILLEGAL_NAME });
    }
    expect(parseConnectRequest(encodeConnectRequest({ membership: false, name: '$~0123456' }))).toMatchObject({ kind: 'request', name: '$~0123456', membership: false });
  });

  it('auth choices: NULL in slot 0 only; empty, unknown, or NULL after an empty slot are REJECT_AUTH', () => {
    expect(parseAuthChoice(encodeAuthChoice(['NULL']))).toMatchObject({ kind: 'auth', methods: ['NULL'] });
    expect(parseAuthChoice(encodeAuthChoice(['NULL', 'IP']), ['NULL', 'IP'])).toMatchObject({ kind: 'auth', methods: ['NULL', 'IP'] });
    expect(parseAuthChoice(encodeAuthChoice(['NULL', 'IP']))).toEqual({ kind: 'reject', code: REJECT_AUTH });
    expect(parseAuthChoice(Buffer.alloc(90))).toEqual({ kind: 'reject', code: REJECT_AUTH });
    const slot2 = Buffer.alloc(90);
    slot2.write('NULL', 30);
    expect(parseAuthChoice(slot2)).toEqual({ kind: 'reject', code: REJECT_AUTH });
    // A 30-char name fills its slot with no NUL: read to the slot's end.
    const full = Buffer.alloc(90, 0);
    full.fill('A', 0, 30);
    expect(parseAuthChoice(full, ['A'.repeat(30)])).toMatchObject({ kind: 'auth', methods: ['A'.repeat(30)] });
    expect(parseAuthChoice(Buffer.concat([encodeAuthChoice(), Buffer.from('rest')]))).toMatchObject({ consumed: 90 });
  });
});

describe('client side: what the daemons answered', () => {
  for (const cap of CAPTURES) {
    for (const conn of conns(cap)) {
      const steps = handshake(cap, conn);
      const req = steps.find((s) => s.decoded?.kind === 'connect_request');
      const replies = steps.filter((s) => s.dir === 'd2c');
      if (!req || replies.length === 0) continue;
      it(`${cap.file} ${conn}`, () => {
        const v: number[] = req.decoded!.lib_version;
        const withPatch = v.length === 3;
        const needsAuth = v[0]! * 10000 + v[1]! * 100 + (v[2] ?? 0) >= 31600;
        // The daemon's replies as one stream, followed by the connection's first framed message (if any).
        const frames = cap.steps.filter((s) => s.conn === conn && s.dir === 'd2c' && s.decoded?.kind === 'message').slice(0, 1);
        const stream = Buffer.concat([...replies, ...frames].map(stepBytes));
        let rest = stream;
        if (needsAuth) {
          expectIncremental(stepBytes(replies[0]!), parseAuthList, 'auth list');
          const l = parseAuthList(rest)!;
          if (l.kind === 'reject') {
            expect(replies[0]!.decoded).toMatchObject({ kind: 'reject_connect', code: l.code });
            expect(rest.length).toBe(1);
            return;
          }
          expect(l).toEqual({ kind: 'list', methods: ['NULL'], consumed: 6 });
          rest = rest.subarray(l.consumed);
        }
        const last = replies.at(-1)!.decoded!;
        if (rest.length === 0) {
          // Closed without a word (split connect, silent client): nothing to parse.
          expect(parseAccept(rest, withPatch)).toBeNull();
          return;
        }
        expectIncremental(rest.subarray(0, replies.at(-1)!.hex!.length / 2), (b) => parseAccept(b, withPatch), 'accept');
        const a = parseAccept(rest, withPatch)!;
        if (last.kind === 'reject_connect') {
          expect(a).toEqual({ kind: 'reject', code: last.code });
          return;
        }
        expect(a).toEqual({
          kind: 'accept',
          daemonVersion: [...last.daemon_version, 0].slice(0, 3),
          privateGroup: last.private_group,
          consumed: replies.at(-1)!.hex!.length / 2,
        });
        // Framed messages after the accept are left for the decoder.
        expect(rest.subarray(a.kind === 'accept' ? a.consumed : 0).toString('hex')).toBe(frames.map((f) => f.hex).join(''));
      });
    }
  }

  it('every reject code is read in place of the auth list and of the accept', () => {
    for (const code of [REJECT_QUOTA, REJECT_NO_NAME, REJECT_ILLEGAL_NAME, REJECT_NOT_UNIQUE, REJECT_VERSION, REJECT_AUTH, -8, -100]) {
      const b = Buffer.from([code & 0xff]);
      expect(parseAuthList(b)).toEqual({ kind: 'reject', code });
      expect(parseAccept(b)).toEqual({ kind: 'reject', code });
      expect(parseAccept(b, false)).toEqual({ kind: 'reject', code });
    }
  });

  it('an empty auth list, and a list of several methods', () => {
    expect(parseAuthList(Buffer.from([0]))).toEqual({ kind: 'list', methods: [], consumed: 1 });
    expect(parseAuthList(encodeAuthList(['NULL', 'IP']))).toEqual({ kind: 'list', methods: ['NULL', 'IP'], consumed: 9 });
  });

  it('refuses what no daemon sends: a list longer than 90, an accept code other than 1, a private group of 32+ bytes', () => {
    expect(() => parseAuthList(Buffer.from([91]))).toThrow(expect.objectContaining({ code: ErrorCodes.PROTOCOL }));
    expect(() => parseAccept(Buffer.from([2, 5, 0, 1, 3]))).toThrow(expect.objectContaining({ code: ErrorCodes.PROTOCOL }));
    expect(() => parseAccept(Buffer.from([0]))).toThrow(expect.objectContaining({ code: ErrorCodes.PROTOCOL }));
    expect(() => parseAccept(Buffer.from([1, 5, 0, 1, 32]))).toThrow(expect.objectContaining({ code: ErrorCodes.PROTOCOL }));
    expect(parseAccept(encodeAccept([5, 0, 1], '#' + 'n'.repeat(10) + '#' + 'd'.repeat(19), true))).toMatchObject({ kind: 'accept', consumed: 36 });
  });

  it('the accept of a 3.14 library has no patch byte', () => {
    const b = Buffer.from('0105000e236f6c64236c6f63616c686f7374', 'hex');
    expect(parseAccept(b, false)).toEqual({ kind: 'accept', daemonVersion: [5, 0, 0], privateGroup: '#old#localhost', consumed: 18 });
    for (let k = 0; k < b.length; k++) expect(parseAccept(b.subarray(0, k), false)).toBeNull();
  });
});
