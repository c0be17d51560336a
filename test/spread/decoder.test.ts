/**
 * The incremental decoder against every daemon-to-client stream in the
 * captures: each connection's frames decode to what the capture's annotation
 * and the real client's printout (sptest / spuser) say, whether the stream is
 * fed whole, byte by byte (node-redis decoder.spec style) or in random pieces.
 * Then random and mutated input: only SP_ERR_PROTOCOL, bounded buffering,
 * and the same result for any chunking.
 */
import { describe, expect, it } from 'vitest';
import { AGREED_MESS, ENDIAN_MARKER, REJECT_MESS, SELF_DISCARD } from '../../src/spread/constants.js';
import { CLIENT_LIMITS, DAEMON_LIMITS, type DataSink, type DecoderLimits, type Frame, MessageDecoder } from '../../src/spread/decoder.js';
import { encodeMessage, encodeRejectMess } from '../../src/spread/encode.js';
import { type MembershipInfo, frameKind, parseMembership, parseTransitional } from '../../src/spread/messages.js';
import { ErrorCodes, SpreadPipeError } from '../../src/errors.js';
import {
  type Capture,
  type CaptureStep,
  captureDaemonMajor,
  captureFiles,
  connLibVersion,
  isFrameStep,
  loadCapture,
  prng,
  randomChunks,
  stepBytes,
} from '../helpers.js';
import { decodeAll, expectFrameAsAnnotated } from './util.js';

/** What a test needs to know about a decoded frame; data and raw copied out of the (reused) chunks. */
interface Seen {
  type: number;
  sender: string;
  groups: string[];
  hint: number;
  messType: number;
  endianMismatch: boolean;
  bigEndianHeader: boolean;
  oldType: number | undefined;
  data: string;
  raw: string;
}

const seen = (f: Frame): Seen => ({
  type: f.type,
  sender: f.sender,
  groups: f.groups,
  hint: f.hint,
  messType: f.messType,
  endianMismatch: f.endianMismatch,
  bigEndianHeader: f.bigEndianHeader,
  oldType: f.oldType,
  data: f.data.toString('hex'),
  raw: f.raw.toString('hex'),
});

interface Outcome {
  frames: Seen[];
  error: string | undefined;
  /** Largest decoder.buffered seen after any write. */
  maxBuffered: number;
}

/** Feed `chunks` in order; record frames, the first error (which must be SP_ERR_PROTOCOL) and buffering. */
function feed(chunks: Buffer[], limits: DecoderLimits = CLIENT_LIMITS, onFrame?: (f: Frame) => void): Outcome {
  const frames: Seen[] = [];
  const d = new MessageDecoder((f) => {
    frames.push(seen(f));
    onFrame?.(f);
  }, limits);
  let maxBuffered = 0;
  for (const c of chunks) {
    try {
      d.write(c);
    } catch (e) {
      expect(e).toBeInstanceOf(SpreadPipeError);
      expect((e as SpreadPipeError).code).toBe(ErrorCodes.PROTOCOL);
      // The stream is out of sync for good: the decoder keeps refusing.
      expect(() => d.write(Buffer.from([0]))).toThrow(e as Error);
      return { frames, error: (e as Error).message, maxBuffered };
    }
    maxBuffered = Math.max(maxBuffered, d.buffered);
  }
  return { frames, error: undefined, maxBuffered };
}

/** An outcome without the buffering figure, which depends on the chunking. */
const result = (o: Outcome): Omit<Outcome, 'maxBuffered'> => ({ frames: o.frames, error: o.error });

const bytewise = (b: Buffer): Buffer[] => Array.from({ length: b.length }, (_, i) => b.subarray(i, i + 1));

/** One connection's framed messages in one direction, in capture order. */
interface Stream {
  cap: Capture;
  conn: string;
  steps: CaptureStep[];
  bytes: Buffer;
}

function streams(cap: Capture, dir: 'c2d' | 'd2c'): Stream[] {
  const by = new Map<string, CaptureStep[]>();
  for (const s of cap.steps) if (s.dir === dir && isFrameStep(s)) by.set(s.conn, [...(by.get(s.conn) ?? []), s]);
  return [...by].map(([conn, steps]) => ({ cap, conn, steps, bytes: Buffer.concat(steps.map(stepBytes)) }));
}

const FILES = captureFiles();
const d2cStreams = FILES.flatMap((f) => streams(loadCapture(f), 'd2c'));

// ---- What the real client programs printed --------------------------------

/** One received message as sptest (the capture's C driver over libspread) printed it. */
interface SptestRecv {
  ret: number;
  service: number;
  sender: string;
  numGroups: number;
  messType: number;
  endianMismatch: boolean;
  groups: string[];
  data?: string;
  dataSummary?: { len: number; first: number; last: number };
  gid?: number[];
  changed?: { member: string; numVsSets: number; myMembers: number; myIndex: number };
  vsSets: string[][];
  bodyHex?: string;
}

function parseSptest(lines: string[]): { privateGroup: string; recvs: SptestRecv[] } | undefined {
  const connect = lines.map((l) => /^CONNECT ret=1 private_group=(\S+)$/.exec(l)).find(Boolean);
  if (!connect) return undefined;
  const recvs: SptestRecv[] = [];
  let cur: SptestRecv | undefined;
  for (const l of lines) {
    let m: RegExpExecArray | null;
    if ((m = /^RECV ret=(-?\d+) service=0x([0-9a-f]+) sender=(\S*) num_groups=(\d+) mess_type=(-?\d+) endian_mismatch=(\d)$/.exec(l))) {
      cur = { ret: +m[1]!, service: parseInt(m[2]!, 16), sender: m[3]!, numGroups: +m[4]!, messType: +m[5]!, endianMismatch: m[6] === '1', groups: [], vsSets: [] };
      recvs.push(cur);
    } else if (!cur) continue;
    else if ((m = /^group\[(\d+)\]=(.*)$/.exec(l))) cur.groups[+m[1]!] = m[2]!;
    else if ((m = /^data="(.*)"$/.exec(l))) cur.data = m[1]!;
    else if ((m = /^data=<(\d+) bytes> first=([0-9a-f]{2}) last=([0-9a-f]{2})$/.exec(l))) cur.dataSummary = { len: +m[1]!, first: parseInt(m[2]!, 16), last: parseInt(m[3]!, 16) };
    else if ((m = /^gid=(-?\d+) (-?\d+) (-?\d+)$/.exec(l))) cur.gid = [+m[1]!, +m[2]!, +m[3]!];
    else if ((m = /^changed_member=(\S*) num_vs_sets=(\d+) my_vs_set\.num_members=(\d+) my_vs_index=(\d+)$/.exec(l)))
      cur.changed = { member: m[1]!, numVsSets: +m[2]!, myMembers: +m[3]!, myIndex: +m[4]! };
    else if ((m = /^vs_set\[(\d+)\] \(\d+\): (.*)$/.exec(l))) cur.vsSets[+m[1]!] = m[2]!.split(' ').filter(Boolean);
    else if ((m = /^body_hex=([0-9a-f]*)$/.exec(l))) cur.bodyHex = m[1]!;
    else cur = undefined; // MCAST, JOIN ... lines end a RECV block
  }
  return { privateGroup: connect[1]!, recvs };
}

type SpuserEvent =
  | { kind: 'data'; service: string; sender: string; messType: number; endian: boolean; numGroups: number; len?: number; text?: string }
  | { kind: 'membership'; group: string; n: number; me: number; members: string[]; gid?: number[]; cause?: string; changed?: string }
  | { kind: 'self-leave'; group: string };

function parseSpuser(lines: string[]): { privateGroup: string; events: SpuserEvent[] } | undefined {
  const who = lines.map((l) => /^User: connected to \S+ with private group (\S+)$/.exec(l)).find(Boolean);
  if (!who || !lines.some((l) => l.startsWith('Spread library version is'))) return undefined;
  const events: SpuserEvent[] = [];
  let memb: Extract<SpuserEvent, { kind: 'membership' }> | undefined;
  let data: Extract<SpuserEvent, { kind: 'data' }> | undefined;
  for (const l of lines) {
    let m: RegExpExecArray | null;
    if ((m = /^received (\w+) message from (\S+), of type (-?\d+), \(endian (\d)\) to (\d+) groups$/.exec(l))) {
      data = { kind: 'data', service: m[1]!, sender: m[2]!, messType: +m[3]!, endian: m[4] === '1', numGroups: +m[5]! };
      events.push(data);
      memb = undefined;
    } else if (data && (m = /^\((\d+) bytes\): (.*)$/.exec(l))) {
      data.len = +m[1]!;
      data.text = m[2]!;
      data = undefined;
    } else if ((m = /^Received REGULAR membership for group (\S+) with (\d+) members, where I am member (\d+):$/.exec(l))) {
      memb = { kind: 'membership', group: m[1]!, n: +m[2]!, me: +m[3]!, members: [] };
      events.push(memb);
    } else if (memb && (m = /^grp id is (-?\d+) (-?\d+) (-?\d+)$/.exec(l))) memb.gid = [+m[1]!, +m[2]!, +m[3]!];
    else if (memb && (m = /^Due to the (\w+) of ?(.*)$/.exec(l))) {
      memb.cause = m[1]!;
      memb.changed = m[2]!;
      memb = undefined;
    } else if (memb && memb.members.length < memb.n) memb.members.push(l);
    else if ((m = /^received membership message that left group (\S+)$/.exec(l))) events.push({ kind: 'self-leave', group: m[1]! });
  }
  return { privateGroup: who[1]!, events };
}

const SERVICE_NAMES: Record<number, string> = { 1: 'UNRELIABLE', 2: 'RELIABLE', 4: 'FIFO', 8: 'CAUSAL', 16: 'AGREED', 32: 'SAFE' };

/** Check decoded frames against what the connection's real client program printed; returns how many were compared. */
function checkClientOutput(s: Stream, frames: Frame[]): number {
  const lines = s.cap.client_output?.[s.conn];
  if (!lines) return 0;
  const daemonMajor = captureDaemonMajor(s.cap);
  const libMajor = connLibVersion(s.cap, s.conn)?.[0];
  // A library reads membership bodies in its own version's layout (PROTOCOL.md 7.2); compare details only where that is right.
  const sameLayout = (libMajor! <= 3) === (daemonMajor <= 3);
  const sp = parseSptest(lines);
  if (sp) {
    expect(sp.recvs.length, `${s.cap.file} ${s.conn}: RECV lines`).toBe(frames.length);
    sp.recvs.forEach((r, i) => {
      const f = frames[i]!;
      const label = `${s.cap.file} ${s.conn} RECV #${i}`;
      const kind = frameKind(f.type);
      const service = kind === 'reject' ? (f.oldType! | REJECT_MESS) >>> 0 : f.type;
      const messType = kind === 'membership' ? f.groups.indexOf(sp.privateGroup) : kind === 'self-leave' || kind === 'transitional' ? -1 : f.messType;
      expect({ ret: f.data.length, service, sender: f.sender, numGroups: f.groups.length, messType, endianMismatch: f.endianMismatch, groups: f.groups }, label).toEqual({
        ret: r.ret,
        service: r.service,
        sender: r.sender,
        numGroups: r.numGroups,
        messType: r.messType,
        endianMismatch: r.endianMismatch,
        groups: r.groups,
      });
      if (r.bodyHex !== undefined) expect(f.data.toString('hex'), label).toBe(r.bodyHex);
      if (r.data !== undefined) expect(f.data.toString('latin1'), label).toBe(r.data);
      if (r.dataSummary) expect([f.data.length, f.data[0], f.data.at(-1)], label).toEqual([r.dataSummary.len, r.dataSummary.first, r.dataSummary.last]);
      if (kind === 'membership' && sameLayout) {
        const info = parseMembership(f, daemonMajor);
        if (r.gid) expect(info.groupId, label).toEqual(r.gid);
        if (r.changed) {
          expect(info.changedMember, label).toBe(r.changed.member);
          expect(info.vsSets.length, label).toBe(r.changed.numVsSets);
          expect(info.myVsSet, label).toBe(r.changed.myIndex);
          expect(info.vsSets[info.myVsSet]!.length, label).toBe(r.changed.myMembers);
          expect(info.vsSets, label).toEqual(r.vsSets);
        }
      }
    });
    return frames.length;
  }
  const su = parseSpuser(lines);
  if (!su) return 0;
  const shown = frames.filter((f) => ['data', 'membership', 'self-leave'].includes(frameKind(f.type)));
  // spuser 5.0.1 died on a 3.17.3 daemon's first membership notice (no "Bye."): compare what it printed before.
  if (lines.includes('Bye.')) expect(su.events.length, `${s.cap.file} ${s.conn}: spuser events`).toBe(shown.length);
  else expect(su.events.length).toBeLessThan(shown.length);
  su.events.forEach((e, i) => {
    const f = shown[i]!;
    const label = `${s.cap.file} ${s.conn} spuser event #${i}`;
    expect(frameKind(f.type), label).toBe(e.kind);
    if (e.kind === 'data') {
      expect({ service: SERVICE_NAMES[f.type & 0x3f], sender: f.sender, messType: f.messType, endian: f.endianMismatch, numGroups: f.groups.length, len: f.data.length }, label).toEqual({
        service: e.service,
        sender: e.sender,
        messType: e.messType,
        endian: e.endian,
        numGroups: e.numGroups,
        len: e.len,
      });
      expect(f.data.toString('latin1').replace(/\n$/, ''), label).toBe(e.text);
    } else if (e.kind === 'membership') {
      const info: MembershipInfo = parseMembership(f, daemonMajor);
      expect({ group: info.group, members: info.members, me: info.members.indexOf(su.privateGroup), gid: info.groupId, cause: info.cause?.toUpperCase() }, label).toEqual({
        group: e.group,
        members: e.members,
        me: e.me,
        gid: e.gid,
        cause: e.cause,
      });
      if (sameLayout) expect(info.changedMember, label).toBe(e.changed);
    } else {
      expect(f.sender, label).toBe(e.group);
    }
  });
  return su.events.length;
}

// ---- The captured streams --------------------------------------------------

describe('every captured daemon-to-client stream decodes as annotated and as the real client printed', () => {
  let printedChecked = 0;
  for (const s of d2cStreams) {
    it(`${s.cap.file} ${s.conn} (${s.steps.length} frames, ${s.bytes.length} bytes)`, () => {
      const whole = feed([s.bytes]);
      expect(whole.error).toBeUndefined();
      expect(whole.frames).toHaveLength(s.steps.length);
      expect(whole.maxBuffered).toBe(0);
      // Against the annotations, frame by frame.
      const frames = decodeAll(s.bytes);
      const major = captureDaemonMajor(s.cap);
      s.steps.forEach((step, i) => {
        const f = frames[i]!;
        const label = `${s.cap.file} ${s.conn}: ${step.note}`;
        expectFrameAsAnnotated(f, step.decoded!, label);
        expect(f.raw.toString('hex'), label).toBe(step.hex);
        const body = step.decoded!.membership_body;
        if (body) {
          expect(frameKind(f.type), label).toBe('membership');
          const info = parseMembership(f, major);
          expect(info.groupId, label).toEqual(body.group_id);
          expect(info.vsSets, label).toEqual(body.vs_sets ?? [body.vs_members]);
          expect(info.members, label).toEqual(step.decoded!.groups);
          expect(info.changedMember, label).toBe((body.vs_sets ?? [body.vs_members])[0][0]);
        }
      });
      printedChecked += checkClientOutput(s, frames);
      // Byte by byte, and in random pieces: the same frames.
      expect(result(feed(bytewise(s.bytes)))).toEqual(result(whole));
      const seed = s.bytes.length * 31 + s.steps.length;
      const rand = prng(seed);
      for (let k = 0; k < 5; k++) {
        const got = feed(randomChunks(s.bytes, rand, [3, 47, 49, 200, 70000][k]!));
        expect(got.frames, `seed ${seed} round ${k}`).toEqual(whole.frames);
        expect(got.error).toBeUndefined();
      }
    });
  }
  it('compared the real clients printout for most streams', () => {
    // sptest and spuser connections: every frame they received was checked above.
    expect(printedChecked).toBeGreaterThan(150);
  });
});

describe('client-to-daemon streams (the daemon-side view), including big-endian headers', () => {
  for (const file of FILES) {
    for (const s of streams(loadCapture(file), 'c2d')) {
      const tooMany = s.steps.findIndex((st) => st.decoded!.num_groups > DAEMON_LIMITS.maxGroups);
      it(`${file} ${s.conn}${tooMany >= 0 ? ' (101 groups: refused)' : ''}`, () => {
        const whole = feed([s.bytes], DAEMON_LIMITS);
        if (tooMany >= 0) {
          expect(whole.error).toMatch(/num_groups 101/);
          expect(whole.frames).toHaveLength(tooMany);
        } else {
          expect(whole.error).toBeUndefined();
          expect(whole.frames).toHaveLength(s.steps.length);
        }
        whole.frames.forEach((f, i) => expect(f.raw, s.steps[i]!.note).toBe(s.steps[i]!.hex));
        decodeAll(Buffer.concat(s.steps.slice(0, tooMany >= 0 ? tooMany : undefined).map(stepBytes)), DAEMON_LIMITS).forEach((f, i) =>
          expectFrameAsAnnotated(f, s.steps[i]!.decoded!, `${file} ${s.conn}: ${s.steps[i]!.note}`),
        );
        expect(result(feed(bytewise(s.bytes), DAEMON_LIMITS))).toEqual(result(whole));
      });
    }
  }
});

describe('#14: a dataSink takes data frames as byte ranges, every other frame stays a Frame', () => {
  /** Each frame as [kind, sender, messType, body hex] (sink) or [kind, ...] of the Frame; bodies copied during the call. */
  const decodeWith = (chunks: Buffer[]): string[][] => {
    const out: string[][] = [];
    const sink: DataSink = (b, start, end, sender, messType) => out.push(['data', sender, String(messType), b.subarray(start, end).toString('hex')]);
    const d = new MessageDecoder((f) => out.push([frameKind(f.type), f.sender, String(f.messType), f.data.toString('hex')]), CLIENT_LIMITS, sink);
    for (const c of chunks) d.write(c);
    return out;
  };
  it('every captured daemon-to-client stream: the same senders, mess_types and bodies as the Frames, whole, byte by byte and in random pieces', () => {
    let data = 0;
    let other = 0;
    for (const s of d2cStreams) {
      const frames = decodeAll(s.bytes);
      const want = frames.map((f) => [frameKind(f.type), f.sender, String(f.messType), f.data.toString('hex')]);
      const label = `${s.cap.file} ${s.conn}`;
      expect(decodeWith([s.bytes]), label).toEqual(want);
      expect(decodeWith(bytewise(s.bytes)), label).toEqual(want);
      expect(decodeWith(randomChunks(s.bytes, prng(s.bytes.length), 49)), label).toEqual(want);
      for (const w of want) w[0] === 'data' ? data++ : other++;
    }
    // Both paths were exercised: data to the sink, membership and the rest as Frames.
    expect(data).toBeGreaterThan(100);
    expect(other).toBeGreaterThan(100);
  });
  it('a reject of a data message (regular bits set) is a Frame, not data', () => {
    const reject = encodeRejectMess({ oldType: AGREED_MESS, sender: '#a#h', groups: ['g'], hint: 0, data: Buffer.from('x'), extraBits: AGREED_MESS });
    expect(frameKind(decodeAll(reject)[0]!.type)).toBe('reject');
    const sunk: string[] = [];
    const framed: Frame[] = [];
    const d = new MessageDecoder((f) => framed.push(f), CLIENT_LIMITS, (b, s, e) => sunk.push(b.toString('latin1', s, e)));
    d.write(Buffer.concat([reject, encodeMessage(AGREED_MESS, '#a#h', ['g'], Buffer.from('line\n'))]));
    expect(framed.map((f) => frameKind(f.type))).toEqual(['reject']);
    expect(sunk).toEqual(['line\n']);
    expect(d.frames).toBe(2);
  });
});

describe('membership layouts follow the daemon version', () => {
  const first = (file: string, conn: string): Frame => decodeAll(streams(loadCapture(file), 'd2c').find((s) => s.conn === conn)!.bytes)[0]!;

  it('a 3.17.3 daemon body (gid, count, names) read as 3.x; the vs-set reading of it fails', () => {
    const f = first('crossversion_lib501_daemon3173.json', 'bob');
    expect(parseMembership(f, 3)).toMatchObject({ groupId: [2130706433, 1795391728, 1], vsSets: [['#bob#localhost']], changedMember: '#bob#localhost', cause: 'join' });
    // What the 5.0.1 helpers do (and spuser 5.0.1 crashed on): we refuse it instead of following a bogus offset.
    expect(() => parseMembership(f, 5)).toThrow(expect.objectContaining({ code: ErrorCodes.PROTOCOL }));
  });

  it('a 5.0.1 daemon body read as 4.x/5.x; the 3.x reading of it gives the empty changed member the 3.17.3 client printed', () => {
    const f = first('crossversion_lib3173_daemon501.json', 'alice');
    expect(parseMembership(f, 5)).toMatchObject({ groupId: [482711334, 1795391269, 1], vsSets: [['#alice#localhost']], changedMember: '#alice#localhost' });
    expect(parseMembership(f, 3).changedMember).toBe('');
  });

  it('a big-endian daemon: header and body integers swapped, same membership', () => {
    const f = first('membership_join_leave_disconnect.json', 'alice');
    const le = Buffer.from(f.raw);
    const be = Buffer.from(le);
    be.writeUInt32BE((le.readUInt32LE(0) & ~ENDIAN_MARKER) >>> 0, 0);
    for (const o of [36, 44]) be.writeInt32BE(le.readInt32LE(o), o);
    be.writeUInt32BE((le.readUInt32LE(40) & ~ENDIAN_MARKER) >>> 0, 40);
    const body = 48 + 32 * f.groups.length;
    // gid (3), #sets, offset, then the one set's count.
    for (const o of [0, 4, 8, 12, 16, 20]) be.writeInt32BE(le.readInt32LE(body + o), body + o);
    const g = decodeAll(be)[0]!;
    expect(g.bigEndianHeader).toBe(true);
    expect(g.endianMismatch).toBe(true);
    expect(g.type).toBe(f.type);
    expect(parseMembership(g, 5)).toEqual(parseMembership(f, 5));
  });

  it('transitional bodies and short membership bodies', () => {
    const t = decodeAll(encodeMessage(0x2000, 'grp', [], Buffer.from('0100000002000000030000', 'hex')))[0]!;
    expect(() => parseTransitional(t)).toThrow(expect.objectContaining({ code: ErrorCodes.PROTOCOL }));
    const m = decodeAll(encodeMessage(0x1100, 'grp', ['#a#b'], Buffer.alloc(19)))[0]!;
    expect(() => parseMembership(m, 5)).toThrow(expect.objectContaining({ code: ErrorCodes.PROTOCOL }));
    expect(() => parseMembership(m, 3)).not.toThrow();
  });
});

describe('#16: frame views made from the chunk\'s memory', () => {
  it('#16: chunks that are views at other offsets of one pool, taken in turn and refilled, give each frame its own bytes', () => {
    const frames = Array.from({ length: 6 }, (_, i) => encodeMessage(AGREED_MESS, '#=abcdefghi#d1', ['logs'], Buffer.from(`line ${i} ${'x'.repeat(i * 9)}\n`)));
    const pool = Buffer.alloc(4096);
    const chunks = [pool.subarray(100, 1600), pool.subarray(2000, 3500)];
    const got: { data: string; raw: Buffer }[] = [];
    const dec = new MessageDecoder((f) => got.push({ data: f.data.toString('latin1'), raw: Buffer.from(f.raw) }), CLIENT_LIMITS);
    for (let i = 0; i < frames.length; i++) {
      // A read buffer filled again with the next frame, or the other one: the views follow the chunk given.
      const c = chunks[i % 3 === 2 ? 1 : 0]!;
      frames[i]!.copy(c);
      dec.write(c.subarray(0, frames[i]!.length));
    }
    expect(got.map((g) => g.data)).toEqual(frames.map((_, i) => `line ${i} ${'x'.repeat(i * 9)}\n`));
    expect(got.map((g) => g.raw)).toEqual(frames);
  });
});

describe('frames split at every offset', () => {
  it('a REJECT_MESS (52-byte header) and a data frame, cut in two at each position', () => {
    const rej = encodeRejectMess({ oldType: 0x10, sender: '#alice#localhost', groups: ['grp'], hint: 0x80029a80, data: Buffer.from('forbidden payload'), extraBits: SELF_DISCARD });
    const data = encodeMessage(0x10, '#alice#localhost', ['grp'], Buffer.from('x'), { messType: -2 });
    const both = Buffer.concat([rej, data, rej]);
    const want = feed([both]);
    expect(want.frames).toHaveLength(3);
    for (let i = 0; i <= both.length; i++) {
      for (let j = i; j <= Math.min(both.length, i + 60); j += 7) {
        expect(result(feed([both.subarray(0, i), both.subarray(i, j), both.subarray(j)])), `cut at ${i}, ${j}`).toEqual(result(want));
      }
    }
  });
});

// ---- Random input ------------------------------------------------------------

describe('random input never breaks the decoder', () => {
  const bound = (l: Required<DecoderLimits>): number => 48 + 4 + 32 * l.maxGroups + l.maxDataLen;
  const LIMITS: Required<DecoderLimits>[] = [DAEMON_LIMITS, CLIENT_LIMITS, { maxGroups: 3, maxDataLen: 300 }];
  const corpus = Buffer.concat(d2cStreams.filter((s) => s.bytes.length < 20000).map((s) => s.bytes));

  /** What the client does with every frame: classify and parse bodies; only protocol errors may come out. */
  const dispatch = (f: Frame): void => {
    try {
      const k = frameKind(f.type);
      if (k === 'membership') for (const major of [3, 5]) parseMembership(f, major);
      if (k === 'transitional') parseTransitional(f);
    } catch (e) {
      expect(e).toBeInstanceOf(SpreadPipeError);
      expect((e as SpreadPipeError).code).toBe(ErrorCodes.PROTOCOL);
    }
  };

  function check(input: Buffer, rand: () => number, label: string): void {
    for (const limits of LIMITS) {
      const whole = feed([input], limits, dispatch);
      expect(whole.maxBuffered, label).toBeLessThanOrEqual(bound(limits));
      const pieces = feed(randomChunks(input, rand, 1 + Math.floor(rand() * 300)), limits, dispatch);
      expect(pieces.maxBuffered, label).toBeLessThanOrEqual(bound(limits));
      expect(result(pieces), label).toEqual(result(whole));
    }
  }

  it('random bytes (seed 1, 300 inputs)', () => {
    const rand = prng(1);
    for (let i = 0; i < 300; i++) {
      const b = Buffer.alloc(Math.floor(rand() * 3000));
      for (let j = 0; j < b.length; j++) b[j] = Math.floor(rand() * 256);
      // Half of them with a plausible little-endian header start, to get past the first check.
      if (i % 2 && b.length >= 48) {
        b.writeUInt32LE((ENDIAN_MARKER | (1 << Math.floor(rand() * 23))) >>> 0, 0);
        b.writeInt32LE(Math.floor(rand() * 4), 36);
        b.writeInt32LE(Math.floor(rand() * 400), 44);
      }
      check(b, rand, `seed 1 input ${i}`);
    }
  });

  it('mutated valid streams: flipped bytes, rewritten lengths, cuts and splices (seed 2, 400 inputs)', () => {
    const rand = prng(2);
    for (let i = 0; i < 400; i++) {
      const start = Math.floor(rand() * corpus.length);
      let b = Buffer.from(corpus.subarray(start, start + 100 + Math.floor(rand() * 4000)));
      const op = i % 4;
      if (op === 0) for (let k = 0; k < 1 + rand() * 5; k++) b[Math.floor(rand() * b.length)] = Math.floor(rand() * 256);
      else if (op === 1) {
        // An int32 field somewhere set to an extreme or random value.
        const o = Math.floor(rand() * Math.max(1, b.length - 4)) & ~3;
        const v = [0x7fffffff, -1, -0x80000000, 101, 65537, 144001, Math.floor(rand() * 2 ** 32) | 0][Math.floor(rand() * 7)]!;
        if (o + 4 <= b.length) b.writeInt32LE(v, o);
      } else if (op === 2) b = b.subarray(0, Math.floor(rand() * b.length));
      else {
        const cut = Math.floor(rand() * b.length);
        const other = Math.floor(rand() * corpus.length);
        b = Buffer.concat([b.subarray(0, cut), corpus.subarray(other, other + Math.floor(rand() * 200))]);
      }
      check(b, rand, `seed 2 input ${i} op ${op}`);
    }
  });

  it('header fields at and past the limits', () => {
    for (const [groups, len, ok] of [
      [100, 144000, true],
      [101, 0, false],
      [0, 144001, false],
      [-1, 0, false],
      [0, -1, false],
    ] as const) {
      const h = Buffer.alloc(48);
      h.writeUInt32LE(0x80000090, 0);
      h.writeInt32LE(groups, 36);
      h.writeUInt32LE(0x80000080, 40);
      h.writeInt32LE(len, 44);
      const out = feed([h], DAEMON_LIMITS);
      expect(out.error === undefined, `${groups} groups, ${len} bytes`).toBe(ok);
      if (ok) expect(out.maxBuffered).toBe(48);
    }
  });
});
