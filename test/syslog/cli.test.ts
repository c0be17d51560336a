/**
 * `spread-pipe --syslog ...` as a real process: datagrams over UDP and a
 * unix socket reach `spread-pipe tail` subscribers through the built-in
 * daemon, routed by tag; refused datagrams are reported on stderr and the
 * bridge keeps going; stdin is read only with --stdin; SIGTERM removes the
 * socket. Usage errors exit 2 before anything is bound.
 */
import fs from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { expectCountersAddUp, feedStdin, sendUdp, sendUnixDgram, startBridge, startCli, startDaemon, tempDir } from '../helpers.js';

const L = (s: string): Buffer => Buffer.from(s, 'latin1');

async function tail(spec: string, group: string, count: number) {
  const t = startCli(['tail', '-g', group, '-s', spec, '--count', String(count), '--membership']);
  await t.waitStdout((s) => s.includes(`# membership ${group}: join`));
  return { t, lines: async (): Promise<string[]> => (expect(await t.exited).toBe(0), t.stdout().toString('latin1').trimEnd().split('\n').slice(1)) };
}

describe('spread-pipe --syslog', () => {
  it.each([
    [['--syslog', 'tcp://127.0.0.1:514', '-g', 'g']],
    [['--syslog', 'udp://127.0.0.1:0', '--route', 'nogroup', '-g', 'g']],
    [['--syslog', 'udp://127.0.0.1:0', '--route', 'tag=bad group']],
    [['--syslog', 'udp://127.0.0.1:0']],
    [['--syslog', 'unix:/tmp/x.sock', '--syslog-mode', '0777', '-g', 'g']],
    [['--syslog', 'unix:/tmp/x.sock', '--syslog-group', 'no-such-group-here', '-g', 'g']],
    [['--route', 'a=b', '-g', 'g']],
    [['--stdin', '-g', 'g']],
  ])('exits 2 with one line for %j', async (args) => {
    const p = startCli(args);
    expect(await p.exited).toBe(2);
    const err = p.stderr().trim().split('\n');
    expect(err).toHaveLength(1);
    expect(err[0]).toMatch(/^spread-pipe: /);
  });

  it('a socket that cannot be bound is a runtime failure (exit 1), nothing left behind', async () => {
    const dir = tempDir();
    const p = startCli(['--syslog', `unix:${dir}/missing-dir/s.sock`, '-g', 'g', '-s', '1@127.0.0.1'], { stdin: 'ignore' });
    expect(await p.exited).toBe(1);
    expect(p.stderr()).toMatch(/cannot listen on/);
  });

  it('publishes UDP and unix datagrams, routed by tag, with the host field or -h', async () => {
    const { spec } = await startDaemon();
    const dir = tempDir();
    fs.chmodSync(dir, 0o755);
    const sock = path.join(dir, 'syslog.sock');
    const web = await tail(spec, 'web', 3);
    const apps = await tail(spec, 'apps', 2);
    const b = await startBridge(['--syslog', 'udp://127.0.0.1:0', '--syslog', `unix:${sock}`, '-g', 'web', '--route', 'app=apps', '-s', spec, '-h', 'me'], { stdin: 'ignore' });
    expect(fs.lstatSync(sock).mode & 0o777).toBe(0o660);
    await sendUdp(b.udpPorts[0]!, [
      L('<190>Nov 23 06:42:47 web7 jigdo: 127.0.0.1 - - "GET /a"'),
      L('<13>1 2026-11-23T06:00:00Z srv app - - - five424 line'),
      L('junk without pri'),
      Buffer.from([0x16, 0x03, 0x01, 0x00]),
    ]);
    await sendUnixDgram(sock, [L('<190>Nov 23 06:42:47 jigdo: 127.0.0.1 - - "GET /b"'), L('<190>Nov 23 06:42:47 app: via unix'), L('<190>Nov 23 06:42:47 h t: x\ny')]);
    await sendUdp(b.udpPorts[0]!, [L('<190>Nov 23 06:42:47 web7 jigdo: after the junk')]);
    expect((await web.lines()).sort()).toEqual(['me 127.0.0.1 - - "GET /b"', 'web7 127.0.0.1 - - "GET /a"', 'web7 after the junk']);
    expect((await apps.lines()).sort()).toEqual(['me via unix', 'srv five424 line']);
    await b.proc.waitStderr((s) => /refused syslog datagrams: .*no-pri=1/.test(s));
    b.proc.kill('SIGTERM');
    expect(await b.proc.exited).toBe(0);
    expectCountersAddUp(b.proc.stderr());
    expect(fs.existsSync(sock)).toBe(false);
    const err = b.proc.stderr();
    expect(err).toMatch(/exit: syslog datagrams=8 lines=5 truncated=0 refused=3 \(no-pri=1 binary=2\)/);
    expect(err).toMatch(/sent_lines=5 /);
  });

  it('does not read stdin without --stdin, and stdin EOF does not stop the bridge', async () => {
    const { spec } = await startDaemon();
    const web = await tail(spec, 'web', 1);
    const b = await startBridge(['--syslog', 'udp://127.0.0.1:0', '-g', 'web', '-s', spec, '-h', 'me']);
    await feedStdin(b.proc, 'a stdin line\n'); // written and closed: ignored
    await sendUdp(b.udpPorts[0]!, [L('<190>Nov 23 06:42:47 h t: datagram')]);
    expect(await web.lines()).toEqual(['h datagram']);
    expect(b.proc.child.exitCode).toBeNull();
    b.proc.kill('SIGTERM');
    expect(await b.proc.exited).toBe(0);
    expectCountersAddUp(b.proc.stderr());
    expect(b.proc.stderr()).toMatch(/read=0 /);
  });

  it('with --stdin takes both, and keeps taking datagrams after stdin ends', async () => {
    const { spec } = await startDaemon();
    const web = await tail(spec, 'web', 2);
    const b = await startBridge(['--syslog', 'udp://127.0.0.1:0', '--stdin', '-g', 'web', '-s', spec, '-h', 'me']);
    await feedStdin(b.proc, 'a stdin line\n');
    await b.proc.waitStderr((s) => s.includes('stdin closed; still taking syslog datagrams'));
    await sendUdp(b.udpPorts[0]!, [L('<190>Nov 23 06:42:47 h t: datagram')]);
    expect((await web.lines()).sort()).toEqual(['h datagram', 'me a stdin line']);
    b.proc.kill('SIGTERM');
    expect(await b.proc.exited).toBe(0);
    expectCountersAddUp(b.proc.stderr());
  });
});
