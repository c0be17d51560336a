/**
 * `spread-pipe top` from the command line (issue #14): usage errors, the JSON
 * snapshot, --exit-after across batched messages, vhosts, unparsed reasons.
 */
import { describe, expect, it } from 'vitest';
import { Aggregator } from '../../src/top/aggregate.js';
import { SpreadClient } from '../../src/spread/client.js';
import { feedStdin, startCli, startDaemon, withTimeout } from '../helpers.js';

const LINE = (ip: string, url: string, status = 200, bytes = 100) =>
  `${ip} - - [10/Oct/2000:13:55:36 -0700] "GET ${url} HTTP/1.1" ${status} ${bytes} "-" "curl/8"`;

async function jsonRun(args: string[], input: string): Promise<{ code: number | string; objs: Record<string, any>[]; stderr: string }> {
  const p = startCli(['top', ...args]);
  await feedStdin(p, input);
  const code = await withTimeout(p.exited, 15_000, 'top exit');
  const objs = p
    .stdout()
    .toString()
    .trim()
    .split('\n')
    .filter(Boolean)
    .map((l) => JSON.parse(l));
  return { code, objs, stderr: p.stderr() };
}

describe('spread-pipe top (#14)', () => {
  it('#14: usage errors exit 2 with one line naming the option, nothing started', async () => {
    const bad: [string[], RegExp][] = [
      [[], /-g\/--group is needed/],
      [['-g', 'x', '--interval', '10'], /--interval/],
      [['-g', 'x', '--interval', 'abc'], /--interval/],
      [['-g', 'x', '--top', '0'], /--top/],
      [['-g', 'x', '--exit-after', '-1'], /--exit-after/],
      [['-g', 'x', '--log-format', 'xml'], /--log-format/],
      [['-g', 'x', '--http', 'nowhere'], /--http/],
      [['-g', 'x', '--http', '1:2:3'], /--http/],
      [['-g', 'x', '--interval', '500', '--interval', '600'], /--interval given twice/],
      [['-g', 'x', '-s', ''], /-s\/--spread needs a value/],
      [['-g', 'x', 'stray'], /unexpected argument "stray"/],
      [['-g', 'x', '--http', '/tmp/sock'], /--http/],
      [['-g', 'x', '--stdin'], /--stdin/],
      [['-g', 'bad group'], /group/],
      [['-g', 'x', '--bogus'], /bogus/],
    ];
    // All at once: each is a process start, slow on a loaded machine.
    await Promise.all(
      bad.map(async ([args, msg]) => {
        const p = startCli(['top', ...args], { stdin: 'ignore' });
        expect(await withTimeout(p.exited, 60_000, `top ${args.join(' ')}`), args.join(' ')).toBe(2);
        const err = p.stderr().trim().split('\n');
        expect(err, args.join(' ')).toHaveLength(1);
        expect(err[0]).toMatch(/^spread-pipe: /);
        expect(err[0]).toMatch(msg);
        expect(p.stdout().length).toBe(0);
      }),
    );
  }, 120_000);

  it('#14: --stdin --json: counts, status classes, unparsed by reason, one final object at EOF', async () => {
    const input = [LINE('1.1.1.1', '/a'), LINE('1.1.1.2', '/a', 503, 7), LINE('1.1.1.1', '/b', 404, 0), 'garbage', '', LINE('1.1.1.3', '/a')].join('\n') + '\n';
    const { code, objs } = await jsonRun(['--stdin', '--no-tag', '--json', '--interval', '5000'], input);
    expect(code).toBe(0);
    const s = objs[objs.length - 1]!;
    expect(s).toMatchObject({
      lines: 6,
      requests: 4,
      bytes: 207,
      unparsed: 2,
      unparsed_by_reason: { 'bad-client': 1, empty: 1 },
      hits_by_status: { '200': 2, '404': 1, '503': 1 },
      hits_by_class: { '2xx': 2, '4xx': 1, '5xx': 1 },
      top_urls: [
        { url: '/a', hits: 3 },
        { url: '/b', hits: 1 },
      ],
      distinct_clients: 3,
      distinct_clients_exact: true,
      online_clients: 3,
      online_window_s: 300,
      by_host: { stdin: { lines: 6, requests: 4, bytes: 207 } },
    });
  });

  it('#14: vcombined fills by_vhost; the port is not part of the vhost name', async () => {
    const input = ['a.example:80 ' + LINE('1.1.1.1', '/'), 'b.example:443 ' + LINE('1.1.1.1', '/'), 'a.example:443 ' + LINE('1.1.1.2', '/x')].join('\n') + '\n';
    const { objs } = await jsonRun(['--stdin', '--no-tag', '--log-format', 'vcombined'], input);
    const s = objs[objs.length - 1]!;
    expect(Object.keys(s.by_vhost).sort()).toEqual(['a.example', 'b.example']);
    expect(s.by_vhost['a.example'].requests).toBe(2);
  });

  it('#14: --exit-after N stops at exactly N lines even inside a batched message; by_host from the tag', async () => {
    const { spec } = await startDaemon();
    const top = startCli(['top', '-g', 'g', '-s', spec, '--exit-after', '250', '--interval', '100'], { stdin: 'ignore' });
    await top.waitStderr((s) => s.includes('joined g'));
    const pub = startCli(['-g', 'g', '-s', spec, '-h', 'w1', '--batch']);
    await feedStdin(pub, Array.from({ length: 400 }, (_, i) => LINE(`2.2.2.${i % 50}`, `/p${i % 7}`)).join('\n') + '\n');
    expect(await withTimeout(top.exited, 15_000, 'top exit')).toBe(0);
    await pub.exited;
    const objs = top.stdout().toString().trim().split('\n').map((l) => JSON.parse(l));
    const s = objs[objs.length - 1]!;
    expect(s.lines).toBe(250);
    expect(s.by_host).toEqual({ w1: expect.objectContaining({ lines: 250, requests: 250 }) });
    expect(s.distinct_clients).toBe(50);
  });

  it('#14: -s repeated is a failover list: a dead first daemon, the second one serves; --http alone listens on loopback', async () => {
    const { spec } = await startDaemon();
    const top = startCli(['top', '-g', 'g', '-s', '1@127.0.0.1', '-s', spec, '--exit-after', '3', '--http', '0'], { stdin: 'ignore' });
    const err = await top.waitStderr((s) => s.includes('joined g'));
    expect(err).toMatch(/page at http:\/\/127\.0\.0\.1:\d+\//);
    expect(err).toMatch(/cannot reach 1@127\.0\.0\.1/);
    expect(err).toContain(`joined g at ${spec}`);
    const pub = startCli(['-g', 'g', '-s', spec, '-h', 'w1']);
    await feedStdin(pub, [LINE('1.1.1.1', '/'), LINE('1.1.1.2', '/'), LINE('1.1.1.3', '/')].join('\n') + '\n');
    expect(await withTimeout(top.exited, 15_000, 'top exit')).toBe(0);
    expect(JSON.parse(top.stdout().toString().trim().split('\n').pop()!).requests).toBe(3);
  });

  it('#14: over Spread, a sequenced stream\'s resent line is counted once and --no-tag names the web server by its sender', async () => {
    const { spec } = await startDaemon();
    const top = startCli(['top', '-g', 'g', '-s', spec, '--no-tag', '--exit-after', '4', '--interval', '100'], { stdin: 'ignore' });
    await top.waitStderr((s) => s.includes('joined g'));
    const stream = await SpreadClient.connect({ daemon: spec, name: '=abcdefghi', membership: false });
    const plain = await SpreadClient.connect({ daemon: spec, name: 'plain', membership: false });
    try {
      const line = (i: number) => Buffer.from(`${LINE(`3.3.3.${i}`, `/s${i}`)}\n`);
      stream.multicast('g', line(1), { messType: 1 });
      stream.multicast('g', line(2), { messType: 2 });
      // A resend of id 1 (after a lost ack): a duplicate, not a fifth line.
      stream.multicast('g', line(1), { messType: 1 });
      stream.multicast('g', line(3), { messType: 3 });
      stream.flush();
      plain.multicast('g', line(4));
      plain.flush();
      expect(await withTimeout(top.exited, 15_000, 'top exit')).toBe(0);
      const s = JSON.parse(top.stdout().toString().trim().split('\n').pop()!);
      expect(s.lines).toBe(4);
      expect(s.top_urls).toEqual(expect.arrayContaining([{ url: '/s1', hits: 1 }]));
      expect(Object.entries(s.by_host).map(([h, v]) => [h.split('#')[1], (v as { lines: number }).lines]).sort()).toEqual([
        ['=abcdefghi', 3],
        ['plain', 1],
      ]);
    } finally {
      stream.destroy();
      plain.destroy();
    }
  });

  it('#14: no daemon reachable at start: exit 1 with one line', async () => {
    const p = startCli(['top', '-g', 'g', '-s', '1@127.0.0.1', '--json'], { stdin: 'ignore' });
    expect(await withTimeout(p.exited, 10_000, 'top exit')).toBe(1);
    expect(p.stderr()).toMatch(/^spread-pipe: cannot reach 1@127\.0\.0\.1/);
    expect(p.stdout().length).toBe(0);
  });
});

describe('Aggregator (#14)', () => {
  it('#14: rates per interval and the history ring; 5xx per second', () => {
    let now = 1_000_000;
    const a = new Aggregator({ tagged: true, history: 3 }, () => now);
    const msg = (n: number, status = 200) => Buffer.from(Array.from({ length: n }, (_, i) => `web1 ${LINE(`3.3.3.${i}`, '/', status)}\n`).join(''));
    a.addMessage(msg(10));
    now += 1000;
    a.tick();
    a.addMessage(msg(30, 500));
    now += 2000;
    a.tick();
    const s = a.snapshot();
    expect(s.requests_per_s).toBe(15);
    expect(s.errors_5xx_per_s).toBe(15);
    expect(s.by_host.web1!.requests_per_s).toBe(15);
    expect(a.history().requests_per_s).toEqual([10, 15]);
    for (let i = 0; i < 5; i++) {
      now += 1000;
      a.tick();
    }
    expect(a.history().requests_per_s).toEqual([0, 0, 0]);
    expect(a.history().by_host.web1).toEqual([0, 0, 0]);
  });

  it('#14: hosts past the cap are counted under (other), not dropped', () => {
    const a = new Aggregator({ tagged: true, maxHosts: 2 });
    a.addMessage(Buffer.from(['h1', 'h2', 'h3', 'h4'].map((h) => `${h} ${LINE('1.1.1.1', '/')}\n`).join('')));
    const s = a.snapshot();
    expect(Object.keys(s.by_host).sort()).toEqual(['(other)', 'h1', 'h2']);
    expect(s.by_host['(other)']!.requests).toBe(2);
  });
});
