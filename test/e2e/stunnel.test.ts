/**
 * #15: interoperability with Debian's stunnel4, using the very configs of
 * examples/ (only ports and files filled in):
 *  (a) examples/stunnel-spread-server.conf: our TLS client -> stunnel (accepts
 *      TLS, connects plain) -> a plaintext Spread daemon. In CI that daemon is
 *      our built-in one on plain TCP; README shows the same in front of real
 *      Spread 5.0.1, checked by hand.
 *  (b) examples/stunnel-spread-client.conf: a plaintext Spread client -> stunnel
 *      client mode (with a client certificate) -> our tls:// listener with
 *      --tls-client-ca. In CI the plaintext clients are our own `tail` and pipe
 *      mode; README shows spuser and spreadlogd, checked by hand.
 */
import { describe, expect, it } from 'vitest';
import fs from 'node:fs';
import path from 'node:path';
import { type Proc, ROOT, feedStdin, freePort, startCli, startDaemon, startProcess, tempDir, waitFor, waitForTcp } from '../helpers.js';
import { testPkiForFile } from '../helpers/tls.js';

const STUNNEL = '/usr/bin/stunnel4';
// In CI stunnel4 is installed by .ci/run: a missing binary there is a failure, not a skip.
const run = fs.existsSync(STUNNEL) || process.env.CI ? describe : describe.skip;

const pki = testPkiForFile('spread-pipe-stunnel-');

/**
 * An examples/ stunnel config with `set` values put in place of its own
 * (`key = value` lines, commented-out ones included: `;key = value` is
 * switched on when set).
 */
export function templateStunnel(example: string, set: Record<string, string>): string {
  const text = fs.readFileSync(path.join(ROOT, 'examples', example), 'utf8');
  const seen = new Set<string>();
  const out = text.replace(/^;?([A-Za-z]+) = .*$/gm, (line, key: string) => {
    if (!(key in set)) return line;
    seen.add(key);
    return `${key} = ${set[key]}`;
  });
  const missing = Object.keys(set).filter((k) => !seen.has(k));
  if (missing.length) throw new Error(`${example} has no ${missing.join(', ')} line: the test and the example disagree`);
  return out;
}

/** stunnel4 in the foreground with the config; resolves once its accept port takes connections. */
async function startStunnel(dir: string, name: string, conf: string, acceptPort: number): Promise<Proc> {
  const file = path.join(dir, name);
  fs.writeFileSync(file, conf);
  const p = startProcess(STUNNEL, [file]);
  await waitForTcp(acceptPort, 10_000, () => p.stderr());
  return p;
}

async function startTlsDaemon(args: string[]): Promise<{ proc: Proc; tlsPort: number }> {
  const proc = startCli(['--daemon', '--name', 'localhost', '--no-unix', '--listen', 'tls://127.0.0.1:0', '--tls-cert', pki.server.cert, '--tls-key', pki.server.key, '--report-interval', '200', ...args], {
    stdin: 'ignore',
  });
  const err = await proc.waitStderr((s) => /ready/.test(s));
  return { proc, tlsPort: Number(/listening on tls:\/\/127\.0\.0\.1:(\d+)/.exec(err)![1]) };
}

run('#15: stunnel4 interop with the examples/ configs', () => {
  it('#15: (a) our TLS client -> stunnel server side -> plaintext daemon: byte-exact, name checked', { timeout: 60_000 }, async () => {
    const dir = tempDir();
    const { daemon, port } = await startDaemon();
    const tlsPort = await freePort();
    const stunnel = await startStunnel(
      dir,
      'server.conf',
      templateStunnel('stunnel-spread-server.conf', { accept: `127.0.0.1:${tlsPort}`, connect: `127.0.0.1:${port}`, cert: pki.server.cert, key: pki.server.key }),
      tlsPort,
    );
    const tail = startCli(['tail', '-g', 'logs', '-s', `tls://localhost:${tlsPort}`, '--tls-ca', pki.ca]);
    await waitFor(() => daemon.getStats().groups.some(([g]) => g === 'logs'), 10_000, 'tail joined through stunnel');
    const lines = Array.from({ length: 3000 }, (_, i) => `${i} GET /through/stunnel/${'x'.repeat(i % 300)} HTTP/1.1\n`).join('');
    const pipe = startCli(['-g', 'logs', '-h', 'web1', '-s', `tls://127.0.0.1:${tlsPort}`, '--tls-ca', pki.ca]);
    await feedStdin(pipe, lines);
    expect(await pipe.exited).toBe(0);
    const want = lines.replace(/^/gm, 'web1 ').slice(0, -'web1 '.length);
    await tail.waitStdout((s) => s.length >= want.length, 20_000);
    expect(tail.stdout().toString('latin1')).toBe(want);
    // stunnel's certificate is checked like any: a CA we do not trust fails with its code's line.
    const wrong = startCli(['tail', '-g', 'logs', '-s', `tls://127.0.0.1:${tlsPort}`, '--tls-ca', pki.otherCa]);
    expect(await wrong.exited).toBe(1);
    expect(wrong.stderr()).toMatch(/^spread-pipe: the certificate of daemon tls:\/\/127\.0\.0\.1:\d+ is not trusted/);
    // Plaintext to stunnel's TLS port: stunnel hangs up without a word; the line says what it may be.
    const plain = startCli(['tail', '-g', 'logs', '-s', `${tlsPort}@127.0.0.1`]);
    expect(await plain.exited).toBe(1);
    expect(plain.stderr()).toMatch(/^spread-pipe: .*daemon \d+@127\.0\.0\.1.* without answering \(a TLS port\? then name it tls:\/\/HOST:PORT\)\n$/);
    expect(stunnel.child.exitCode).toBe(null);
  });

  it('#15: (b) plaintext Spread clients -> stunnel client side (client certificate) -> our tls:// listener with --tls-client-ca', { timeout: 60_000 }, async () => {
    const dir = tempDir();
    const d = await startTlsDaemon(['--tls-client-ca', pki.ca]);
    const plainPort = await freePort();
    await startStunnel(
      dir,
      'client.conf',
      templateStunnel('stunnel-spread-client.conf', {
        accept: `127.0.0.1:${plainPort}`,
        connect: `127.0.0.1:${d.tlsPort}`,
        CAfile: pki.ca,
        checkHost: 'localhost',
        cert: pki.web1.cert,
        key: pki.web1.key,
      }),
      plainPort,
    );
    const tail = startCli(['tail', '-g', 'logs', '-s', `${plainPort}@127.0.0.1`]);
    await d.proc.waitStderr((s) => /connect #\S+ from 127\.0\.0\.1/.test(s));
    await new Promise((r) => setTimeout(r, 300));
    const pipe = startCli(['-g', 'logs', '-h', 'web1', '-s', `${plainPort}@127.0.0.1`]);
    await feedStdin(pipe, 'GET /a\nGET /b\n');
    expect(await pipe.exited).toBe(0);
    // The certificate stunnel presents is web1's: another host tag through it is refused.
    const forger = startCli(['-g', 'logs', '-h', 'web2', '-s', `${plainPort}@127.0.0.1`]);
    await feedStdin(forger, 'GET /forged\n');
    expect(await forger.exited).toBe(0);
    await d.proc.waitStderr((s) => s.includes('host tag "web2" is not named by its client certificate (web1, web1.example)'));
    const last = startCli(['-g', 'logs', '-h', 'web1', '-s', `${plainPort}@127.0.0.1`]);
    await feedStdin(last, 'GET /c\n');
    expect(await last.exited).toBe(0);
    await tail.waitStdout((s) => s.includes('/c'));
    expect(tail.stdout().toString()).toBe('web1 GET /a\nweb1 GET /b\nweb1 GET /c\n');
  });
});
