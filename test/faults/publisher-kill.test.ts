/**
 * Fault injection (issue 7): spread-pipe itself SIGKILLed mid-stream and
 * started again on the same --spool, as Apache restarts a piped logger that
 * died. With --ack --spool every line read by the killed process reaches the
 * writer's file exactly once, in order: the new process sends the spool's
 * unacknowledged lines again under the same stream, and the writer drops the
 * ones it has (those acknowledged after the cursor was last written, and
 * those in flight).
 */
import fs from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { counter, expectCountersAddUp, feedLines, lineNumbers, startCli, startDaemonProcess, tempDir, waitFor } from '../helpers.js';

const range = (from: number, to: number): number[] => Array.from({ length: to - from }, (_, i) => from + i);

describe('spread-pipe SIGKILLed and restarted with a spool', () => {
  it('with --ack --spool: nothing read is lost, nothing written twice', async () => {
    const dir = tempDir();
    const spool = path.join(tempDir(), 'spool');
    const d = await startDaemonProcess(['--write-split', `logs=${dir}`]);
    const out = path.join(dir, 'web1.log');
    const args = ['-g', 'logs', '-s', d.spec, '-h', 'web1', '--ack', '--spool', spool, '--batch', '--connect-timeout', '500', '--drain-timeout', '15000'];
    const p1 = startCli(args);
    await feedLines(p1, 0, 10_000, 100);
    await waitFor(() => lineNumbers(out, 'web1').length >= 3000, 20_000, 'some lines written');
    // The daemon stops taking lines: what p1 still reads is spooled only (or in flight).
    d.proc.kill('SIGSTOP');
    await feedLines(p1, 10_000, 15_000, 100);
    await waitFor(() => (p1.kill('SIGUSR1'), counter(p1.stderr(), 'read') >= 15_000), 10_000, 'p1 read everything');
    // Records reach the spool file at the end of the event-loop turn that read them; a report asked
    // for after that one comes from a later turn, so the file then holds every line read. Without
    // this a loaded machine could deschedule p1 between its report and the write, and the kill would
    // test the scheduler instead of the spool.
    const reports = (): number => p1.stderr().split('\n').filter((l) => l.includes('counters:')).length;
    const before = reports();
    p1.kill('SIGUSR1');
    await waitFor(() => reports() > before, 10_000, 'a report from a later turn');
    p1.kill('SIGKILL');
    await p1.exited;
    d.proc.kill('SIGCONT');
    // The next process on the same spool: the old lines go first, then its own.
    const p2 = startCli(args);
    await p2.waitStderr((s) => /lines from before will be sent first/.test(s));
    await feedLines(p2, 15_000, 20_000, 100);
    p2.child.stdin!.end();
    expect(await p2.exited).toBe(0);
    expect(lineNumbers(out, 'web1')).toEqual(range(0, 20_000));
    const err = p2.stderr();
    // #16: the spool's lines went under the old stream (repeats dropped below); the new ones, whose ids
    // the killed process may have sent without writing them, under a new one, after those.
    const resent = err.indexOf('lines from before will be sent first');
    const renamed = err.search(/--ack: new stream name =\w+ \(the lines read since a crash: /);
    expect(resent).toBeGreaterThanOrEqual(0);
    expect(renamed).toBeGreaterThan(resent);
    expect(counter(err, 'spool_unacked')).toBe(0);
    expect(counter(err, 'unacked')).toBe(0);
    expectCountersAddUp(err);
    // The writer saw lines twice (the cursor lags the acks) and dropped them.
    d.proc.kill('SIGUSR1');
    const stats = await d.proc.waitStderr((s) => /duplicates_dropped=\d+/.test(s));
    expect(Number(/duplicates_dropped=(\d+)/.exec(stats)![1])).toBeGreaterThan(0);
  });

  it('a spool held by a live spread-pipe is waited for; lines read meanwhile keep their order', async () => {
    const dir = tempDir();
    const spool = path.join(tempDir(), 'spool');
    const d = await startDaemonProcess(['--write-split', `logs=${dir}`]);
    const out = path.join(dir, 'web1.log');
    const args = ['-g', 'logs', '-s', d.spec, '-h', 'web1', '--ack', '--spool', spool, '--connect-timeout', '500'];
    // Old logger: daemon stopped, so it holds lines at SIGTERM and drains for up to 4 s: long enough
    // for the new logger to start and meet the lock even on a loaded machine (Node start-up alone
    // took over 1.5 s there).
    d.proc.kill('SIGSTOP');
    const p1 = startCli([...args, '--drain-timeout', '4000']);
    // The lock file means the spool is open and the SIGUSR1 handler installed.
    await waitFor(() => fs.existsSync(path.join(spool, 'lock')), 10_000, 'p1 running');
    await feedLines(p1, 0, 1000, 100);
    await waitFor(() => (p1.kill('SIGUSR1'), counter(p1.stderr(), 'read') >= 1000), 10_000, 'p1 read');
    p1.kill('SIGTERM');
    // New logger while the old one drains (Apache's graceful restart).
    const p2 = startCli([...args, '--drain-timeout', '15000']);
    await p2.waitStderr((s) => /in use by process/.test(s));
    await feedLines(p2, 1000, 2000, 100);
    expect(await p1.exited).toBe(0);
    d.proc.kill('SIGCONT');
    p2.child.stdin!.end();
    expect(await p2.exited).toBe(0);
    expect(lineNumbers(out, 'web1')).toEqual(range(0, 2000));
    expectCountersAddUp(p1.stderr());
    expectCountersAddUp(p2.stderr());
  });
});
