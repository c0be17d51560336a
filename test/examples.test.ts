/**
 * examples/ must keep working as the CLI changes: every spread-pipe command
 * line in them is run for real on loopback (only daemon addresses and paths
 * swapped), and Apache, nginx and systemd check their own files.
 */
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { CLI, expectCountersAddUp, feedStdin, ROOT, sendUdp, sendUnixDgram, startBridge, startCli, startDaemon, tempDir, waitFor } from './helpers.js';

const EXAMPLES = path.join(ROOT, 'examples');
const read = (name: string): string => fs.readFileSync(path.join(EXAMPLES, name), 'utf8');
const SAMPLE = read('access.log.sample');
const SAMPLE_LINES = SAMPLE.trimEnd().split('\n').length;

/** The examples' daemon names (4803@loghost, 4803@loghost2) pointed at a test daemon. */
const toDaemon = (args: string[], spec: string): string[] => args.map((a) => (/^\d+@loghost\d*$/.test(a) ? spec : a));

/** Present, or in CI (where .ci/run installs it) required. */
const missing = (bin: string): boolean => !fs.existsSync(bin) && !process.env.CI;

describe('examples/apache-customlog.conf', () => {
  const pipes = [...read('apache-customlog.conf').matchAll(/^#?CustomLog "\|\/usr\/bin\/spread-pipe ([^"]+)" (\S+)$/gm)].map((m) => ({
    args: m[1]!.trim().split(/\s+/),
    format: m[2]!,
  }));

  it('has the piped loggers documented in README (one group, per-vhost, hashed, batched)', () => {
    expect(pipes.length).toBe(4);
    expect(pipes.some((p) => p.args.includes('--group-hash'))).toBe(true);
    expect(pipes.some((p) => p.args.includes('--group-prefix') && !p.args.includes('--group-hash'))).toBe(true);
    expect(pipes.some((p) => p.args.includes('--batch'))).toBe(true);
  });

  it('every piped logger line runs and delivers the sample lines to a daemon', async () => {
    const { daemon, spec } = await startDaemon();
    for (const p of pipes) {
      const before = daemon.getStats().messagesIn;
      // vhost_combined puts %v first.
      const input = p.format === 'vhost_combined' ? SAMPLE.replace(/^(?=.)/gm, 'www.example.org ') : SAMPLE;
      const proc = startCli(toDaemon(p.args, spec));
      await feedStdin(proc, input);
      expect(await proc.exited, `${p.args.join(' ')}: ${proc.stderr()}`).toBe(0);
      expect(proc.stderr()).toMatch(new RegExp(`exit: read=${SAMPLE_LINES} .*sent_lines=${SAMPLE_LINES} `));
      expectCountersAddUp(proc.stderr());
      await waitFor(() => daemon.getStats().messagesIn > before, 5000, `messages from ${p.args.join(' ')}`);
    }
  });
});

describe.skipIf(missing('/usr/sbin/apache2'))('examples/apache-customlog.conf with real Apache', () => {
  it('passes apache2 -t', () => {
    const dir = tempDir('spread-pipe-apache-');
    const conf = path.join(dir, 'httpd.conf');
    const modules = '/usr/lib/apache2/modules';
    fs.writeFileSync(
      conf,
      `ServerRoot ${dir}
ServerName localhost
Listen 127.0.0.1:1
PidFile ${dir}/httpd.pid
ErrorLog ${dir}/error.log
LoadModule mpm_event_module ${modules}/mod_mpm_event.so
LoadModule authz_core_module ${modules}/mod_authz_core.so
Define APACHE_LOG_DIR ${dir}
LogFormat "%h %l %u %t \\"%r\\" %>s %b \\"%{Referer}i\\" \\"%{User-Agent}i\\"" combined
Include ${path.join(EXAMPLES, 'apache-customlog.conf')}
`,
    );
    const r = spawnSync('/usr/sbin/apache2', ['-t', '-f', conf], { encoding: 'utf8' });
    expect(r.status, r.stderr).toBe(0);
    expect(r.stderr).toMatch(/Syntax OK/);
  });
});

describe.skipIf(missing('/usr/sbin/nginx'))('examples/nginx-syslog.conf with real nginx', () => {
  it('passes nginx -t', () => {
    const dir = tempDir('spread-pipe-nginx-');
    const conf = path.join(dir, 'nginx.conf');
    fs.writeFileSync(conf, `error_log ${dir}/error.log;\npid ${dir}/nginx.pid;\nevents {}\ninclude ${path.join(EXAMPLES, 'nginx-syslog.conf')};\n`);
    const r = spawnSync('/usr/sbin/nginx', ['-t', '-p', `${dir}/`, '-e', `${dir}/error.log`, '-c', conf], { encoding: 'utf8' });
    expect(r.status, r.stderr).toBe(0);
    expect(r.stderr).toMatch(/test is successful/);
  });
});

describe('examples/nginx-syslog.conf', () => {
  const conf = read('nginx-syslog.conf');
  // The bridge's command line, written as comment lines with a backslash continuation.
  const command = /^# +spread-pipe ((?:.*\\\n# *)*.*)$/m.exec(conf)![1]!.replace(/\\\n# */g, ' ').trim().split(/\s+/);

  it("the bridge command line takes what nginx's two access_log lines send", async () => {
    const { spec } = await startDaemon();
    const udp = /syslog:server=(127\.0\.0\.1:\d+),tag=(\w+)/.exec(conf)!;
    const unix = /syslog:server=unix:([^,]+),tag=(\w+),nohostname/.exec(conf)!;
    const sock = path.join(tempDir(), 'spread-pipe.sock');
    const args = toDaemon(command, spec).map((a) =>
      a === `udp://${udp[1]}` ? 'udp://127.0.0.1:0' : a === `unix:${unix[1]}` ? `unix:${sock}` : a === 'www-data' ? String(process.getgid!()) : a,
    );
    expect(args).toContain('udp://127.0.0.1:0');
    expect(args).toContain(`unix:${sock}`);
    const groups = ['www', 'jigdo'];
    const tail = startCli(['tail', ...groups.flatMap((g) => ['-g', g]), '-s', spec, '--count', '2', '--show-sender', '--membership'], { stdin: 'ignore' });
    await tail.waitStdout((s) => groups.every((g) => s.includes(`# membership ${g}: join`)));
    const { udpPorts } = await startBridge([...args, '-h', 'bridgebox']);
    await sendUdp(udpPorts[0]!, [Buffer.from(`<190>Nov 23 07:00:00 web1 ${udp[2]}: GET /a 200`)]);
    await tail.waitStdout((s) => s.includes('GET /a 200'));
    await sendUnixDgram(sock, [Buffer.from(`<190>Nov 23 07:00:01 ${unix[2]}: GET /b 200`)]);
    expect(await tail.exited).toBe(0);
    const data = tail.stdout().toString().split('\n').filter((l) => l && !l.startsWith('# '));
    // --route jigdo=jigdo sends the UDP (tag jigdo) line to group jigdo; the www line falls back to -g www.
    expect(data.map((l) => l.replace(/^\S+ -> /, ''))).toEqual(['jigdo: web1 GET /a 200', 'www: bridgebox GET /b 200']);
  });
});

describe('examples/spread-pipe-daemon.service and logrotate.spread-pipe', () => {
  const unit = read('spread-pipe-daemon.service');
  const execStart = /^ExecStart=\/usr\/bin\/spread-pipe ((?:.*\\\n)*.*)$/m.exec(unit)![1]!.replace(/\\\n/g, ' ').trim().split(/\s+/);

  it("ExecStart's daemon writes both files, and SIGHUP (logrotate's postrotate) reopens them", async () => {
    const dir = tempDir();
    const args = execStart.map((a) => a.replace('/var/log/spread', dir)).map((a) => (a === '0.0.0.0:4803' ? '127.0.0.1:0' : a));
    const daemon = startCli([...args, '--no-unix'], { stdin: 'ignore' });
    const err = await daemon.waitStderr((s) => /listening on 127\.0\.0\.1:\d+/.test(s));
    const spec = `${/listening on 127\.0\.0\.1:(\d+)/.exec(err)![1]}@127.0.0.1`;
    const group = /--write (\w+)=/.exec(execStart.join(' '))![1]!;
    const publish = async (line: string): Promise<void> => {
      const p = startCli(['-g', group, '-s', spec, '-h', 'web1']);
      await feedStdin(p, `${line}\n`);
      expect(await p.exited).toBe(0);
      expectCountersAddUp(p.stderr());
    };
    const file = path.join(dir, `${group}.log`);
    const split = path.join(dir, group, 'web1.log');
    await publish('first');
    await waitFor(() => fs.existsSync(split) && fs.readFileSync(file, 'utf8') === 'web1 first\n', 5000, file);
    expect(fs.readFileSync(split, 'utf8')).toBe('web1 first\n');

    // What logrotate does: move the files away, then postrotate's SIGHUP.
    fs.renameSync(file, `${file}.1`);
    fs.renameSync(split, `${split}.1`);
    daemon.kill('SIGHUP');
    await daemon.waitStderr((s) => s.includes('reopened log files'));
    await publish('second');
    await waitFor(() => fs.existsSync(file) && fs.readFileSync(file, 'utf8') === 'web1 second\n', 5000, `${file} after SIGHUP`);
    expect(fs.readFileSync(`${file}.1`, 'utf8')).toBe('web1 first\n');
    daemon.kill('SIGTERM');
    expect(await daemon.exited).toBe(0);
    expect(fs.readFileSync(split, 'utf8')).toBe('web1 second\n');
  });

  it('the logrotate stanza signals the unit and covers both files', () => {
    const stanza = read('logrotate.spread-pipe');
    expect(stanza).toContain('systemctl kill --signal=HUP spread-pipe-daemon.service');
    expect(stanza).toContain('/var/log/spread/*.log /var/log/spread/*/*.log {');
    expect(execStart.join(' ')).toMatch(/--write \w+=\/var\/log\/spread\/[\w.-]+\.log /);
  });

  it.skipIf(!fs.existsSync('/usr/bin/systemd-analyze'))('passes systemd-analyze verify', () => {
    const dir = tempDir();
    const copy = path.join(dir, 'spread-pipe-daemon.service');
    fs.writeFileSync(copy, unit.replace('/usr/bin/spread-pipe', CLI));
    const r = spawnSync('/usr/bin/systemd-analyze', ['verify', copy], { encoding: 'utf8' });
    expect(r.status).toBe(0);
    expect(r.stderr).toBe('');
  });
});

describe('examples/spread-pipe-write.service', () => {
  const unit = read('spread-pipe-write.service');
  // What systemd makes of ExecStart: continuation lines joined, %% is one %.
  const execStart = /^ExecStart=\/usr\/bin\/spread-pipe ((?:.*\\\n)*.*)$/m.exec(unit)![1]!.replace(/\\\n/g, ' ').replace(/%%/g, '%').trim().split(/\s+/);

  it("#13: ExecStart's writer joins on the first daemon, writes the day's file and the per-host file, and SIGHUP reopens them", async () => {
    const dir = tempDir();
    const a = await startDaemon();
    const b = await startDaemon();
    const args = execStart.map((x) => x.replace('/var/log/spread', dir)).map((x) => (x === '4803@loghost1' ? a.spec : x === '4803@loghost2' ? b.spec : x));
    expect(args.slice(0, 5)).toEqual(['write', '-s', a.spec, '-s', b.spec]);
    const w = startCli(args, { stdin: 'ignore', env: { TZ: 'UTC' } });
    await w.waitStderr((s) => s.includes(`joined jigdo on ${a.spec}`));
    const publish = async (line: string): Promise<void> => {
      const p = startCli(['-g', 'jigdo', '-s', a.spec, '-h', 'web1']);
      await feedStdin(p, `${line}\n`);
      expect(await p.exited).toBe(0);
    };
    const day = (): string => path.join(dir, 'jigdo', new Date().toISOString().slice(0, 10).replace(/-/g, '/'), 'access.log');
    const host = path.join(dir, 'hosts', 'web1.log');
    await publish('first');
    await waitFor(() => fs.existsSync(host) && fs.existsSync(day()) && fs.readFileSync(day(), 'utf8').endsWith('web1 first\n'), 5000, day());
    expect(fs.readFileSync(host, 'utf8')).toBe('web1 first\n');
    fs.renameSync(host, `${host}.1`);
    w.kill('SIGHUP');
    await w.waitStderr((s) => s.includes('reopened log files'));
    await publish('second');
    await waitFor(() => fs.existsSync(host) && fs.readFileSync(host, 'utf8') === 'web1 second\n', 5000, `${host} after SIGHUP`);
    w.kill('SIGTERM');
    expect(await w.exited).toBe(0);
    expect(fs.readFileSync(`${host}.1`, 'utf8')).toBe('web1 first\n');
  });

  it.skipIf(!fs.existsSync('/usr/bin/systemd-analyze'))('#13: passes systemd-analyze verify', () => {
    const dir = tempDir();
    const copy = path.join(dir, 'spread-pipe-write.service');
    fs.writeFileSync(copy, unit.replaceAll('/usr/bin/spread-pipe', CLI).replace('After=network-online.target spread.service', 'After=network-online.target'));
    const r = spawnSync('/usr/bin/systemd-analyze', ['verify', copy], { encoding: 'utf8' });
    expect([r.status, r.stderr]).toEqual([0, '']);
  });
});
