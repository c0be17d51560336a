/**
 * Lines still in the session's write buffer when the drain time runs out are
 * counted once, as unsent-at-exit, in lines (not messages), and taken out of
 * sent_lines: the exit report adds up whatever the batch size.
 */
import { describe, expect, it } from 'vitest';
import { defer, expectCountersAddUp, feedStdin, numberedLines, startCli, startDaemonProcess, withTimeout } from '../helpers.js';

describe('pipe mode exit counters', () => {
  it.each([1, 16])('#11: a daemon that stops reading mid-stream, batch=%i: sent_lines + unsent-at-exit + queue-full = read', async (batch) => {
    const d = await startDaemonProcess();
    defer(() => {
      try {
        d.proc.kill('SIGCONT');
      } catch {
        /* gone */
      }
    });
    // 400,000 lines (~ 12 MB) are more than the loopback socket buffers hold, so once the
    // daemon is stopped the session's own write buffer keeps some when the drain time is up.
    const N = 400_000;
    const p = startCli(['-g', 'g', '-s', d.spec, '-h', 'web1', ...(batch > 1 ? ['--batch'] : []), '--on-full', 'drop-newest', '--drain-timeout', '1500', '--stall-timeout', '60000']);
    // The first lines go through (the session is up), then the daemon stops reading.
    await feedStdin(p, numberedLines(0, 1000), false);
    await new Promise((r) => setTimeout(r, 1000));
    d.proc.kill('SIGSTOP');
    await feedStdin(p, numberedLines(1000, N));
    expect(await withTimeout(p.exited, 30_000, `exit; stderr: ${p.stderr()}`)).toBe(0);
    const c = expectCountersAddUp(p.stderr());
    expect(c.read).toBe(N);
    expect(c.dropped['unsent-at-exit'], p.stderr()).toBeGreaterThan(0);
  }, 60_000);
});
