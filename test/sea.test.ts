/**
 * The single executable (issue 6): daemon, publisher and subscriber all run
 * from dist/spread-pipe (built by `npm test` via scripts/build-sea.sh), the
 * publisher fed through a real shell pipe, and the nginx syslog bridge with
 * its native addon; README's demo runs on it.
 */
import fs from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { expectCountersAddUp, ROOT, sendUdp, sendUnixDgram, startCli, startProcess, tempDir } from './helpers.js';

const SEA = path.join(ROOT, 'dist', 'spread-pipe');
const PKG_VERSION = (JSON.parse(fs.readFileSync(path.join(ROOT, 'package.json'), 'utf8')) as { version: string }).version;
// CI builds it in `npm test`: there a missing executable is a failure, not a skip.
const run = fs.existsSync(SEA) || process.env.CI ? describe : describe.skip;

describe('--version', () => {
  it("prints package.json's version (node dist/main.js)", async () => {
    for (const flag of ['--version', '-V']) {
      const p = startCli([flag], { stdin: 'ignore' });
      expect(await p.exited).toBe(0);
      expect(p.stdout().toString()).toBe(`spread-pipe ${PKG_VERSION}\n`);
    }
  });
});

/** A directory holding what scripts/demo.sh needs (the script and the sample log), nothing more. */
function copyDemo(): string {
  const dir = tempDir('spread-pipe-demo-');
  for (const f of ['scripts/demo.sh', 'examples/access.log.sample']) {
    fs.mkdirSync(path.join(dir, path.dirname(f)), { recursive: true });
    fs.copyFileSync(path.join(ROOT, f), path.join(dir, f));
  }
  return dir;
}

describe('README and demo (#11)', () => {
  const readme = fs.readFileSync(path.join(ROOT, 'README.md'), 'utf8');

  it.runIf(fs.existsSync(SEA))("#11: README gives dist/spread-pipe's size as `ls -l` measures it (within 1%)", () => {
    const m = /`dist\/spread-pipe`: ([\d.]+) MB/.exec(readme);
    expect(m, 'README names the size as "`dist/spread-pipe`: NN.N MB"').not.toBeNull();
    const mb = fs.statSync(SEA).size / 1e6;
    expect(Math.abs(Number(m![1]) - mb) / mb).toBeLessThan(0.01);
  });

  it('#11: README says the daemon listens on all interfaces next to --allow, and that --write adds a missing newline', () => {
    const allow = readme.split('\n- ').find((b) => b.includes('`--allow CIDR`'))!;
    expect(allow).toMatch(/all interfaces/);
    const write = readme.split('\n- ').find((b) => b.startsWith('`--write GROUP=FILE`'))!.replace(/\s+/g, ' ');
    expect(write).toMatch(/adding a newline to a message that lacks one \(as `tail` does/);
  });

  it('#11: SPREAD_PIPE=dist/spread-pipe scripts/demo.sh builds the executable first when it is missing', async () => {
    // A copy of what the demo needs, with an `npm` that records the call and "builds" a stand-in.
    const dir = copyDemo();
    const bin = path.join(dir, 'bin');
    fs.mkdirSync(bin);
    fs.writeFileSync(
      path.join(bin, 'npm'),
      `#!/bin/sh\necho "$@" >> ${dir}/npm.calls\nmkdir -p dist && printf '#!/bin/sh\\nexec ${process.execPath} ${path.join(ROOT, 'dist', 'main.js')} "$@"\\n' > dist/spread-pipe && chmod 755 dist/spread-pipe\n`,
      { mode: 0o755 },
    );
    const demo = startProcess(path.join(dir, 'scripts', 'demo.sh'), [], { cwd: dir, env: { SPREAD_PIPE: 'dist/spread-pipe', PATH: `${bin}:${process.env.PATH}` }, stdin: 'ignore' });
    expect(await demo.exited, demo.stderr()).toBe(0);
    expect(fs.readFileSync(path.join(dir, 'npm.calls'), 'utf8')).toBe('run build:sea\n');
    expect(demo.stdout().toString()).toMatch(/== all 10 lines arrived\n$/);
  });

  it("#11: a step that fails stops the demo with that step's status and message, not the daemon's SIGTERM (143)", async () => {
    // CI saw 143 and nothing else: the cleanup, under set -e, returned the status of a daemon it had
    // killed before that daemon's SIGTERM handler existed, and hid why the demo had stopped.
    const dir = copyDemo();
    // A "daemon" that dies of SIGTERM, and a publisher that cannot reach it.
    const fake = path.join(dir, 'fake-spread-pipe');
    fs.writeFileSync(
      fake,
      `#!/bin/sh\ncase "$1" in --daemon) echo "spread-pipe: listening on 127.0.0.1:9" >&2; exec sleep 30 ;; esac\necho "spread-pipe: fake publisher: no daemon" >&2\nexit 1\n`,
      { mode: 0o755 },
    );
    const demo = startProcess(path.join(dir, 'scripts', 'demo.sh'), [], { cwd: dir, env: { SPREAD_PIPE: fake }, stdin: 'ignore' });
    expect(await demo.exited, demo.stderr()).toBe(1);
    expect(demo.stderr()).toContain('spread-pipe: fake publisher: no daemon');
  });
});

run('dist/spread-pipe (single executable)', () => {
  it('prints its version and every help with no file next to it', async () => {
    // A copy far from the checkout: no package.json, no node_modules to fall back on.
    const dir = tempDir('spread-pipe-sea-');
    const copy = path.join(dir, 'spread-pipe');
    fs.copyFileSync(SEA, copy);
    fs.chmodSync(copy, 0o755);
    const env = { PATH: '/usr/bin:/bin', NODE_PATH: '', NODE_OPTIONS: '' };
    const v = startProcess(copy, ['--version'], { cwd: dir, env, stdin: 'ignore' });
    expect(await v.exited).toBe(0);
    expect(v.stdout().toString()).toBe(`spread-pipe ${PKG_VERSION}\n`);
    expect(v.stderr()).toBe('');
    for (const args of [['--help'], ['tail', '--help'], ['top', '--help'], ['--daemon', '--help']]) {
      const h = startProcess(copy, args, { cwd: dir, env, stdin: 'ignore' });
      expect(await h.exited).toBe(0);
      expect(h.stdout().toString()).toMatch(/^spread-pipe /);
      expect(h.stdout().toString()).toMatch(/Exit status/);
      expect(h.stderr()).toBe('');
    }
    const bad = startProcess(copy, ['--no-such-option'], { cwd: dir, env, stdin: 'ignore' });
    expect(await bad.exited).toBe(2);
    expect(bad.stderr()).toMatch(/^spread-pipe: .*\n$/);
  });

  it('runs daemon, publisher (through a shell pipe) and subscriber from the one file', async () => {
    const file = path.join(tempDir(), 'sea.log');
    const daemon = startProcess(SEA, ['--daemon', '--name', 'localhost', '--no-unix', '--listen', '127.0.0.1:0', '--write', `sea=${file}`], { stdin: 'ignore' });
    const err = await daemon.waitStderr((s) => /listening on 127\.0\.0\.1:\d+/.test(s));
    const spec = `${/127\.0\.0\.1:(\d+)/.exec(err)![1]}@127.0.0.1`;
    const tail = startProcess(SEA, ['tail', '-g', 'sea', '-s', spec, '--count', '1000', '--membership'], { stdin: 'ignore' });
    await tail.waitStdout((s) => s.includes('# membership sea: join'));
    const pub = startProcess('/bin/sh', ['-c', `seq 1 1000 | sed 's/^/line /' | '${SEA}' -g sea -s ${spec} -h box`], { stdin: 'ignore' });
    expect(await pub.exited).toBe(0);
    expect(await tail.exited).toBe(0);
    const expected = Array.from({ length: 1000 }, (_, i) => `box line ${i + 1}`);
    expect(tail.stdout().toString().trimEnd().split('\n').slice(1)).toEqual(expected);
    // The daemon's writer got the same lines; SIGTERM flushes before exit.
    daemon.kill('SIGTERM');
    expect(await daemon.exited).toBe(0);
    expect(fs.readFileSync(file, 'utf8')).toBe(`${expected.join('\n')}\n`);
    expectCountersAddUp(pub.stderr());
  });

  it('bridges nginx syslog datagrams over UDP and a unix socket (native addon inside the file)', async () => {
    const daemon = startProcess(SEA, ['--daemon', '--name', 'localhost', '--no-unix', '--listen', '127.0.0.1:0'], { stdin: 'ignore' });
    const err = await daemon.waitStderr((s) => /listening on 127\.0\.0\.1:\d+/.test(s));
    const spec = `${/127\.0\.0\.1:(\d+)/.exec(err)![1]}@127.0.0.1`;
    const tail = startProcess(SEA, ['tail', '-g', 'www', '-g', 'jigdo', '-s', spec, '--count', '2', '--membership'], { stdin: 'ignore' });
    await tail.waitStdout((s) => s.includes('# membership www: join') && s.includes('# membership jigdo: join'));
    // The addon is unpacked under TMPDIR: it must be gone again once loaded.
    const tmp = tempDir();
    const sock = path.join(tempDir(), 'nginx.sock');
    const args = ['--syslog', 'udp://127.0.0.1:0', '--syslog', `unix:${sock}`, '-g', 'www', '--route', 'jigdo=jigdo', '-h', 'bridgebox', '-s', spec];
    const bridge = startProcess(SEA, args, { env: { TMPDIR: tmp }, stdin: 'ignore' });
    const listening = await bridge.waitStderr((s) => /listening on udp:\S+:\d+/.test(s) && s.includes(`listening on unix:${sock}`));
    expect(fs.readdirSync(tmp)).toEqual([]);
    const port = Number(/listening on udp:\S+:(\d+)/.exec(listening)![1]);
    await sendUdp(port, [Buffer.from('<190>Nov 23 07:00:00 web1 jigdo: GET /jigdo.html 200')]);
    await tail.waitStdout((s) => s.includes('web1 GET /jigdo.html 200\n'));
    // nginx's nohostname: the bridge's own host name stands in.
    await sendUnixDgram(sock, [Buffer.from('<190>Nov 23 07:00:01 www: GET /www.html 200')]);
    expect(await tail.exited).toBe(0);
    expect(tail.stdout().toString().split('\n').filter((l) => !l.startsWith('#'))).toEqual(['web1 GET /jigdo.html 200', 'bridgebox GET /www.html 200', '']);
    bridge.kill('SIGTERM');
    expect(await bridge.exited).toBe(0);
    expect(fs.existsSync(sock)).toBe(false);
    expectCountersAddUp(bridge.stderr());
  });

  it('#14: top --http serves its page and uPlot from inside the file (no node_modules next to it)', async () => {
    const dir = tempDir('spread-pipe-sea-top-');
    const copy = path.join(dir, 'spread-pipe');
    fs.copyFileSync(SEA, copy);
    fs.chmodSync(copy, 0o755);
    const env = { PATH: '/usr/bin:/bin', NODE_PATH: '', NODE_OPTIONS: '' };
    const top = startProcess(copy, ['top', '--stdin', '--no-tag', '--json', '--http', '127.0.0.1:0'], { cwd: dir, env });
    const err = await top.waitStderr((s) => s.includes('page at'));
    const base = /page at (http:\/\/[^/]+)\//.exec(err)![1]!;
    const page = await (await fetch(`${base}/`)).text();
    expect(page).toContain('<script src="/uplot.js">');
    const js = await fetch(`${base}/uplot.js`);
    expect(js.status).toBe(200);
    expect(await js.text()).toBe(fs.readFileSync(path.join(ROOT, 'node_modules/uplot/dist/uPlot.iife.min.js'), 'utf8'));
    expect((await fetch(`${base}/uplot.css`)).status).toBe(200);
    expect(await (await fetch(`${base}/metrics`)).text()).toMatch(/^spread_pipe_top_lines_total 0$/m);
    top.child.stdin!.end();
    expect(await top.exited).toBe(0);
  });

  it("runs README's demo (npm run demo) on the executable", async () => {
    const demo = startProcess(path.join(ROOT, 'scripts', 'demo.sh'), [], { env: { SPREAD_PIPE: SEA }, stdin: 'ignore' });
    expect(await demo.exited, demo.stderr()).toBe(0);
    expect(demo.stdout().toString()).toMatch(/== all 10 lines arrived\n$/);
  });
});
