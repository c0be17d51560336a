/**
 * #15: `spread-pipe --daemon --max-pending-per-address N --max-pending M`
 * against a flood of silent TCP connections: the refusals are reported
 * within the rate limit (the first of each cause in full, then counts),
 * counted on the stats line and on /metrics, the numbers agree, and a
 * publisher from another address still gets its lines through.
 */
import net from 'node:net';
import parsePrometheusTextFormat from 'parse-prometheus-text-format';
import { describe, expect, it } from 'vitest';
import { counter, defer, feedStdin, numberedLines, startCli, startDaemonProcess, waitFor, withTimeout } from '../helpers.js';

type Families = ReturnType<typeof parsePrometheusTextFormat>;

async function scrape(url: string): Promise<Families> {
  const res = await fetch(url);
  return parsePrometheusTextFormat(await res.text());
}

function value(f: Families, name: string, labels: Record<string, string> = {}): number {
  const m = f.find((x) => x.name === name)?.metrics.find((x) => Object.entries(labels).every(([k, v]) => x.labels?.[k] === v));
  if (!m) throw new Error(`no ${name}${JSON.stringify(labels)}`);
  return Number(m.value);
}

/** A silent TCP connection; resolves `closed` when the far end closes it. */
async function silent(host: string, port: number): Promise<{ sock: net.Socket; closed: Promise<void> }> {
  const sock = net.connect({ host, port });
  defer(() => sock.destroy());
  sock.on('error', () => {});
  const closed = new Promise<void>((r) => sock.once('close', () => r()));
  await new Promise<void>((resolve, reject) => {
    sock.once('connect', resolve);
    sock.once('error', reject);
  });
  return { sock, closed };
}

describe('#15: --daemon caps connections in their handshake', () => {
  it('#15: a flood of silent connections: over the caps closed at once, reported rate-limited, counted on the stats line and /metrics; a publisher still gets in', { timeout: 60_000 }, async () => {
    const d = await startDaemonProcess(['--listen', '[::1]:0', '--max-pending-per-address', '5', '--max-pending', '8', '--metrics', '127.0.0.1:0', '--report-interval', '300']);
    const err = await d.proc.waitStderr((s) => /listening on \[::1\]:\d+/.test(s) && s.includes('metrics on'));
    const port6 = Number(/listening on \[::1\]:(\d+)/.exec(err)![1]);
    const url = /metrics on (http:\/\/\S+\/metrics)/.exec(err)![1]!;

    const held = [];
    for (let i = 0; i < 5; i++) held.push(await silent('127.0.0.1', d.port));
    await waitFor(async () => value(await scrape(url), 'spread_pipe_daemon_pending_connections') === 5, 10_000, 'five pending');
    const flood = [];
    for (let i = 0; i < 20; i++) flood.push(await silent('127.0.0.1', d.port));
    await withTimeout(Promise.all(flood.map((f) => f.closed)), 10_000, 'the flood closed');
    // ::1 fills the total (8), one more is refused for the total.
    for (let i = 0; i < 3; i++) held.push(await silent('::1', port6));
    await waitFor(async () => value(await scrape(url), 'spread_pipe_daemon_pending_connections') === 8, 10_000, 'eight pending');
    const overTotal = await silent('::1', port6);
    await withTimeout(overTotal.closed, 10_000, 'closed for the total');
    // One of ours goes: a publisher from ::1 gets in and its lines through.
    held.pop()!.sock.destroy();
    await waitFor(async () => value(await scrape(url), 'spread_pipe_daemon_pending_connections') === 7, 10_000, 'seven pending');
    const tail = startCli(['tail', '-g', 'g', '-s', `[::1]:${port6}`, '--count', '50', '--membership']);
    await tail.waitStdout((s) => s.includes('# membership g: join'));
    const pub = startCli(['-g', 'g', '-s', `[::1]:${port6}`, '-h', 'web1']);
    await feedStdin(pub, numberedLines(0, 50));
    expect(await withTimeout(pub.exited, 15_000, 'publisher')).toBe(0);
    expect(await withTimeout(tail.exited, 15_000, 'tail')).toBe(0);

    // The report: the first of each cause in full (unless a flood of them is going on), the rest
    // counted at the end of each interval; full lines plus counts add up to the refusals.
    const reported = (text: string): { perAddress: number; total: number } => {
      const lines = text.split('\n');
      const full = (re: RegExp): number => lines.filter((l) => re.test(l)).length;
      const counted = (key: string): number => lines.reduce((n, l) => n + Number(new RegExp(`^spread-pipe: refused connections in the last .*\\b${key}=(\\d+)`).exec(l)?.[1] ?? 0), 0);
      return {
        perAddress: full(/^spread-pipe: refused 127\.0\.0\.1:\d+: 5 connections from 127\.0\.0\.1 already in their handshake \(--max-pending-per-address 5\)$/) + counted('pending-per-address'),
        total: full(/^spread-pipe: refused ::1:\d+: 8 connections already in their handshake \(--max-pending 8\)$/) + counted('pending-total'),
      };
    };
    await waitFor(() => {
      const r = reported(d.proc.stderr());
      return r.perAddress === 20 && r.total === 1;
    }, 10_000, `the refusals reported: ${d.proc.stderr()}`);
    // Rate-limited: 22 refusals (with the hung-up one), a handful of lines: a full line per cause, a counts line per interval.
    expect(d.proc.stderr().split('\n').filter((l) => /^spread-pipe: refused/.test(l)).length).toBeLessThanOrEqual(6);

    d.proc.kill('SIGUSR1');
    const line = (await d.proc.waitStderr((s) => s.includes('stats: '))).split('\n').find((l) => l.includes('stats: '))!;
    const f = await scrape(url);
    expect(counter(line, 'pending_refused_per_address')).toBe(20);
    expect(counter(line, 'pending_refused_total')).toBe(1);
    expect(value(f, 'spread_pipe_daemon_pending_refused_total', { cap: 'per-address' })).toBe(20);
    expect(value(f, 'spread_pipe_daemon_pending_refused_total', { cap: 'total' })).toBe(1);
    // Among the rejected: the 21, and the one of ours that hung up in its handshake.
    expect(counter(line, 'rejected')).toBe(22);
    expect(value(f, 'spread_pipe_daemon_rejected_total')).toBe(22);
    expect(value(f, 'spread_pipe_daemon_pending_connections')).toBe(7);
    expect(counter(line, 'messages_in')).toBeGreaterThanOrEqual(50);
  });

  it('#15: the caps are validated: a per-address cap over the total is a usage error naming the flag', async () => {
    const p = startCli(['--daemon', '--no-unix', '--listen', '127.0.0.1:0', '--max-pending', '10', '--max-pending-per-address', '20'], { stdin: 'ignore' });
    expect(await p.exited).toBe(2);
    expect(p.stderr()).toBe('spread-pipe: --max-pending-per-address: must be at most 10 connections, got 20\n');
  });
});
