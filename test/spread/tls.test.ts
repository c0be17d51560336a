/**
 * #15: TLS between our client and our daemon, in process: a test PKI made
 * by openssl at test time; every refusal has its stable code on the client
 * and its cause counted at the daemon, and the daemon keeps serving good
 * clients in the same test.
 */
import { describe, expect, it } from 'vitest';
import fs from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import { SpreadClient, type SpreadEvent } from '../../src/spread/client.js';
import { type DaemonEvent, SpreadDaemon } from '../../src/spread/daemon.js';
import { type DaemonAddress, parseDaemonAddress, parseListenAddress } from '../../src/spread/address.js';
import { resolveTlsClientOptions } from '../../src/spread/tls.js';
import { ErrorCodes } from '../../src/errors.js';
import { defer, waitFor } from '../helpers.js';
import { testPkiForFile } from '../helpers/tls.js';

const pki = testPkiForFile('spread-pipe-tls-');

async function tlsDaemon(opts: { clientCa?: string; cert?: string; key?: string; maxTlsHandshakes?: number; handshakeTimeout?: number; maxPendingPerAddress?: number } = {}) {
  const daemon = await SpreadDaemon.start({
    name: 'localhost',
    listen: [
      { host: '127.0.0.1', port: 0, tls: true },
      { host: '127.0.0.1', port: 0 },
    ],
    tls: { cert: opts.cert ?? pki.server.cert, key: opts.key ?? pki.server.key, clientCa: opts.clientCa },
    maxTlsHandshakes: opts.maxTlsHandshakes,
    handshakeTimeout: opts.handshakeTimeout,
    maxPendingPerAddress: opts.maxPendingPerAddress,
  });
  defer(() => daemon.close());
  const events: DaemonEvent[] = [];
  daemon.on('event', (e: DaemonEvent) => events.push(e));
  const tlsPort = daemon.tlsAddresses[0]!.port;
  const plainPort = daemon.tcp.find((a) => a.port !== tlsPort)!.port;
  return { daemon, events, tlsPort, plainPort, causes: () => events.flatMap((e) => (e.type === 'reject' ? [e.cause] : [])) };
}

function tlsAt(port: number, o: { ca?: string; cert?: string; key?: string; servername?: string; host?: string } = {}): DaemonAddress {
  const a = parseDaemonAddress(`tls://${o.host ?? '127.0.0.1'}:${port}`);
  return { ...a, tls: resolveTlsClientOptions({ ca: o.ca ?? pki.ca, cert: o.cert, key: o.key, servername: o.servername }) } as DaemonAddress;
}

async function connect(daemon: DaemonAddress | string, name?: string): Promise<{ c: SpreadClient; events: SpreadEvent[] }> {
  const c = await SpreadClient.connect({ daemon, name, membership: false, connectTimeout: 5000 });
  defer(() => c.destroy());
  const events: SpreadEvent[] = [];
  c.on('message', (e: SpreadEvent) => events.push(e));
  c.on('close', () => {});
  return { c, events };
}

function dataOf(events: SpreadEvent[]): Buffer {
  return Buffer.concat(events.flatMap((e) => (e.kind === 'data' ? [e.frame.data] : [])));
}

/** A receiver on the plain port and proof that the daemon still serves: a publisher over TLS reaches it. */
async function stillServes(d: { tlsPort: number; plainPort: number }, tag = 'web1', cred?: { cert?: string; key?: string; servername?: string }): Promise<void> {
  const rx = await connect(`${d.plainPort}@127.0.0.1`);
  rx.c.join('still');
  await new Promise((r) => setTimeout(r, 50));
  const pub = await connect(tlsAt(d.tlsPort, cred ?? {}));
  pub.c.multicast('still', Buffer.from(`${tag} still serving\n`));
  await waitFor(() => dataOf(rx.events).toString() === `${tag} still serving\n`, 5000, 'the good client served');
}

describe('#15: TLS listener and client', () => {
  it('#15: tls:// addresses parse (IPv6 bracketed), and a bad one says so', () => {
    expect(parseDaemonAddress('tls://127.0.0.1:4803')).toMatchObject({ kind: 'tls', host: '127.0.0.1', port: 4803, label: 'tls://127.0.0.1:4803' });
    expect(parseDaemonAddress('tls://[::1]:4803')).toMatchObject({ kind: 'tls', host: '::1', port: 4803, label: 'tls://[::1]:4803' });
    expect(() => parseDaemonAddress('tls://host')).toThrow(expect.objectContaining({ code: ErrorCodes.ILLEGAL_SPREAD }));
    expect(() => parseDaemonAddress('tls://host:99999')).toThrow(expect.objectContaining({ code: ErrorCodes.ILLEGAL_SPREAD }));
    expect(parseListenAddress('tls://127.0.0.1:4804')).toEqual({ host: '127.0.0.1', port: 4804, tls: true });
    expect(parseListenAddress('tls://[::1]:4804')).toEqual({ host: '::1', port: 4804, tls: true });
    expect(parseListenAddress('tls://4804')).toEqual({ port: 4804, tls: true });
    expect(() => parseListenAddress('tls:///tmp/4804')).toThrow(expect.objectContaining({ code: ErrorCodes.INVALID_ARGUMENT }));
    expect(() => parseListenAddress('tls:4804')).toThrow(expect.objectContaining({ code: ErrorCodes.INVALID_ARGUMENT }));
  });

  it('#15: messages over TLS arrive byte-exact, TLS and plain clients in one group', async () => {
    const d = await tlsDaemon();
    const plainRx = await connect(`${d.plainPort}@127.0.0.1`, 'plainrx');
    const tlsRx = await connect(tlsAt(d.tlsPort), 'tlsrx');
    plainRx.c.join('g');
    tlsRx.c.join('g');
    await new Promise((r) => setTimeout(r, 50));
    const pub = await connect(tlsAt(d.tlsPort, { host: 'localhost' }), 'pub');
    const bodies = Array.from({ length: 300 }, (_, i) => Buffer.from(Array.from({ length: 1 + ((i * 97) % 5000) }, (_, j) => (i + j) % 256)));
    for (const b of bodies) pub.c.multicast('g', b);
    const want = Buffer.concat(bodies);
    await waitFor(() => dataOf(plainRx.events).length >= want.length && dataOf(tlsRx.events).length >= want.length, 10_000, 'all messages');
    expect(dataOf(plainRx.events).equals(want)).toBe(true);
    expect(dataOf(tlsRx.events).equals(want)).toBe(true);
    expect(d.causes()).toEqual([]);
  });

  it('#15: untrusted, expired and wrong-name daemon certificates: refused with their codes', async () => {
    const untrusted = await tlsDaemon({ cert: pki.untrusted.cert, key: pki.untrusted.key });
    await expect(connect(tlsAt(untrusted.tlsPort))).rejects.toMatchObject({ code: ErrorCodes.TLS_UNTRUSTED, message: expect.stringContaining(`tls://127.0.0.1:${untrusted.tlsPort}`) });
    const expired = await tlsDaemon({ cert: pki.expired.cert, key: pki.expired.key });
    await expect(connect(tlsAt(expired.tlsPort))).rejects.toMatchObject({ code: ErrorCodes.TLS_EXPIRED, message: expect.stringContaining('has expired') });
    const wrong = await tlsDaemon({ cert: pki.wrongName.cert, key: pki.wrongName.key });
    await expect(connect(tlsAt(wrong.tlsPort))).rejects.toMatchObject({ code: ErrorCodes.TLS_NAME_MISMATCH });
    // --tls-servername names what the certificate must carry.
    await connect(tlsAt(wrong.tlsPort, { servername: 'other.example' }));
    await expect(connect(tlsAt(wrong.tlsPort, { servername: 'third.example' }))).rejects.toMatchObject({ code: ErrorCodes.TLS_NAME_MISMATCH });
    // Each daemon saw a failed handshake (the client's alert), counted; and serves good clients.
    for (const d of [untrusted, expired, wrong]) await waitFor(() => d.causes().includes('tls-handshake'), 5000, 'the failed handshake counted');
    await stillServes(wrong, 'web1', { servername: 'other.example' });
  });

  it('#15: plaintext to a TLS port and TLS to a plain port: refused, counted, clear codes', async () => {
    const d = await tlsDaemon();
    await expect(connect(`${d.tlsPort}@127.0.0.1`)).rejects.toMatchObject({ code: ErrorCodes.TLS_EXPECTED, message: expect.stringContaining('tls://') });
    await expect(connect(tlsAt(d.plainPort))).rejects.toMatchObject({ code: ErrorCodes.TLS_HANDSHAKE, message: expect.stringContaining('plain Spread port') });
    await waitFor(() => d.causes().includes('plaintext-on-tls') && d.causes().includes('tls-on-plain'), 5000, 'both refusals counted');
    expect(d.daemon.getStats().rejected).toBe(2);
    await stillServes(d);
  });

  it('#15: mutual TLS: no client certificate, or one of another CA, is refused; a good one gets in', async () => {
    const d = await tlsDaemon({ clientCa: pki.ca });
    await expect(connect(tlsAt(d.tlsPort))).rejects.toMatchObject({ code: ErrorCodes.TLS_HANDSHAKE, message: expect.stringContaining('client certificate') });
    await waitFor(() => d.causes().includes('tls-no-client-cert'), 5000, 'no client certificate counted');
    await expect(connect(tlsAt(d.tlsPort, pki.rogue))).rejects.toMatchObject({ code: ErrorCodes.TLS_HANDSHAKE });
    await waitFor(() => d.causes().includes('tls-bad-client-cert'), 5000, 'the rogue certificate counted');
    await stillServes(d, 'web1', pki.web1);
  });

  it('#15: mutual TLS: a host tag the certificate does not name is refused and counted; CN and DNS SANs pass', async () => {
    const d = await tlsDaemon({ clientCa: pki.ca });
    const rx = await connect(`${d.plainPort}@127.0.0.1`);
    rx.c.join('logs');
    await new Promise((r) => setTimeout(r, 50));
    const web1 = await connect(tlsAt(d.tlsPort, pki.web1));
    web1.c.multicast('logs', Buffer.from('web1 GET /a\n'));
    web1.c.multicast('logs', Buffer.from('web2 GET /forged\n'));
    web1.c.multicast('logs', Buffer.from('WEB1.example GET /b\nweb1 GET /c\n'));
    web1.c.multicast('logs', Buffer.from('web1 GET /d\nweb2 GET /forged-in-a-batch\n'));
    const web2 = await connect(tlsAt(d.tlsPort, pki.web2));
    web2.c.multicast('logs', Buffer.from('web2 GET /e\n'));
    await waitFor(() => dataOf(rx.events).includes('/e'), 5000, 'web2 line');
    expect(dataOf(rx.events).toString()).toBe('web1 GET /a\nWEB1.example GET /b\nweb1 GET /c\nweb2 GET /e\n');
    expect(d.daemon.getStats().forgedTags).toBe(2);
    const forged = d.events.filter((e) => e.type === 'forged-tag');
    expect(forged).toMatchObject([
      { tag: 'web2', names: ['web1', 'web1.example'] },
      { tag: 'web2', names: ['web1', 'web1.example'] },
    ]);
    // The session goes on.
    web1.c.multicast('logs', Buffer.from('web1 GET /f\n'));
    await waitFor(() => dataOf(rx.events).includes('/f'), 5000, 'web1 goes on');
  });

  it('#15: over the cap of TLS handshakes in progress, connections are closed unread and counted', async () => {
    const d = await tlsDaemon({ maxTlsHandshakes: 2, handshakeTimeout: 3000 });
    const idle: net.Socket[] = [];
    for (let i = 0; i < 2; i++) {
      const s = net.connect(d.tlsPort, '127.0.0.1');
      s.on('error', () => {});
      idle.push(s);
      defer(() => s.destroy());
    }
    await waitFor(() => d.daemon.getStats().tlsHandshaking === 2, 5000, 'two handshakes in progress');
    const third = net.connect(d.tlsPort, '127.0.0.1');
    third.on('error', () => {});
    defer(() => third.destroy());
    await new Promise((r) => third.once('close', r));
    await waitFor(() => d.causes().includes('tls-busy'), 5000, 'tls-busy counted');
    // Once they go, a real client gets in.
    for (const s of idle) s.destroy();
    await waitFor(() => d.daemon.getStats().tlsHandshaking === 0, 5000, 'handshakes gone');
    await stillServes(d);
    expect(d.causes().filter((c) => c === 'tls-busy')).toHaveLength(1);
  });

  it('#15: a TLS connection counts as pending (--max-pending-per-address) through its TLS and Spread handshakes, not after', async () => {
    const d = await tlsDaemon({ maxPendingPerAddress: 2, handshakeTimeout: 5000 });
    const idle = net.connect(d.tlsPort, '127.0.0.1');
    idle.on('error', () => {});
    defer(() => idle.destroy());
    await waitFor(() => d.daemon.getStats().pending === 1, 5000, 'one pending');
    // A session past both handshakes is not pending any more.
    await connect(tlsAt(d.tlsPort), 'ok1');
    expect(d.daemon.getStats()).toMatchObject({ pending: 1, sessions: 1 });
    const idle2 = net.connect(d.tlsPort, '127.0.0.1');
    idle2.on('error', () => {});
    defer(() => idle2.destroy());
    await waitFor(() => d.daemon.getStats().pending === 2, 5000, 'two pending');
    const third = net.connect(d.tlsPort, '127.0.0.1');
    third.on('error', () => {});
    defer(() => third.destroy());
    await waitFor(() => d.causes().includes('pending-per-address'), 5000, 'the third refused');
    expect(d.daemon.getStats().tlsHandshaking).toBe(2);
  });

  it('#15: close() does not wait for connections still in their TLS handshake', async () => {
    const d = await tlsDaemon({ handshakeTimeout: 20_000 });
    const idle = net.connect(d.tlsPort, '127.0.0.1');
    idle.on('error', () => {});
    defer(() => idle.destroy());
    await waitFor(() => d.daemon.getStats().tlsHandshaking === 1, 5000, 'a handshake in progress');
    const t0 = Date.now();
    await d.daemon.close();
    expect(Date.now() - t0).toBeLessThan(2000);
  });

  it('#15: reloadTls() takes renewed files for new connections; a bad file keeps the old ones', async () => {
    const certFile = path.join(pki.dir, 'live.pem');
    const keyFile = path.join(pki.dir, 'live.key');
    fs.copyFileSync(pki.untrusted.cert, certFile);
    fs.copyFileSync(pki.untrusted.key, keyFile);
    const d = await tlsDaemon({ cert: certFile, key: keyFile });
    await expect(connect(tlsAt(d.tlsPort))).rejects.toMatchObject({ code: ErrorCodes.TLS_UNTRUSTED });
    fs.copyFileSync(pki.server.cert, certFile);
    fs.copyFileSync(pki.server.key, keyFile);
    expect(d.daemon.reloadTls()).toBe(true);
    await connect(tlsAt(d.tlsPort));
    fs.writeFileSync(keyFile, 'garbage');
    expect(d.daemon.reloadTls()).toBe(false);
    expect(d.events.filter((e) => e.type === 'tls-reload')).toMatchObject([{ files: `${certFile}, ${keyFile}` }, { error: expect.stringContaining(keyFile) }]);
    await connect(tlsAt(d.tlsPort));
  });

  it('#15: a client re-reads its TLS files at the next connect when they changed (renewal without restart)', async () => {
    const d = await tlsDaemon({ clientCa: pki.ca });
    const cert = path.join(pki.dir, 'client-live.pem');
    const key = path.join(pki.dir, 'client-live.key');
    fs.copyFileSync(pki.rogue.cert, cert);
    fs.copyFileSync(pki.rogue.key, key);
    const address = tlsAt(d.tlsPort, { cert, key });
    await expect(connect(address)).rejects.toMatchObject({ code: ErrorCodes.TLS_HANDSHAKE });
    // Renewed in place: the same address object dials with the new certificate.
    fs.copyFileSync(pki.web1.cert, cert);
    fs.copyFileSync(pki.web1.key, key);
    await connect(address, 'renewed');
    // A renewal gone wrong is said at the next connect, naming the file.
    fs.writeFileSync(key, 'garbage\n');
    await expect(connect(address)).rejects.toMatchObject({ code: ErrorCodes.TLS_FILE, message: expect.stringContaining(key) });
  });

  it('#15: unusable TLS files stop the start with SP_ERR_TLS_FILE naming the file', async () => {
    await expect(SpreadDaemon.start({ listen: [{ host: '127.0.0.1', port: 0, tls: true }], tls: { cert: path.join(pki.dir, 'none.pem'), key: pki.server.key } })).rejects.toMatchObject({
      code: ErrorCodes.TLS_FILE,
      message: expect.stringContaining('none.pem'),
    });
    await expect(SpreadDaemon.start({ listen: [{ host: '127.0.0.1', port: 0, tls: true }], tls: { cert: pki.server.cert, key: pki.web1.key } })).rejects.toMatchObject({
      code: ErrorCodes.TLS_FILE,
      message: expect.stringContaining('does not match'),
    });
    expect(() => resolveTlsClientOptions({ ca: path.join(pki.dir, 'none.pem') })).toThrow(expect.objectContaining({ code: ErrorCodes.TLS_FILE }));
    expect(() => resolveTlsClientOptions({ cert: pki.web1.cert })).toThrow(expect.objectContaining({ code: ErrorCodes.INVALID_ARGUMENT }));
  });
});
