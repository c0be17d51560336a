/**
 * Golden bytes for every encoder, in the manner of mqtt-packet's test suite:
 * each annotated vector from the captures is decoded (fields as annotated),
 * encoded from its annotated fields (bytes as captured), and round-tripped.
 * Client requests must be byte-identical to what libspread sent; daemon-side
 * encoders must reproduce what the real daemons sent, given the group ids the
 * capture shows.
 */
import { describe, expect, it } from 'vitest';
import {
  AGREED_MESS,
  CAUSAL_MESS,
  CAUSED_BY_JOIN,
  CAUSED_BY_LEAVE,
  ENDIAN_MARKER,
  FIFO_MESS,
  JOIN_MESS,
  KILL_MESS,
  LEAVE_MESS,
  MEMBERSHIP_MESS,
  REG_MEMB_MESS,
  RELIABLE_MESS,
  SAFE_MESS,
  SELF_DISCARD,
  TRANSITION_MESS,
  UNRELIABLE_MESS,
} from '../../src/spread/constants.js';
import { type Frame, decodeHint } from '../../src/spread/decoder.js';
import {
  encodeAccept,
  encodeAuthChoice,
  encodeAuthList,
  encodeConnectRequest,
  encodeHint,
  encodeJoin,
  encodeKill,
  encodeLeave,
  encodeMembership,
  encodeMessage,
  encodeRejectCode,
  encodeRejectMess,
  encodeSelfLeave,
  encodeTransitional,
  messageSize,
  nameField,
  writeMessage,
} from '../../src/spread/encode.js';
import { parseAccept, parseAuthChoice, parseAuthList, parseConnectRequest } from '../../src/spread/handshake.js';
import { frameKind, parseMembership, parseTransitional } from '../../src/spread/messages.js';
import { prepareSend } from '../../src/spread/client.js';
import { type Capture, type CaptureStep, captureDaemonMajor, captureFiles, connLibVersion, isFrameStep, loadCapture, stepBytes } from '../helpers.js';
import { decodeAll, expectFrameAsAnnotated } from './util.js';

interface Vec {
  label: string;
  bytes: Buffer;
  d: Record<string, any>;
  cap: Capture;
  conn: string;
  /** Index of the step in cap.steps. */
  index: number;
  /** Written by a real Spread library (not the raw test client). */
  library: boolean;
}

const caps = captureFiles().map(loadCapture);
const byKind = (dir: 'c2d' | 'd2c', pred: (s: CaptureStep) => boolean): Vec[] => {
  const out: Vec[] = [];
  for (const cap of caps) {
    const raw = new Set((cap.connections ?? []).filter((c) => c.client.startsWith('hand-written raw')).map((c) => c.conn));
    cap.steps.forEach((s, index) => {
      if (s.dir !== dir || !s.hex || !pred(s)) return;
      out.push({ label: `${cap.file} #${index} ${s.conn}: ${s.note}`, bytes: stepBytes(s), d: s.decoded ?? {}, cap, conn: s.conn, index, library: !raw.has(s.conn) });
    });
  }
  return out;
};
const kindIs = (k: string) => (s: CaptureStep) => s.decoded?.kind === k && !s.decoded.partial;

const connectVecs = byKind('c2d', kindIs('connect_request'));
const authChoiceVecs = byKind('c2d', kindIs('auth_choice'));
const c2dFrames = byKind('c2d', isFrameStep);
const authListVecs = byKind('d2c', kindIs('auth_list'));
const acceptVecs = byKind('d2c', kindIs('accept'));
const rejectVecs = byKind('d2c', kindIs('reject_connect'));
const d2cFrames = byKind('d2c', isFrameStep);

const only = (bytes: Buffer): Frame => {
  const fs = decodeAll(bytes);
  expect(fs).toHaveLength(1);
  return fs[0]!;
};

/** Re-encode any decoded frame with the generic encoder, keeping the hint bytes as they were. */
function reencode(f: Frame, bytes: Buffer): Buffer {
  const hint = f.bigEndianHeader ? bytes.readUInt32BE(40) : bytes.readUInt32LE(40);
  return encodeMessage(f.type, f.sender, f.groups, f.data, { hint, bigEndian: f.bigEndianHeader });
}

/** A hint the natural API (mess_type + byte order) cannot produce: stray bits, as malformed_requests' bad_hint sends. */
const hasStrayHintBits = (d: Record<string, any>): boolean => d.hint_endian === 'little' && (Number(d.hint_raw) & ~0x80ffff80) !== 0;

describe('connect request (c2d)', () => {
  it('has vectors for flags 0x01, 0x00, 0x11, 0x10, an empty name, and 2- and 3-byte versions', () => {
    const flags = new Set(connectVecs.map((v) => v.d.flags));
    expect([...flags].sort()).toEqual(['0x00', '0x01', '0x10', '0x11']);
    expect(connectVecs.some((v) => v.d.name_len === 0)).toBe(true);
    expect(connectVecs.some((v) => v.d.lib_version.length === 2)).toBe(true);
  });

  for (const v of connectVecs) {
    // raw_short announces 5 name bytes and sends 3: not a request anybody can encode.
    if (v.bytes.length !== v.d.lib_version.length + 2 + v.d.name_len) continue;
    it(`encode, decode, round trip: ${v.label}`, () => {
      const req = { version: v.d.lib_version, membership: v.d.group_membership, priority: v.d.priority_nibble, name: v.d.name };
      expect(encodeConnectRequest(req).toString('hex')).toBe(v.bytes.toString('hex'));
      const p = parseConnectRequest(v.bytes);
      const next = v.cap.steps.slice(v.index + 1).find((s) => s.conn === v.conn && s.dir === 'd2c');
      if (p?.kind === 'reject') {
        // The daemon refused it with the same code.
        expect(next?.decoded?.kind, v.label).toBe('reject_connect');
        expect(p.code).toBe(next!.decoded!.code);
        return;
      }
      expect(p, v.label).toMatchObject({
        kind: 'request',
        version: [...v.d.lib_version, 0].slice(0, 3),
        membership: v.d.group_membership,
        priority: v.d.priority_nibble,
        name: v.d.name,
        consumed: v.bytes.length,
      });
      if (p?.kind !== 'request') return;
      const again = encodeConnectRequest({ ...p, version: p.hasPatch ? p.version : p.version.slice(0, 2) });
      expect(again.toString('hex')).toBe(v.bytes.toString('hex'));
    });
  }

  it('reduces any priority to one bit, as every library does (priority 2 -> 0x11)', () => {
    expect(encodeConnectRequest({ membership: true, priority: 2, name: 'prio' }).toString('hex')).toBe('05000111047072696f');
    expect(encodeConnectRequest({ membership: false, priority: 7, name: 'x' })[3]).toBe(0x10);
    expect(encodeConnectRequest({ membership: false, name: 'x' })[3]).toBe(0x00);
  });
});

describe('auth choice (c2d)', () => {
  for (const v of authChoiceVecs) {
    it(`${v.label}`, () => {
      const slots: string[] = v.d.slots;
      const p = parseAuthChoice(v.bytes, ['NULL']);
      if (v.bytes.length !== 90) {
        expect(p).toBeNull(); // auth_short: wait for the rest
        return;
      }
      const named = slots.slice(0, Math.max(0, slots.indexOf('')) || slots.length);
      if (slots.every((s, i) => (s === '') === (i >= named.length))) {
        // Contiguous slots: encodable.
        expect(encodeAuthChoice(named).toString('hex')).toBe(v.bytes.toString('hex'));
      }
      const next = v.cap.steps.slice(v.index + 1).find((s) => s.conn === v.conn && s.dir === 'd2c' && s.hex);
      const valid = named.length > 0 && named.every((m) => m === 'NULL') && slots.slice(named.length).every((s) => s === '');
      if (!valid) {
        // Empty, PWORD, or NULL past an empty slot: refused by us and by the real daemon.
        expect(p).toEqual({ kind: 'reject', code: -9 });
        expect(next?.decoded).toMatchObject({ kind: 'reject_connect', code: -9 });
      } else {
        // (denyme is then refused by the test build's policy, not for its choice.)
        expect(p).toEqual({ kind: 'auth', methods: named, consumed: 90 });
        expect(encodeAuthChoice(named).toString('hex')).toBe(v.bytes.toString('hex'));
      }
    });
  }

  it('defaults to NULL in slot 0 and 86 zero bytes', () => {
    const b = encodeAuthChoice();
    expect(b.length).toBe(90);
    expect(b.toString('latin1', 0, 4)).toBe('NULL');
    expect(b.subarray(4).every((x) => x === 0)).toBe(true);
  });
});

describe('framed requests (c2d)', () => {
  it('covers every service type, SELF_DISCARD, negative mess_type, multi-group, private groups, empty body, no groups, big-endian', () => {
    const data = c2dFrames.filter((v) => v.library && Number(v.d.service) & 0x3f);
    const services = new Set(data.map((v) => Number(v.d.service) & 0x7f));
    for (const s of [UNRELIABLE_MESS, RELIABLE_MESS, FIFO_MESS, CAUSAL_MESS, AGREED_MESS, SAFE_MESS, AGREED_MESS | SELF_DISCARD]) expect(services.has(s), `service 0x${s.toString(16)}`).toBe(true);
    expect(data.some((v) => v.d.mess_type < 0)).toBe(true);
    expect(data.some((v) => v.d.num_groups > 1)).toBe(true);
    expect(data.some((v) => v.d.num_groups === 0)).toBe(true);
    expect(data.some((v) => v.d.data_len === 0)).toBe(true);
    expect(data.some((v) => v.d.groups.some((g: string) => g.startsWith('#')))).toBe(true);
    expect(data.some((v) => v.d.data_len === 143119)).toBe(true);
    expect(c2dFrames.some((v) => v.d.header_endian === 'big')).toBe(true);
  });

  for (const v of c2dFrames) {
    it(`${v.label}`, () => {
      const f = only(v.bytes);
      expectFrameAsAnnotated(f, v.d, v.label);
      const hex = v.bytes.toString('hex');
      const type = Number(v.d.service);
      const bigEndian = v.d.header_endian === 'big';
      const libVersion = connLibVersion(v.cap, v.conn)?.join('.');

      if (type === KILL_MESS) {
        // The group field past the name's NUL is whatever was on the library's stack
        // (3.17.3, 4.0.0 and 5.0.1 alike in these captures); ours is zero-filled.
        const ours = bigEndian ? encodeMessage(KILL_MESS, v.d.sender, [v.d.sender], undefined, { bigEndian }) : encodeKill(v.d.sender);
        const nul = 48 + v.d.sender.length;
        expect(ours.subarray(0, nul + 1).toString('hex')).toBe(v.bytes.subarray(0, nul + 1).toString('hex'));
        expect(ours.subarray(nul).every((b) => b === 0)).toBe(true);
        if (v.bytes.subarray(nul).every((b) => b === 0)) expect(ours.toString('hex')).toBe(hex);
        return;
      }
      if (type === JOIN_MESS && !bigEndian) expect(encodeJoin(v.d.sender, v.d.groups[0]).toString('hex')).toBe(hex);
      if (type === LEAVE_MESS && !bigEndian) expect(encodeLeave(v.d.sender, v.d.groups[0]).toString('hex')).toBe(hex);

      // Encode from the annotated fields with the natural API.
      const opts = hasStrayHintBits(v.d) ? { hint: Number(v.d.hint_raw) >>> 0 } : { messType: v.d.mess_type, bigEndian };
      const data = v.bytes.subarray(v.bytes.length - v.d.data_len);
      expect(encodeMessage(type, v.d.sender, v.d.groups, data, { ...opts, bigEndian }).toString('hex'), `${v.label} (libspread ${libVersion})`).toBe(hex);

      // The publisher's hot path (prepareSend + writeMessage into a shared buffer) for what a library would send.
      if (v.library && type & 0x3f && !bigEndian) {
        const p = prepareSend(v.d.groups, { service: type & ~SELF_DISCARD, messType: v.d.mess_type, selfDiscard: (type & SELF_DISCARD) !== 0 });
        const buf = Buffer.alloc(messageSize(p.numGroups, data.length) + 7, 0xee);
        const end = writeMessage(buf, 3, p.type, nameField(v.d.sender), p.groups, p.hint, data);
        expect(end).toBe(3 + v.bytes.length);
        expect(buf.subarray(3, end).toString('hex')).toBe(hex);
        expect(buf[2]).toBe(0xee);
        expect(buf[end]).toBe(0xee);
      }

      // Round trip.
      expect(reencode(f, v.bytes).toString('hex')).toBe(hex);
    });
  }
});

describe('hint', () => {
  it('encodes mess_type with the marker and decodes it in either order', () => {
    expect(encodeHint(7)).toBe(0x80000780);
    expect(encodeHint(-2)).toBe(0x80fffe80);
    expect(encodeHint(258, true)).toBe(0x00010200);
    for (const m of [0, 1, -1, 7, -2, 258, 666, 32767, -32768]) {
      expect(decodeHint(encodeHint(m)).messType).toBe(m);
      const be = Buffer.alloc(4);
      be.writeUInt32BE(encodeHint(m, true));
      expect(decodeHint(be.readUInt32LE(0))).toMatchObject({ messType: m, bigEndian: true });
    }
  });
});

describe('daemon side: handshake units (d2c)', () => {
  it('auth list: "NULL " with its trailing space', () => {
    expect(authListVecs.length).toBeGreaterThan(0);
    for (const v of authListVecs) {
      expect(encodeAuthList(v.d.methods.split(' ').filter(Boolean)).toString('hex'), v.label).toBe(v.bytes.toString('hex'));
      const p = parseAuthList(v.bytes);
      expect(p, v.label).toEqual({ kind: 'list', methods: ['NULL'], consumed: 6 });
      expect(encodeAuthList((p as { methods: string[] }).methods).toString('hex')).toBe(v.bytes.toString('hex'));
    }
    expect(encodeAuthList().toString('hex')).toBe('054e554c4c20');
  });

  for (const v of acceptVecs) {
    it(`accept: ${v.label}`, () => {
      const lib = connLibVersion(v.cap, v.conn)!;
      // The patch byte goes only to libraries 3.15 and newer.
      const withPatch = lib[0]! * 10000 + lib[1]! * 100 > 31400;
      expect(v.bytes.length).toBe((withPatch ? 5 : 4) + v.d.private_group.length);
      const version = [...v.d.daemon_version, 0];
      expect(encodeAccept(version, v.d.private_group, withPatch).toString('hex')).toBe(v.bytes.toString('hex'));
      const p = parseAccept(v.bytes, withPatch);
      expect(p).toEqual({ kind: 'accept', daemonVersion: version.slice(0, 3), privateGroup: v.d.private_group, consumed: v.bytes.length });
      const a = p as { daemonVersion: number[]; privateGroup: string };
      expect(encodeAccept(a.daemonVersion, a.privateGroup, withPatch).toString('hex')).toBe(v.bytes.toString('hex'));
    });
  }

  it('reject: one signed byte per code, read back in place of the auth list or the accept', () => {
    const codes = new Set<number>();
    for (const v of rejectVecs) {
      codes.add(v.d.code);
      expect(encodeRejectCode(v.d.code).toString('hex'), v.label).toBe(v.bytes.toString('hex'));
      expect(parseAuthList(v.bytes), v.label).toEqual({ kind: 'reject', code: v.d.code });
      expect(parseAccept(v.bytes), v.label).toEqual({ kind: 'reject', code: v.d.code });
    }
    expect([...codes].sort()).toEqual([-4, -5, -6, -7, -9]);
    expect(encodeRejectCode(-3).toString('hex')).toBe('fd');
  });
});

describe('daemon side: generated messages (d2c)', () => {
  const memb = d2cFrames.filter((v) => Number(v.d.service) & MEMBERSHIP_MESS && !(Number(v.d.service) & 0x3f) && !(Number(v.d.service) & 0x400000));
  it('has regular memberships in both layouts, self-leaves and REJECT_MESS', () => {
    expect(memb.some((v) => v.d.membership_body?.vs_sets)).toBe(true);
    expect(memb.some((v) => v.d.membership_body?.vs_members)).toBe(true);
    expect(memb.some((v) => Number(v.d.service) === CAUSED_BY_LEAVE)).toBe(true);
    expect(d2cFrames.some((v) => v.d.reject_old_type)).toBe(true);
  });

  for (const v of memb) {
    it(`${v.label}`, () => {
      const type = Number(v.d.service);
      const f = only(v.bytes);
      expectFrameAsAnnotated(f, v.d, v.label);
      const hex = v.bytes.toString('hex');
      if (type === CAUSED_BY_LEAVE) {
        expect(frameKind(f.type)).toBe('self-leave');
        expect(encodeSelfLeave(v.d.sender).toString('hex')).toBe(hex);
        return;
      }
      expect(type & REG_MEMB_MESS).toBeTruthy();
      const body = v.d.membership_body;
      const major = captureDaemonMajor(v.cap);
      const layout = major <= 3 ? 'old' : 'vs';
      expect(layout === 'old').toBe(body.vs_members !== undefined);
      const vsSets: string[][] = body.vs_sets ?? [body.vs_members];
      const spec = { cause: type & 0xf00, group: v.d.sender, members: v.d.groups, groupId: body.group_id, vsSets, myVsSet: 0, layout } as const;
      expect(body.local_vs_set_offset ?? 0).toBe(0);
      expect(encodeMembership(spec).toString('hex')).toBe(hex);

      // Round trip through parseMembership, with the layout picked from the daemon version.
      const info = parseMembership(f, major);
      expect(info).toMatchObject({ group: v.d.sender, groupId: body.group_id, members: v.d.groups, vsSets, myVsSet: 0, changedMember: vsSets[0]![0] });
      expect(encodeMembership({ cause: type & 0xf00, group: info.group, members: info.members, groupId: info.groupId, vsSets: info.vsSets, myVsSet: info.myVsSet, layout }).toString('hex')).toBe(hex);
    });
  }

  it('REJECT_MESS: built from the refused request, as the 5.0.1 test-policy daemon sent it', () => {
    const cap = loadCapture('reject_messages_testpolicy.json');
    let checked = 0;
    cap.steps.forEach((s, i) => {
      if (s.dir !== 'd2c' || !s.decoded?.reject_old_type) return;
      // The refused request is this connection's last framed c2d message before the reject.
      const req = cap.steps.slice(0, i).reverse().find((r) => r.conn === s.conn && r.dir === 'c2d' && isFrameStep(r))!;
      const reqBytes = stepBytes(req);
      const r = only(reqBytes);
      const oldType = r.type & JOIN_MESS ? CAUSED_BY_JOIN : r.type & LEAVE_MESS ? CAUSED_BY_LEAVE : r.type;
      const ours = encodeRejectMess({ oldType, sender: r.sender, groups: r.groups, hint: reqBytes.readUInt32LE(40), data: r.data, extraBits: r.type & SELF_DISCARD });
      expect(ours.toString('hex'), s.note).toBe(s.hex);
      const f = only(ours);
      expectFrameAsAnnotated(f, s.decoded, s.note!);
      expect(frameKind(f.type)).toBe('reject');
      checked++;
    });
    expect(checked).toBe(3);
  });

  it('REJECT_MESS keeps at most 100 groups, the last overwritten by the requester', () => {
    const groups = Array.from({ length: 100 }, (_, i) => `g${i}`);
    const f = only(encodeRejectMess({ oldType: AGREED_MESS, sender: '#a#d', groups, hint: encodeHint(3), data: Buffer.from('x'), extraBits: SELF_DISCARD }));
    expect(f.groups).toHaveLength(100);
    expect(f.groups[98]).toBe('g98');
    expect(f.groups[99]).toBe('#a#d');
    expect(f.type).toBe(0x400000 | SELF_DISCARD);
    expect(f.oldType).toBe(AGREED_MESS);
    expect(f.messType).toBe(3);
  });

  it('transitional: 12-byte group id, no groups (PROTOCOL.md 7.3; not capturable with one daemon)', () => {
    const b = encodeTransitional('grp', [482711334, 1795390835, 7]);
    expect(b.toString('hex')).toBe(
      '80200080' + Buffer.from('grp').toString('hex').padEnd(64, '0') + '00000000' + '80000080' + '0c000000' + '2697c51c737d036b07000000',
    );
    const f = only(b);
    expect(frameKind(f.type)).toBe('transitional');
    expect(f.type).toBe(TRANSITION_MESS);
    expect(parseTransitional(f)).toEqual([482711334, 1795390835, 7]);
  });

  it('membership with several vs-sets points the offset at the receiver own set', () => {
    const spec = { cause: 0x800, group: 'g', members: ['#a#d1', '#b#d2', '#c#d2'], groupId: [1, 2, 3] as const, vsSets: [['#a#d1'], ['#b#d2', '#c#d2']], myVsSet: 1 };
    const b = encodeMembership(spec);
    const f = only(b);
    expect(f.data.readUInt32LE(12)).toBe(2);
    expect(f.data.readUInt32LE(16)).toBe(4 + 32);
    expect(parseMembership(f, 5)).toMatchObject({ cause: 'network', vsSets: spec.vsSets, myVsSet: 1, changedMember: undefined, groupId: [1, 2, 3] });
  });
});

describe('data messages forwarded by the daemon (d2c) re-encode byte for byte', () => {
  const data = d2cFrames.filter((v) => Number(v.d.service) & 0x3f && !v.d.reject_old_type);
  it('includes a big-endian sender seen through a little-endian daemon', () => {
    expect(data.some((v) => v.d.hint_endian === 'big' && v.d.header_endian === 'little')).toBe(true);
  });
  for (const v of data) {
    it(`${v.label}`, () => {
      const f = only(v.bytes);
      expectFrameAsAnnotated(f, v.d, v.label);
      expect(frameKind(f.type)).toBe('data');
      expect(reencode(f, v.bytes).toString('hex')).toBe(v.bytes.toString('hex'));
    });
  }
});
