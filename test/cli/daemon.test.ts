/**
 * `spread-pipe --daemon` as a real process: option checking, the unix socket
 * real Spread clients expect at /tmp/PORT, --allow, operator lines, and the
 * built-in writer with logrotate (SIGHUP) and a flush on SIGTERM.
 */
import fs from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { SpreadClient } from '../../src/spread/client.js';
import { type Proc, connectClient, defer, startCli, startDaemonProcess, startProcess, tempDir, waitFor, withTimeout } from '../helpers.js';

const client = (spec: string, name: string, membership = false): ReturnType<typeof connectClient> => connectClient(spec, name, membership);

/** The last value of a counter in the daemon's SIGUSR1 / exit `stats:` lines. */
function stat(p: Proc, name: string): number {
  const all = [...p.stderr().matchAll(new RegExp(`stats: .*\\b${name}=(\\d+)`, 'g'))];
  return all.length ? Number(all.at(-1)![1]) : NaN;
}

/** Ask for stats until `name` reaches `n`. */
async function waitStat(p: Proc, name: string, n: number): Promise<void> {
  await waitFor(() => (p.kill('SIGUSR1'), stat(p, name) >= n), 20_000, `${name}>=${n}: ${p.stderr().slice(-300)}`);
}

const lines = (f: string): string[] => (fs.existsSync(f) ? fs.readFileSync(f, 'latin1').split('\n').slice(0, -1) : []);

describe('spread-pipe --daemon (process)', () => {
  it.each([
    [['--listen', 'localhost:x']],
    [['--listen', '127.0.0.1:70000']],
    [['--name', 'bad#name']],
    [['--name', 'a'.repeat(20)]],
    [['--allow', '300.0.0.0/8']],
    [['--allow', '10.0.0.0/33']],
    [['--write', 'no-equals-sign']],
    [['--write-split', 'bad group=/tmp/x']],
    [['--session-buffer', '10']],
    [['--max-open-files', '0']],
    [['--no-such-option']],
  ])('refuses %j with one line and exit status 2', async (args) => {
    const p = startCli(['--daemon', '--listen', '127.0.0.1:0', '--no-unix', ...args], { stdin: 'ignore' });
    expect(await p.exited).toBe(2);
    expect(p.stderr()).toMatch(/^spread-pipe: .+\n$/);
    expect(p.stderr()).not.toMatch(/listening/);
  });

  it('serves /tmp/PORT (mode 0666) next to TCP, logs connects and disconnects, removes the socket on SIGTERM', async () => {
    const p = startCli(['--daemon', '--listen', '127.0.0.1:0', '--name', 'localhost'], { stdin: 'ignore' });
    const err = await p.waitStderr((s) => /listening on \/tmp\/\d+/.test(s));
    const port = Number(/listening on 127\.0\.0\.1:(\d+)/.exec(err)![1]);
    const sock = `/tmp/${port}`;
    expect(err).toContain(`listening on ${sock}`);
    expect(fs.lstatSync(sock).isSocket()).toBe(true);
    expect(fs.statSync(sock).mode & 0o777).toBe(0o666);
    // `-s PORT` is the unix socket, `-s PORT@127.0.0.1` TCP: both reach the same daemon.
    const local = await client(String(port), 'local');
    const remote = await client(`${port}@127.0.0.1`, 'remote');
    local.c.join('g');
    await p.waitStderr((s) => s.includes('connect #remote#localhost from 127.0.0.1:'));
    expect(p.stderr()).toMatch(/connect #local#localhost from unix \(library 5\.0\.1\)/);
    await waitStat(p, 'messages_in', 1);
    remote.c.multicast('g', Buffer.from('over tcp to a unix client'));
    await waitFor(() => local.events.some((e) => e.kind === 'data' && e.frame.data.toString() === 'over tcp to a unix client'));
    remote.c.disconnect();
    await p.waitStderr((s) => /disconnect #remote#localhost: disconnect requested/.test(s));
    p.kill('SIGTERM');
    expect(await p.exited).toBe(0);
    expect(fs.existsSync(sock)).toBe(false);
  });

  it('removes a stale socket file left by a dead daemon, but will not take over a live one', async () => {
    const dir = tempDir();
    const sock = path.join(dir, 'spread.sock');
    // A daemon that died without cleaning up: its socket file stays behind.
    const dead = startProcess(process.execPath, ['-e', `require('net').createServer().listen(${JSON.stringify(sock)}, () => process.kill(process.pid, 'SIGKILL'))`]);
    await dead.exited;
    expect(fs.lstatSync(sock).isSocket()).toBe(true);
    const p = startCli(['--daemon', '--listen', sock, '--name', 'localhost'], { stdin: 'ignore' });
    await p.waitStderr((s) => s.includes(`listening on ${sock}`));
    await client(sock, 'alive');
    const second = startCli(['--daemon', '--listen', sock, '--name', 'localhost'], { stdin: 'ignore' });
    expect(await second.exited).toBe(1);
    expect(second.stderr()).toMatch(/another daemon is serving it/);
    // The first one still serves.
    await client(sock, 'still');
    // A path that is a regular file is not removed either.
    const file = path.join(dir, 'file');
    fs.writeFileSync(file, 'data');
    const third = startCli(['--daemon', '--listen', file], { stdin: 'ignore' });
    expect(await third.exited).toBe(1);
    expect(fs.readFileSync(file, 'utf8')).toBe('data');
  });

  it('--allow: TCP clients outside the blocks are refused and logged; IPv6 blocks work too', async () => {
    const d = await startDaemonProcess(['--allow', '10.0.0.0/8', '--allow', 'fd00::/8']);
    await expect(SpreadClient.connect({ daemon: d.spec, name: 'out' })).rejects.toMatchObject({ spreadCode: -9 });
    await d.proc.waitStderr((s) => /refused 127\.0\.0\.1:\d+: REJECT_AUTH address not allowed/.test(s));
    const ok = await startDaemonProcess(['--allow', '10.0.0.0/8', '--allow', '127.0.0.1']);
    await client(ok.spec, 'in');
    const v6 = startCli(['--daemon', '--no-unix', '--name', 'localhost', '--listen', '[::1]:0', '--allow', '::1/128'], { stdin: 'ignore' });
    const err = await v6.waitStderr((s) => /listening on \[::1\]:\d+/.test(s));
    const port = Number(/listening on \[::1\]:(\d+)/.exec(err)![1]);
    await client(`${port}@::1`, 'six');
    const v6no = startCli(['--daemon', '--no-unix', '--name', 'localhost', '--listen', '[::1]:0', '--allow', '127.0.0.0/8'], { stdin: 'ignore' });
    const err2 = await v6no.waitStderr((s) => /listening on \[::1\]:\d+/.test(s));
    const port2 = Number(/listening on \[::1\]:(\d+)/.exec(err2)![1]);
    await expect(SpreadClient.connect({ daemon: `${port2}@::1`, name: 'six' })).rejects.toMatchObject({ spreadCode: -9 });
  });

  it.each([['--write', 'g=FILE/x.log'], ['--write-split', 'g=FILE/dir'], ['--no-dedup', '--write', 'g=FILE/x.log']])(
    'exits 1 with one line before listening when %s %s cannot be written',
    async (...args) => {
      // A regular file where a directory must be: refused even for root.
      const file = path.join(tempDir(), 'plain-file');
      fs.writeFileSync(file, '');
      const p = startCli(['--daemon', '--listen', '127.0.0.1:0', '--no-unix', ...args.map((a) => a.replace('FILE', file))], { stdin: 'ignore' });
      expect(await p.exited).toBe(1);
      expect(p.stderr()).toMatch(/^spread-pipe: --write(-split)? g=.*plain-file.*: .*plain-file.*(is not a directory|ENOTDIR).*\n$/);
    },
  );

  it.each([
    [['--write-split', 'x=/proc/sys/nope']],
    [['--write', 'x=/proc/sys/nope/x.log']],
    [['--no-dedup', '--write-split', 'x=/proc/sys/nope']],
    [['--no-dedup', '--write-split', 'x=/proc/sys']],
    [['--write-split', 'x=/proc/version']],
  ])('#11: %j cannot be made writable: exit 1 at once with one line naming the option, never listening (no mkdir spin)', async (args) => {
    const p = startCli(['--daemon', '--listen', '127.0.0.1:0', '--no-unix', ...args], { stdin: 'ignore' });
    // Before the fix, Node's recursive mkdir looped on ENOENT under /proc/sys for ever, printing nothing.
    expect(await withTimeout(p.exited, 5000, `exit of --daemon ${args.join(' ')}`)).toBe(1);
    const opt = args.at(-2)!;
    expect(p.stderr()).toMatch(new RegExp(`^spread-pipe: ${opt} ${args.at(-1)!.replace(/[/.]/g, '\\$&')}: [^\n]+\n$`));
    expect(p.stderr()).not.toMatch(/listening/);
  });

  it('#11: creates no parent directory the admin did not name, and says which one is missing', async () => {
    const dir = tempDir();
    const missing = path.join(dir, 'nonexistent-dir');
    for (const args of [['--write', `x=${missing}/x.log`], ['--write-split', `x=${missing}/hosts`], ['--no-dedup', '--write', `x=${missing}/x.log`]]) {
      const p = startCli(['--daemon', '--listen', '127.0.0.1:0', '--no-unix', ...args], { stdin: 'ignore' });
      expect(await withTimeout(p.exited, 5000, 'exit')).toBe(1);
      expect(p.stderr()).toMatch(/^spread-pipe: [^\n]+\n$/);
      expect(p.stderr()).toContain(`${args.at(-2)} ${args.at(-1)}: directory ${missing} does not exist`);
      expect(fs.existsSync(missing)).toBe(false);
    }
    // The --write-split directory itself is created when its parent exists (one level, not more).
    const hosts = path.join(dir, 'hosts');
    const d = await startDaemonProcess(['--write-split', `x=${hosts}`]);
    expect(fs.statSync(hosts).isDirectory()).toBe(true);
    const pub = await client(d.spec, 'pub');
    // Removed while running: made again for the next message, as at start.
    fs.rmSync(hosts, { recursive: true });
    pub.c.multicast('x', Buffer.from('web1 GET / 200'));
    await waitFor(() => lines(path.join(hosts, 'web1.log')).length === 1);
  });

  it('#11: a duplicate journal that cannot be created is named as such, with --no-dedup as the way out', async () => {
    const p = startCli(['--daemon', '--listen', '127.0.0.1:0', '--no-unix', '--write', 'x=/proc/version'], { stdin: 'ignore' });
    expect(await withTimeout(p.exited, 5000, 'exit')).toBe(1);
    expect(p.stderr()).toMatch(
      /^spread-pipe: --write x=\/proc\/version: cannot create the duplicate journal \/proc\/version\.seen \(kept beside the file to drop --ack repeats; --no-dedup turns it off\): ENOENT[^\n]*\n$/,
    );
    const split = tempDir();
    fs.mkdirSync(path.join(split, '.seen')); // a directory where the journal goes
    const q = startCli(['--daemon', '--listen', '127.0.0.1:0', '--no-unix', '--write-split', `x=${split}`], { stdin: 'ignore' });
    expect(await withTimeout(q.exited, 5000, 'exit')).toBe(1);
    expect(q.stderr()).toContain(`spread-pipe: --write-split x=${split}: cannot use the duplicate journal ${split}/.seen (kept in the directory to drop --ack repeats; --no-dedup turns it off): EISDIR`);
  });

  it('#11: a flood of refused connections and of sessions makes a bounded number of stderr lines, every one counted', async () => {
    // One interval for the whole test: the counts come out at exit (SIGTERM flushes them).
    const d = await startDaemonProcess(['--report-interval', '60000']);
    // 50 peers that connect and hang up, 30 that send bytes no Spread client sends.
    const peers: Promise<void>[] = [];
    for (let i = 0; i < 80; i++) {
      peers.push(
        new Promise<void>((resolve) => {
          const c = net.connect(d.port, '127.0.0.1', () => (i < 50 ? c.end() : c.write(Buffer.alloc(5000, 0x41))));
          c.on('error', () => {});
          c.resume(); // read the reject byte and the end
          c.on('close', () => resolve());
        }),
      );
    }
    await Promise.all(peers);
    await waitStat(d.proc, 'rejected', 80);
    // 40 real sessions: 20 connect lines, the other 20 counted.
    await Promise.all(Array.from({ length: 40 }, (_, i) => client(d.spec, `s${i}`)));
    await waitStat(d.proc, 'sessions', 40);
    d.proc.kill('SIGTERM');
    expect(await d.proc.exited).toBe(0);
    const err = d.proc.stderr().split('\n');
    const sum = (title: string): Record<string, number> => {
      const m = err.map((l) => new RegExp(`^spread-pipe: ${title} in the last [\\d.]+ s: ([^(]*)`).exec(l)).filter((x) => x);
      expect(m).toHaveLength(1);
      return Object.fromEntries(m[0]![1]!.trim().split(' ').map((kv) => [kv.split('=')[0], Number(kv.split('=')[1])]));
    };
    const refused = err.filter((l) => /^spread-pipe: refused \d/.test(l));
    // One line at once per cause (a hang-up, junk; a reset may show as socket-error), the rest counted.
    expect(refused.length).toBeGreaterThanOrEqual(1);
    expect(refused.length).toBeLessThanOrEqual(3);
    expect(refused.length + Object.values(sum('refused connections')).reduce((a, b) => a + b, 0)).toBe(80);
    expect(err.filter((l) => /^spread-pipe: connect #s\d+#localhost/.test(l))).toHaveLength(20);
    expect(sum('session lines not shown').connect).toBe(20);
  });

  it('SIGUSR1 lists sessions, groups and counters', async () => {
    const d = await startDaemonProcess();
    const a = await client(d.spec, 'alice');
    a.c.join('logs');
    a.c.multicast('logs', Buffer.from('x'));
    await waitFor(() => a.events.length === 1);
    d.proc.kill('SIGUSR1');
    await d.proc.waitStderr((s) => /group logs members=1/.test(s));
    expect(d.proc.stderr()).toMatch(/stats: sessions=1 groups=1 messages_in=2 deliveries=1 /);
    expect(d.proc.stderr()).toMatch(/session #alice#localhost 127\.0\.0\.1:\d+ groups=logs queued=0 in=2 out=1/);
  });

  it('--write and --write-split: every line once, one file per host, new files after SIGHUP (logrotate)', async () => {
    const dir = tempDir();
    const all = path.join(dir, 'all.log');
    const split = path.join(dir, 'hosts');
    const d = await startDaemonProcess(['--write', `logs=${all}`, '--write-split', `logs=${split}`, '--max-open-files', '2']);
    const pub = await client(d.spec, 'pub');
    const hosts = ['web1', 'web2', 'web3', '../evil'];
    const send = (from: number, to: number): void => {
      for (let i = from; i < to; i++) pub.c.multicast('logs', Buffer.from(`${hosts[i % hosts.length]} GET /${i} HTTP/1.1`));
    };
    send(0, 4000);
    await waitStat(d.proc, 'written', 2 * 4000);
    for (const f of fs.readdirSync(split)) if (f.endsWith('.log')) fs.renameSync(path.join(split, f), path.join(split, `${f}.1`));
    fs.renameSync(all, `${all}.1`);
    d.proc.kill('SIGHUP');
    await d.proc.waitStderr((s) => /reopened log files \(\d+ were open\)/.test(s));
    send(4000, 6000);
    await waitStat(d.proc, 'written', 2 * 6000);
    d.proc.kill('SIGTERM');
    expect(await d.proc.exited).toBe(0);
    const expected = (from: number, to: number, host?: string): string[] =>
      Array.from({ length: to - from }, (_, k) => from + k)
        .filter((i) => host === undefined || hosts[i % hosts.length] === host)
        .map((i) => `${hosts[i % hosts.length]} GET /${i} HTTP/1.1`);
    expect(lines(`${all}.1`)).toEqual(expected(0, 4000));
    expect(lines(all)).toEqual(expected(4000, 6000));
    expect(fs.readdirSync(split).filter((f) => f !== '.seen').sort()).toEqual(
      ['_._evil.log', '_._evil.log.1', 'web1.log', 'web1.log.1', 'web2.log', 'web2.log.1', 'web3.log', 'web3.log.1'].sort(),
    );
    for (const h of hosts) {
      const f = path.join(split, `${h.replace('/', '_').replace(/^\./, '_')}.log`);
      expect(lines(`${f}.1`)).toEqual(expected(0, 4000, h));
      expect(lines(f)).toEqual(expected(4000, 6000, h));
    }
    expect(fs.existsSync(path.join(dir, 'evil.log'))).toBe(false);
  });

  it('on SIGTERM writes every message it took before exiting', async () => {
    const dir = tempDir();
    const file = path.join(dir, 'all.log');
    const d = await startDaemonProcess(['--write', `logs=${file}`]);
    const pub = await client(d.spec, 'pub');
    // Stop the daemon while it is busy taking a stream of lines.
    let i = 0;
    let open = true;
    pub.c.on('close', () => (open = false));
    const timer = setInterval(() => {
      for (let k = 0; k < 500 && open; k++, i++) pub.c.multicast('logs', Buffer.from(`web1 ${i} ${'x'.repeat(200)}`));
    }, 1);
    defer(() => clearInterval(timer));
    await waitStat(d.proc, 'messages_in', 5000);
    d.proc.kill('SIGTERM');
    expect(await d.proc.exited).toBe(0);
    clearInterval(timer);
    // The exit report counts what was taken; all of it is in the file, in order.
    const taken = stat(d.proc, 'written');
    expect(taken).toBeGreaterThanOrEqual(5000);
    const got = lines(file);
    expect(got.length).toBe(taken);
    got.forEach((l, k) => expect(l.startsWith(`web1 ${k} `)).toBe(true));
  });
});
