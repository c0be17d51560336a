/**
 * #15: `--user NAME[:GROUP]` in every mode, as real processes started as
 * root: the drop seen in /proc/PID/status (Uid, Gid, Groups), what was made
 * as root handed over (unix sockets removed at exit from a sticky
 * directory, a new spool directory), files opened after the drop, real
 * drop failures (setpriv takes CAP_SETUID away) refused with one line,
 * unknown names as usage errors, and pipe mode's root warning.
 * Needs root (the suite runs as root in CI); skipped otherwise.
 */
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import net from 'node:net';
import { CLI, type Proc, feedStdin, numberedLines, startCli, startDaemonProcess, startProcess, tempDir, waitFor, withTimeout } from '../helpers.js';

const root = process.getuid?.() === 0;
const run = root ? describe : describe.skip;

interface Status {
  uid: number[];
  gid: number[];
  groups: number[];
}

function status(pid: number): Status {
  const text = fs.readFileSync(`/proc/${pid}/status`, 'utf8');
  const field = (name: string): number[] =>
    (new RegExp(`^${name}:(.*)$`, 'm').exec(text)?.[1] ?? '')
      .trim()
      .split(/\s+/)
      .filter(Boolean)
      .map(Number);
  return { uid: field('Uid'), gid: field('Gid'), groups: field('Groups').sort((a, b) => a - b) };
}

/** What `id` says (computed apart from our code): uid, gid, every group. */
function id(user: string): { uid: number; gid: number; groups: number[] } {
  const get = (flag: string): string => execFileSync('id', [flag, user], { encoding: 'utf8' }).trim();
  return { uid: Number(get('-u')), gid: Number(get('-g')), groups: get('-G').split(' ').map(Number).sort((a, b) => a - b) };
}

const WWW = id('www-data');

function expectDropped(pid: number, want: { uid: number; gid: number; groups: number[] }): void {
  expect(status(pid)).toEqual({ uid: [want.uid, want.uid, want.uid, want.uid], gid: [want.gid, want.gid, want.gid, want.gid], groups: want.groups });
}

/** A directory every user may enter; `owner` owns it when given. */
function dir(mode = 0o755, owner?: number): string {
  const d = tempDir('spread-pipe-user-');
  fs.chmodSync(d, mode);
  if (owner !== undefined) fs.chownSync(d, owner, owner);
  return d;
}

const ranAs = (p: Proc): Promise<string> => p.waitStderr((s) => /running as /.test(s), 15_000);

/** As another user: `setpriv` with CAP_SETUID taken away (a drop that fails), or as nobody outright. */
function withoutSetuid(args: string[], stdin: 'pipe' | 'ignore' | number = 'pipe'): Proc {
  return startProcess('setpriv', ['--bounding-set', '-setuid', process.execPath, CLI, ...args], { stdin });
}
function asNobody(args: string[], stdin: 'pipe' | 'ignore' | number = 'pipe'): Proc {
  return startProcess('setpriv', ['--reuid', '65534', '--regid', '65534', '--clear-groups', process.execPath, CLI, ...args], { stdin });
}

/** A free TCP port under 1024 on 127.0.0.1 (only root may bind it), from `from` down. */
async function lowPort(from: number): Promise<number> {
  for (let p = from; p > 600; p--) {
    const free = await new Promise<boolean>((resolve) => {
      const srv = net.createServer();
      srv.once('error', () => resolve(false));
      srv.listen(p, '127.0.0.1', () => srv.close(() => resolve(true)));
    });
    if (free) return p;
  }
  throw new Error('no free port under 1024');
}

/** Lines of stderr that are not empty. */
const lines = (p: Proc): string[] => p.stderr().trim().split('\n').filter(Boolean);

run('#15: --user drops root in every mode', () => {
  it('#15: daemon, pipe, syslog bridge, tail, write and top each run as www-data after binding; /proc shows uid, gid, groups', { timeout: 90_000 }, async () => {
    const sticky = dir(0o1777); // as /tmp: only a file's owner may remove it
    const logs = dir(0o755, WWW.uid);
    const daemonSock = path.join(sticky, 'daemon.sock');
    const d = await startDaemonProcess(['--listen', daemonSock, '--write', `g=${logs}/daemon.log`, '--metrics', '127.0.0.1:0', '--user', 'www-data']);
    await ranAs(d.proc);
    expectDropped(d.proc.child.pid!, WWW);
    expect(fs.statSync(daemonSock)).toMatchObject({ uid: WWW.uid, gid: WWW.gid });

    const syslogSock = path.join(sticky, 'syslog.sock');
    const procs = {
      pipe: startCli(['-g', 'g', '-s', d.spec, '-h', 'web1', '--user', 'www-data']),
      bridge: startCli(['--syslog', `unix:${syslogSock}`, '-g', 'g', '-s', d.spec, '--user', 'www-data', '--syslog-mode', '0660']),
      tail: startCli(['tail', '-g', 'g', '-s', d.spec, '--user', 'www-data']),
      write: startCli(['write', '-s', d.spec, '--write', `g=${logs}/write.log`, '--user', 'www-data']),
      top: startCli(['top', '-g', 'g', '-s', d.spec, '--json', '--http', '127.0.0.1:0', '--user', 'www-data']),
    };
    for (const [mode, p] of Object.entries(procs)) {
      const err = await ranAs(p);
      expect(err, mode).toContain(`running as www-data:www-data (uid ${WWW.uid}, gid ${WWW.gid}, groups ${WWW.groups.join(',')})`);
      expectDropped(p.child.pid!, WWW);
      // With --user there is no root warning.
      expect(err, mode).not.toMatch(/running as root/);
    }
    // The bridge's socket belongs to www-data now (so it can remove it); nginx's workers, www-data, may write.
    expect(fs.statSync(syslogSock)).toMatchObject({ uid: WWW.uid, gid: WWW.gid });

    // Lines flow through the dropped processes: pipe -> daemon -> its --write file and write mode's file, both opened as www-data.
    await new Promise((r) => setTimeout(r, 500)); // tail and write join
    await feedStdin(procs.pipe, numberedLines(0, 100));
    expect(await procs.pipe.exited).toBe(0);
    await procs.tail.waitStdout((s) => s.split('\n').length > 100, 15_000);
    expect(procs.tail.stdout().toString('latin1')).toBe(numberedLines(0, 100).replace(/^/gm, 'web1 ').slice(0, -5));
    await waitFor(() => fs.existsSync(`${logs}/daemon.log`) && fs.readFileSync(`${logs}/daemon.log`, 'latin1').split('\n').length > 100, 15_000, 'the daemon file');
    await waitFor(() => fs.existsSync(`${logs}/write.log`) && fs.readFileSync(`${logs}/write.log`, 'latin1').split('\n').length > 100, 15_000, 'the write file');
    for (const f of ['daemon.log', 'write.log']) expect(fs.statSync(`${logs}/${f}`)).toMatchObject({ uid: WWW.uid, gid: WWW.gid });

    // At exit the unix sockets made as root are removed by www-data (they are its own).
    procs.bridge.kill('SIGTERM');
    expect(await procs.bridge.exited).toBe(0);
    expect(fs.existsSync(syslogSock)).toBe(false);
    d.proc.kill('SIGTERM');
    expect(await d.proc.exited).toBe(0);
    expect(fs.existsSync(daemonSock)).toBe(false);
  });

  it('#15: ports under 1024 (--listen, --metrics) are bound as root, then served as www-data', { timeout: 30_000 }, async () => {
    const port = await lowPort(1000);
    const metricsPort = await lowPort(port - 1);
    const unprivilegedFrom = Number(fs.readFileSync('/proc/sys/net/ipv4/ip_unprivileged_port_start', 'utf8'));
    if (unprivilegedFrom > port) {
      // The control: www-data alone cannot bind it.
      const alone = startProcess('setpriv', ['--reuid', '33', '--regid', '33', '--clear-groups', process.execPath, CLI, '--daemon', '--no-unix', '--listen', `127.0.0.1:${port}`], { stdin: 'ignore' });
      expect(await alone.exited).toBe(1);
      expect(alone.stderr()).toMatch(/cannot listen on 127\.0\.0\.1:\d+: .*EACCES/);
    }
    const d = startCli(['--daemon', '--no-unix', '--listen', `127.0.0.1:${port}`, '--metrics', `127.0.0.1:${metricsPort}`, '--user', 'www-data'], { stdin: 'ignore' });
    await ranAs(d);
    expectDropped(d.child.pid!, WWW);
    const pub = startCli(['-g', 'g', '-s', `${port}@127.0.0.1`, '--user', 'www-data']);
    await feedStdin(pub, numberedLines(0, 10));
    expect(await withTimeout(pub.exited, 15_000, 'publisher')).toBe(0);
    expect(pub.stderr()).toMatch(/exit: read=10 .*sent_lines=10 /);
    const metrics = await (await fetch(`http://127.0.0.1:${metricsPort}/metrics`)).text();
    // Served as www-data: the ten lines (and the session's own requests) counted.
    expect(Number(/^spread_pipe_daemon_messages_in_total (\d+)$/m.exec(metrics)?.[1])).toBeGreaterThanOrEqual(10);
  });

  it('#15: NAME:GROUP sets that group and the user\'s supplementary groups, never root\'s', async () => {
    const { spec } = await startDaemonProcess();
    const p = startCli(['tail', '-g', 'g', '-s', spec, '--user', 'nobody:www-data']);
    await ranAs(p);
    // initgroups(nobody, www-data): www-data's gid and the groups that list nobody as a member.
    const members = execFileSync('getent', ['group'], { encoding: 'utf8' })
      .split('\n')
      .map((l) => l.split(':'))
      .filter((f) => (f[3] ?? '').split(',').includes('nobody'))
      .map((f) => Number(f[2]));
    expectDropped(p.child.pid!, { uid: 65534, gid: WWW.gid, groups: [...new Set([WWW.gid, ...members])].sort((a, b) => a - b) });
    expect(status(p.child.pid!).groups).not.toContain(0);
  });

  it('#15: a drop that fails (no CAP_SETUID) is refused: exit 1, one line, stdin unread, nothing left behind', { timeout: 30_000 }, async () => {
    const d0 = dir();
    const input = path.join(d0, 'stdin.txt');
    fs.writeFileSync(input, numberedLines(1, 10));
    const fd = fs.openSync(input, 'r');
    try {
      const pipe = withoutSetuid(['-g', 'g', '-s', '4803@127.0.0.1', '--user', 'www-data'], fd);
      expect(await pipe.exited).toBe(1);
      expect(lines(pipe)).toEqual([expect.stringMatching(/^spread-pipe: --user www-data: setuid\(33\) failed: EPERM.*; refusing to go on with root's rights$/)]);
      expect(fs.readSync(fd, Buffer.alloc(1000), 0, 1000, null)).toBe(fs.statSync(input).size); // offset still 0: never read
    } finally {
      fs.closeSync(fd);
    }
    const sock = path.join(dir(0o1777), 'd.sock');
    const daemon = withoutSetuid(['--daemon', '--no-unix', '--listen', sock, '--user', 'www-data'], 'ignore');
    expect(await daemon.exited).toBe(1);
    expect(lines(daemon)).toEqual([expect.stringMatching(/^spread-pipe: --user www-data: setuid\(33\) failed: EPERM/)]);
    expect(fs.existsSync(sock)).toBe(false);
  });

  it('#15: an unknown user or group is a usage error (exit 2); another user without root is refused (exit 1); the same user is fine', async () => {
    const cases: Array<[Proc, number, RegExp]> = [
      [startCli(['-g', 'g', '--user', 'no-such-user-here'], { stdin: 'ignore' }), 2, /^spread-pipe: --user: no user "no-such-user-here" on this machine$/],
      [startCli(['tail', '-g', 'g', '--user', 'www-data:no-such-group'], { stdin: 'ignore' }), 2, /^spread-pipe: --user: no group "no-such-group" on this machine$/],
      [startCli(['--daemon', '--user', 'a:b:c'], { stdin: 'ignore' }), 2, /^spread-pipe: --user: expected NAME or NAME:GROUP, got "a:b:c"$/],
      [asNobody(['tail', '-g', 'g', '--user', 'www-data'], 'ignore'), 1, /^spread-pipe: --user www-data: cannot become uid 33 gid 33: this process runs as uid 65534 gid 65534, not as root/],
    ];
    for (const [p, code, line] of cases) {
      expect(await p.exited).toBe(code);
      expect(lines(p)).toEqual([expect.stringMatching(line)]);
    }
    const { spec } = await startDaemonProcess();
    const same = asNobody(['tail', '-g', 'g', '-s', spec, '--user', 'nobody']);
    await ranAs(same);
    // Nothing to drop: it stays as it was started (setpriv cleared its groups).
    expectDropped(same.child.pid!, { ...id('nobody'), groups: [] });
  });

  it('#15: pipe mode as root without --user warns once; with --user, or not root, it does not', { timeout: 30_000 }, async () => {
    const { spec } = await startDaemonProcess();
    const asRoot = startCli(['-g', 'g', '-s', spec]);
    const dropped = startCli(['-g', 'g', '-s', spec, '--user', 'www-data']);
    const nobody = asNobody(['-g', 'g', '-s', spec]);
    for (const p of [asRoot, dropped, nobody]) {
      await p.waitStderr((s) => s.includes('connect') || s.includes('running as') || s.length > 0, 5000).catch(() => '');
      await feedStdin(p, numberedLines(1, 50));
      p.kill('SIGUSR1');
    }
    for (const p of [asRoot, dropped, nobody]) expect(await p.exited).toBe(0);
    const warnings = (p: Proc): string[] => lines(p).filter((l) => /running as root/.test(l));
    expect(warnings(asRoot)).toEqual(["spread-pipe: running as root: a piped logger needs no root rights once started; give --user www-data (the web server's user) to drop them"]);
    expect(warnings(dropped)).toEqual([]);
    expect(warnings(nobody)).toEqual([]);
    // The warning comes before any line is read, once.
    expect(lines(asRoot)[0]).toMatch(/running as root/);
  });

  it('#15: --spool with --user: a new directory is made as root and given to the user; one the user cannot write stops the start', { timeout: 30_000 }, async () => {
    const parent = dir(0o755); // root's, as /var/spool
    const spoolDir = path.join(parent, 'spool');
    const d = await startDaemonProcess(['--write', `g=${dir(0o755, WWW.uid)}/out.log`]);
    const p = startCli(['-g', 'g', '-s', d.spec, '--spool', spoolDir, '--user', 'www-data']);
    await ranAs(p);
    expect(fs.statSync(spoolDir)).toMatchObject({ uid: WWW.uid, gid: WWW.gid });
    expect(fs.statSync(spoolDir).mode & 0o777).toBe(0o750);
    await feedStdin(p, numberedLines(0, 200));
    expect(await p.exited).toBe(0);
    expect(p.stderr()).toMatch(/exit: read=200 .*sent_lines=200 /);
    // What the spool made after the drop is www-data's.
    for (const f of fs.readdirSync(spoolDir)) expect(fs.statSync(path.join(spoolDir, f)).uid, f).toBe(WWW.uid);

    const rootsOnly = path.join(parent, 'roots');
    fs.mkdirSync(rootsOnly, { mode: 0o700 });
    const refused = startCli(['-g', 'g', '-s', d.spec, '--spool', rootsOnly, '--user', 'www-data'], { stdin: 'ignore' });
    expect(await refused.exited).toBe(1);
    const [only, ...more] = lines(refused).filter((l) => !/running as www-data/.test(l));
    expect(more).toEqual([]);
    expect(only).toMatch(/^spread-pipe: --spool: cannot lock spool .*EACCES.* \(with --user www-data the spool directory must be writable by www-data: chown -R www-data /);
  });

  it('#15: --daemon --write with --user opens the files as the user: one it cannot write stops the start (exit 1), the port closed', { timeout: 30_000 }, async () => {
    const rootsOnly = dir(0o700);
    const sock = path.join(dir(0o1777), 'd.sock');
    const p = startCli(['--daemon', '--no-unix', '--listen', sock, '--write', `g=${rootsOnly}/x.log`, '--user', 'www-data'], { stdin: 'ignore' });
    expect(await p.exited).toBe(1);
    const errors = lines(p).filter((l) => !/running as www-data/.test(l));
    expect(errors).toEqual([expect.stringMatching(/x\.log.*(EACCES|permission denied)/i)]);
    expect(fs.existsSync(sock)).toBe(false);
  });
});
