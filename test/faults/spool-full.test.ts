/**
 * Fault injection over real processes (issue 7): the disk spool full. The
 * daemon goes away (SIGKILL) while spread-pipe --ack --spool --spool-max
 * SMALL keeps reading; past the bound the spool deletes its oldest segments
 * and counts their lines (spool-full). Once the daemon is back on its port,
 * what arrives is everything sent before the outage and then exactly the
 * newest lines, in order, once each: the lines missing from the writer's
 * file are one run starting where the outage began, as long as spool-full
 * says, and arrived + spool-full == read.
 */
import fs from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { FRAME_HEADER } from '../../src/record-frame.js';
import { payloadLength } from '../../src/spool/format.js';
import { counter, expectCountersAddUp, feedLines, feedPaddedLines, lineNumbers, type Proc, startCli, startDaemonProcess, tempDir, waitFor } from '../helpers.js';

const BEFORE = 2000;
const MAX_BYTES = 256 * 1024;
// The most outage lines 256K of spool can hold: records of the shortest ("web1 2000 GET /2000 HTTP/1.1\n").
const MOST_KEPT = Math.floor(MAX_BYTES / (FRAME_HEADER + payloadLength('web1 2000 GET /2000 HTTP/1.1\n'.length, undefined)));

async function until(p: Proc, pred: (err: string) => boolean, what: string, timeoutMs = 15_000): Promise<void> {
  try {
    await waitFor(() => (p.kill('SIGUSR1'), pred(p.stderr())), timeoutMs, what);
  } catch (e) {
    throw new Error(`${(e as Error).message}; publisher's stderr ends: ${p.stderr().slice(-600)}`);
  }
}

describe('the disk spool full during a long outage', () => {
  // 256K holds at most MOST_KEPT (6898) of these lines; 16k lines in the outage drop fewer ids than receivers allow to skip.
  it.each([
    { outage: 16_000, newStream: false },
    // Regression: a stream rotated inside attach() was never dialed again (the dial loop was still running).
    { outage: 40_000, newStream: true },
  ])('--ack --spool --spool-max 256K, $outage lines while the daemon is away: the oldest are dropped and counted, the newest arrive once, in order', async ({ outage, newStream }) => {
    const total = BEFORE + outage + 1000;
    const dir = tempDir();
    const spool = path.join(tempDir(), 'spool');
    const out = path.join(dir, 'web1.log');
    let d = await startDaemonProcess(['--write-split', `logs=${dir}`]);
    const p = startCli(['-g', 'logs', '-s', d.spec, '-h', 'web1', '--ack', '--spool', spool, '--spool-max', '256K', '--batch', '--connect-timeout', '500', '--drain-timeout', '15000']);
    await feedLines(p, 0, BEFORE, 100);
    // Written lines also show the publisher is up and handles SIGUSR1 (before that the signal kills it).
    await waitFor(() => lineNumbers(out, 'web1').length >= BEFORE, 20_000, 'the first lines written');
    await until(p, (e) => counter(e, 'acked') >= BEFORE, 'the first lines acknowledged');
    d.proc.kill('SIGKILL');
    await d.proc.exited;
    // #11: the outage begins when the publisher knows the session is gone. Lines read before that
    // (a loaded machine can take in thousands before the socket's close is handled) are handed to
    // the dead session and stay in the --ack window, which outlives the spool's oldest segments:
    // sent again later, they are not among the oldest lines dropped, and the missing run splits.
    await waitFor(() => /lost \S+: /.test(p.stderr()), 15_000, "the publisher's loss of the session");
    await feedLines(p, BEFORE, BEFORE + outage, 200);
    await until(p, (e) => counter(e, 'read') >= BEFORE + outage, 'the outage lines read');
    const bytes = counter(p.stderr(), 'spool_bytes');
    expect(bytes).toBeLessThanOrEqual(MAX_BYTES);
    // Whatever the timing, the spool has by now dropped all but what its bound holds.
    expect(counter(p.stderr(), 'spool-full')).toBeGreaterThanOrEqual(outage - MOST_KEPT);
    d = await d.restart();
    await feedLines(p, BEFORE + outage, total, 100);
    p.child.stdin!.end();
    expect(await p.exited).toBe(0);
    const err = p.stderr();
    const got = lineNumbers(out, 'web1');
    const dropped = counter(err, 'spool-full');
    expect(counter(err, 'read')).toBe(total);
    expect(got.length + dropped).toBe(total);
    // The missing lines: one run, the oldest spooled ones, from where the outage began.
    const expected = [...Array(total).keys()].filter((i) => i < BEFORE || i >= BEFORE + dropped);
    expect(got).toEqual(expected);
    // Not more than that: the 1000 lines after the outage push out one more segment only if they are
    // spooled before the publisher is back on the daemon, so that is timing (the eleventh stop's CI
    // run at 54f0718 saw the publisher back first: 10745 dropped, 12110 otherwise).
    expect(dropped).toBeGreaterThanOrEqual(outage - MOST_KEPT);
    for (const k of ['queue-full', 'lost-in-flight', 'unsent-at-exit', 'spool-error', 'unacked-at-exit']) expect(counter(err, k), k).toBe(0);
    expect(counter(err, 'spool_unacked')).toBe(0);
    expect(/--ack: new stream name/.test(err)).toBe(newStream);
    expectCountersAddUp(err);
    // 43k lines through two daemon lifetimes and a drained spool: over 30 s on a loaded 2-core machine.
  }, 60_000);

  it('a spool whose next segment cannot be created: one clear line, every line lost counted (spool-error), served again once it can', async () => {
    const dir = tempDir();
    const spool = path.join(tempDir(), 'spool');
    const out = path.join(dir, 'web1.log');
    const d = await startDaemonProcess(['--write-split', `logs=${dir}`]);
    const p = startCli(['-g', 'logs', '-s', d.spec, '-h', 'web1', '--ack', '--spool', spool, '--spool-max', '512K', '--connect-timeout', '500', '--drain-timeout', '15000']);
    await feedPaddedLines(p, 0, 500, 100, 100);
    await waitFor(() => lineNumbers(out, 'web1').length >= 500, 20_000, 'the first lines written');
    // Lines of 100 bytes make records of 122 bytes: the first 64K segment holds 537 of them, so the
    // second is named after id 537. A directory in its place: every append past it fails.
    const blocker = path.join(spool, '0000000000000537.spool');
    fs.mkdirSync(blocker);
    await feedPaddedLines(p, 500, 3000, 100, 100);
    await until(p, (e) => counter(e, 'read') >= 3000 && counter(e, 'spool-error') >= 3000 - 537, 'the failed lines counted');
    // The disk is fine again: the next append starts the segment, lines flow.
    fs.rmdirSync(blocker);
    await feedPaddedLines(p, 3000, 4000, 100, 100);
    p.child.stdin!.end();
    expect(await p.exited).toBe(0);
    const err = p.stderr();
    const got = lineNumbers(out, 'web1');
    const range = (from: number, to: number): number[] => Array.from({ length: to - from }, (_, i) => from + i);
    expect(got).toEqual([...range(0, 537), ...range(3000, 4000)]);
    expect(counter(err, 'spool-error')).toBe(3000 - 537);
    expect(counter(err, 'read')).toBe(got.length + counter(err, 'spool-error'));
    const reports = err.split('\n').filter((l) => /spool/.test(l) && !/counters|exit:/.test(l));
    expectCountersAddUp(err);
    expect(reports).toEqual([`spread-pipe: spool: cannot start a spool segment in ${spool}: EISDIR: illegal operation on a directory, open '${blocker}'`]);
  });
});
