/**
 * #13: the write mode's subscription: joins, fails over to the next daemon
 * when the session is lost, rejoins, and reports the gap.
 */
import { describe, expect, it } from 'vitest';
import { parseDaemonAddress } from '../../src/spread/address.js';
import type { Frame } from '../../src/spread/decoder.js';
import { type SessionEvent, WriteSession, gapRecord } from '../../src/write/session.js';
import { connectClient, defer, freePort, startDaemon, waitFor } from '../helpers.js';

describe('#13 WriteSession', () => {
  it('#13: joins its groups and hands over data in order', async () => {
    const { spec } = await startDaemon();
    const got: string[] = [];
    const s = new WriteSession({ daemons: [parseDaemonAddress(spec)], groups: ['a', 'b'], onData: (f: Frame) => got.push(`${f.groups.join(',')}:${f.data.toString()}`) });
    defer(() => s.close());
    const subscribed = new Promise<void>((r) => s.on('event', (e: SessionEvent) => e.type === 'subscribed' && r()));
    void s.start();
    await subscribed;
    expect(s.state.kind).toBe('subscribed');
    const { c } = await connectClient(spec);
    for (let i = 0; i < 100; i++) c.multicast(i % 2 ? 'a' : 'b', Buffer.from(`m${i}`));
    await waitFor(() => got.length === 100, 5000, '100 messages');
    expect(got.slice(0, 3)).toEqual(['b:m0', 'a:m1', 'b:m2']);
  });

  it('#13: a lost session fails over to the next daemon at once, rejoins, and reports the gap', async () => {
    const a = await startDaemon();
    const b = await startDaemon();
    const events: SessionEvent[] = [];
    const got: string[] = [];
    const s = new WriteSession({
      daemons: [parseDaemonAddress(a.spec), parseDaemonAddress(b.spec)],
      groups: ['g'],
      onData: (f) => got.push(f.data.toString()),
      reconnectDelay: () => 50,
    });
    defer(() => s.close());
    s.on('event', (e: SessionEvent) => events.push(e));
    void s.start();
    await waitFor(() => s.state.kind === 'subscribed', 5000, 'subscribed to A');
    const pa = await connectClient(a.spec);
    pa.c.multicast('g', Buffer.from('on A'));
    await waitFor(() => got.includes('on A'), 5000, 'the line on A');
    await a.daemon.close();
    await waitFor(() => events.some((e) => e.type === 'gap'), 5000, 'the gap record');
    const sub = events.filter((e) => e.type === 'subscribed');
    expect(sub.map((e) => e.daemon)).toEqual([parseDaemonAddress(a.spec).label, parseDaemonAddress(b.spec).label]);
    const lost = events.find((e) => e.type === 'lost')!;
    const gap = events.find((e) => e.type === 'gap')! as Extract<SessionEvent, { type: 'gap' }>;
    expect(gap.from).toBe((lost as Extract<SessionEvent, { type: 'lost' }>).at);
    expect(gap.to).toBeGreaterThanOrEqual(gap.from);
    expect(gap.to - gap.from).toBeLessThan(2000);
    const pb = await connectClient(b.spec);
    pb.c.multicast('g', Buffer.from('on B'));
    await waitFor(() => got.includes('on B'), 5000, 'the line on B');
    expect(s.stats).toMatchObject({ sessions: 2, gaps: 1 });
    expect(gapRecord(Date.UTC(2026, 0, 1), Date.UTC(2026, 0, 1, 0, 0, 3))).toBe(
      'spread-pipe write: not subscribed from 2026-01-01T00:00:00.000Z to 2026-01-01T00:00:03.000Z; lines sent then are missing',
    );
  });

  it('#13: no daemon: a pass over the list, then the back-off; the reconnect policy can give up', async () => {
    const p1 = await freePort();
    const p2 = await freePort();
    const events: SessionEvent[] = [];
    const attempts: number[] = [];
    const s = new WriteSession({
      daemons: [parseDaemonAddress(`${p1}@127.0.0.1`), parseDaemonAddress(`${p2}@127.0.0.1`)],
      groups: ['g'],
      onData: () => {},
      reconnectDelay: (attempt) => (attempts.push(attempt), attempt < 3 ? 10 : false),
    });
    s.on('event', (e: SessionEvent) => events.push(e));
    const gaveUp = new Promise((r) => s.once('gave-up', r));
    void s.start();
    await gaveUp;
    expect(attempts).toEqual([1, 2, 3]);
    // Two daemons per pass: the first of each pass is tried again at once, the second waits.
    expect(events.map((e) => (e.type === 'connect-failed' ? e.retryIn : e.type))).toEqual([0, 10, 0, 10, 0, false]);
    expect(s.state.kind).toBe('closed');
  });

  it('#13: close() while connecting or waiting ends the loop', async () => {
    const s = new WriteSession({ daemons: [parseDaemonAddress(`${await freePort()}@127.0.0.1`)], groups: ['g'], onData: () => {}, reconnectDelay: () => 60_000 });
    const done = s.start();
    await waitFor(() => s.state.kind === 'waiting', 5000, 'waiting');
    await s.close();
    await done;
    expect(s.state.kind).toBe('closed');
  });
});
