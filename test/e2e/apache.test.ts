/**
 * Real Apache httpd from Debian with spread-pipe as its piped logger
 * (issue 3): every request's combined line arrives at a `spread-pipe tail`
 * subscriber through the built-in daemon, byte-exact against the line Apache
 * writes to a file; and Apache keeps serving with no daemon reachable.
 */
import fs from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { CLI, expectCountersAddUp, freePort, httpRequests, startCli, startDaemon, startProcess, tempDir, waitFor, waitForTcp } from '../helpers.js';

const APACHE = '/usr/sbin/apache2';
const MODULES = '/usr/lib/apache2/modules';
const present = fs.existsSync(APACHE);
// In CI apache2 is installed by .ci/run: a missing binary there is a failure, not a skip.
const run = present || process.env.CI ? describe : describe.skip;

/** Start Apache in the foreground with `pipeArgs` as its piped logger; returns the base URL and paths. */
async function startApache(pipeArgs: string[]): Promise<{ url: string; dir: string; stop: () => Promise<void> }> {
  const dir = tempDir('spread-pipe-apache-');
  fs.chmodSync(dir, 0o755); // the workers run as www-data
  fs.mkdirSync(path.join(dir, 'htdocs'));
  fs.writeFileSync(path.join(dir, 'htdocs', 'index.html'), 'hello\n');
  const port = await freePort();
  const pipe = [process.execPath, CLI, ...pipeArgs].join(' ');
  const user = process.getuid?.() === 0 ? 'User www-data\nGroup www-data\n' : '';
  fs.writeFileSync(
    path.join(dir, 'httpd.conf'),
    `ServerRoot ${dir}
ServerName localhost
Listen 127.0.0.1:${port}
LoadModule mpm_event_module ${MODULES}/mod_mpm_event.so
LoadModule authz_core_module ${MODULES}/mod_authz_core.so
LoadModule dir_module ${MODULES}/mod_dir.so
${user}PidFile ${dir}/httpd.pid
ErrorLog ${dir}/error.log
DefaultRuntimeDir ${dir}
Mutex file:${dir}
DocumentRoot ${dir}/htdocs
<Directory ${dir}/htdocs>
  Require all granted
</Directory>
LogFormat "%h %l %u %t \\"%r\\" %>s %b \\"%{Referer}i\\" \\"%{User-Agent}i\\"" combined
CustomLog ${dir}/access.log combined
CustomLog "|${pipe}" combined
`,
  );
  const httpd = startProcess(APACHE, ['-d', dir, '-f', path.join(dir, 'httpd.conf'), '-DFOREGROUND'], { stdin: 'ignore' });
  const url = `http://127.0.0.1:${port}`;
  await waitForTcp(port, 15_000, () => `apache: ${httpd.stderr()}`);
  return {
    url,
    dir,
    stop: async () => {
      httpd.kill('SIGTERM');
      await httpd.exited;
    },
  };
}

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
