/**
 * The syslog listener on real sockets: UDP on 127.0.0.1 port 0, and unix
 * datagram sockets in a temporary directory (created 0660 or as asked,
 * never left behind, never stolen from a live process).
 */
import dgram from 'node:dgram';
import fs from 'node:fs';
import path from 'node:path';
import { createSocket as createUnixSocket } from 'unix-dgram';
import { describe, expect, it } from 'vitest';
import { ErrorCodes } from '../../src/errors.js';
import { DEFAULT_SOCKET_MODE, type SyslogSpec, SyslogListener, parseSocketMode, parseSyslogSpec, resolveGroup } from '../../src/syslog/listener.js';
import { defer, sendUnixDgram, tempDir, waitFor } from '../helpers.js';

type Got = Array<{ d: Buffer; source: SyslogSpec }>;

async function listen(specs: string[], opts: Parameters<typeof SyslogListener.start>[2] = {}): Promise<{ l: SyslogListener; got: Got }> {
  const got: Got = [];
  const l = await SyslogListener.start(
    specs.map(parseSyslogSpec),
    (d, source) => got.push({ d: Buffer.from(d), source }),
    opts,
  );
  defer(() => l.close());
  return { l, got };
}

function sendUdp(label: string, datagrams: Buffer[]): Promise<void> {
  const m = /^udp:\/\/(.+):(\d+)$/.exec(label)!;
  const sock = dgram.createSocket('udp4');
  return new Promise<void>((resolve, reject) => {
    let left = datagrams.length;
    for (const d of datagrams) {
      sock.send(d, Number(m[2]), m[1], (e) => {
        if (e) reject(e);
        else if (--left === 0) sock.close(() => resolve());
      });
    }
  });
}

describe('parseSyslogSpec', () => {
  it('reads udp://HOST:PORT (IPv4, [IPv6], localhost) and unix:/PATH', () => {
    expect(parseSyslogSpec('udp://127.0.0.1:5514')).toMatchObject({ kind: 'udp', host: '127.0.0.1', port: 5514 });
    expect(parseSyslogSpec('udp://[::1]:514')).toMatchObject({ kind: 'udp', host: '::1', port: 514 });
    expect(parseSyslogSpec('udp://localhost:0')).toMatchObject({ kind: 'udp', host: '127.0.0.1', port: 0 });
    expect(parseSyslogSpec('unix:/run/spread-pipe.sock')).toMatchObject({ kind: 'unix', path: '/run/spread-pipe.sock' });
  });

  it.each(['udp://127.0.0.1', 'udp://127.0.0.1:70000', 'udp://loghost:514', 'tcp://127.0.0.1:514', 'unix:relative.sock', `unix:/${'x'.repeat(120)}`, '127.0.0.1:514'])(
    'refuses %j with INVALID_ARGUMENT',
    (text) => {
      expect(() => parseSyslogSpec(text)).toThrow(expect.objectContaining({ code: ErrorCodes.INVALID_ARGUMENT }));
    },
  );
});

describe('parseSocketMode and resolveGroup', () => {
  it('modes are octal, without execute bits', () => {
    expect(parseSocketMode('0660')).toBe(0o660);
    expect(parseSocketMode('666')).toBe(0o666);
    for (const bad of ['rw', '0777', '9', '06600']) expect(() => parseSocketMode(bad)).toThrow(expect.objectContaining({ code: ErrorCodes.INVALID_ARGUMENT }));
  });

  it('groups by number or by name from the group file', () => {
    const dir = tempDir();
    const file = path.join(dir, 'group');
    fs.writeFileSync(file, 'root:x:0:\nwww-data:x:33:\nnginx:x:101:www-data\n');
    expect(resolveGroup('33', file)).toBe(33);
    expect(resolveGroup('www-data', file)).toBe(33);
    expect(resolveGroup('nginx', file)).toBe(101);
    expect(() => resolveGroup('nobody-here', file)).toThrow(expect.objectContaining({ code: ErrorCodes.INVALID_ARGUMENT }));
  });
});

describe('UDP', () => {
  it('hands on every datagram as received, naming the socket as bound', async () => {
    const { l, got } = await listen(['udp://127.0.0.1:0']);
    expect(l.bound[0]).toMatch(/^udp:\/\/127\.0\.0\.1:[1-9]\d*$/);
    const sent = Array.from({ length: 50 }, (_, i) => Buffer.from(`<190>Jan  5 01:02:03 h t: line ${i}`));
    sent.push(Buffer.alloc(0), Buffer.alloc(60_000, 0x61));
    await sendUdp(l.bound[0]!, sent);
    await waitFor(() => got.length === sent.length, 5000, 'datagrams');
    expect(got.map((g) => g.d)).toEqual(sent);
    expect(got[0]!.source.label).toBe(l.bound[0]);
  });

  it('raises the receive buffer and reports what the kernel granted', async () => {
    const { l } = await listen(['udp://127.0.0.1:0'], { recvBuffer: 1 << 20 });
    const rb = l.sockets[0]!.recvBuffer!;
    const max = Number(fs.readFileSync('/proc/sys/net/core/rmem_max', 'utf8'));
    // Linux keeps min(asked, rmem_max) and reports double that (bookkeeping overhead).
    expect(rb).toBe(2 * Math.min(1 << 20, max));
  });

  it('listens on IPv6 loopback too', async () => {
    const { l } = await listen(['udp://[::1]:0']);
    expect(l.bound[0]).toMatch(/^udp:\/\/\[::1\]:\d+$/);
  });

  it('a port already taken fails to start, and nothing stays bound', async () => {
    const { l } = await listen(['udp://127.0.0.1:0']);
    const dir = tempDir();
    const sock = path.join(dir, 'first.sock');
    await expect(SyslogListener.start([parseSyslogSpec(`unix:${sock}`), parseSyslogSpec(l.bound[0]!)], () => {})).rejects.toMatchObject({
      code: ErrorCodes.LISTEN,
    });
    // The unix socket bound before the failure was closed and removed.
    expect(fs.existsSync(sock)).toBe(false);
  });
});

describe('unix datagram sockets (nginx syslog:server=unix:)', () => {
  it('receives what an unbound sender sendto()s, as nginx does', async () => {
    const dir = tempDir();
    const file = path.join(dir, 'syslog.sock');
    const { l, got } = await listen([`unix:${file}`]);
    expect(l.bound).toEqual([`unix:${file}`]);
    const sent = Array.from({ length: 5 }, (_, i) => Buffer.from(`<190>Jan  5 01:02:03 h viaunix: line ${i}`));
    await sendUnixDgram(file, sent);
    await waitFor(() => got.length === sent.length, 5000, 'datagrams');
    expect(got.map((g) => g.d)).toEqual(sent);
    expect(got[0]!.source).toMatchObject({ kind: 'unix', path: file });
  });

  it('is created 0660 by default, whatever the umask, and removed on close', async () => {
    const dir = tempDir();
    const file = path.join(dir, 'syslog.sock');
    const old = process.umask(0);
    try {
      const { l } = await listen([`unix:${file}`]);
      const st = fs.lstatSync(file);
      expect(st.isSocket()).toBe(true);
      expect(st.mode & 0o777).toBe(DEFAULT_SOCKET_MODE);
      l.close();
      expect(fs.existsSync(file)).toBe(false);
      l.close(); // idempotent
    } finally {
      process.umask(old);
    }
  });

  it('takes another mode and group when asked', async () => {
    const dir = tempDir();
    const file = path.join(dir, 'syslog.sock');
    const gid = process.getgroups?.().find((g) => g !== process.getegid?.()) ?? process.getegid!();
    await listen([`unix:${file}`], { socketMode: 0o620, socketGroup: gid });
    const st = fs.lstatSync(file);
    expect(st.mode & 0o777).toBe(0o620);
    expect(st.gid).toBe(gid);
  });

  it('replaces a stale socket left by a dead process', async () => {
    const dir = tempDir();
    const file = path.join(dir, 'syslog.sock');
    const dead = createUnixSocket('unix_dgram');
    dead.bind(file);
    dead.close(); // the file stays, nobody reads it
    expect(fs.lstatSync(file).isSocket()).toBe(true);
    const { got } = await listen([`unix:${file}`]);
    await sendUnixDgram(file, [Buffer.from('<13>Jan  5 01:02:03 h t: after')]);
    await waitFor(() => got.length === 1, 5000, 'datagram');
  });

  it('refuses a path a live process still reads, and leaves it alone', async () => {
    const dir = tempDir();
    const file = path.join(dir, 'syslog.sock');
    const { got } = await listen([`unix:${file}`]);
    await expect(listen([`unix:${file}`])).rejects.toMatchObject({ code: ErrorCodes.LISTEN, message: expect.stringContaining('in use') });
    await sendUnixDgram(file, [Buffer.from('<13>Jan  5 01:02:03 h t: still mine')]);
    await waitFor(() => got.length === 1, 5000, 'datagram to the first listener');
  });

  it('refuses a path that is not a socket, and does not touch it', async () => {
    const dir = tempDir();
    const file = path.join(dir, 'precious.log');
    fs.writeFileSync(file, 'keep me\n');
    await expect(listen([`unix:${file}`])).rejects.toMatchObject({ code: ErrorCodes.LISTEN });
    expect(fs.readFileSync(file, 'utf8')).toBe('keep me\n');
  });

  it('on close, does not remove a socket another process has put at the path since', async () => {
    const dir = tempDir();
    const file = path.join(dir, 'syslog.sock');
    const { l } = await listen([`unix:${file}`]);
    fs.rmSync(file);
    const other = createUnixSocket('unix_dgram');
    other.bind(file);
    defer(() => other.close());
    l.close();
    expect(fs.lstatSync(file).isSocket()).toBe(true);
  });
});
