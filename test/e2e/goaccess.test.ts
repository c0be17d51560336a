/**
 * Accuracy against a real peer (issue #14): Debian's GoAccess and
 * `spread-pipe top --json --exit-after N` read the same lines (top through
 * the built-in daemon, published by pipe mode) and must agree on total
 * requests, hits per status code, the top 10 URLs with their hits, distinct
 * client addresses and bytes served.
 *
 * GoAccess conventions followed: a URL is the request target as logged, query
 * string included (GoAccess's default, without --no-query-string); GoAccess
 * splits URLs into its requests / static_requests / not_found panels and
 * keys them by method and protocol too, so its hits are summed per URL
 * across those; distinct clients are its "hosts" panel (addresses), not its
 * "unique visitors" (address + date + agent).
 */
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { feedStdin, startCli, startDaemon, tempDir, withTimeout } from '../helpers.js';
import { accessLines } from '../top/loglines.js';

const GOACCESS = '/usr/bin/goaccess';
const present = fs.existsSync(GOACCESS);
// In CI goaccess is installed by .ci/run: a missing binary there is a failure, not a skip.
const run = present || process.env.CI ? describe : describe.skip;

interface GaItem {
  data: string;
  hits: { count: number };
  items?: GaItem[];
}
interface GaPanel {
  metadata: { data: { total: { value: number } } };
  data: GaItem[];
}

function goaccess(file: string, out: string): Record<string, unknown> & { general: Record<string, number> } {
  execFileSync(GOACCESS, [file, '--no-global-config', '--log-format=COMBINED', '--no-progress', '-o', out], { stdio: ['ignore', 'ignore', 'pipe'], timeout: 60_000 });
  return JSON.parse(fs.readFileSync(out, 'utf8'));
}

run('top against GoAccess (#14)', () => {
  it('#14: same lines, same totals, status codes, top 10 URLs, distinct clients and bytes as GoAccess', async () => {
    const { lines, heavy } = accessLines(4000);
    // Two lines neither tool can parse: both must count them as failed, not as requests.
    lines.splice(100, 0, 'this is not an access log line');
    lines.splice(2000, 0, '10.0.0.1 - - [garbage] "GET / HTTP/1.1" 200 1 "-" "x"');
    const dir = tempDir('spread-pipe-goaccess-');
    const file = path.join(dir, 'access.log');
    fs.writeFileSync(file, `${lines.join('\n')}\n`);
    const ga = goaccess(file, path.join(dir, 'report.json'));

    const { spec } = await startDaemon();
    const top = startCli(['top', '-g', 'acc', '-s', spec, '--json', '--interval', '200', '--exit-after', String(lines.length)], { stdin: 'ignore' });
    await top.waitStderr((s) => s.includes('joined acc'));
    const pub = startCli(['-g', 'acc', '-s', spec, '-h', 'web1']);
    await feedStdin(pub, fs.readFileSync(file));
    expect(await withTimeout(pub.exited, 20_000, 'publisher exit')).toBe(0);
    expect(await withTimeout(top.exited, 20_000, 'top exit')).toBe(0);
    const out = top.stdout().toString().trim().split('\n');
    const s = JSON.parse(out[out.length - 1]!);

    // Totals: GoAccess's total = valid + failed.
    expect(s.lines).toBe(ga.general.total_requests);
    expect(s.requests).toBe(ga.general.valid_requests);
    expect(s.unparsed).toBe(ga.general.failed_requests);
    expect(s.unparsed).toBe(2);
    expect(s.bytes).toBe(ga.general.bandwidth);

    // Hits per status code.
    const gaStatus: Record<string, number> = {};
    for (const cls of (ga.status_codes as GaPanel).data) for (const it of cls.items ?? []) gaStatus[it.data.slice(0, 3)] = it.hits.count;
    expect(s.hits_by_status).toEqual(gaStatus);

    // Top 10 URLs: GoAccess's panels summed per URL.
    const perUrl = new Map<string, number>();
    for (const p of ['requests', 'static_requests', 'not_found']) {
      const panel = ga[p] as GaPanel;
      for (const it of panel.data) perUrl.set(it.data, (perUrl.get(it.data) ?? 0) + it.hits.count);
    }
    const gaTop = [...perUrl].sort((a, b) => b[1] - a[1]).slice(0, 10).map(([url, hits]) => ({ url, hits }));
    expect(s.top_urls).toEqual(gaTop);
    // ...and both are the ten heavy URLs the generator made, with their exact counts.
    expect(new Map(s.top_urls.map((e: { url: string; hits: number }) => [e.url, e.hits]))).toEqual(heavy);

    // Distinct client addresses: GoAccess's hosts panel.
    expect(s.distinct_clients).toBe((ga.hosts as GaPanel).metadata.data.total.value);
    expect(s.distinct_clients_exact).toBe(true);
    expect(s.by_host.web1.requests).toBe(s.requests);
  });
});
