/**
 * The built-in daemon with spread-pipe's own client (issue 4): TCP and unix
 * sockets, delivery rules, slow receivers, --allow, and robustness against
 * bad sessions while good ones keep working.
 */
import crypto from 'node:crypto';
import net from 'node:net';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { SpreadClient, type SpreadEvent } from '../../src/spread/client.js';
import { parseCidr } from '../../src/cidr.js';
import { AGREED_MESS, FIFO_MESS, SAFE_MESS } from '../../src/spread/constants.js';
import { encodeAuthChoice, encodeConnectRequest, encodeMessage } from '../../src/spread/encode.js';
import type { DaemonEvent } from '../../src/spread/daemon.js';
import { ErrorCodes } from '../../src/errors.js';
import { defer, startDaemon, tempDir, waitFor } from '../helpers.js';

async function client(spec: string, name?: string, membership = true): Promise<{ c: SpreadClient; events: SpreadEvent[] }> {
  const c = await SpreadClient.connect({ daemon: spec, name, membership });
  defer(() => c.destroy());
  const events: SpreadEvent[] = [];
  c.on('message', (e: SpreadEvent) => events.push(e));
  c.on('close', () => {});
  return { c, events };
}

const data = (evs: SpreadEvent[]): string[] => evs.filter((e) => e.kind === 'data').map((e) => e.frame.data.toString());

describe('SpreadDaemon with our client', () => {
  it('delivers over TCP and a unix socket, once per member, in one order for all', async () => {
    const sock = path.join(tempDir(), 'spread.sock');
    const { spec, daemon } = await startDaemon({ listen: [{ host: '127.0.0.1', port: 0 }, { path: sock }] });
    expect(daemon.unixPaths).toEqual([sock]);
    const a = await client(spec, 'alice');
    const b = await client(sock, 'bob');
    a.c.join('g1');
    a.c.join('g2');
    b.c.join('g1');
    await waitFor(() => a.events.filter((e) => e.kind === 'membership').length === 3);
    // To both groups: alice is in both but gets one copy.
    for (let i = 0; i < 200; i++) (i % 2 ? a.c : b.c).multicast(['g1', 'g2'], Buffer.from(`m${i}`), { service: i % 3 ? AGREED_MESS : SAFE_MESS });
    await waitFor(() => data(a.events).length === 200 && data(b.events).length === 200);
    expect(data(a.events)).toEqual(data(b.events));
    expect(new Set(data(a.events)).size).toBe(200);
  });

  it('sends membership notices with the joiner and the full member list', async () => {
    const { spec } = await startDaemon();
    const a = await client(spec, 'alice');
    const b = await client(spec, 'bob');
    a.c.join('grp');
    await waitFor(() => a.events.length === 1);
    b.c.join('grp');
    await waitFor(() => a.events.length === 2 && b.events.length === 1);
    const ev = a.events[1]!;
    expect(ev.kind).toBe('membership');
    if (ev.kind !== 'membership') return;
    expect(ev.info).toMatchObject({ group: 'grp', cause: 'join', changedMember: '#bob#localhost', members: ['#alice#localhost', '#bob#localhost'] });
    const gid = ev.info.groupId;
    b.c.leave('grp');
    await waitFor(() => a.events.length === 3 && b.events.length === 2);
    expect(b.events[1]!.kind).toBe('self-leave');
    const left = a.events[2]!;
    if (left.kind !== 'membership') throw new Error('expected membership');
    expect(left.info).toMatchObject({ cause: 'leave', changedMember: '#bob#localhost', members: ['#alice#localhost'] });
    expect(left.info.groupId.slice(0, 2)).toEqual(gid.slice(0, 2));
    expect(left.info.groupId[2]).toBe(gid[2] + 1);
    const c = await client(spec, 'carol');
    c.c.join('grp');
    await waitFor(() => a.events.length === 4);
    c.c.destroy(); // an abrupt close is a disconnect for the others
    await waitFor(() => a.events.length === 5);
    const gone = a.events[4]!;
    if (gone.kind !== 'membership') throw new Error('expected membership');
    expect(gone.info).toMatchObject({ cause: 'disconnect', changedMember: '#carol#localhost', members: ['#alice#localhost'] });
  });

  it('honours SELF_DISCARD and private-group destinations; sessions without membership get no notices', async () => {
    const { spec } = await startDaemon();
    const a = await client(spec, 'alice');
    const quiet = await client(spec, 'quiet', false);
    a.c.join('grp');
    quiet.c.join('grp');
    await waitFor(() => a.events.length === 2);
    a.c.multicast('grp', Buffer.from('not to me'), { selfDiscard: true, service: FIFO_MESS });
    a.c.multicast('#quiet#localhost', Buffer.from('private'), { messType: -2 });
    a.c.multicast('grp', Buffer.from('to all'));
    await waitFor(() => data(quiet.events).length === 3 && data(a.events).length === 1);
    expect(data(quiet.events)).toEqual(['not to me', 'private', 'to all']);
    expect(data(a.events)).toEqual(['to all']);
    expect(quiet.events.every((e) => e.kind === 'data')).toBe(true);
    const priv = quiet.events[1]!.frame;
    expect(priv.messType).toBe(-2);
  });

  it('cuts off a session that stays behind past --session-buffer, and the others go on', async () => {
    const { spec, daemon } = await startDaemon({ sessionBuffer: 256 * 1024 });
    const events: DaemonEvent[] = [];
    daemon.on('event', (e: DaemonEvent) => events.push(e));
    const slow = await client(spec, 'slow', false);
    const fast = await client(spec, 'fast', false);
    const pub = await client(spec, 'pub', false);
    slow.c.join('logs');
    fast.c.join('logs');
    await waitFor(() => daemon.getStats().groups[0]?.[1] === 2);
    slow.c.pause();
    // Loopback kernel buffers hold several MB: send well past them and the budget,
    // at a pace the fast subscriber keeps up with (all three share this thread).
    const line = Buffer.alloc(1000, 0x61);
    for (let batch = 1; batch <= 30; batch++) {
      for (let i = 0; i < 1000; i++) pub.c.multicast('logs', line);
      await waitFor(() => data(fast.events).length === batch * 1000, 20_000);
    }
    await waitFor(() => events.some((e) => e.type === 'slow-session' && e.session === '#slow#localhost'));
    expect(daemon.getStats().slowKilled).toBe(1);
  });

  it('lets a subscriber that pauses for a second lose nothing', async () => {
    const { spec, daemon } = await startDaemon();
    const slow = await client(spec, 'slow', false);
    const pub = await client(spec, 'pub', false);
    slow.c.join('logs');
    await waitFor(() => daemon.getStats().groups[0]?.[1] === 1);
    slow.c.pause();
    // 100k lines of 250 bytes = 25 MB: more than the kernel buffers, within the 64 MiB budget.
    for (let i = 0; i < 100_000; i++) pub.c.multicast('logs', Buffer.alloc(250, 0x62));
    await new Promise((r) => setTimeout(r, 1000)); // the scenario: a one-second stall
    slow.c.resume();
    await waitFor(() => data(slow.events).length === 100_000, 30_000);
    expect(daemon.getStats().slowKilled).toBe(0);
  });

  it('refuses TCP clients outside --allow with REJECT_AUTH', async () => {
    const { spec, daemon } = await startDaemon({ allow: [parseCidr('10.0.0.0/8')] });
    const events: DaemonEvent[] = [];
    daemon.on('event', (e: DaemonEvent) => events.push(e));
    await expect(SpreadClient.connect({ daemon: spec, name: 'x' })).rejects.toMatchObject({ code: ErrorCodes.REJECT_AUTH });
    expect(events.some((e) => e.type === 'reject' && /not allowed/.test(e.reason))).toBe(true);
    const ok = await startDaemon({ allow: [parseCidr('127.0.0.0/8')] });
    await client(ok.spec, 'y');
  });

  it('closes bad sessions (random bytes, truncated handshakes, absurd lengths) and keeps serving the good ones', async () => {
    const { spec, port, daemon } = await startDaemon({ handshakeTimeout: 500 });
    const events: DaemonEvent[] = [];
    daemon.on('event', (e: DaemonEvent) => events.push(e));
    const good = await client(spec, 'good');
    good.c.join('grp');
    const rng = (n: number): Buffer => crypto.randomBytes(n);
    const handshake = Buffer.concat([encodeConnectRequest({ membership: true, name: 'evil' }), encodeAuthChoice()]);
    const bad: Buffer[] = [
      rng(1000),
      Buffer.from([5, 0]), // truncated connect request
      encodeConnectRequest({ membership: true, name: 'trunc' }), // then silence in the auth phase
      Buffer.concat([handshake, Buffer.from('ffffff7f', 'hex'), rng(60)]), // absurd header
      Buffer.concat([encodeConnectRequest({ membership: true, name: 'e2' }), encodeAuthChoice(), absurd(1_000_000, 1)]),
      Buffer.concat([encodeConnectRequest({ membership: true, name: 'e3' }), encodeAuthChoice(), absurd(1, 5000)]),
      Buffer.concat([encodeConnectRequest({ membership: true, name: 'e4' }), encodeAuthChoice(), absurd(-1, 1)]),
    ];
    const closed = bad.map(
      (bytes) =>
        new Promise<void>((resolve) => {
          const s = net.connect({ host: '127.0.0.1', port }, () => s.write(bytes));
          s.on('error', () => {});
          s.on('close', () => resolve());
          s.resume();
          defer(() => s.destroy());
        }),
    );
    await Promise.all(closed);
    good.c.multicast('grp', Buffer.from('still here'));
    await waitFor(() => data(good.events).includes('still here'));
    expect(events.filter((e) => e.type === 'reject' || e.type === 'protocol-error' || e.type === 'disconnect').length).toBeGreaterThanOrEqual(bad.length - 1);
    expect(daemon.getStats().sessions).toBe(1);
  });

  it('serves 500 concurrent sessions', async () => {
    const { spec, daemon } = await startDaemon();
    const clients = await Promise.all(Array.from({ length: 500 }, (_, i) => client(spec, `c${i}`, false)));
    for (const x of clients) x.c.join('all');
    await waitFor(() => daemon.getStats().groups[0]?.[1] === 500, 20_000);
    clients[0]!.c.multicast('all', Buffer.from('hello 500'));
    await waitFor(() => clients.every((x) => data(x.events).length === 1), 20_000);
    expect(daemon.getStats().sessions).toBe(500);
  });
});

/** A framed data message from `#e*#localhost` with a lying num_groups / data_len. */
function absurd(dataLen: number, numGroups: number): Buffer {
  const m = encodeMessage(AGREED_MESS, '#e#localhost', ['grp'], Buffer.from('x'));
  m.writeInt32LE(numGroups, 36);
  m.writeInt32LE(dataLen, 44);
  return m;
}
