/**
 * Fault injection over real processes (issue 7): the daemon is SIGKILLed
 * and restarted on its port while two spread-pipe publishers stream into it.
 * With --ack every line reaches the daemon's --write-split files exactly
 * once, in order per host. Without --ack lines are lost, and the publisher
 * cannot know all of them: what the kernel had taken when the daemon died is
 * gone unseen, so the counters are a lower bound, never more than the loss.
 */
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { counter, expectCountersAddUp, feedLines, lineNumbers, startCli, startDaemonProcess, tempDir, waitFor } from '../helpers.js';

const N = 20_000;
const range = (n: number): number[] => [...Array(n).keys()];

describe('daemon SIGKILLed and restarted mid-stream', () => {
  it('with --ack: every line of each host written exactly once, in order', async () => {
    const dir = tempDir();
    let d = await startDaemonProcess(['--write-split', `logs=${dir}`]);
    const pubs = ['web1', 'web2'].map((h) =>
      startCli(['-g', 'logs', '-s', d.spec, '-h', h, '--ack', '--batch', '--connect-timeout', '500', '--drain-timeout', '15000']),
    );
    const read = async (n: number): Promise<void> => {
      for (const p of pubs) await waitFor(() => (p.kill('SIGUSR1'), counter(p.stderr(), 'read') >= n), 10_000, `read=${n}`);
    };
    // Three parts; between them the daemon is stopped while a part is sent (so it is in flight,
    // unacknowledged), then killed and started again on its port.
    const parts = [0, N / 3, (2 * N) / 3, N].map(Math.floor);
    for (let k = 0; k < 3; k++) {
      await Promise.all(pubs.map((p) => feedLines(p, parts[k]!, parts[k + 1]!, 100)));
      // Written lines also show the publishers are up (and handle SIGUSR1).
      for (const h of ['web1', 'web2']) await waitFor(() => lineNumbers(path.join(dir, `${h}.log`), h).length > parts[k]!, 20_000, `some of ${h}'s part written`);
      await read(parts[k + 1]!);
      if (k === 2) break;
      d.proc.kill('SIGSTOP');
      await Promise.all(pubs.map((p) => feedLines(p, parts[k + 1]!, parts[k + 1]! + 500, 100)));
      parts[k + 1]! += 500;
      await read(parts[k + 1]!);
      if (k === 1) {
        // Lines written but not acknowledged: the daemon takes the part in flight and writes it while
        // the publishers are stopped, so its copies back (the acks) die with it.
        for (const p of pubs) p.kill('SIGSTOP');
        d.proc.kill('SIGCONT');
        await waitFor(() => lineNumbers(path.join(dir, 'web2.log'), 'web2').length >= parts[k + 1]! - 100, 20_000, 'the stopped part written');
      }
      d = await d.restart();
      for (const p of pubs) p.kill('SIGCONT');
    }
    for (const p of pubs) p.child.stdin!.end();
    const codes = await Promise.all(pubs.map((p) => p.exited));
    expect(codes).toEqual([0, 0]);
    for (const [i, h] of ['web1', 'web2'].entries()) {
      const err = pubs[i]!.stderr();
      expect(lineNumbers(path.join(dir, `${h}.log`), h)).toEqual(range(N));
      expect(counter(err, 'acked')).toBe(N);
      expect(counter(err, 'lost-in-flight')).toBe(0);
      expect(counter(err, 'connects')).toBeGreaterThanOrEqual(3);
      expect(counter(err, 'resent')).toBeGreaterThan(0);
      expectCountersAddUp(err);
    }
    // The daemon did see repeats (resends after each kill) and dropped them.
    d.proc.kill('SIGUSR1');
    await d.proc.waitStderr((s) => /duplicates_dropped=\d+/.test(s));
  });

  it('without --ack: lines are lost, and the publisher never reports more than were lost', async () => {
    const dir = tempDir();
    let d = await startDaemonProcess(['--write-split', `logs=${dir}`]);
    const p = startCli(['-g', 'logs', '-s', d.spec, '-h', 'web1', '--connect-timeout', '500', '--drain-timeout', '15000']);
    await feedLines(p, 0, N / 2, 100);
    await waitFor(() => lineNumbers(path.join(dir, 'web1.log'), 'web1').length > 0, 20_000, 'some written');
    d.proc.kill('SIGSTOP');
    await feedLines(p, N / 2, N / 2 + 500, 100);
    await waitFor(() => (p.kill('SIGUSR1'), counter(p.stderr(), 'read') >= N / 2 + 500), 10_000, 'read');
    d = await d.restart();
    await feedLines(p, N / 2 + 500, N, 100);
    p.child.stdin!.end();
    expect(await p.exited).toBe(0);
    const got = lineNumbers(path.join(dir, 'web1.log'), 'web1');
    // Never twice, always in order.
    expect(got).toEqual([...got].sort((a, b) => a - b));
    expect(new Set(got).size).toBe(got.length);
    const err = p.stderr();
    const reported = ['queue-full', 'lost-in-flight', 'unsent-at-exit', 'no-route'].reduce((a, k) => a + counter(err, k), 0);
    expect(got.length).toBeLessThan(N);
    expect(got.length + reported).toBeLessThanOrEqual(N);
    expectCountersAddUp(err);
  });
});
