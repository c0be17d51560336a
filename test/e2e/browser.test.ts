/// <reference lib="dom" />
/**
 * The --http page in a real browser (issue #14): Debian's Chromium, headless,
 * driven by playwright-core, loads the page of a running `top`, sees its
 * numbers change as lines arrive through the built-in daemon, and they agree
 * with top's --json output and with /metrics (parsed as Prometheus text).
 * Every request the page makes stays on top's own server (no CDN).
 */
import fs from 'node:fs';
import path from 'node:path';
import parsePrometheusTextFormat from 'parse-prometheus-text-format';
import { chromium, type BrowserContext } from 'playwright-core';
import { describe, expect, it } from 'vitest';
import { defer, feedStdin, startCli, startDaemon, tempDir, withTimeout } from '../helpers.js';
import { accessLines } from '../top/loglines.js';

const CHROMIUM = '/usr/bin/chromium';
const present = fs.existsSync(CHROMIUM);
// In CI chromium is installed by .ci/run: a missing browser there is a failure, not a skip.
const run = present || process.env.CI ? describe : describe.skip;

/** A fresh profile directory each time (playwright passes it as --user-data-dir). */
export async function launchChromium(dir: string): Promise<BrowserContext> {
  const browser = await chromium.launchPersistentContext(path.join(dir, 'chromium-profile'), {
    executablePath: CHROMIUM,
    headless: true,
    args: [
      '--headless',
      '--no-sandbox',
      '--disable-gpu',
      '--disable-quic',
      '--no-first-run',
      '--disable-background-networking',
      '--disable-component-update',
      '--disable-sync',
    ],
    viewport: { width: 1400, height: 1100 },
    timeout: 30_000,
  });
  defer(() => browser.close());
  return browser;
}

async function publish(spec: string, lines: string[]): Promise<void> {
  const pub = startCli(['-g', 'web', '-s', spec, '-h', 'web1']);
  await feedStdin(pub, `${lines.join('\n')}\n`);
  expect(await withTimeout(pub.exited, 20_000, 'publisher exit')).toBe(0);
}

interface Sample {
  name: string;
  metrics: { value: string; labels?: Record<string, string> }[];
}

run('top --http in Chromium (#14)', () => {
  it('#14: the page shows the numbers change as lines arrive, equal to --json and /metrics; screenshot saved', async () => {
    const dir = tempDir('spread-pipe-browser-');
    const { lines } = accessLines(1500);
    const first = lines.slice(0, 1200);
    const second = lines.slice(1200);
    const { spec } = await startDaemon();
    const top = startCli(['top', '-g', 'web', '-s', spec, '--json', '--interval', '200', '--http', '127.0.0.1:0'], { stdin: 'ignore' });
    const err = await top.waitStderr((s) => s.includes('joined web') && s.includes('page at'));
    const base = /page at (http:\/\/[^/]+)\//.exec(err)![1]!;

    const browser = await launchChromium(dir);
    const page = await browser.newPage();
    const requested: string[] = [];
    page.on('request', (r) => requested.push(r.url()));
    const pageErrors: string[] = [];
    page.on('pageerror', (e) => pageErrors.push(e.message));
    await page.goto(`${base}/`);
    await page.waitForSelector('#conn.up', { timeout: 10_000 });
    const value = (sel: string): Promise<number> => page.$eval(sel, (el) => Number((el as HTMLElement).dataset.value));
    expect(await value('#stat-lines')).toBe(0);

    await publish(spec, first);
    await page.waitForFunction((n) => document.querySelector<HTMLElement>('#stat-lines')?.dataset.value === String(n), first.length, { timeout: 15_000 });
    await publish(spec, second);
    await page.waitForFunction((n) => document.querySelector<HTMLElement>('#stat-lines')?.dataset.value === String(n), lines.length, { timeout: 15_000 });
    // Let one more snapshot land so the page and the JSON line below describe the same state.
    const snaps = Number(await page.$eval('body', (b) => (b as HTMLElement).dataset.snapshots));
    await page.waitForFunction((n) => Number(document.body.dataset.snapshots) > n, snaps, { timeout: 5000 });
    const shot = path.join(dir, 'top-page.png');
    await page.screenshot({ path: shot, fullPage: true });
    expect(fs.statSync(shot).size).toBeGreaterThan(10_000);

    const json = top
      .stdout()
      .toString()
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l));
    const s = json[json.length - 1];
    expect(s.lines).toBe(lines.length);
    expect(await value('#stat-requests')).toBe(s.requests);
    expect(await value('#stat-distinct')).toBe(s.distinct_clients);
    expect(await value('#stat-online')).toBe(s.online_clients);
    expect(await value('#stat-unparsed')).toBe(s.unparsed);
    for (const [code, hits] of Object.entries(s.hits_by_status)) {
      expect(await page.$eval(`#status tr[data-code="${code}"] td.n`, (el) => Number((el as HTMLElement).dataset.value))).toBe(hits);
    }
    const urls = await page.$$eval('#top-urls tr', (rows) =>
      rows.slice(1).map((r) => ({ url: r.querySelector('td')!.getAttribute('title'), hits: Number((r.querySelector('td.n') as HTMLElement).dataset.value) })),
    );
    expect(urls).toEqual(s.top_urls);
    expect(await page.$eval('#hosts tr[data-host="web1"] td.n[data-value]', (el) => Number((el as HTMLElement).dataset.value))).toBe(s.by_host.web1.requests);
    // uPlot drew its charts (a canvas each) from the bundled script.
    expect(await page.$$eval('.uplot canvas', (c) => c.length)).toBeGreaterThanOrEqual(2);
    expect(pageErrors).toEqual([]);
    expect(requested.every((u) => u.startsWith(base))).toBe(true);
    expect(requested).toContain(`${base}/uplot.js`);

    const res = await fetch(`${base}/metrics`);
    expect(res.headers.get('content-type')).toMatch(/^text\/plain; version=0\.0\.4/);
    const families = parsePrometheusTextFormat(await res.text()) as Sample[];
    const one = (name: string): number => Number(families.find((f) => f.name === name)!.metrics[0]!.value);
    expect(one('spread_pipe_top_lines_total')).toBe(lines.length);
    expect(one('spread_pipe_top_requests_total')).toBe(s.requests);
    expect(one('spread_pipe_top_response_bytes_total')).toBe(s.bytes);
    expect(one('spread_pipe_top_distinct_clients')).toBe(s.distinct_clients);
    const codes = families.find((f) => f.name === 'spread_pipe_top_responses_total')!.metrics;
    expect(Object.fromEntries(codes.map((m) => [m.labels!.code, Number(m.value)]))).toEqual(s.hits_by_status);
    top.kill('SIGTERM');
    expect(await withTimeout(top.exited, 5000, 'top exit')).toBe(0);
  });
});
