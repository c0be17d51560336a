/**
 * Real Apache httpd from Debian with spread-pipe as its piped logger
 * (issue 3): every request's combined line arrives at a `spread-pipe tail`
 * subscriber through the built-in daemon, byte-exact against the line Apache
 * writes to a file; and Apache keeps serving with no daemon reachable.
 */
import fs from 'node:fs';
import path from 'node:path';
import { expect, it } from 'vitest';
import { expectCountersAddUp, freePort, httpRequests, runApache as run, startApache, startCli, startDaemon, waitFor } from '../helpers.js';

/** Requests whose lines differ: paths, query strings, quotes in the User-Agent, the front page. */
function requests(url: string, n: number, concurrency: number): Promise<number[]> {
  return httpRequests({
    url,
    n,
    concurrency,
    path: (i) => `/${i % 10 === 0 ? '' : `r/${i}?q=${i}`}`,
    headers: (i) => ({ 'User-Agent': `e2e "agent" ${i}`, Referer: `http://ref/${i}` }),
  });
}

run('Apache httpd with CustomLog "|spread-pipe ..."', () => {
  it('delivers every request line to a tail subscriber, byte-exact', async () => {
    const { spec } = await startDaemon();
    const N = 300;
    const tail = startCli(['tail', '-g', 'web', '-s', spec, '--count', String(N), '--membership']);
    await tail.waitStdout((s) => s.includes('# membership web: join'));
    const apache = await startApache(['-g', 'web', '-s', spec, '-h', 'web1']);
    const status = await requests(apache.url, N, 8);
    expect(status.filter((s) => s === 200).length).toBe(N / 10);
    expect(await tail.exited).toBe(0);
    await apache.stop();
    const fileLines = fs.readFileSync(path.join(apache.dir, 'access.log'), 'latin1').trimEnd().split('\n');
    const got = tail.stdout().toString('latin1').trimEnd().split('\n').slice(1);
    expect(got).toHaveLength(N);
    expect(got.every((l) => l.startsWith('web1 '))).toBe(true);
    // Same bytes as Apache's own file (order may differ between workers).
    expect(got.map((l) => l.slice(5)).sort()).toEqual([...fileLines].sort());
    const errorLog = () => fs.readFileSync(path.join(apache.dir, 'error.log'), 'utf8');
    await waitFor(() => /spread-pipe: exit: read=/.test(errorLog()), 10_000, 'the logger exit report');
    expectCountersAddUp(errorLog());
  });

  it('keeps serving at full speed with no daemon reachable; the logger reports its drops', async () => {
    const dead = await freePort();
    const apache = await startApache(['-g', 'web', '-s', `${dead}@127.0.0.1`, '--queue-lines', '100', '--report-interval', '200']);
    const N = 3000;
    // A logger that stopped reading its pipe would block Apache after ~64 KB of lines, and this would time out.
    const status = await requests(apache.url, N, 16);
    expect(status).toHaveLength(N);
    expect(status.every((s) => s === 200 || s === 404)).toBe(true);
    await apache.stop();
    const errorLog = () => fs.readFileSync(path.join(apache.dir, 'error.log'), 'utf8');
    await waitFor(() => /spread-pipe: exit: read=3000 /.test(errorLog()), 10_000, 'the logger exit report');
    expect(errorLog()).toMatch(/spread-pipe: cannot reach/);
    const m = /exit: read=3000 .*dropped: queue-full=(\d+) lost-in-flight=0 unsent-at-exit=(\d+)/.exec(errorLog())!;
    expect(Number(m[1]) + Number(m[2])).toBe(3000);
    expectCountersAddUp(errorLog());
  });
});
