/**
 * #15: the daemon's TCP port against hostile clients: connections that never
 * finish the Spread handshake are capped per remote address and in all;
 * past a cap a new connection is closed at once, unread (no session is made
 * for it), and counted; good clients still get in, and the counts add up.
 * 127.0.0.1 and ::1 are the two remote addresses.
 */
import net from 'node:net';
import { describe, expect, it } from 'vitest';
import { type DaemonEvent, resolveDaemonOptions } from '../../src/spread/daemon.js';
import { ErrorCodes } from '../../src/errors.js';
import { connectClient, defer, startDaemon, waitFor, withTimeout } from '../helpers.js';

interface Raw {
  sock: net.Socket;
  /** Resolves when the daemon closed it; with the bytes it sent first. */
  closed: Promise<Buffer>;
}

/** A TCP connection that never says a word. */
async function raw(host: string, port: number): Promise<Raw> {
  const sock = net.connect({ host, port });
  defer(() => sock.destroy());
  const got: Buffer[] = [];
  sock.on('data', (b: Buffer) => got.push(b));
  sock.on('error', () => {});
  const closed = new Promise<Buffer>((r) => sock.once('close', () => r(Buffer.concat(got))));
  await new Promise<void>((resolve, reject) => {
    sock.once('connect', resolve);
    sock.once('error', reject);
  });
  return { sock, closed };
}

const settledWithin = <T>(p: Promise<T>, ms: number): Promise<boolean> => Promise.race([p.then(() => true), new Promise<boolean>((r) => setTimeout(() => r(false), ms))]);

describe('#15: caps on connections in their handshake', () => {
  it('#15: over the per-address and total caps connections are closed unread and counted; good clients get in; counts add up', async () => {
    const { daemon } = await startDaemon({
      listen: [
        { host: '127.0.0.1', port: 0 },
        { host: '::1', port: 0 },
      ],
      maxPendingPerAddress: 3,
      maxPending: 4,
      handshakeTimeout: 60_000,
    });
    const events: DaemonEvent[] = [];
    daemon.on('event', (e: DaemonEvent) => events.push(e));
    const [v4, v6] = daemon.tcp;
    const spec6 = `${v6!.port}@::1`;

    // Three silent connections from 127.0.0.1 fill its cap.
    const held = [await raw('127.0.0.1', v4!.port), await raw('127.0.0.1', v4!.port), await raw('127.0.0.1', v4!.port)];
    await waitFor(() => daemon.getStats().pending === 3, 5000, 'three pending');
    // Two more are closed at once, without a byte, never made sessions.
    const over = [await raw('127.0.0.1', v4!.port), await raw('127.0.0.1', v4!.port)];
    for (const o of over) expect(await withTimeout(o.closed, 5000, 'the daemon closing it')).toHaveLength(0);
    expect(daemon.getStats()).toMatchObject({ pending: 3, connections: 3, pendingRefusedPerAddress: 2, pendingRefusedTotal: 0 });

    // A good client from ::1 gets in: the 4th pending while it shakes hands, not pending after.
    const good = await connectClient(spec6, 'good');
    good.c.join('g');
    await waitFor(() => good.events.some((e) => e.kind === 'membership'), 5000, 'the good client joined');
    expect(daemon.getStats()).toMatchObject({ pending: 3, sessions: 1, connections: 4 });

    // One silent connection from ::1 fills the total cap; the next is closed for the total.
    const held6 = await raw('::1', v6!.port);
    await waitFor(() => daemon.getStats().pending === 4, 5000, 'four pending');
    const over6 = await raw('::1', v6!.port);
    expect(await withTimeout(over6.closed, 5000, 'the daemon closing it')).toHaveLength(0);
    expect(daemon.getStats()).toMatchObject({ pendingRefusedPerAddress: 2, pendingRefusedTotal: 1 });
    // A good client is refused too while the total cap is full ...
    await expect(connectClient(spec6, 'late')).rejects.toMatchObject({ code: ErrorCodes.CONNECTION_CLOSED });
    expect(daemon.getStats().pendingRefusedTotal).toBe(2);
    // ... and gets in once a silent one goes.
    held[0]!.sock.destroy();
    await waitFor(() => daemon.getStats().pending === 3, 5000, 'one pending gone');
    const late = await connectClient(spec6, 'late');
    late.c.multicast(['g'], Buffer.from('hello'));
    await waitFor(() => good.events.some((e) => e.kind === 'data' && e.frame.data.toString() === 'hello'), 5000, 'a message through');

    // Those still held are unaffected: never closed by the daemon.
    for (const h of [...held.slice(1), held6]) expect(await settledWithin(h.closed, 100)).toBe(false);
    // Counts add up: every refusal is a reject event with its cause, and among `rejected`.
    const s = daemon.getStats();
    const rejects = events.filter((e): e is Extract<DaemonEvent, { type: 'reject' }> => e.type === 'reject');
    const perAddress = rejects.filter((e) => e.cause === 'pending-per-address');
    const total = rejects.filter((e) => e.cause === 'pending-total');
    expect(perAddress).toHaveLength(s.pendingRefusedPerAddress);
    expect(total).toHaveLength(s.pendingRefusedTotal);
    expect(s.pendingRefusedPerAddress + s.pendingRefusedTotal).toBe(4);
    // held[0] closed by its client in its handshake: one more reject (hung-up), not a pending refusal.
    await waitFor(() => daemon.getStats().rejected === 5, 5000, 'the hung-up one counted');
    expect(perAddress[0]!.reason).toMatch(/^3 connections from 127\.0\.0\.1 already in their handshake \(--max-pending-per-address 3\)$/);
    expect(total[0]!.reason).toMatch(/^4 connections already in their handshake \(--max-pending 4\)$/);
    expect(daemon.getStats()).toMatchObject({ pending: 3, sessions: 2, connections: 5 });
  });

  it('#15: a connection that times out in its handshake, or that the daemon refuses, stops counting as pending', async () => {
    const { daemon, port } = await startDaemon({ maxPendingPerAddress: 1, handshakeTimeout: 200 });
    const a = await raw('127.0.0.1', port);
    await withTimeout(a.closed, 5000, 'the handshake timeout');
    await waitFor(() => daemon.getStats().pending === 0, 5000, 'none pending');
    const b = await raw('127.0.0.1', port);
    await waitFor(() => daemon.getStats().pending === 1, 5000, 'one pending');
    b.sock.write(Buffer.from('GET / HTTP/1.0\r\n\r\n'));
    await withTimeout(b.closed, 5000, 'the daemon refusing it');
    await waitFor(() => daemon.getStats().pending === 0, 5000, 'none pending');
    const good = await connectClient(`${port}@127.0.0.1`, 'good');
    expect(good.c).toBeDefined();
    expect(daemon.getStats()).toMatchObject({ pending: 0, pendingRefusedPerAddress: 0, pendingRefusedTotal: 0 });
  });

  it('#15: the caps are checked: at least 1, and the per-address cap at most the total', () => {
    expect(resolveDaemonOptions({})).toMatchObject({ maxPendingPerAddress: 128, maxPending: 1024 });
    expect(resolveDaemonOptions({ maxPending: 10 })).toMatchObject({ maxPendingPerAddress: 10, maxPending: 10 });
    expect(() => resolveDaemonOptions({ maxPending: 0 })).toThrow(expect.objectContaining({ option: 'maxPending', code: ErrorCodes.INVALID_ARGUMENT }));
    expect(() => resolveDaemonOptions({ maxPendingPerAddress: 0 })).toThrow(expect.objectContaining({ option: 'maxPendingPerAddress' }));
    expect(() => resolveDaemonOptions({ maxPending: 10, maxPendingPerAddress: 11 })).toThrow(expect.objectContaining({ option: 'maxPendingPerAddress', detail: 'must be at most 10 connections, got 11' }));
  });
});
