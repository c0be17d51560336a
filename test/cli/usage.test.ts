/**
 * #11 regressions at the edges of the command line, as real processes: each
 * failed on e07b36d (greedy options, options given twice taken as lists,
 * empty values, 101 groups, tail --count, a spool that turned itself off,
 * messages, the /tmp/4803 default, --help and --version, counters' print).
 */
import { describe, expect, it } from 'vitest';
import fs from 'node:fs';
import path from 'node:path';
import { connectClient, feedStdin, sendUdp, startBridge, startCli, startDaemon, tempDir, waitFor } from '../helpers.js';
import { VERSION } from '../../src/version.js';
import { RELIABLE_MESS } from '../../src/spread/constants.js';

/** Exit code and the one stderr line of a run that must fail before doing anything. */
async function fails(args: string[], code = 2): Promise<string> {
  const p = startCli(args);
  // stdin stays open: a run that read it would wait here instead of exiting.
  expect(await p.exited).toBe(code);
  const lines = p.stderr().trim().split('\n');
  expect(lines, p.stderr()).toHaveLength(1);
  expect(lines[0]).toMatch(/^spread-pipe: /);
  return lines[0]!;
}

/** A daemon that counts every connection attempt that reached the handshake. */
async function watchedDaemon(): Promise<{ spec: string; sessions: () => number }> {
  const { daemon, spec } = await startDaemon();
  let n = 0;
  daemon.on('event', (e: { type: string }) => {
    if (e.type === 'connect' || e.type === 'reject') n++;
  });
  return { spec, sessions: () => n };
}

describe('#11: every option takes exactly one value', () => {
  it('#11: -g takes one value; a stray word is a usage error, not a group', async () => {
    const d = await watchedDaemon();
    expect(await fails(['-g', 'jigdo', 'oops', '-s', d.spec])).toMatch(/unexpected argument "oops" after "-g jigdo"/);
    expect(await fails(['-s', d.spec, '-g', 'jigdo', '--route', 'a=b', 'x'])).toMatch(/unexpected argument "x"/);
    expect(d.sessions()).toBe(0);
  });

  it('#11: a single-value option given twice is a usage error naming it', async () => {
    const d = await watchedDaemon();
    const runs = await Promise.all([
      fails(['-g', 'g', '-s', d.spec, '--connect-timeout', '100', '--connect-timeout', '200']),
      fails(['-g', 'g', '-s', d.spec, '-h', 'a', '-h', 'b']),
      fails(['-g', 'g', '-s', d.spec, '--service', 'agreed', '--service', 'safe']),
      fails(['-g', 'g', '-s', d.spec, '--spool', 'X', '--spool', 'Y']),
    ]);
    expect(runs[0]).toMatch(/--connect-timeout given twice/);
    expect(runs[1]).toMatch(/-h\/--host given twice/);
    expect(runs[2]).toMatch(/--service given twice/);
    expect(runs[3]).toMatch(/--spool given twice/);
    expect(runs.join('\n')).not.toMatch(/TypeError|ERR_/);
    expect(d.sessions()).toBe(0);
  });

  it('#11: -s or -h without a value, or with an empty one, is a usage error', async () => {
    const runs = await Promise.all([fails(['-g', 'g', '-s']), fails(['-g', 'g', '-s', '']), fails(['-g', 'g', '-h']), fails(['-g', 'g', '-h', ''])]);
    expect(runs[0]).toMatch(/-s\/--spread needs a value/);
    expect(runs[1]).toMatch(/-s\/--spread needs a value, got an empty string/);
    expect(runs[2]).toMatch(/-h\/--host needs a value/);
    expect(runs[3]).toMatch(/-h\/--host needs a value, got an empty string/);
  });

  it('#11: more than 100 groups (Spread\'s limit per message) is a usage error; #16: --ack adds no group (its markers go alone)', async () => {
    const d = await watchedDaemon();
    const groups = (n: number): string[] => Array.from({ length: n }, (_, i) => ['-g', `g${i}`]).flat();
    expect(await fails([...groups(101), '-s', d.spec])).toMatch(/-g\/--group: Spread sends one message to at most 100 groups.*got 101/);
    const withAck = await fails([...groups(101), '--ack', '-s', d.spec]);
    expect(withAck).toMatch(/-g\/--group: Spread sends one message to at most 100 groups, got 101/);
    expect(withAck).not.toMatch(/private group/);
    expect(d.sessions()).toBe(0);
  });
});

describe('#11: tail --count', () => {
  it('#11: tail --count N exits after exactly N messages even when they arrive together; --count 0 is a usage error', async () => {
    const { spec } = await startDaemon();
    const tails = [1, 2, 5].map((n) => ({ n, p: startCli(['tail', '-g', 'burst', '-s', spec, '--count', String(n)]) }));
    const { c } = await connectClient(spec, 'sender', false);
    const { c: watcher, events } = await connectClient(spec, 'watcher', true);
    watcher.join('burst');
    // Every tail has joined when the watcher has seen 4 members (3 tails and itself).
    await waitFor(() => events.some((e) => e.kind === 'membership' && e.info.members.length === 4), 15_000, 'tails joined');
    // Ten messages in one turn: one socket write, one chunk at each tail.
    for (let i = 0; i < 10; i++) c.multicast(['burst'], Buffer.from(`m${i}\n`), { service: RELIABLE_MESS });
    for (const { n, p } of tails) {
      expect(await p.exited).toBe(0);
      expect(p.stdout().toString()).toBe(Array.from({ length: n }, (_, i) => `m${i}\n`).join(''));
    }
    expect(await fails(['tail', '-g', 'burst', '-s', spec, '--count', '0'])).toMatch(/--count: must be at least 1 message, got 0/);
  });
});

describe('#11: --spool that cannot be used', () => {
  it('#11: a --spool directory that cannot be created or written stops the start with one line, exit 1, stdin unread', async () => {
    const d = await watchedDaemon();
    const dir = tempDir();
    const file = path.join(dir, 'a-file');
    fs.writeFileSync(file, 'in the way');
    const input = path.join(dir, 'stdin');
    fs.writeFileSync(input, 'line\n'.repeat(1000));
    for (const spool of ['/proc/spread-pipe-spool', file, path.join(file, 'sub')]) {
      const fd = fs.openSync(input, 'r');
      const p = startCli(['-g', 'g', '-s', d.spec, '--spool', spool], { stdin: fd });
      expect(await p.exited).toBe(1);
      // The shared offset did not move: stdin was not read.
      expect(fs.readSync(fd, Buffer.alloc(10), 0, 10, null)).toBe(10);
      fs.closeSync(fd);
      const lines = p.stderr().trim().split('\n');
      expect(lines).toHaveLength(1);
      expect(lines[0]).toMatch(new RegExp(`^spread-pipe: --spool: cannot (create|use) .*${spool.split('/')[1]}`));
      expect(lines[0]).not.toMatch(/WITHOUT/);
    }
    expect(d.sessions()).toBe(0);
  });

  it('#11: a spool locked by a live spread-pipe is still waited for, and taken over when it exits', async () => {
    const { spec } = await startDaemon();
    const spool = path.join(tempDir(), 'spool');
    const { c: sink, events } = await connectClient(spec, 'sink', false);
    sink.join('sp');
    const first = startCli(['-g', 'sp', '-s', spec, '--spool', spool, '-h', 'one']);
    await waitFor(() => fs.existsSync(path.join(spool, 'lock')), 10_000, 'first spread-pipe holds the spool');
    const second = startCli(['-g', 'sp', '-s', spec, '--spool', spool, '-h', 'two', '--drain-timeout', '3000']);
    await second.waitStderr((s) => s.includes('waiting for it'));
    await feedStdin(second, 'from the second\n');
    await feedStdin(first, 'from the first\n');
    expect(await first.exited).toBe(0);
    expect(await second.exited).toBe(0);
    expect(second.stderr()).toMatch(/is free now/);
    const data = (): string[] => events.flatMap((e) => (e.kind === 'data' ? [e.frame.data.toString()] : []));
    await waitFor(() => data().length >= 2, 10_000, 'both lines at the sink');
    expect(data().sort()).toEqual(['one from the first\n', 'two from the second\n']);
  });
});

describe('#11: messages that say what is wrong', () => {
  it('#11: --connect-timeout abc, a bad group name and --max-line over the ceiling are explained', async () => {
    const [timeout, group, maxLine] = await Promise.all([
      fails(['-g', 'g', '--connect-timeout', 'abc']),
      fails(['-g', 'in words']),
      fails(['-g', 'g', '-h', 'web1', '--max-line', '140k']),
    ]);
    expect(timeout).toBe('spread-pipe: --connect-timeout: expected a whole number of milliseconds, got "abc"');
    expect(group).toMatch(/-g\/--group: bad group name "in words": a space is not allowed: names are letters, digits and punctuation/);
    expect(group).not.toMatch(/\$ to ~/);
    expect(maxLine).toMatch(/--max-line: 140k is too long: Spread carries at most 143151 bytes per message .* with 1 group\(s\) and the host tag "web1" a line can be at most 143113 bytes/);
  });

  it('#11: a bare PORT that cannot be reached is explained once as the unix socket /tmp/PORT', async () => {
    const port = '65001';
    expect(fs.existsSync(`/tmp/${port}`)).toBe(false);
    const p = startCli(['-g', 'g', '-s', port, '--connect-timeout', '50', '--drain-timeout', '0']);
    await p.waitStderr((s) => s.includes('cannot reach'));
    await new Promise((r) => setTimeout(r, 1500)); // a few retries
    await feedStdin(p, 'x\n');
    expect(await p.exited).toBe(0);
    const hints = p.stderr().match(/means the unix socket \/tmp\/65001 on this machine; for a daemon on another machine give -s 65001@HOST/g) ?? [];
    expect(hints).toHaveLength(1);
    // With no -s at all the default 4803 is named as the default (when no local daemon runs here).
    if (!fs.existsSync('/tmp/4803')) {
      const t = startCli(['tail', '-g', 'g']);
      expect(await t.exited).toBe(1);
      expect(t.stderr()).toMatch(/no -s was given, so the default 4803 means the unix socket \/tmp\/4803 on this machine; for a daemon on another machine give -s 4803@HOST/);
    }
  });

  it('#11: --help names tail, --daemon and --version; every mode prints the version', async () => {
    const help = startCli(['--help']);
    const versions = [['--version'], ['tail', '--version'], ['--daemon', '--version']].map((a) => startCli(a));
    expect(await help.exited).toBe(0);
    const text = help.stdout().toString();
    expect(text).toMatch(/spread-pipe tail --help/);
    expect(text).toMatch(/spread-pipe --daemon --help/);
    expect(text).toMatch(/--version/);
    for (const v of versions) {
      expect(await v.exited).toBe(0);
      expect(v.stdout().toString()).toBe(`spread-pipe ${VERSION}\n`);
    }
  });
});

describe('#11: counters that read right', () => {
  it('#11: the --ack stream name prints as stream="=NAME", not stream==NAME', async () => {
    const { spec } = await startDaemon();
    const p = startCli(['-g', 'g', '-s', spec, '--ack']);
    await feedStdin(p, 'a\n');
    expect(await p.exited).toBe(0);
    expect(p.stderr()).toMatch(/ stream="=[0-9a-z]{9}"/);
    expect(p.stderr()).not.toMatch(/stream==/);
  });

  it("#11: the bridge's refused-datagram report gives this interval's counts and the running total apart", async () => {
    const { spec } = await startDaemon();
    const b = await startBridge(['--syslog', 'udp://127.0.0.1:0', '-g', 'web', '-s', spec, '--report-interval', '2000'], { stdin: 'ignore' });
    // The first refusal is reported at once, the next two together one interval later.
    await sendUdp(b.udpPorts[0]!, [Buffer.from('junk one')]);
    await b.proc.waitStderr((s) => /refused syslog datagrams: no-pri=1 \(1 since the last report, 1 since start; last: no-pri from udp:/.test(s));
    await sendUdp(b.udpPorts[0]!, [Buffer.from('junk two'), Buffer.from('junk three')]);
    await b.proc.waitStderr((s) => /refused syslog datagrams: no-pri=2 \(2 since the last report, 3 since start; last: no-pri from udp:/.test(s));
    b.proc.kill('SIGTERM');
    expect(await b.proc.exited).toBe(0);
  });
});
