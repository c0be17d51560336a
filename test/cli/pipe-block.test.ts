/**
 * --on-full block (issue 11): replaying a log file after an outage
 * (`spread-pipe -g g -s PORT@HOST < access.log.1`) loses nothing with the
 * default options, because a regular file on stdin is read only as fast as
 * the daemon takes it; the same lines through a pipe keep drop-newest, since
 * the web server writing a pipe must never wait.
 */
import fs from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { counter, defer, expectCountersAddUp, feedStdin, numberedLines, startCli, startDaemonProcess, tempDir, waitFor } from '../helpers.js';

const N = 200_000;

/** A file of `n` numbered lines, and an fd open on it for a child's stdin (closed after the test). */
function logFile(n: number): { file: string; open: () => number } {
  const file = path.join(tempDir(), 'access.log.1');
  fs.writeFileSync(file, numberedLines(0, n));
  return {
    file,
    open: () => {
      const fd = fs.openSync(file, 'r');
      defer(() => fs.closeSync(fd));
      return fd;
    },
  };
}

const countLines = (file: string): number => {
  if (!fs.existsSync(file)) return 0;
  const b = fs.readFileSync(file);
  let n = 0;
  for (let i = b.indexOf(0x0a); i >= 0; i = b.indexOf(0x0a, i + 1)) n++;
  return n;
};

describe('--on-full block', () => {
  it('#11: 200,000 lines from a regular file on stdin reach the daemon whole with the default options', async () => {
    const out = path.join(tempDir(), 'g.log');
    const d = await startDaemonProcess(['--write', `g=${out}`]);
    const { open } = logFile(N);
    const p = startCli(['-g', 'g', '-s', d.spec, '-h', 'web1'], { stdin: open() });
    expect(await p.exited).toBe(0);
    const c = expectCountersAddUp(p.stderr());
    expect([c.read, c.sentLines]).toEqual([N, N]);
    for (const [k, v] of Object.entries(c.dropped)) expect(v, k).toBe(0);
    await waitFor(() => countLines(out) >= N, 20_000, 'the daemon to write every line');
    d.proc.kill('SIGTERM');
    expect(await d.proc.exited).toBe(0);
    const text = fs.readFileSync(out, 'latin1');
    expect(countLines(out)).toBe(N);
    expect(text.startsWith('web1 0 GET /0 HTTP/1.1\n')).toBe(true);
    expect(text.endsWith(`web1 ${N - 1} GET /${N - 1} HTTP/1.1\n`)).toBe(true);
  });

  it('#11: the same lines through a pipe keep drop-newest: read at once, the counters add up', async () => {
    const out = path.join(tempDir(), 'g.log');
    const d = await startDaemonProcess(['--write', `g=${out}`]);
    const { file } = logFile(N);
    const p = startCli(['-g', 'g', '-s', d.spec, '-h', 'web1']);
    await feedStdin(p, fs.readFileSync(file));
    expect(await p.exited).toBe(0);
    const c = expectCountersAddUp(p.stderr());
    expect(c.read).toBe(N);
    // Whatever was sent was written (it may have dropped some, counted).
    await waitFor(() => countLines(out) >= c.sentLines, 20_000, 'the daemon to write the lines sent');
    d.proc.kill('SIGTERM');
    expect(await d.proc.exited).toBe(0);
    expect(countLines(out)).toBe(c.sentLines);
  });

  // Deterministic: no daemon, a queue of 1000 lines. A file is read only as far as the queue holds;
  // a pipe is read whole and the rest dropped; an explicit --on-full wins either way.
  it.each([
    { stdin: 'file', extra: [] as string[], blocks: true },
    { stdin: 'pipe', extra: [] as string[], blocks: false },
    { stdin: 'file', extra: ['--on-full', 'drop-newest'], blocks: false },
    { stdin: 'pipe', extra: ['--on-full', 'block'], blocks: true },
  ])('#11: no daemon, --queue-lines 1000, stdin a $stdin $extra: blocks=$blocks', async ({ stdin, extra, blocks }) => {
    const { file, open } = logFile(20_000);
    const p = startCli(['-g', 'g', '-s', '1@127.0.0.1', '--queue-lines', '1000', '--drain-timeout', '0', ...extra], stdin === 'file' ? { stdin: open() } : {});
    if (stdin === 'pipe') void feedStdin(p, fs.readFileSync(file), false).catch(() => {});
    await p.waitStderr((s) => s.includes('cannot reach'));
    // A file read whole ends by itself (EOF, no drain time); else wait until reading has stopped
    // (block) or taken everything (a pipe left open), then SIGTERM.
    if (stdin === 'pipe' || blocks) {
      let last = -1;
      await waitFor(async () => {
        p.kill('SIGUSR1');
        await new Promise((r) => setTimeout(r, 200));
        const now = counter(p.stderr(), 'read');
        const still = now === last;
        last = now;
        return still && now > 0;
      }, 15_000, 'reading to settle');
      p.kill('SIGTERM');
    }
    expect(await p.exited).toBe(0);
    const c = expectCountersAddUp(p.stderr());
    if (blocks) {
      // The queue's 1000 and what the last read held; the rest of the input waits, unread.
      expect(c.read).toBeGreaterThanOrEqual(1000);
      expect(c.read).toBeLessThan(20_000);
      expect(c.dropped['queue-full']).toBe(0);
      expect(c.dropped['unsent-at-exit']).toBe(c.read);
    } else {
      expect(c.read).toBe(20_000);
      expect(c.dropped['queue-full']).toBe(20_000 - 1000);
      expect(c.dropped['unsent-at-exit']).toBe(1000);
    }
  });
});
