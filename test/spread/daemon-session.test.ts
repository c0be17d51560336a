/**
 * One daemon session on its own (#12), over a real loopback socket pair,
 * with a fake host and router that record what the session reports: the
 * handshake in its library-version branches, the request paths (forward for
 * plain multicasts, request for the rest), the output path and its budget,
 * and the one close event with its CloseReason.
 */
import net from 'node:net';
import { describe, expect, it } from 'vitest';
import { FIFO_MESS, JOIN_MESS, REJECT_AUTH, REJECT_NOT_UNIQUE, RELIABLE_MESS } from '../../src/spread/constants.js';
import type { Frame } from '../../src/spread/decoder.js';
import type { CloseReason, SessionEvent } from '../../src/spread/daemon-events.js';
import { DaemonSession, type SessionHost, type SessionRouter } from '../../src/spread/daemon-session.js';
import { encodeAuthChoice, encodeConnectRequest, encodeJoin, encodeMessage } from '../../src/spread/encode.js';
import { HDR_DATA_LEN } from '../../src/spread/layout.js';
import { defer, waitFor } from '../helpers.js';

interface Pair {
  session: DaemonSession;
  client: net.Socket;
  /** Everything the client has received. */
  received(): Buffer;
  events: SessionEvent[];
  forwarded: Array<{ bytes: Buffer; groups: readonly string[] }>;
  requests: Frame[];
  lingered: net.Socket[];
  host: SessionHost & { hanging: boolean };
}

/** A session on the server end of a loopback connection; the client end is ours. */
async function pair(opts: { budget?: number; handshakeTimeout?: number; taken?: string[] } = {}): Promise<Pair> {
  const server = net.createServer();
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  defer(() => new Promise<void>((r) => server.close(() => r())));
  const accepted = new Promise<net.Socket>((r) => server.once('connection', r));
  const client = net.connect((server.address() as net.AddressInfo).port, '127.0.0.1');
  defer(() => client.destroy());
  const chunks: Buffer[] = [];
  client.on('data', (b: Buffer) => chunks.push(b));
  client.on('error', () => {});
  const sock = await accepted;
  const p = { events: [] as SessionEvent[], forwarded: [] as Pair['forwarded'], requests: [] as Frame[], lingered: [] as net.Socket[] };
  const host = {
    daemonName: 'd',
    authMethods: ['NULL'],
    hanging: false,
    event: (s: DaemonSession, e: SessionEvent) => {
      p.events.push(e);
      if (e.type === 'overflow') queueMicrotask(() => s.close('cut off'));
    },
    pending: (s: DaemonSession) => setImmediate(() => s.flushOut()),
    linger: (x: net.Socket) => void p.lingered.push(x),
  };
  const router: SessionRouter = {
    claim: (_s, name) => (opts.taken?.includes(name) ? REJECT_NOT_UNIQUE : `#${name}#d`),
    request: (_s, f) => void p.requests.push(f),
    forward: (_s, buf, off, end, groups) => void p.forwarded.push({ bytes: Buffer.from(buf.subarray(off, end)), groups: [...groups] }),
  };
  const session = new DaemonSession(sock, host, router, opts.budget ?? 1 << 20, opts.handshakeTimeout ?? 5000);
  defer(() => session.close('test over'));
  return { ...p, session, client, host, received: () => Buffer.concat(chunks) };
}

const closeOf = (p: Pair): CloseReason | undefined => p.events.flatMap((e) => (e.type === 'close' ? [e.reason] : []))[0];

/** The 5.0.1 handshake from the client side, up to the accept. */
async function open(p: Pair, name = 'alice', version = [5, 0, 1]): Promise<void> {
  p.client.write(encodeConnectRequest({ name, membership: true, version }));
  await waitFor(() => p.received().length >= 6, 5000, 'auth list');
  expect(p.received().subarray(0, 6).toString('latin1')).toBe('\x05NULL ');
  p.client.write(encodeAuthChoice(['NULL']));
  const accept = Buffer.from([1, 5, 0, 1, 8, ...Buffer.from(`#${name}#d`)]);
  await waitFor(() => p.received().length >= 6 + accept.length, 5000, 'accept');
  expect(p.received().subarray(6, 6 + accept.length)).toEqual(accept);
}

describe('DaemonSession (#12: unit tests for daemon-session.ts, real loopback sockets)', () => {
  it('5.x handshake with auth: one open event; plain multicasts are forwarded as bytes, other requests decoded', async () => {
    const p = await pair();
    await open(p);
    expect(p.events).toEqual([{ type: 'open' }]);
    expect(p.session).toMatchObject({ privateGroup: '#alice#d', membership: true, libraryVersion: [5, 0, 1], libraryMajor: 5, open: true });
    const m1 = encodeMessage(RELIABLE_MESS, '#alice#d', ['g1', 'g2'], Buffer.from('one'));
    const join = encodeJoin('#alice#d', 'g1');
    const impostor = encodeMessage(FIFO_MESS, '#bob#d', ['g1'], Buffer.from('not me'));
    // Requests cut across reads: one byte short, then the rest.
    const all = Buffer.concat([m1, join, impostor]);
    p.client.write(all.subarray(0, m1.length - 1));
    await new Promise((r) => setTimeout(r, 50));
    expect(p.forwarded).toEqual([]);
    p.client.write(all.subarray(m1.length - 1));
    await waitFor(() => p.requests.length === 2, 5000, 'requests');
    expect(p.forwarded).toEqual([{ bytes: m1, groups: ['g1', 'g2'] }]);
    // The join, and the impostor (the router judges it: checkRequest), decoded.
    expect(p.requests.map((f) => [f.type, f.sender, f.groups, f.data.toString()])).toEqual([
      [JOIN_MESS, '#alice#d', ['g1'], ''],
      [FIFO_MESS, '#bob#d', ['g1'], 'not me'],
    ]);
    expect(p.session.messagesIn).toBe(3);
  });

  it('a pre-3.16 library skips auth, and its first requests may come in the same chunk as the connect request', async () => {
    const p = await pair();
    const m = encodeMessage(FIFO_MESS, '#old#d', ['g'], Buffer.from('early'));
    p.client.write(Buffer.concat([encodeConnectRequest({ name: 'old', membership: false, version: [3, 15, 2] }), m, m]));
    await waitFor(() => p.forwarded.length === 2 && p.received().length >= 11, 5000, 'both requests and the accept');
    // Accept without the auth exchange, with the patch byte (3.15+).
    expect(p.received()).toEqual(Buffer.from([1, 5, 0, 1, 6, ...Buffer.from('#old#d')]));
    expect(p.session).toMatchObject({ libraryMajor: 3, membership: false });
  });

  it('output: a turn\'s deliveries reach the client in order, as one flush; counted out', async () => {
    const p = await pair();
    await open(p);
    const before = p.received().length;
    const chunk = Buffer.concat([Buffer.from('A'.repeat(100)), Buffer.from('B'.repeat(100))]);
    p.session.deliverRange(chunk, 0, 100);
    p.session.deliverRange(chunk, 100, 200); // contiguous: one range
    p.session.deliver(Buffer.from('C'.repeat(10)));
    expect(p.session.queued).toBe(210);
    await waitFor(() => p.received().length === before + 210, 5000, 'output');
    expect(p.received().subarray(before).toString()).toBe(`${'A'.repeat(100)}${'B'.repeat(100)}${'C'.repeat(10)}`);
    expect(p.session.messagesOut).toBe(3);
  });

  it('over its budget: one overflow event, muted at once, then closed by the host', async () => {
    const p = await pair({ budget: 256 * 1024 });
    await open(p);
    p.client.pause();
    const big = Buffer.alloc(64 * 1024, 0x61);
    for (let i = 0; i < 200; i++) p.session.deliver(big); // 12.5 MiB in one turn
    await waitFor(() => closeOf(p), 5000, 'close');
    expect(p.events.filter((e) => e.type === 'overflow')).toEqual([{ type: 'overflow', queued: expect.any(Number) }]);
    const ov = p.events.find((e) => e.type === 'overflow') as { queued: number };
    expect(ov.queued).toBeGreaterThan(256 * 1024);
    expect(closeOf(p)).toEqual({ text: 'cut off', phase: 'open', graceful: false, cause: 'dropped' });
    expect(p.session.open).toBe(false);
  });

  it('a client closing after its handshake: graceful, reported once', async () => {
    const p = await pair();
    await open(p);
    p.client.end();
    await waitFor(() => closeOf(p), 5000, 'close');
    p.session.close('again');
    expect(p.events.filter((e) => e.type === 'close')).toEqual([{ type: 'close', reason: { text: 'connection closed by client', phase: 'open', graceful: true, cause: 'hung-up' } }]);
  });

  it('a client hanging up in its handshake: not graceful, cause hung-up', async () => {
    const p = await pair();
    p.client.end(Buffer.from([5, 0]));
    await waitFor(() => closeOf(p), 5000, 'close');
    expect(closeOf(p)).toEqual({ text: 'connection closed during the handshake', phase: 'handshake', graceful: false, cause: 'hung-up' });
  });

  it('a name in use: the reject byte reaches the client, the close reason carries the code, the socket lingers', async () => {
    const p = await pair({ taken: ['alice'] });
    p.client.write(encodeConnectRequest({ name: 'alice', membership: true }));
    await waitFor(() => p.received().length === 1, 5000, 'reject byte');
    expect(p.received().readInt8(0)).toBe(REJECT_NOT_UNIQUE);
    expect(closeOf(p)).toEqual({ text: 'private name "alice" already in use', phase: 'handshake', graceful: false, cause: 'name-in-use', rejectCode: REJECT_NOT_UNIQUE });
    expect(p.lingered).toEqual([p.session.socket]);
  });

  it('an auth method not offered is REJECT_AUTH', async () => {
    const p = await pair();
    p.client.write(encodeConnectRequest({ name: 'x', membership: false }));
    await waitFor(() => p.received().length >= 6, 5000, 'auth list');
    p.client.write(encodeAuthChoice(['IP']));
    await waitFor(() => closeOf(p), 5000, 'close');
    expect(closeOf(p)).toMatchObject({ phase: 'handshake', cause: 'auth', rejectCode: REJECT_AUTH });
    expect(p.received().readInt8(6)).toBe(REJECT_AUTH);
  });

  it('the handshake timeout; while the host hangs, none, and a full timeout after it resumes', async () => {
    const p = await pair({ handshakeTimeout: 150 });
    await waitFor(() => closeOf(p), 5000, 'timeout');
    expect(closeOf(p)).toEqual({ text: 'handshake not completed within 150 ms', phase: 'handshake', graceful: false, cause: 'handshake-timeout' });

    const q = await pair({ handshakeTimeout: 150 });
    q.host.hanging = true;
    q.session.pause();
    await new Promise((r) => setTimeout(r, 450));
    expect(closeOf(q)).toBeUndefined();
    q.host.hanging = false;
    const resumed = Date.now();
    q.session.resume();
    await waitFor(() => closeOf(q), 5000, 'timeout after resume');
    expect(Date.now() - resumed).toBeGreaterThanOrEqual(140);
    expect(closeOf(q)!.cause).toBe('handshake-timeout');
  });

  it('a request breaking the framing is a protocol error: closed, with the reason, nothing more read', async () => {
    const p = await pair();
    await open(p);
    const bad = encodeMessage(FIFO_MESS, '#alice#d', ['g'], Buffer.from('x'));
    bad.writeInt32LE(1_000_000, HDR_DATA_LEN); // past the daemon's limit
    p.client.write(Buffer.concat([bad, encodeMessage(FIFO_MESS, '#alice#d', ['g'], Buffer.from('after'))]));
    await waitFor(() => closeOf(p), 5000, 'close');
    const r = closeOf(p)!;
    expect(r).toMatchObject({ phase: 'open', graceful: false, cause: 'dropped', protocolError: expect.any(String) });
    expect(r.text).toBe(`bad request: ${r.protocolError}`);
    expect(p.forwarded).toEqual([]);
    expect(p.requests).toEqual([]);
  });
});
