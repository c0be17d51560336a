/**
 * The publisher over real sockets (issue 3): order and bytes, a refused
 * daemon, a daemon killed mid-stream and restarted, a hung daemon with
 * failover and fail-back, and the queue bound while nothing is reachable.
 */
import { describe, expect, it } from 'vitest';
import { Publisher, type PublisherEvent } from '../src/publisher.js';
import { SpreadClient, prepareSend, type SpreadEvent } from '../src/spread/client.js';
import { DaemonFaults, SpreadDaemon } from '../src/spread/daemon.js';
import { parseDaemonAddress } from '../src/spread/address.js';
import { RELIABLE_MESS } from '../src/spread/constants.js';
import { encodeHint, groupsField } from '../src/spread/encode.js';
import { defer, freePort, startDaemon, startDaemonProcess, waitFor } from './helpers.js';

const route = prepareSend('logs', { service: RELIABLE_MESS });
const line = (i: number): Buffer => Buffer.from(`web1 GET /${i} \u0000\u00ff ${'x'.repeat(i % 50)}\n`, 'latin1');

function publisher(specs: string[], extra: Partial<ConstructorParameters<typeof Publisher>[0]> = {}): { p: Publisher; events: PublisherEvent[] } {
  const p = new Publisher({ daemons: specs.map(parseDaemonAddress), reconnectDelay: () => 50, connectTimeout: 1000, ...extra });
  const events: PublisherEvent[] = [];
  p.on('event', (e: PublisherEvent) => events.push(e));
  defer(() => p.close(0));
  return { p, events };
}

/** A subscriber collecting message bodies; reconnect() follows a daemon restart. */
async function subscriber(spec: string): Promise<{ got: Buffer[]; reconnect: () => Promise<void> }> {
  const got: Buffer[] = [];
  let client: SpreadClient;
  const connect = async (): Promise<void> => {
    client = await SpreadClient.connect({ daemon: spec, membership: false });
    client.on('message', (e: SpreadEvent) => e.kind === 'data' && got.push(Buffer.from(e.frame.data)));
    client.on('close', () => {});
    client.join('logs');
    const c = client;
    defer(() => c.destroy());
    // Joined once our own probe comes back; then wait for every probe sent, and forget them.
    const probe = prepareSend('logs');
    const probes = (): number => got.filter((b) => b.toString() === 'probe').length;
    let sent = 0;
    await waitFor(() => {
      c.send(probe, Buffer.from('probe'));
      sent++;
      return probes() > 0;
    });
    await waitFor(() => probes() === sent);
    for (let i = got.length - 1; i >= 0; i--) if (got[i]!.toString() === 'probe') got.splice(i, 1);
  };
  await connect();
  return { got, reconnect: connect };
}

describe('Publisher', () => {
  it('delivers lines byte-exact and in order', async () => {
    const { spec } = await startDaemon();
    const sub = await subscriber(spec);
    const { p } = publisher([spec]);
    p.start();
    const lines = Array.from({ length: 20_000 }, (_, i) => line(i));
    for (const l of lines) p.push(l, route);
    await waitFor(() => sub.got.length === lines.length, 20_000);
    expect(Buffer.concat(sub.got).equals(Buffer.concat(lines))).toBe(true);
    expect(p.counters).toMatchObject({ accepted: 20_000, linesSent: 20_000, messagesSent: 20_000 });
  });

  it('batches a backlog into few messages, the lines unchanged', async () => {
    const { spec } = await startDaemon();
    const sub = await subscriber(spec);
    const { p } = publisher([spec], { batch: true, batchBytes: 4096 });
    const lines = Array.from({ length: 10_000 }, (_, i) => line(i));
    for (const l of lines) p.push(l, route); // queued before the session exists: a backlog
    p.start();
    await waitFor(() => Buffer.concat(sub.got).length === Buffer.concat(lines).length, 20_000);
    expect(Buffer.concat(sub.got).equals(Buffer.concat(lines))).toBe(true);
    expect(sub.got.every((m) => m.length <= 4096)).toBe(true);
    expect(p.counters.messagesSent).toBeLessThan(1000);
    expect(p.counters.linesSent).toBe(10_000);
  });

  it('queues while the daemon refuses connections and delivers everything once it is up', async () => {
    const port = await freePort();
    const spec = `${port}@127.0.0.1`;
    const { p, events } = publisher([spec]);
    p.start();
    for (let i = 0; i < 1000; i++) p.push(line(i), route);
    await waitFor(() => events.filter((e) => e.type === 'connect-failed').length >= 2);
    const daemon = await SpreadDaemon.start({ name: 'localhost', listen: [{ host: '127.0.0.1', port }] });
    defer(() => daemon.close());
    const sub = await subscriber(spec);
    for (let i = 1000; i < 2000; i++) p.push(line(i), route);
    // The subscriber joined after the first lines may have gone: count from the end.
    await waitFor(() => p.counters.linesSent === 2000 && sub.got.length > 0 && sub.got.at(-1)!.equals(line(1999)), 10_000);
    expect(p.counters.dropped['queue-full']).toBe(0);
    expect(events.some((e) => e.type === 'connected')).toBe(true);
  });

  it('survives a daemon killed mid-stream and restarted: reconnects, and the counters add up', async () => {
    const d = await startDaemonProcess();
    const sub = await subscriber(d.spec);
    const { p, events } = publisher([d.spec]);
    p.start();
    let i = 0;
    for (; i < 5000; i++) p.push(line(i), route);
    await waitFor(() => sub.got.length === 5000, 10_000);
    const d2 = await d.restart(); // SIGKILL, then the same port again
    for (; i < 10_000; i++) p.push(line(i), route); // written while the daemon is gone
    await waitFor(() => events.some((e) => e.type === 'disconnected'));
    await sub.reconnect();
    await waitFor(() => p.connected, 10_000);
    for (; i < 15_000; i++) p.push(line(i), route);
    await waitFor(() => sub.got.length > 5000 && sub.got.at(-1)!.equals(line(14_999)), 10_000);
    const c = p.counters;
    expect(c.accepted).toBe(15_000);
    expect(c.connects).toBe(2);
    expect(c.disconnects).toBe(1);
    // Nothing is duplicated, order is kept, and the last 5000 arrived whole.
    const got = sub.got.map((b) => b.toString('latin1'));
    expect(new Set(got).size).toBe(got.length);
    expect(got.slice(-5000)).toEqual(Array.from({ length: 5000 }, (_, k) => line(10_000 + k).toString('latin1')));
    // What the new session did not bring, the counters name, or it was in kernel buffers when the daemon died.
    expect(got.length + c.dropped['lost-in-flight'] + c.dropped['queue-full']).toBeLessThanOrEqual(15_000);
    void d2;
  });

  it('treats a hung daemon as down within the stall timeout, fails over, and fails back', async () => {
    const faults = new DaemonFaults();
    const a = await startDaemon({ faults });
    const b = await startDaemon();
    const subA = await subscriber(a.spec);
    const subB = await subscriber(b.spec);
    const { p, events } = publisher([a.spec, b.spec], { stallTimeout: 500, failbackInterval: 300 });
    p.start();
    p.push(line(0), route);
    await waitFor(() => subA.got.length === 1);
    faults.hang = true;
    // Enough to fill the kernel buffers behind the hung daemon.
    const big = Buffer.alloc(4000, 0x61);
    for (let i = 0; i < 10_000; i++) p.push(big, route);
    await waitFor(() => events.some((e) => e.type === 'connected' && e.daemon === b.spec), 15_000);
    expect(events.some((e) => e.type === 'disconnected' && /stopped reading/.test(e.error))).toBe(true);
    p.push(line(1), route);
    await waitFor(() => subB.got.some((m) => m.equals(line(1))), 10_000);
    faults.hang = false;
    faults.dropAllSessions(); // the hung sessions are gone; the daemon answers again
    await subA.reconnect();
    await waitFor(() => events.some((e) => e.type === 'failback'), 10_000);
    p.push(line(2), route);
    await waitFor(() => subA.got.some((m) => m.equals(line(2))), 10_000);
    expect(p.counters.failovers).toBe(1);
    expect(p.counters.failbacks).toBe(1);
  });

  it('keeps the queue within its bound while no daemon is reachable, counting every drop', async () => {
    const port = await freePort();
    const { p } = publisher([`${port}@127.0.0.1`], { queueLines: 1000, queueBytes: 64 * 1024, onFull: 'drop-oldest' });
    p.start();
    const body = Buffer.alloc(100, 0x62);
    for (let i = 0; i < 100_000; i++) p.push(body, route);
    expect(p.queued.bytes).toBeLessThanOrEqual(64 * 1024);
    expect(p.queued.lines).toBe(Math.floor((64 * 1024) / 100));
    expect(p.counters.dropped['queue-full']).toBe(100_000 - p.queued.lines);
    const c = await p.close(50);
    expect(c.dropped['unsent-at-exit']).toBe(Math.floor((64 * 1024) / 100));
  });

  it('#11: onFull block emits full when the queue fills and room once half of it is out; nothing dropped; datagrams (offer) still drop', async () => {
    const port = await freePort();
    const spec = `${port}@127.0.0.1`;
    const { p, events } = publisher([spec], { queueLines: 100, onFull: 'block' });
    p.start();
    for (let i = 0; i < 99; i++) p.pushLine(Buffer.from('web1 '), Buffer.from(`l${i}`), route);
    expect(events.some((e) => e.type === 'full')).toBe(false);
    p.pushLine(Buffer.from('web1 '), Buffer.from('l99'), route);
    expect(events.filter((e) => e.type === 'full')).toHaveLength(1);
    expect(p.full).toBe(true);
    // What the reader still had in hand is taken; a datagram is not.
    for (let i = 100; i < 150; i++) p.push(line(i), route);
    p.offer(line(150), route);
    expect(p.queued.lines).toBe(150);
    expect(p.counters.dropped['queue-full']).toBe(1);
    const daemon = await SpreadDaemon.start({ name: 'localhost', listen: [{ host: '127.0.0.1', port }] });
    defer(() => daemon.close());
    await waitFor(() => events.some((e) => e.type === 'room'), 10_000, 'room');
    await waitFor(() => p.counters.linesSent === 150, 10_000);
    expect(p.full).toBe(false);
    expect(events.filter((e) => e.type === 'full' || e.type === 'room').map((e) => e.type)).toEqual(['full', 'room']);
    expect(p.counters.accepted).toBe(151);
  });

  // Before: the fast path counted the line sent and the daemon dropped the session on it
  // (PROTOCOL.md 9); --ack and --batch requeued it forever, and nothing after it went out.
  it.each([{ batch: false }, { batch: true }, { ack: true }])('#11: a message to 101 groups is dropped as rejected, never counted sent; the session and the lines after it go on (%j)', async (opts) => {
    const { spec } = await startDaemon();
    const sub = await subscriber(spec);
    const { p, events } = publisher([spec], opts);
    const names = Array.from({ length: 101 }, (_, i) => `g${i}`);
    const wide = { type: RELIABLE_MESS, hint: encodeHint(0), groups: groupsField(names), numGroups: 101 };
    p.start();
    await waitFor(() => p.connected);
    p.push(line(0), wide);
    p.push(line(1), route);
    await waitFor(() => sub.got.some((m) => m.equals(line(1))), 10_000, 'the next line');
    expect(p.counters.linesSent).toBe(1);
    expect(p.counters.dropped.rejected).toBe(1);
    expect(p.counters.disconnects).toBe(0);
    const drop = events.find((e) => e.type === 'drop' && e.reason === 'rejected');
    expect(drop).toMatchObject({ lines: 1 });
    expect(drop && 'error' in drop && drop.error).toMatch(/101 groups|one more group/);
  });

  it('#11: a message too long for any daemon is dropped as rejected, not retried forever', async () => {
    const { spec } = await startDaemon();
    const sub = await subscriber(spec);
    const { p, events } = publisher([spec]);
    p.start();
    p.push(Buffer.alloc(150_000, 0x61), route);
    p.push(line(1), route);
    await waitFor(() => sub.got.some((m) => m.equals(line(1))), 10_000, 'the next line');
    expect([p.counters.linesSent, p.counters.dropped.rejected, p.counters.disconnects]).toEqual([1, 1, 0]);
    expect(events.find((e) => e.type === 'drop' && e.reason === 'rejected')).toMatchObject({ error: expect.stringMatching(/exceeds/) });
  });

  it.each([{ ack: false }, { ack: true }])('#11: a gap notice is sent like a line but counted as a notice, not as a line sent (%j)', async ({ ack }) => {
    const { spec } = await startDaemon();
    const sub = await subscriber(spec);
    const { p } = publisher([spec], { ack });
    p.start();
    p.push(line(0), route);
    p.pushNotice(Buffer.from('web1 spread-pipe: lost 3 lines (queue-full=3) between a and b\n'), route);
    p.push(line(1), route);
    await waitFor(() => sub.got.length === 3, 10_000);
    expect(sub.got[1]!.toString()).toMatch(/spread-pipe: lost 3 lines/);
    if (ack) await waitFor(() => p.reliable!.window.size === 0, 10_000, 'acks');
    expect([p.counters.accepted, p.counters.linesSent, p.counters.notices]).toEqual([2, 2, 1]);
    const c = await p.close(1000);
    expect(Object.values(c.dropped).reduce((a, b) => a + b, 0)).toBe(0);
  });
});
