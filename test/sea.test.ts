/**
 * The single executable (issue 6): daemon, publisher and subscriber all run
 * from dist/spread-pipe (built by `npm test` via scripts/build-sea.sh), the
 * publisher fed through a real shell pipe.
 */
import fs from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { ROOT, startProcess } from './helpers.js';
import { VERSION } from '../src/version.js';

const SEA = path.join(ROOT, 'dist', 'spread-pipe');
const built = fs.existsSync(SEA);
// CI builds it in `npm test`; there a missing executable is a failure, not a skip.
const run = built || process.env.CI ? describe : describe.skip;

describe('version', () => {
  it('matches package.json', () => {
    const pkg = JSON.parse(fs.readFileSync(path.join(ROOT, 'package.json'), 'utf8')) as { version: string };
    expect(VERSION).toBe(pkg.version);
  });
});

run('dist/spread-pipe (single executable)', () => {
  it('prints its version and help without node or any file next to it', async () => {
    const dir = fs.mkdtempSync(path.join(ROOT, 'dist', 'sea-copy-'));
    try {
      const copy = path.join(dir, 'spread-pipe');
      fs.copyFileSync(SEA, copy);
      fs.chmodSync(copy, 0o755);
      const v = startProcess(copy, ['--version'], { cwd: dir, env: { PATH: '/usr/bin:/bin', NODE_PATH: '' } });
      expect(await v.exited).toBe(0);
      expect(v.stdout().toString()).toBe(`spread-pipe ${VERSION}\n`);
      for (const args of [['--help'], ['tail', '--help'], ['--daemon', '--help']]) {
        const h = startProcess(copy, args, { cwd: dir });
        expect(await h.exited).toBe(0);
        expect(h.stdout().toString()).toMatch(/spread-pipe/);
      }
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });

  it('runs daemon, publisher (through a shell pipe) and subscriber from the one file', async () => {
    const daemon = startProcess(SEA, ['--daemon', '--name', 'localhost', '--no-unix', '--listen', '127.0.0.1:0'], { stdin: 'ignore' });
    const err = await daemon.waitStderr((s) => /listening on 127\.0\.0\.1:\d+/.test(s));
    const spec = `${/127\.0\.0\.1:(\d+)/.exec(err)![1]}@127.0.0.1`;
    const tail = startProcess(SEA, ['tail', '-g', 'sea', '-s', spec, '--count', '1000', '--membership']);
    await tail.waitStdout((s) => s.includes('# membership sea: join'));
    const pub = startProcess('/bin/sh', ['-c', `seq 1 1000 | sed 's/^/line /' | '${SEA}' -g sea -s ${spec} -h box`], { stdin: 'ignore' });
    expect(await pub.exited).toBe(0);
    expect(await tail.exited).toBe(0);
    const lines = tail.stdout().toString().trimEnd().split('\n').slice(1);
    expect(lines).toEqual(Array.from({ length: 1000 }, (_, i) => `box line ${i + 1}`));
  });
});
