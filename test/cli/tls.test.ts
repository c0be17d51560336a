/**
 * #15: TLS end to end with the built CLI as child processes: `--daemon` with
 * a tls:// listener beside a plain one, pipe mode, tail, write and top over
 * TLS (byte-exact), each refusal as one clear stderr line on both sides and
 * counted, SIGHUP re-reading the certificate files, failover across a mixed
 * tls:// and plain -s list with --ack, and usage errors for bad TLS files.
 */
import { describe, expect, it } from 'vitest';
import fs from 'node:fs';
import path from 'node:path';
import { type Proc, counter, feedStdin, freePort, lineNumbers, numberedLines, sendUdp, startCli, tempDir, waitFor, withTimeout } from '../helpers.js';
import { testPkiForFile } from '../helpers/tls.js';

const pki = testPkiForFile('spread-pipe-tls-cli-');

interface TlsDaemon {
  proc: Proc;
  tlsPort: number;
  plainPort: number;
}

/** `--daemon` with tls://127.0.0.1:0 and 127.0.0.1:0 (plain); extra args (e.g. --tls-client-ca, --write). */
async function startTlsDaemon(args: string[] = [], files = pki.server): Promise<TlsDaemon> {
  const proc = startCli(
    ['--daemon', '--name', 'localhost', '--no-unix', '--listen', 'tls://127.0.0.1:0', '--listen', '127.0.0.1:0', '--tls-cert', files.cert, '--tls-key', files.key, '--report-interval', '200', ...args],
    { stdin: 'ignore' },
  );
  const err = await Promise.race([
    proc.waitStderr((s) => /ready/.test(s)),
    proc.exited.then((c) => {
      throw new Error(`daemon exited (${c}): ${proc.stderr()}`);
    }),
  ]);
  const tlsPort = Number(/listening on tls:\/\/127\.0\.0\.1:(\d+)/.exec(err)![1]);
  const plainPort = Number(/listening on 127\.0\.0\.1:(\d+)/.exec(err)![1]);
  return { proc, tlsPort, plainPort };
}

const CA = (): string[] => ['--tls-ca', pki.ca];
const AS = (who: { cert: string; key: string }): string[] => ['--tls-cert', who.cert, '--tls-key', who.key];

/** A tail that has joined (its session shows at the daemon). */
async function startTail(d: TlsDaemon, args: string[]): Promise<Proc> {
  const before = (d.proc.stderr().match(/connect #/g) ?? []).length;
  const t = startCli(['tail', ...args]);
  await d.proc.waitStderr((s) => (s.match(/connect #/g) ?? []).length > before);
  await new Promise((r) => setTimeout(r, 200));
  return t;
}

describe('#15: TLS with the CLI', () => {
  it('#15: pipe mode (also --spool) -> tls:// daemon -> tail over TLS and --write: byte-exact; write mode over TLS too', { timeout: 60_000 }, async () => {
    const dir = tempDir();
    const d = await startTlsDaemon(['--write', `logs=${dir}/daemon.log`]);
    const tail = await startTail(d, ['-g', 'logs', '-s', `tls://localhost:${d.tlsPort}`, ...CA()]);
    const writer = startCli(['write', '-s', `tls://127.0.0.1:${d.tlsPort}`, ...CA(), '--write', `logs=${dir}/write.log`]);
    await d.proc.waitStderr((s) => (s.match(/connect #/g) ?? []).length >= 2);
    await new Promise((r) => setTimeout(r, 300));
    const lines = numberedLines(1, 2001);
    const pipe = startCli(['-g', 'logs', '-h', 'web1', '-s', `tls://127.0.0.1:${d.tlsPort}`, ...CA()]);
    await feedStdin(pipe, lines);
    expect(await pipe.exited).toBe(0);
    const spooled = startCli(['-g', 'logs', '-h', 'web1', '-s', `tls://127.0.0.1:${d.tlsPort}`, ...CA(), '--spool', path.join(dir, 'spool')]);
    await feedStdin(spooled, numberedLines(2001, 2501));
    expect(await spooled.exited).toBe(0);
    const want = numberedLines(1, 2501)
      .split('\n')
      .filter(Boolean)
      .map((l) => `web1 ${l}\n`)
      .join('');
    await tail.waitStdout((s) => s.length >= want.length, 20_000);
    expect(tail.stdout().toString('latin1')).toBe(want);
    await waitFor(() => fs.existsSync(`${dir}/write.log`) && fs.readFileSync(`${dir}/write.log`, 'latin1').length >= want.length, 20_000, 'write.log');
    expect(fs.readFileSync(`${dir}/write.log`, 'latin1')).toBe(want);
    await waitFor(() => fs.existsSync(`${dir}/daemon.log`) && fs.readFileSync(`${dir}/daemon.log`, 'latin1').length >= want.length, 20_000, 'daemon.log');
    expect(fs.readFileSync(`${dir}/daemon.log`, 'latin1')).toBe(want);
    d.proc.kill('SIGTERM');
    await d.proc.exited;
    expect(counter(d.proc.stderr(), 'rejected')).toBe(0);
  });

  it('#15: the syslog bridge and top over TLS', { timeout: 60_000 }, async () => {
    const d = await startTlsDaemon(['--tls-client-ca', pki.ca]);
    const top = startCli(['top', '-g', 'logs', '-s', `tls://127.0.0.1:${d.tlsPort}`, ...CA(), ...AS(pki.web2), '--exit-after', '20', '--interval', '100'], { stdin: 'ignore' });
    await top.waitStderr((s) => s.includes('joined logs'));
    const tail = await startTail(d, ['-g', 'logs', '-s', `tls://127.0.0.1:${d.tlsPort}`, ...CA(), ...AS(pki.web2)]);
    const port = await freePort();
    const bridge = startCli(['-g', 'logs', '-h', 'web1', '-s', `tls://127.0.0.1:${d.tlsPort}`, ...CA(), ...AS(pki.web1), '--syslog', `udp://127.0.0.1:${port}`], { stdin: 'ignore' });
    await bridge.waitStderr((s) => s.includes('listening on udp://'));
    await d.proc.waitStderr((s) => (s.match(/connect #/g) ?? []).length >= 3);
    const line = (i: number): string => `10.0.0.${i} - - [01/Dec/2026:09:00:00 +0000] "GET /p${i} HTTP/1.1" 200 100 "-" "curl/8"`;
    await sendUdp(port, Array.from({ length: 20 }, (_, i) => Buffer.from(`<190>Dec  1 09:00:00 web1 nginx: ${line(i)}`)));
    await tail.waitStdout((s) => s.split('\n').length > 20);
    expect(tail.stdout().toString().split('\n').slice(0, 20)).toEqual(Array.from({ length: 20 }, (_, i) => `web1 ${line(i)}`));
    expect(await withTimeout(top.exited, 15_000, 'top exit')).toBe(0);
    expect(JSON.parse(top.stdout().toString().trim().split('\n').pop()!)).toMatchObject({ lines: 20, requests: 20 });
  });

  it('#15: wrong CA, expired, wrong name, plaintext to TLS, TLS to plain: one clear line each, counted; good clients served', { timeout: 90_000 }, async () => {
    const good = await startTlsDaemon();
    const expired = await startTlsDaemon([], pki.expired);
    const wrongName = await startTlsDaemon([], pki.wrongName);
    const untrusted = await startTlsDaemon([], pki.untrusted);
    const run = async (args: string[]): Promise<string> => {
      const p = startCli(['tail', '-g', 'logs', '--connect-timeout', '5000', ...args]);
      expect(await p.exited).toBe(1);
      const lines = p.stderr().trim().split('\n');
      expect(lines).toHaveLength(1);
      expect(lines[0]).toMatch(/^spread-pipe: /);
      return lines[0]!;
    };
    const [a, b, c, e, f] = await Promise.all([
      run(['-s', `tls://127.0.0.1:${untrusted.tlsPort}`, ...CA()]),
      run(['-s', `tls://127.0.0.1:${expired.tlsPort}`, ...CA()]),
      run(['-s', `tls://127.0.0.1:${wrongName.tlsPort}`, ...CA()]),
      run(['-s', `${good.tlsPort}@127.0.0.1`]),
      run(['-s', `tls://127.0.0.1:${good.plainPort}`, ...CA()]),
    ]);
    expect(a).toContain(`the certificate of daemon tls://127.0.0.1:${untrusted.tlsPort} is not trusted`);
    expect(b).toContain(`the certificate of daemon tls://127.0.0.1:${expired.tlsPort} has expired`);
    expect(c).toContain(`the certificate of daemon tls://127.0.0.1:${wrongName.tlsPort} is for another name`);
    expect(e).toContain(`daemon ${good.tlsPort}@127.0.0.1 answered in TLS: it is a TLS port`);
    expect(f).toContain(`daemon tls://127.0.0.1:${good.plainPort} closed the connection in the TLS handshake (a plain Spread port?`);
    await good.proc.waitStderr((s) => s.includes('plaintext on a TLS port') && s.includes('TLS ClientHello on a plain port'));
    for (const d of [expired, wrongName, untrusted]) await d.proc.waitStderr((s) => /refused 127\.0\.0\.1:\d+: TLS handshake failed/.test(s));
    // The good daemon serves a good client over TLS in the same run.
    const tail = await startTail(good, ['-g', 'logs', '-s', `tls://127.0.0.1:${good.tlsPort}`, ...CA()]);
    const pipe = startCli(['-g', 'logs', '-h', 'web1', '-s', `tls://127.0.0.1:${good.tlsPort}`, ...CA()]);
    await feedStdin(pipe, 'still here\n');
    expect(await pipe.exited).toBe(0);
    await tail.waitStdout((s) => s === 'web1 still here\n');
    good.proc.kill('SIGTERM');
    await good.proc.exited;
    expect(counter(good.proc.stderr(), 'rejected')).toBe(2);
    // Pipe mode says it once and keeps retrying (and queueing).
    const retrying = startCli(['-g', 'logs', '-s', `tls://127.0.0.1:${expired.tlsPort}`, ...CA(), '--drain-timeout', '300']);
    await retrying.waitStderr((s) => s.includes(`cannot reach tls://127.0.0.1:${expired.tlsPort}: the certificate of daemon tls://127.0.0.1:${expired.tlsPort} has expired; queueing and retrying`));
  });

  it('#15: mutual TLS: missing or rogue client certificate refused; a forged host tag refused and counted, the rest delivered', { timeout: 60_000 }, async () => {
    const d = await startTlsDaemon(['--tls-client-ca', pki.ca]);
    const noCert = startCli(['tail', '-g', 'logs', '-s', `tls://127.0.0.1:${d.tlsPort}`, ...CA()]);
    const rogue = startCli(['tail', '-g', 'logs', '-s', `tls://127.0.0.1:${d.tlsPort}`, ...CA(), ...AS(pki.rogue)]);
    expect(await noCert.exited).toBe(1);
    expect(await rogue.exited).toBe(1);
    expect(noCert.stderr()).toMatch(/^spread-pipe: daemon tls:\/\/127\.0\.0\.1:\d+ requires a client certificate signed by its CA: give --tls-cert and --tls-key\n$/);
    expect(rogue.stderr()).toMatch(/^spread-pipe: daemon tls:\/\/127\.0\.0\.1:\d+ refused our client certificate \(--tls-cert\)/);
    await d.proc.waitStderr((s) => s.includes('no client certificate (--tls-client-ca requires one)') && s.includes('client certificate refused: UNABLE_TO_VERIFY_LEAF_SIGNATURE'));
    const tail = await startTail(d, ['-g', 'logs', '-s', `tls://127.0.0.1:${d.tlsPort}`, ...CA(), ...AS(pki.web2)]);
    const honest = startCli(['-g', 'logs', '-h', 'web1', '-s', `tls://127.0.0.1:${d.tlsPort}`, ...CA(), ...AS(pki.web1)]);
    await feedStdin(honest, 'GET /honest\n');
    expect(await honest.exited).toBe(0);
    const forger = startCli(['-g', 'logs', '-h', 'web2', '-s', `tls://127.0.0.1:${d.tlsPort}`, ...CA(), ...AS(pki.web1)]);
    await feedStdin(forger, 'GET /forged1\nGET /forged2\nGET /forged3\n');
    expect(await forger.exited).toBe(0);
    const san = startCli(['-g', 'logs', '-h', 'web1.example', '-s', `tls://127.0.0.1:${d.tlsPort}`, ...CA(), ...AS(pki.web1)]);
    await feedStdin(san, 'GET /by-san\n');
    expect(await san.exited).toBe(0);
    await tail.waitStdout((s) => s.includes('/by-san'));
    expect(tail.stdout().toString()).toBe('web1 GET /honest\nweb1.example GET /by-san\n');
    // The first refusal at once, the rest counted in one line per interval.
    await d.proc.waitStderr((s) => /refused a message of #\S+#localhost: host tag "web2" is not named by its client certificate \(web1, web1\.example\)/.test(s));
    await d.proc.waitStderr((s) => /refused connections in the last [\d.]+ s: forged-tag=2/.test(s));
    d.proc.kill('SIGTERM');
    await d.proc.exited;
    expect(counter(d.proc.stderr(), 'forged_tags')).toBe(3);
    expect(counter(d.proc.stderr(), 'rejected')).toBe(2);
  });

  it('#15: --ack under mutual TLS: its markers (to its own private group only) are no forged lines; every line acknowledged', { timeout: 60_000 }, async () => {
    const dir = tempDir();
    const d = await startTlsDaemon(['--tls-client-ca', pki.ca, '--write', `logs=${dir}/logs.log`]);
    const pipe = startCli(['-g', 'logs', '-h', 'web1', '--ack', '-s', `tls://127.0.0.1:${d.tlsPort}`, ...CA(), ...AS(pki.web1), '--drain-timeout', '10000']);
    await feedStdin(pipe, numberedLines(1, 3001));
    expect(await pipe.exited).toBe(0);
    expect(counter(pipe.stderr(), 'acked')).toBe(3000);
    await waitFor(() => lineNumbers(`${dir}/logs.log`, 'web1').length >= 3000, 10_000, 'all written');
    d.proc.kill('SIGTERM');
    await d.proc.exited;
    expect(counter(d.proc.stderr(), 'forged_tags')).toBe(0);
  });

  it('#15: SIGHUP re-reads the certificate files; a bad file keeps the old ones with one line', { timeout: 60_000 }, async () => {
    const dir = tempDir();
    const cert = path.join(dir, 'server.pem');
    const key = path.join(dir, 'server.key');
    fs.copyFileSync(pki.untrusted.cert, cert);
    fs.copyFileSync(pki.untrusted.key, key);
    const d = await startTlsDaemon([], { cert, key });
    const before = startCli(['tail', '-g', 'logs', '-s', `tls://127.0.0.1:${d.tlsPort}`, ...CA()]);
    expect(await before.exited).toBe(1);
    expect(before.stderr()).toContain('is not trusted');
    // Renewed: the new certificate is taken without a restart.
    fs.copyFileSync(pki.server.cert, cert);
    fs.copyFileSync(pki.server.key, key);
    d.proc.kill('SIGHUP');
    await d.proc.waitStderr((s) => s.includes(`SIGHUP: reloaded TLS files ${cert}, ${key}`));
    const tail = await startTail(d, ['-g', 'logs', '-s', `tls://127.0.0.1:${d.tlsPort}`, ...CA()]);
    // A broken renewal: the old context stays, one line says why.
    fs.writeFileSync(key, 'not a key\n');
    d.proc.kill('SIGHUP');
    await d.proc.waitStderr((s) => s.includes(`SIGHUP: cannot reload TLS files, keeping the old ones: TLS key ${key}: not a PEM file`));
    const pipe = startCli(['-g', 'logs', '-h', 'web1', '-s', `tls://127.0.0.1:${d.tlsPort}`, ...CA()]);
    await feedStdin(pipe, 'after a bad renewal\n');
    expect(await pipe.exited).toBe(0);
    await tail.waitStdout((s) => s === 'web1 after a bad renewal\n');
  });

  it('#15: failover across a mixed list (tls:// first, plain second) with --ack: no line lost, and back to TLS', { timeout: 90_000 }, async () => {
    const dir = tempDir();
    const a = await startTlsDaemon(['--write', `logs=${dir}/a.log`]);
    const b = startCli(['--daemon', '--name', 'localhost', '--no-unix', '--listen', '127.0.0.1:0', '--write', `logs=${dir}/b.log`], { stdin: 'ignore' });
    const bPort = Number(/listening on 127\.0\.0\.1:(\d+)/.exec(await b.waitStderr((s) => /ready/.test(s)))![1]);
    const pipe = startCli(['-g', 'logs', '-h', 'web1', '--ack', '-s', `tls://127.0.0.1:${a.tlsPort}`, '-s', `${bPort}@127.0.0.1`, ...CA(), '--failback-interval', '500', '--drain-timeout', '10000']);
    const file = (n: string): number[] => (fs.existsSync(`${dir}/${n}.log`) ? lineNumbers(`${dir}/${n}.log`, 'web1') : []);
    await feedStdin(pipe, numberedLines(1, 501), false);
    await waitFor(() => file('a').length >= 500, 20_000, 'lines 1-500 over TLS');
    a.proc.kill('SIGKILL');
    await a.proc.exited;
    await feedStdin(pipe, numberedLines(501, 1001), false);
    await waitFor(() => new Set([...file('a'), ...file('b')]).size >= 1000, 20_000, 'lines 501-1000 on the plain daemon');
    // The TLS daemon back on its port: pipe mode fails back to it.
    fs.renameSync(`${dir}/a.log`, `${dir}/a1.log`);
    const again = startCli(
      ['--daemon', '--name', 'localhost', '--no-unix', '--listen', `tls://127.0.0.1:${a.tlsPort}`, '--tls-cert', pki.server.cert, '--tls-key', pki.server.key, '--write', `logs=${dir}/a.log`],
      { stdin: 'ignore' },
    );
    await again.waitStderr((s) => /ready/.test(s));
    await pipe.waitStderr((s) => s.includes(`back on tls://127.0.0.1:${a.tlsPort}`), 20_000);
    await feedStdin(pipe, numberedLines(1001, 1501));
    expect(await pipe.exited).toBe(0);
    const all = new Set([...lineNumbers(`${dir}/a1.log`, 'web1'), ...file('a'), ...file('b')]);
    expect(all.size).toBe(1500);
    expect(Math.min(...all)).toBe(1);
    expect(Math.max(...all)).toBe(1500);
    expect(file('a').filter((n) => n > 1000).length).toBeGreaterThan(0);
  });

  it('#15: --unix (the default) gives plain TCP ports their /tmp/PORT twin, not TLS ports', { timeout: 30_000 }, async () => {
    const d = startCli(['--daemon', '--name', 'localhost', '--listen', 'tls://127.0.0.1:0', '--tls-cert', pki.server.cert, '--tls-key', pki.server.key], { stdin: 'ignore' });
    const err = await d.waitStderr((s) => /ready/.test(s));
    const port = Number(/listening on tls:\/\/127\.0\.0\.1:(\d+)/.exec(err)![1]);
    expect(err).not.toContain('listening on /tmp/');
    expect(fs.existsSync(`/tmp/${port}`)).toBe(false);
  });

  it('#15: unusable TLS files are usage errors naming the option and the file, before anything starts', { timeout: 60_000 }, async () => {
    const dir = tempDir();
    const garbage = path.join(dir, 'garbage.pem');
    fs.writeFileSync(garbage, '-----BEGIN CERTIFICATE-----\nnot base64 at all\n-----END CERTIFICATE-----\n');
    const cases: Array<[string[], RegExp]> = [
      [['--daemon', '--listen', 'tls://127.0.0.1:0', '--tls-cert', path.join(dir, 'none.pem'), '--tls-key', pki.server.key], /^spread-pipe: --tls-cert: TLS certificate .*none\.pem: no such file$/],
      [['--daemon', '--listen', 'tls://127.0.0.1:0', '--tls-cert', pki.server.cert, '--tls-key', pki.web1.key], /^spread-pipe: --tls-key: TLS key .*web1\.key: does not match the certificate .*server\.pem$/],
      [['--daemon', '--listen', 'tls://127.0.0.1:0', '--tls-cert', garbage, '--tls-key', pki.server.key], /^spread-pipe: --tls-cert: TLS certificate .*garbage\.pem: /],
      [['--daemon', '--listen', 'tls://127.0.0.1:0'], /^spread-pipe: -l\/--listen: a tls:\/\/ address needs --tls-cert and --tls-key$/],
      [['-g', 'g', '-s', 'tls://127.0.0.1:1', '--tls-ca', path.join(dir, 'none.pem')], /^spread-pipe: --tls-ca: TLS CA file .*none\.pem: no such file$/],
      [['tail', '-g', 'g', '-s', 'tls://127.0.0.1:1', '--tls-cert', pki.web1.cert], /^spread-pipe: --tls-cert: a client certificate needs both --tls-cert and --tls-key$/],
      [['write', '-s', 'tls://127.0.0.1:1', '--write', `g=${dir}/w.log`, '--tls-cert', pki.web1.cert, '--tls-key', pki.web2.key], /^spread-pipe: --tls-key: TLS key .*web2\.key: /],
      [['top', '-g', 'g', '-s', '4803@127.0.0.1', '--tls-ca', pki.ca, '--json'], /^spread-pipe: --tls-ca: no -s names a tls:\/\/HOST:PORT daemon/],
    ];
    const results = await Promise.all(
      cases.map(async ([args]) => {
        const p = startCli(args, { stdin: 'ignore' });
        return { code: await p.exited, stderr: p.stderr() };
      }),
    );
    results.forEach((r, i) => {
      expect(r.code, cases[i]![0].join(' ')).toBe(2);
      expect(r.stderr.trim().split('\n'), cases[i]![0].join(' ')).toHaveLength(1);
      expect(r.stderr.trim(), cases[i]![0].join(' ')).toMatch(cases[i]![1]);
    });
  });
});
