/**
 * Pipe mode and tail as real processes (issues 2 and 3): usage errors before
 * stdin is read, byte-exact delivery through the built-in daemon to
 * `spread-pipe tail`, SIGTERM drain, and stdin draining with no daemon.
 */
import { describe, expect, it } from 'vitest';
import path from 'node:path';
import fs from 'node:fs';
import { expectCountersAddUp, feedStdin, freePort, numberedLines, startCli, startDaemon, startDaemonProcess, tempDir, waitFor } from '../helpers.js';
import { DaemonFaults } from '../../src/spread/daemon.js';

describe('spread-pipe (pipe mode)', () => {
  it.each([
    [['-g', 'bad group']],
    [['-g', 'ok', '-s', 'nowhere']],
    [['-g', 'ok', '--on-full', 'drop-random']],
    [['-g', 'ok', '--max-line', '10x']],
    [['-g', 'ok', '--group-hash', '4']],
    [['--bogus']],
    [[]],
  ])('exits 2 with one line for %j, without reading stdin', async (args) => {
    const p = startCli(args);
    // stdin is left open: a mode that read it would wait, not exit.
    expect(await p.exited).toBe(2);
    const err = p.stderr().trim().split('\n');
    expect(err).toHaveLength(1);
    expect(err[0]).toMatch(/^spread-pipe: /);
  });

  it('prints help with exit 0', async () => {
    const p = startCli(['--help']);
    expect(await p.exited).toBe(0);
    expect(p.stdout().toString()).toMatch(/--on-full/);
  });

  it('delivers stdin lines byte-exact to a tail subscriber, as HOST SP LINE LF', async () => {
    const { spec } = await startDaemon();
    const input = Buffer.concat([
      Buffer.from('GET /index.html 200\n'),
      Buffer.from([0x62, 0x00, 0xff, 0xfe, 0x0a]),
      Buffer.from('crlf line\r\n'),
      Buffer.from('no newline at the end'),
    ]);
    const tail = startCli(['tail', '-g', 'jigdo', '-s', spec, '--count', '4', '--membership']);
    await tail.waitStdout((s) => s.includes('# membership jigdo: join'));
    const pub = startCli(['-g', 'jigdo', '-s', spec, '-h', 'web7']);
    await feedStdin(pub, input);
    expect(await pub.exited).toBe(0);
    expect(await tail.exited).toBe(0);
    const out = tail.stdout();
    const body = out.subarray(out.indexOf('\n') + 1);
    expect(body.toString('hex')).toBe(
      Buffer.concat([
        Buffer.from('web7 GET /index.html 200\n'),
        Buffer.from('web7 '),
        Buffer.from([0x62, 0x00, 0xff, 0xfe, 0x0a]),
        Buffer.from('web7 crlf line\n'),
        Buffer.from('web7 no newline at the end\n'),
      ]).toString('hex'),
    );
    expect(pub.stderr()).toMatch(/exit: read=4 truncated=0 sent_lines=4/);
    expectCountersAddUp(pub.stderr());
  });

  it('sends the line alone with --no-tag, to several groups at once', async () => {
    const { spec } = await startDaemon();
    const t1 = startCli(['tail', '-g', 'a', '-s', spec, '--count', '1', '--membership']);
    const t2 = startCli(['tail', '-g', 'b', '-s', spec, '--count', '1', '--membership']);
    await t1.waitStdout((s) => s.includes('# membership'));
    await t2.waitStdout((s) => s.includes('# membership'));
    const pub = startCli(['-g', 'a', '-g', 'b', '-s', spec, '--no-tag']);
    await feedStdin(pub, 'only the line\n');
    expect(await t1.exited).toBe(0);
    expect(await t2.exited).toBe(0);
    expect(t1.stdout().toString()).toMatch(/\nonly the line\n$/);
    expect(t2.stdout().toString()).toMatch(/\nonly the line\n$/);
    expect(await pub.exited).toBe(0);
    expectCountersAddUp(pub.stderr());
  });

  it('drains what is queued on SIGTERM, disconnects, and exits 0', async () => {
    const { spec } = await startDaemon();
    const tail = startCli(['tail', '-g', 'g', '-s', spec, '--count', '3', '--membership']);
    await tail.waitStdout((s) => s.includes('# membership'));
    const pub = startCli(['-g', 'g', '-s', spec, '-h', 'h']);
    await feedStdin(pub, 'one\ntwo\nthree\n', false); // stdin stays open, as under Apache
    await tail.waitStdout((s) => s.includes('h three'));
    pub.kill('SIGTERM');
    expect(await pub.exited).toBe(0);
    expect(pub.stderr()).toMatch(/exit: read=3 .*sent_lines=3 .*unsent-at-exit=0/);
    expectCountersAddUp(pub.stderr());
    expect(await tail.exited).toBe(0);
  });

  it('keeps reading stdin at full speed with no daemon reachable, and reports what it dropped', async () => {
    const pub = startCli(['-g', 'g', '-s', '1@127.0.0.1', '--queue-bytes', '1M', '--drain-timeout', '0', '--report-interval', '100']);
    const line = `${'x'.repeat(199)}\n`;
    const chunk = line.repeat(5000); // 1 MB
    for (let i = 0; i < 20; i++) await feedStdin(pub, chunk, false);
    pub.child.stdin!.end();
    expect(await pub.exited).toBe(0);
    const err = pub.stderr();
    expect(err).toMatch(/cannot reach 1@127\.0\.0\.1/);
    const m = /exit: read=(\d+) .*dropped: queue-full=(\d+) lost-in-flight=0 unsent-at-exit=(\d+)/.exec(err)!;
    expect(Number(m[1])).toBe(100_000);
    expect(Number(m[2]) + Number(m[3])).toBe(100_000);
    expectCountersAddUp(err);
  });

  // Regression: the dial loop outlived close() and a connect that never got an
  // answer held the process (forever with --ack --spool: the unacknowledged lines
  // kept the loop going). Apache would wait on the old logger at each restart.
  it.each([[[] as string[]], [['--ack', '--spool', 'SPOOL']]])('exits at the drain timeout when the daemon accepts but never answers (%j)', async (extra) => {
    const { spec, daemon } = await startDaemon({ faults: new DaemonFaults({ hang: true }) });
    const args = extra.map((a) => (a === 'SPOOL' ? path.join(tempDir(), 'spool') : a));
    const pub = startCli(['-g', 'g', '-s', spec, '--connect-timeout', '600000', '--drain-timeout', '300', ...args]);
    await feedStdin(pub, 'a\nb\n', false);
    await waitFor(() => daemon.getStats().connections === 1);
    pub.child.stdin!.end();
    expect(await pub.exited).toBe(0);
    expect(pub.stderr()).toMatch(/exit: read=2 /);
    expectCountersAddUp(pub.stderr());
  });

  // Before, the notice counted as a line sent: read=1000 sent_lines=101 queue-full=900.
  it('#11: a --gap-notice line is counted as a notice, not as a line read or sent: the counters add up', async () => {
    const port = await freePort();
    const pub = startCli(['-g', 'g', '-s', `${port}@127.0.0.1`, '-h', 'web1', '--queue-lines', '100', '--gap-notice', '--connect-timeout', '500']);
    await feedStdin(pub, numberedLines(0, 1000), false);
    await pub.waitStderr((s) => s.includes('cannot reach'));
    await waitFor(async () => {
      pub.kill('SIGUSR1');
      await new Promise((r) => setTimeout(r, 50));
      return /counters: read=1000 /.test(pub.stderr());
    });
    const out = path.join(tempDir(), 'g.log');
    await startDaemonProcess(['--write', `g=${out}`], port);
    const text = (): string => (fs.existsSync(out) ? fs.readFileSync(out, 'latin1') : '');
    await waitFor(() => /web1 spread-pipe: lost 900 lines \(queue-full=900\)/.test(text()), 20_000, 'the gap notice');
    pub.child.stdin!.end();
    expect(await pub.exited).toBe(0);
    const c = expectCountersAddUp(pub.stderr());
    expect([c.read, c.sentLines, c.dropped['queue-full'], c.notices]).toEqual([1000, 100, 900, 1]);
    await waitFor(() => text().split('\n').length === 102, 10_000, 'every line written');
  });

  it('prints counters on SIGUSR1', async () => {
    const pub = startCli(['-g', 'g', '-s', '1@127.0.0.1']);
    await feedStdin(pub, 'a\nb\n', false);
    await pub.waitStderr((s) => s.includes('cannot reach')); // running, handlers installed
    await waitFor(async () => {
      pub.kill('SIGUSR1');
      await new Promise((r) => setTimeout(r, 50));
      return /counters: read=2/.test(pub.stderr());
    });
    pub.child.stdin!.end();
    expect(await pub.exited).toBe(0);
    expectCountersAddUp(pub.stderr());
  });
});

describe('spread-pipe tail', () => {
  it('exits 1 with one line when no daemon answers', async () => {
    const t = startCli(['tail', '-g', 'g', '-s', '1@127.0.0.1']);
    expect(await t.exited).toBe(1);
    expect(t.stderr()).toMatch(/^spread-pipe: cannot connect to daemon 1@127\.0\.0\.1: ECONNREFUSED\n$/);
  });

  it('shows the sender with --show-sender', async () => {
    const { spec } = await startDaemon();
    const tail = startCli(['tail', '-g', 'g', '-s', spec, '--count', '1', '--membership', '--show-sender']);
    await tail.waitStdout((s) => s.includes('# membership'));
    const pub = startCli(['-g', 'g', '-s', spec, '-h', 'w', '--name', 'pub1']);
    await feedStdin(pub, 'hello\n');
    expect(await tail.exited).toBe(0);
    expect(tail.stdout().toString()).toMatch(/#pub1#localhost -> g: w hello\n$/);
    expect(await pub.exited).toBe(0);
    expectCountersAddUp(pub.stderr());
  });
});
