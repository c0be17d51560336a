/**
 * The daemon's registry and router without sockets (#12): sessions are plain
 * objects that keep what they are delivered; requests are the bytes clients
 * send, decoded as the session decodes them.
 */
import { describe, expect, it } from 'vitest';
import { AGREED_MESS, FIFO_MESS, REJECT_NOT_UNIQUE, RELIABLE_MESS, SELF_DISCARD } from '../../src/spread/constants.js';
import { DAEMON_LIMITS, type Frame } from '../../src/spread/decoder.js';
import { DaemonRouter, type RoutedSession } from '../../src/spread/daemon-router.js';
import { newCounters } from '../../src/spread/daemon-stats.js';
import type { CloseRequest } from '../../src/spread/daemon-events.js';
import { encodeJoin, encodeKill, encodeLeave, encodeMessage } from '../../src/spread/encode.js';
import { frameKind } from '../../src/spread/messages.js';
import { decodeAll } from './util.js';

interface FakeSession extends RoutedSession {
  privateGroup: string;
  got: Buffer[];
  closed: CloseRequest[];
  protocolErrors: string[];
}

function session(membership = false): FakeSession {
  const s: FakeSession = {
    privateGroup: '',
    membership,
    libraryMajor: 5,
    groups: new Set(),
    open: true,
    mark: 0,
    got: [],
    closed: [],
    protocolErrors: [],
    deliver: (b) => void s.got.push(b),
    deliverRange: (b, from, to) => void s.got.push(b.subarray(from, to)),
    close: (why) => void s.closed.push(why),
    protocolError: (why) => void s.protocolErrors.push(why),
  };
  return s;
}

function setup(): { r: DaemonRouter<FakeSession>; counters: ReturnType<typeof newCounters>; join: (name: string, membership?: boolean) => FakeSession } {
  const counters = newCounters();
  const r = new DaemonRouter<FakeSession>('d', [1, 2], counters);
  const join = (name: string, membership = false): FakeSession => {
    const s = session(membership);
    s.privateGroup = r.claim(s, name) as string;
    return s;
  };
  return { r, counters, join };
}

const frame = (raw: Buffer): Frame => decodeAll(raw, DAEMON_LIMITS)[0]!;

/** Send `raw` the way a session does: plain multicasts to forward(), the rest decoded to request(). */
function send(r: DaemonRouter<FakeSession>, s: FakeSession, raw: Buffer, plain = false): void {
  if (plain) r.forward(s, raw, 0, raw.length, frame(raw).groups);
  else r.request(s, frame(raw));
}

const texts = (s: FakeSession): string[] => s.got.flatMap((b) => decodeAll(b)).filter((f) => frameKind(f.type) === 'data').map((f) => f.data.toString());

describe('DaemonRouter (#12: registry and router, no sockets)', () => {
  it('claims private names: unique per daemon, invented when empty, free again on release', () => {
    const { r } = setup();
    const a = session();
    expect(r.claim(a, 'alice')).toBe('#alice#d');
    expect(r.claim(session(), 'alice')).toBe(REJECT_NOT_UNIQUE);
    const invented = r.claim(session(), '');
    expect(invented).toMatch(/^#r\d{1,4}-\d{1,3}#d$/);
    expect(r.size).toBe(2);
    a.privateGroup = '#alice#d';
    r.release(a, false);
    expect(r.size).toBe(1);
    expect(r.claim(session(), 'alice')).toBe('#alice#d');
  });

  it('a release does not free a name another session holds', () => {
    const { r, join } = setup();
    const a = join('alice');
    const impostor = session();
    impostor.privateGroup = '#alice#d';
    r.release(impostor, false);
    expect([...r.sessions()]).toEqual([a]);
  });

  it('delivers a multicast once per member, however many of its groups it is in; taps see each group once', () => {
    const { r, counters, join } = setup();
    const pub = join('pub');
    const both = join('both');
    const one = join('one');
    for (const [s, g] of [[both, 'g1'], [both, 'g2'], [one, 'g2']] as const) send(r, s, encodeJoin(s.privateGroup, g));
    const tapped: string[] = [];
    r.tap('g1', (f) => tapped.push(`g1:${f.data}`));
    r.tap('g2', (f) => tapped.push(`g2:${f.data}`));
    for (const plain of [true, false]) {
      const raw = encodeMessage(AGREED_MESS, '#pub#d', ['g1', 'g2', 'g1'], Buffer.from(plain ? 'fast' : 'decoded'));
      send(r, pub, raw, plain);
    }
    expect(texts(both)).toEqual(['fast', 'decoded']);
    expect(texts(one)).toEqual(['fast', 'decoded']);
    expect(texts(pub)).toEqual([]);
    expect(tapped).toEqual(['g1:fast', 'g2:fast', 'g1:decoded', 'g2:decoded']);
    // 3 joins and 2 multicasts in; 2 deliveries each.
    expect(counters).toMatchObject({ messagesIn: 5, deliveries: 4 });
  });

  it('a forwarded multicast goes out as the very bytes it came in', () => {
    const { r, join } = setup();
    const pub = join('pub');
    const sub = join('sub');
    send(r, sub, encodeJoin(sub.privateGroup, 'g'));
    const chunk = Buffer.concat([Buffer.from('xx'), encodeMessage(RELIABLE_MESS, '#pub#d', ['g'], Buffer.from('line'))]);
    r.forward(pub, chunk, 2, chunk.length, ['g']);
    expect(sub.got[0]!.buffer).toBe(chunk.buffer);
    expect(sub.got[0]!.byteOffset).toBe(chunk.byteOffset + 2);
  });

  it('SELF_DISCARD skips the sender; without it the sender gets its own copy', () => {
    const { r, join } = setup();
    const pub = join('pub');
    send(r, pub, encodeJoin(pub.privateGroup, 'g'));
    send(r, pub, encodeMessage(FIFO_MESS | SELF_DISCARD, '#pub#d', ['g'], Buffer.from('not mine')), true);
    send(r, pub, encodeMessage(FIFO_MESS, '#pub#d', ['g'], Buffer.from('mine')), true);
    expect(texts(pub)).toEqual(['mine']);
  });

  it('a private group reaches its session only while it is open', () => {
    const { r, join } = setup();
    const pub = join('pub');
    const bob = join('bob');
    send(r, pub, encodeMessage(FIFO_MESS, '#pub#d', ['#bob#d'], Buffer.from('1')), true);
    (bob as { open: boolean }).open = false;
    send(r, pub, encodeMessage(FIFO_MESS, '#pub#d', ['#bob#d', '#nobody#d'], Buffer.from('2')), true);
    expect(texts(bob)).toEqual(['1']);
  });

  it('leave and a released open session: the others are told, the groups forget it', () => {
    const { r, join } = setup();
    const a = join('a', true);
    const b = join('b', true);
    send(r, a, encodeJoin(a.privateGroup, 'g'));
    send(r, b, encodeJoin(b.privateGroup, 'g'));
    send(r, b, encodeJoin(b.privateGroup, 'h'));
    expect(r.groups()).toEqual([['g', 2], ['h', 1]]);
    send(r, a, encodeLeave(a.privateGroup, 'g'));
    expect(r.groups()).toEqual([['g', 1], ['h', 1]]);
    send(r, a, encodeJoin(a.privateGroup, 'h'));
    a.got.length = 0;
    b.got.length = 0;
    r.release(b, true);
    expect(r.groups()).toEqual([['h', 1]]);
    expect(b.got).toEqual([]);
    expect(a.got.flatMap((x) => decodeAll(x)).map((f) => [frameKind(f.type), f.sender, f.groups])).toEqual([['membership', 'h', ['#a#d']]]);
  });

  it('KILL_MESS closes gracefully; a request breaking PROTOCOL.md 9 is a protocol error, and not counted in', () => {
    const { r, counters, join } = setup();
    const a = join('a');
    send(r, a, encodeKill(a.privateGroup));
    expect(a.closed).toEqual([{ text: 'disconnect requested', graceful: true }]);
    const b = join('b');
    send(r, b, encodeMessage(FIFO_MESS, '#a#d', ['g'], Buffer.from('impostor')));
    send(r, b, encodeJoin(b.privateGroup, 'bad group'));
    expect(b.protocolErrors).toEqual([expect.stringMatching(/^sender "#a#d" is not this session/), expect.stringMatching(/^join of illegal group name/)]);
    expect(counters.messagesIn).toBe(1);
  });

  it('unsubscribing a tap stops it', () => {
    const { r, join } = setup();
    const pub = join('pub');
    const seen: string[] = [];
    const off = r.tap('g', (f) => seen.push(f.data.toString()));
    send(r, pub, encodeMessage(FIFO_MESS, '#pub#d', ['g'], Buffer.from('1')), true);
    off();
    send(r, pub, encodeMessage(FIFO_MESS, '#pub#d', ['g'], Buffer.from('2')), true);
    expect(seen).toEqual(['1']);
  });
});
