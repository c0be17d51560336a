/**
 * `--metrics HOST:PORT` (issue #14): pipe mode, the syslog bridge and the
 * daemon serve /metrics in Prometheus text format; a Prometheus text-format
 * parser reads it, and every counter equals the one on the mode's own
 * counters line (SIGUSR1, the same summary as the exit line).
 */
import fs from 'node:fs';
import path from 'node:path';
import parsePrometheusTextFormat from 'parse-prometheus-text-format';
import { describe, expect, it } from 'vitest';
import { counter, feedStdin, freePort, sendUdp, startCli, startDaemon, startDaemonProcess, tempDir, waitFor, withTimeout } from '../helpers.js';

type Families = ReturnType<typeof parsePrometheusTextFormat>;

async function scrape(url: string): Promise<Families> {
  const res = await fetch(url);
  expect(res.status).toBe(200);
  expect(res.headers.get('content-type')).toMatch(/^text\/plain; version=0\.0\.4/);
  return parsePrometheusTextFormat(await res.text());
}

function value(f: Families, name: string, labels: Record<string, string> = {}): number {
  const fam = f.find((x) => x.name === name);
  if (!fam) throw new Error(`no metric ${name}`);
  const m = fam.metrics.find((x) => Object.entries(labels).every(([k, v]) => x.labels?.[k] === v));
  if (!m) throw new Error(`no ${name}${JSON.stringify(labels)}`);
  return Number(m.value);
}

function metricsUrl(stderr: string): string {
  return /metrics on (http:\/\/\S+\/metrics)/.exec(stderr)![1]!;
}

describe('--metrics (#14)', () => {
  it('#14: pipe mode: every counter on /metrics equals the counters line, and the exit line agrees', async () => {
    const { spec } = await startDaemon();
    const pub = startCli(['-g', 'g', '-s', spec, '-h', 'w1', '--metrics', '127.0.0.1:0', '--max-line', '100']);
    const url = metricsUrl(await pub.waitStderr((s) => s.includes('metrics on')));
    const lines = Array.from({ length: 500 }, (_, i) => (i % 50 === 0 ? 'x'.repeat(150) : `line ${i}`)).join('\n') + '\n';
    await feedStdin(pub, lines, false);
    let f = await waitFor(async () => {
      const m = await scrape(url);
      return value(m, 'spread_pipe_lines_sent_total') === 500 ? m : undefined;
    }, 10_000, 'all lines sent');
    pub.kill('SIGUSR1');
    const line = (await pub.waitStderr((s) => s.includes('counters: '))).split('\n').find((l) => l.includes('counters: '))!;
    f = await scrape(url);
    expect(value(f, 'spread_pipe_lines_read_total')).toBe(counter(line, 'read'));
    expect(value(f, 'spread_pipe_lines_truncated_total')).toBe(counter(line, 'truncated'));
    expect(counter(line, 'truncated')).toBe(10);
    expect(value(f, 'spread_pipe_lines_sent_total')).toBe(counter(line, 'sent_lines'));
    expect(value(f, 'spread_pipe_messages_sent_total')).toBe(counter(line, 'sent_messages'));
    expect(value(f, 'spread_pipe_queued_lines')).toBe(counter(line, 'queued'));
    expect(value(f, 'spread_pipe_notices_total')).toBe(counter(line, 'notices'));
    for (const reason of ['queue-full', 'lost-in-flight', 'unsent-at-exit', 'no-route', 'rejected']) {
      expect(value(f, 'spread_pipe_lines_dropped_total', { reason })).toBe(counter(line, reason));
    }
    expect(value(f, 'spread_pipe_connects_total')).toBe(counter(line, 'connects'));
    expect(value(f, 'spread_pipe_failovers_total')).toBe(counter(line, 'failovers'));
    expect(value(f, 'spread_pipe_failbacks_total')).toBe(counter(line, 'failbacks'));
    expect(value(f, 'spread_pipe_connects_total')).toBe(1);
    // Process metrics come along (prom-client's defaults).
    expect(value(f, 'spread_pipe_process_resident_memory_bytes')).toBeGreaterThan(0);
    // Every counter family ends in _total.
    for (const fam of f) if (fam.type === 'COUNTER') expect(fam.name).toMatch(/^spread_pipe_\w+_total$/);
    pub.child.stdin!.end();
    expect(await withTimeout(pub.exited, 10_000, 'exit')).toBe(0);
    const exit = pub.stderr().split('\n').find((l) => l.includes('exit: '))!;
    for (const k of ['read', 'truncated', 'sent_lines', 'sent_messages', 'connects', 'failovers', 'queue-full']) expect(counter(exit, k), k).toBe(counter(line, k));
  });

  it('#14: the syslog bridge: datagrams, lines, refused by reason equal its counters line', async () => {
    const { spec } = await startDaemon();
    const port = await freePort();
    const pub = startCli(['-g', 'g', '-s', spec, '--syslog', `udp://127.0.0.1:${port}`, '--metrics', '127.0.0.1:0'], { stdin: 'ignore' });
    const url = metricsUrl(await pub.waitStderr((s) => s.includes('metrics on') && s.includes(`listening on`)));
    const good = (i: number) => Buffer.from(`<190>Dec  1 09:00:00 web1 nginx: GET /${i} 200`);
    await sendUdp(port, [...Array.from({ length: 20 }, (_, i) => good(i)), Buffer.from('no pri here'), Buffer.alloc(0), Buffer.from('<190>Dec  1 09:00:00 web1 nginx: a\x00b')]);
    await waitFor(async () => value(await scrape(url), 'spread_pipe_syslog_datagrams_total') >= 22, 10_000, 'datagrams counted');
    await new Promise((r) => setTimeout(r, 200));
    pub.kill('SIGUSR1');
    const line = (await pub.waitStderr((s) => /counters: syslog/.test(s))).split('\n').find((l) => l.includes('counters: syslog'))!;
    const f = await scrape(url);
    expect(value(f, 'spread_pipe_syslog_datagrams_total')).toBe(counter(line, 'datagrams'));
    expect(value(f, 'spread_pipe_syslog_lines_total')).toBe(counter(line, 'lines'));
    expect(value(f, 'spread_pipe_syslog_truncated_total')).toBe(counter(line, 'truncated'));
    const refused = f.find((x) => x.name === 'spread_pipe_syslog_refused_total')!.metrics.reduce((a, m) => a + Number(m.value), 0);
    expect(refused).toBe(counter(line, 'refused'));
    expect(refused).toBeGreaterThanOrEqual(2);
    expect(value(f, 'spread_pipe_syslog_lines_total')).toBe(20);
  });

  it('#14: the daemon: sessions, deliveries, bytes, --write-split bytes per file equal its stats line and the files', async () => {
    const dir = tempDir('spread-pipe-metrics-');
    const d = await startDaemonProcess(['--write-split', `g=${dir}`, '--metrics', '127.0.0.1:0']);
    const url = metricsUrl(await d.proc.waitStderr((s) => s.includes('metrics on')));
    for (const host of ['w1', 'w2']) {
      const pub = startCli(['-g', 'g', '-s', d.spec, '-h', host]);
      await feedStdin(pub, Array.from({ length: 100 }, (_, i) => `${host} line ${i}`).join('\n') + '\n');
      expect(await withTimeout(pub.exited, 10_000, 'publisher')).toBe(0);
    }
    await waitFor(async () => value(await scrape(url), 'spread_pipe_write_messages_total') === 200, 10_000, 'written');
    d.proc.kill('SIGUSR1');
    const line = (await d.proc.waitStderr((s) => s.includes('stats: '))).split('\n').find((l) => l.includes('stats: '))!;
    const f = await scrape(url);
    expect(value(f, 'spread_pipe_daemon_sessions')).toBe(counter(line, 'sessions'));
    expect(value(f, 'spread_pipe_daemon_groups')).toBe(counter(line, 'groups'));
    expect(value(f, 'spread_pipe_daemon_messages_in_total')).toBe(counter(line, 'messages_in'));
    expect(value(f, 'spread_pipe_daemon_deliveries_total')).toBe(counter(line, 'deliveries'));
    expect(value(f, 'spread_pipe_daemon_received_bytes_total')).toBe(counter(line, 'bytes_in'));
    expect(value(f, 'spread_pipe_daemon_rejected_total')).toBe(counter(line, 'rejected'));
    expect(value(f, 'spread_pipe_daemon_protocol_errors_total')).toBe(counter(line, 'protocol_errors'));
    expect(value(f, 'spread_pipe_daemon_slow_killed_total')).toBe(counter(line, 'slow_killed'));
    expect(value(f, 'spread_pipe_write_messages_total')).toBe(counter(line, 'written'));
    expect(value(f, 'spread_pipe_write_errors_total')).toBe(counter(line, 'write_errors'));
    expect(value(f, 'spread_pipe_write_dropped_total')).toBe(counter(line, 'write_dropped'));
    expect(value(f, 'spread_pipe_write_duplicates_dropped_total')).toBe(counter(line, 'duplicates_dropped'));
    expect(value(f, 'spread_pipe_daemon_messages_in_total')).toBeGreaterThanOrEqual(200);
    for (const host of ['w1', 'w2']) {
      const file = path.join(dir, `${host}.log`);
      expect(value(f, 'spread_pipe_write_file_bytes_total', { file })).toBe(fs.statSync(file).size);
    }
  });

  it('#14: write mode: received, written, bytes, drops and gaps on /metrics equal its stats line; bytes per file equal the file', async () => {
    const dir = tempDir('spread-pipe-metrics-');
    const file = path.join(dir, 'g.log');
    const { spec } = await startDaemon();
    const w = startCli(['write', '-s', spec, '--write', `g=${file}`, '--match', 'g=keep', '--metrics', '127.0.0.1:0']);
    const url = metricsUrl(await w.waitStderr((s) => s.includes('metrics on')));
    await w.waitStderr((s) => s.includes('joined g'));
    const pub = startCli(['-g', 'g', '-s', spec, '-h', 'w1']);
    await feedStdin(pub, Array.from({ length: 100 }, (_, i) => (i % 4 === 0 ? `drop ${i}` : `keep ${i}`)).join('\n') + '\n');
    expect(await withTimeout(pub.exited, 10_000, 'publisher')).toBe(0);
    await waitFor(async () => value(await scrape(url), 'spread_pipe_write_received_total') === 100, 10_000, 'received');
    await waitFor(() => fs.existsSync(file) && fs.statSync(file).size > 0, 10_000, 'file written');
    w.kill('SIGUSR1');
    const line = (await w.waitStderr((s) => s.includes('stats: '))).split('\n').find((l) => l.includes('stats: '))!;
    const f = await scrape(url);
    expect(value(f, 'spread_pipe_write_received_total')).toBe(counter(line, 'received'));
    expect(value(f, 'spread_pipe_write_messages_total')).toBe(counter(line, 'written'));
    expect(value(f, 'spread_pipe_write_messages_total')).toBe(75);
    expect(value(f, 'spread_pipe_write_filtered_total')).toBe(counter(line, 'filtered'));
    expect(value(f, 'spread_pipe_write_filtered_total')).toBe(25);
    expect(value(f, 'spread_pipe_write_duplicates_dropped_total')).toBe(counter(line, 'duplicates_dropped'));
    expect(value(f, 'spread_pipe_write_gaps_total')).toBe(counter(line, 'gaps'));
    expect(value(f, 'spread_pipe_write_lost_total', { reason: 'oversize' })).toBe(counter(line, 'oversize'));
    expect(value(f, 'spread_pipe_write_file_bytes_total', { file })).toBe(fs.statSync(file).size);
    expect(value(f, 'spread_pipe_write_file_bytes_total', { file })).toBe(counter(line, 'bytes'));
  });

  it('#14: a bad --metrics is a usage error; a port in use exits 1 before stdin is read', async () => {
    for (const args of [['-g', 'g', '--metrics', 'nope'], ['--daemon', '--metrics', '70000'], ['-g', 'g', '--metrics', '1', '--metrics', '2']]) {
      const p = startCli(args, { stdin: 'ignore' });
      expect(await withTimeout(p.exited, 10_000, args.join(' '))).toBe(2);
      expect(p.stderr()).toMatch(/^spread-pipe: .*--metrics/);
      expect(p.stderr().trim().split('\n')).toHaveLength(1);
    }
    const d = await startDaemonProcess(['--metrics', '127.0.0.1:0']);
    const taken = new URL(metricsUrl(await d.proc.waitStderr((s) => s.includes('metrics on')))).port;
    const p = startCli(['-g', 'g', '-s', d.spec, '--metrics', `127.0.0.1:${taken}`]);
    expect(await withTimeout(p.exited, 10_000, 'port in use')).toBe(1);
    expect(p.stderr()).toMatch(/^spread-pipe: --metrics 127\.0\.0\.1:\d+: cannot listen: EADDRINUSE/);
  });
});
