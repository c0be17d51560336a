/**
 * #13: `spread-pipe write` as a process against the built-in daemon: every
 * feature byte for byte (spreadlogd.conf with several Log blocks, Match,
 * VhostDir, RewriteTimestamp; --write, --write-split, --write-vhost; strftime
 * paths across a day boundary on a fake clock; piped logs), SIGHUP during a
 * stream, failover between two daemons with the gap record, locks, --ack
 * repeats dropped across a restart, and bad input counted line by line.
 */
import fs from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import type { SpreadClient } from '../../src/spread/client.js';
import { encodeMarker } from '../../src/ack.js';
import { type Proc, connectClient, defer, startCli, startDaemon, startDaemonProcess, tempDir, waitFor, withTimeout } from '../helpers.js';

const read = (f: string): string => (fs.existsSync(f) ? fs.readFileSync(f, 'latin1') : '');

/** Start `spread-pipe write ARGS` and wait until every session has joined. */
async function startWriter(args: string[], env: NodeJS.ProcessEnv = {}, sessions = 1): Promise<Proc> {
  const p = startCli(['write', ...args], { env: { TZ: 'UTC', ...env }, stdin: 'ignore' });
  await Promise.race([
    p.waitStderr((s) => (s.match(/: joined /g) ?? []).length >= sessions, 10_000),
    p.exited.then((c) => {
      throw new Error(`write exited (${c}) before joining: ${p.stderr()}`);
    }),
  ]);
  return p;
}

/** Stop with SIGTERM and return the exit code and the stats line. */
async function stop(p: Proc): Promise<{ code: number | string; stats: string }> {
  p.kill('SIGTERM');
  const code = await withTimeout(p.exited, 10_000, 'write to exit');
  const stats = /stats: [^\n]*/.exec(p.stderr().split('SIGTERM')[1] ?? '')?.[0] ?? '';
  return { code, stats };
}

const counter = (stats: string, name: string): number => Number(new RegExp(`\\b${name}=(\\d+)`).exec(stats)?.[1] ?? NaN);

async function send(c: SpreadClient, group: string, lines: string[]): Promise<void> {
  for (const l of lines) c.multicast(group, Buffer.from(l, 'latin1'));
  c.flush();
}

describe('#13 spread-pipe write (process, built-in daemon)', () => {
  it('#13: a spreadlogd.conf with several Log blocks, Match, VhostDir and RewriteTimestamp, byte for byte', async () => {
    const { spec, port } = await startDaemon();
    const dir = tempDir();
    fs.mkdirSync(path.join(dir, 'vhosts'));
    const conf = path.join(dir, 'spreadlogd.conf');
    fs.writeFileSync(
      conf,
      `# central box, as spreadlogd 2.0.1 reads it
BufferSize = 65536
Spread {
  Port = ${port}
  Host = 127.0.0.1
  Log {
    Group = jigdo
    File = ${dir}/jigdo.log
  }
  Log {
    Group = jigdo          # a second Log for the same group: only the 404s
    File = "${dir}/jigdo-404.log"
    Match = '" 404 '
    Match = "^never"
  }
  Log {
    Group = www
    File = ${dir}/www-unused.log   # spreadlogd needs File next to VhostDir and never opens it
    VhostDir = ${dir}/vhosts
  }
  Log {
    Group = stamped
    File = ${dir}/stamped.log
    RewriteTimestamp = CommonLogFormat
  }
  Log {
    Group = custom
    File = ${dir}/custom.log
    RewriteTimestamp = "<%Y-%m-%d %H:%M:%S>"
  }
}
`,
    );
    const w = await startWriter(['--spreadlogd-conf', conf], { SPREAD_PIPE_TEST_CLOCK: '2026-12-31T23:59:58.000Z' });
    const { c } = await connectClient(spec, 'pub');
    await send(c, 'jigdo', ['web1 1.2.3.4 - - [31/Dec/2026:10:00:00 -0800] "GET /a HTTP/1.1" 200 5\n', 'web2 1.2.3.5 - - [31/Dec/2026:10:00:01 -0800] "GET /b HTTP/1.1" 404 9\n']);
    await send(c, 'www', ['www.example.org 1.2.3.4 - - [x] "GET / HTTP/1.1" 200 1\n', 'shop.example.org 1.2.3.6 - - [x] "GET /cart HTTP/1.1" 200 2\n', '../../etc/passwd owned\n']);
    await send(c, 'stamped', ['web1 1.2.3.4 - - [01/Jan/1999:00:00:00 +0000] "GET /s HTTP/1.1" 200 3\n', 'no stamp in this one\n']);
    await send(c, 'custom', ['web1 [old] rest\n']);
    await waitFor(() => read(path.join(dir, 'custom.log')) !== '' && fs.readdirSync(path.join(dir, 'vhosts')).filter((f) => !f.startsWith('.')).length === 3, 10_000, 'all files');
    const { code, stats } = await stop(w);
    expect(code).toBe(0);
    expect(read(path.join(dir, 'jigdo.log'))).toBe(
      'web1 1.2.3.4 - - [31/Dec/2026:10:00:00 -0800] "GET /a HTTP/1.1" 200 5\nweb2 1.2.3.5 - - [31/Dec/2026:10:00:01 -0800] "GET /b HTTP/1.1" 404 9\n',
    );
    expect(read(path.join(dir, 'jigdo-404.log'))).toBe('web2 1.2.3.5 - - [31/Dec/2026:10:00:01 -0800] "GET /b HTTP/1.1" 404 9\n');
    // VhostDir: the first word names the file and is removed; a name cannot leave the directory.
    expect(fs.readdirSync(path.join(dir, 'vhosts')).filter((f) => !f.startsWith('.')).sort()).toEqual(['_._.._etc_passwd', 'shop.example.org', 'www.example.org']);
    expect(read(path.join(dir, 'vhosts', 'www.example.org'))).toBe('1.2.3.4 - - [x] "GET / HTTP/1.1" 200 1\n');
    expect(read(path.join(dir, 'vhosts', 'shop.example.org'))).toBe('1.2.3.6 - - [x] "GET /cart HTTP/1.1" 200 2\n');
    expect(read(path.join(dir, 'vhosts', '_._.._etc_passwd'))).toBe('owned\n');
    expect(fs.existsSync(path.join(dir, 'www-unused.log'))).toBe(false);
    // The writer's clock (fake, UTC) at receipt, not the sender's.
    expect(read(path.join(dir, 'stamped.log'))).toMatch(/^web1 1\.2\.3\.4 - - \[31\/Dec\/2026:23:59:5[89] \+0000\] "GET \/s HTTP\/1\.1" 200 3\nno stamp in this one\n$/);
    expect(read(path.join(dir, 'custom.log'))).toMatch(/^web1 <2026-12-31 23:59:5[89]> rest\n$/);
    expect(counter(stats, 'received')).toBe(8);
    expect(counter(stats, 'lines')).toBe(9);
    expect(counter(stats, 'dropped')).toBe(0);
  });

  it('#13: --write, --write-split and --write-vhost: the line whole in DIR/<word>.log, the word removed in DIR/<word>; batches too', async () => {
    const { spec } = await startDaemon();
    const dir = tempDir();
    const w = await startWriter(['-s', spec, '--write', `g=${dir}/all.log`, '--write-split', `g=${dir}/split`, '--write-vhost', `g=${dir}/vhost`]);
    const { c } = await connectClient(spec, 'pub');
    await send(c, 'g', ['web1 GET /a\n', 'web2 GET /b', 'web1 x\nweb2 y\nweb1 z\n']);
    await waitFor(() => read(path.join(dir, 'vhost', 'web1')).includes('z'), 10_000, 'the batch');
    const { stats } = await stop(w);
    expect(read(path.join(dir, 'all.log'))).toBe('web1 GET /a\nweb2 GET /b\nweb1 x\nweb2 y\nweb1 z\n');
    // --write-split files a message by its first word (as the daemon does), whole.
    expect(read(path.join(dir, 'split', 'web1.log'))).toBe('web1 GET /a\nweb1 x\nweb2 y\nweb1 z\n');
    expect(read(path.join(dir, 'split', 'web2.log'))).toBe('web2 GET /b\n');
    // VhostDir: each line of a batch by its own word.
    expect(read(path.join(dir, 'vhost', 'web1'))).toBe('GET /a\nx\nz\n');
    expect(read(path.join(dir, 'vhost', 'web2'))).toBe('GET /b\ny\n');
    expect(counter(stats, 'dropped')).toBe(0);
  });

  it('#13: strftime paths cross a day boundary (fake clock): no line lost or split, directories below the fixed part made', async () => {
    const { spec } = await startDaemon();
    const dir = tempDir();
    const w = await startWriter(['-s', spec, '--write', `g=${dir}/%Y/%m/%d/access.log`, '--utc'], { SPREAD_PIPE_TEST_CLOCK: '2026-12-31T23:59:59.300Z', TZ: 'Europe/Berlin' });
    const { c } = await connectClient(spec, 'pub');
    const all: string[] = [];
    // Batches of 5 lines per message for 1.5 s of the writer's clock: the boundary falls inside the stream.
    for (let i = 0; i < 30; i++) {
      const batch = Array.from({ length: 5 }, (_, k) => `web1 line ${i * 5 + k}\n`);
      all.push(...batch);
      c.multicast('g', Buffer.from(batch.join('')));
      c.flush();
      await new Promise((r) => setTimeout(r, 50));
    }
    const before = path.join(dir, '2026', '12', '31', 'access.log');
    const after = path.join(dir, '2027', '01', '01', 'access.log');
    await waitFor(() => (read(before) + read(after)).split('\n').length - 1 === all.length, 10_000, 'every line');
    await stop(w);
    const a = read(before);
    const b = read(after);
    expect(a.length).toBeGreaterThan(0);
    expect(b.length).toBeGreaterThan(0);
    expect(a + b).toBe(all.join(''));
    // A message is never cut: each file holds whole batches of 5.
    expect((a.match(/\n/g) ?? []).length % 5).toBe(0);
  });

  it('#13: SIGHUP during a stream (logrotate, three times): nothing lost, nothing twice, new files at once', async () => {
    const { spec } = await startDaemon();
    const dir = tempDir();
    const file = path.join(dir, 'a.log');
    const w = await startWriter(['-s', spec, '--write', `g=${file}`]);
    const { c } = await connectClient(spec, 'pub');
    const N = 20_000;
    let sent = 0;
    const pump = (async () => {
      while (sent < N) {
        for (let k = 0; k < 200 && sent < N; k++) c.multicast('g', Buffer.from(`web1 line ${sent++}\n`));
        c.flush();
        await new Promise((r) => setTimeout(r, 2));
      }
    })();
    for (let i = 1; i <= 3; i++) {
      await waitFor(() => sent >= (N / 4) * i, 20_000, `${i} quarters sent`);
      fs.renameSync(file, `${file}.${i}`);
      w.kill('SIGHUP');
      // Reopened at once, not on the next message.
      await waitFor(() => fs.existsSync(file), 5000, `${file} made again after SIGHUP ${i}`);
    }
    await pump;
    const total = (): number => [1, 2, 3].reduce((n, i) => n + (read(`${file}.${i}`).match(/\n/g) ?? []).length, 0) + (read(file).match(/\n/g) ?? []).length;
    await waitFor(() => total() === N, 20_000, `${N} lines`);
    await stop(w);
    const joined = [1, 2, 3].map((i) => read(`${file}.${i}`)).join('') + read(file);
    expect(joined).toBe(Array.from({ length: N }, (_, i) => `web1 line ${i}\n`).join(''));
    expect(w.stderr().match(/reopened log files/g)).toHaveLength(3);
  });

  it('#13: failover: the writer on A, A dies, it moves to B, reports the gap, and writes what is published to B', async () => {
    const a = await startDaemonProcess();
    const b = await startDaemonProcess();
    const dir = tempDir();
    const file = path.join(dir, 'g.log');
    const w = await startWriter(['-s', a.spec, '-s', b.spec, '--write', `g=${file}`, '--gap-notice']);
    expect(w.stderr()).toContain(`joined g on ${a.spec}`);
    const pa = await connectClient(a.spec, 'pa');
    await send(pa.c, 'g', ['web1 before\n']);
    await waitFor(() => read(file) === 'web1 before\n', 10_000, 'the line on A');
    a.proc.kill('SIGKILL');
    await w.waitStderr((s) => s.includes(`joined g on ${b.spec}`), 10_000);
    const pb = await connectClient(b.spec, 'pb');
    await send(pb.c, 'g', ['web1 after\n']);
    await waitFor(() => read(file).endsWith('web1 after\n'), 10_000, 'the line on B');
    const { stats } = await stop(w);
    const lines = read(file).split('\n');
    expect(lines[0]).toBe('web1 before');
    expect(lines[1]).toMatch(/^spread-pipe write: not subscribed from \d{4}-\d\d-\d\dT[\d:.]+Z to \d{4}-\d\d-\d\dT[\d:.]+Z; lines sent then are missing$/);
    expect(lines.slice(2)).toEqual(['web1 after', '']);
    expect(w.stderr()).toMatch(/spread-pipe: lost the session with .*\n/);
    expect(w.stderr()).toMatch(/spread-pipe: spread-pipe write: not subscribed from .* to .*; lines sent then are missing \(groups g, now on /);
    expect(counter(stats, 'gaps')).toBe(1);
  });

  it('#13: fail-back: on B after A died, A back on its port: the writer returns to A with a gap record and writes what is published to A', async () => {
    const a = await startDaemonProcess();
    const b = await startDaemonProcess();
    const dir = tempDir();
    const file = path.join(dir, 'g.log');
    const w = await startWriter(['-s', a.spec, '-s', b.spec, '--write', `g=${file}`, '--gap-notice', '--failback-interval', '200']);
    a.proc.kill('SIGKILL');
    await w.waitStderr((s) => s.includes(`joined g on ${b.spec}`), 10_000);
    const pb = await connectClient(b.spec, 'pb');
    await send(pb.c, 'g', ['web1 on B\n']);
    await waitFor(() => read(file).endsWith('web1 on B\n'), 10_000, 'the line on B');
    const a2 = await a.restart();
    await w.waitStderr((s) => s.includes(`${a.spec} answers again: leaving ${b.spec} to join there`) && (s.match(new RegExp(`joined g on ${a.spec.replace(/[.]/g, '\\.')}`, 'g')) ?? []).length === 2, 15_000);
    const pa = await connectClient(a2.spec, 'pa');
    await send(pa.c, 'g', ['web1 on A again\n']);
    await waitFor(() => read(file).endsWith('web1 on A again\n'), 10_000, 'the line on A again');
    // Published to B after the switch: not written (the writer left B; no duplicate session stays joined).
    await send(pb.c, 'g', ['web1 B after the switch\n']);
    await new Promise((r) => setTimeout(r, 300));
    const { stats } = await stop(w);
    const lines = read(file).split('\n');
    const gap = /^spread-pipe write: not subscribed from \S+ to \S+; lines sent then are missing$/;
    expect(lines[0]).toMatch(gap);
    expect(lines[1]).toBe('web1 on B');
    expect(lines[2]).toMatch(gap);
    expect(lines.slice(3)).toEqual(['web1 on A again', '']);
    expect(counter(stats, 'gaps')).toBe(2);
  });

  it('#13: a hung daemon (SIGSTOP) is found by the liveness probe: the writer leaves it for B, with a gap record; a quiet live daemon is not taken as hung', async () => {
    const a = await startDaemonProcess();
    const b = await startDaemonProcess();
    const dir = tempDir();
    const file = path.join(dir, 'g.log');
    const w = await startWriter(['-s', a.spec, '-s', b.spec, '--write', `g=${file}`, '--gap-notice', '--liveness', '150', '--failback-interval', '0']);
    const pa = await connectClient(a.spec, 'pa');
    await send(pa.c, 'g', ['web1 before\n']);
    await waitFor(() => read(file) === 'web1 before\n', 10_000, 'the line on A');
    // Quiet for several probe rounds: each probe comes back, nothing is lost, no probe reaches the file.
    await new Promise((r) => setTimeout(r, 1200));
    expect(w.stderr()).not.toContain('lost the session');
    a.proc.kill('SIGSTOP');
    defer(() => void a.proc.kill('SIGKILL'));
    await w.waitStderr((s) => s.includes(`joined g on ${b.spec}`), 10_000);
    expect(w.stderr()).toMatch(new RegExp(`lost the session with ${a.spec.replace(/[.]/g, '\\.')}: daemon ${a.spec.replace(/[.]/g, '\\.')} sent nothing for 150 ms after a probe \\(hung\\?\\)`));
    const pb = await connectClient(b.spec, 'pb');
    await send(pb.c, 'g', ['web1 after\n']);
    await waitFor(() => read(file).endsWith('web1 after\n'), 10_000, 'the line on B');
    w.kill('SIGUSR1');
    await w.waitStderr((s) => /session .* hung=1 /.test(s), 5000);
    const { stats } = await stop(w);
    const lines = read(file).split('\n');
    expect(lines[0]).toBe('web1 before');
    expect(lines[1]).toMatch(/^spread-pipe write: not subscribed from \S+ to \S+; lines sent then are missing$/);
    expect(lines.slice(2)).toEqual(['web1 after', '']);
    expect(counter(stats, 'gaps')).toBe(1);
    expect(counter(stats, 'received')).toBe(2);
  });

  it('#13: File = |program: the program gets the lines, and is started again when it dies', async () => {
    const { spec } = await startDaemon();
    const dir = tempDir();
    const out = path.join(dir, 'piped');
    const w = await startWriter(['-s', spec, '--write', `g=|while read l; do echo "$l" >> ${out}; [ "$l" = "web1 die" ] && exit 7; done`]);
    const { c } = await connectClient(spec, 'pub');
    await send(c, 'g', ['web1 one\n', 'web1 die\n']);
    await w.waitStderr((s) => /exited \(status 7\); starting it again/.test(s), 10_000);
    await w.waitStderr((s) => /started \|.* again/.test(s), 10_000);
    await send(c, 'g', ['web1 two\n']);
    await waitFor(() => read(out).includes('two'), 10_000, 'the line after the restart');
    const { stats } = await stop(w);
    expect(read(out)).toBe('web1 one\nweb1 die\nweb1 two\n');
    expect(counter(stats, 'dropped')).toBe(0);
  });

  it('#13: File = |program that dies with lines unread: they are counted lost (pipe-died, lines and bytes), the counters add up', async () => {
    const { spec } = await startDaemon();
    const dir = tempDir();
    const out = path.join(dir, 'piped');
    const cmd = `while read l; do echo "$l" >> ${out}; [ "$l" = "web1 die" ] && exit 7; done`;
    const w = await startWriter(['-s', spec, '--write', `g=|${cmd}`]);
    const { c } = await connectClient(spec, 'pub');
    // One message, so one write to the pipe: "web1 lost" is in the pipe when the program exits.
    await send(c, 'g', ['web1 one\nweb1 die\nweb1 lost\n']);
    await w.waitStderr((s) => s.includes(`|${cmd} died with 10 bytes (1 lines) it had not read: lost (pipe-died)`), 10_000);
    await w.waitStderr((s) => /started \|.* again/.test(s), 10_000);
    await send(c, 'g', ['web1 two\n']);
    await waitFor(() => read(out).includes('two'), 10_000, 'the line after the restart');
    w.kill('SIGUSR1');
    const err = await w.waitStderr((s) => s.includes('lost_bytes='), 5000);
    expect(err).toContain(`file |${cmd} lines=3 bytes=27 lost_lines=1 lost_bytes=10\n`);
    const { stats } = await stop(w);
    expect(read(out)).toBe('web1 one\nweb1 die\nweb1 two\n');
    expect(stats).toMatch(/^stats: received=2 written=2 lines=3 bytes=27 .* dropped=1 \(.*pipe-died=1 /);
  });

  it('#13: a lock per file: a second writer of the same file writes nothing there, says so once, counts it, and writes its other files', async () => {
    const { spec } = await startDaemon();
    const dir = tempDir();
    const shared = path.join(dir, 'shared.log');
    const w1 = await startWriter(['-s', spec, '--write', `g=${shared}`]);
    const { c } = await connectClient(spec, 'pub');
    await send(c, 'g', ['web1 first\n']);
    await waitFor(() => read(shared) === 'web1 first\n', 10_000, 'first writer');
    const w2 = await startWriter(['-s', spec, '--write', `g=${shared}`, '--write', `g=${dir}/own.log`, '--report-interval', '60000']);
    await send(c, 'g', ['web1 second\n', 'web1 third\n']);
    await waitFor(() => read(path.join(dir, 'own.log')) === 'web1 second\nweb1 third\n', 10_000, "second writer's own file");
    await waitFor(() => read(shared) === 'web1 first\nweb1 second\nweb1 third\n', 10_000, 'first writer still writing');
    const s2 = await stop(w2);
    await stop(w1);
    expect(w2.stderr().match(/cannot write .*shared\.log: .*being written by another process \(pid \d+/g)).toHaveLength(1);
    expect(counter(s2.stats, 'locked')).toBe(2);
    expect(counter(s2.stats, 'dropped')).toBe(2);
    expect(fs.readdirSync(dir).filter((f) => f.endsWith('.lock'))).toEqual([]);
  });

  it('#13: bad input: an oversize message, a disk full (ENOSPC on /dev/full), a file that cannot be opened: one line each, counted, other files keep being written', async () => {
    const { spec } = await startDaemon();
    const dir = tempDir();
    fs.symlinkSync('/dev/full', path.join(dir, 'full.log'));
    const gone = path.join(dir, 'gone');
    fs.mkdirSync(gone);
    const w = await startWriter(['-s', spec, '--buffer-size', '100', '--write', `g=${dir}/full.log`, '--write', `g=${dir}/ok.log`, '--write', `g=${gone}/x.log`, '--report-interval', '60000', '--no-dedup']);
    fs.rmSync(gone, { recursive: true });
    const { c } = await connectClient(spec, 'pub');
    await send(c, 'g', ['web1 ok 1\n', `web1 ${'x'.repeat(200)}\n`, 'web1 ok 2\n', `web1 ${'y'.repeat(200)}\n`]);
    await new Promise((r) => setTimeout(r, 300));
    await send(c, 'g', ['web1 ok 3\n']);
    await waitFor(() => read(path.join(dir, 'ok.log')) === 'web1 ok 1\nweb1 ok 2\nweb1 ok 3\n', 10_000, 'the good file');
    const { stats } = await stop(w);
    const err = w.stderr();
    expect(err.match(/dropped a message of 206 bytes from #pub#localhost to g: larger than the buffer \(100 bytes/g)).toHaveLength(1);
    expect(err.match(/cannot write .*full\.log: ENOSPC/g)).toHaveLength(1);
    expect(err.match(/cannot write .*gone\/x\.log: ENOENT.*\(directory .*gone does not exist\)/g)).toHaveLength(1);
    expect(counter(stats, 'oversize')).toBe(2);
    expect(counter(stats, 'write-failed')).toBe(3);
    expect(counter(stats, 'open-failed')).toBe(3);
    expect(counter(stats, 'dropped')).toBe(8);
    // received 5 = 2 oversize + 3 written to ok.log; each of those 3 lost twice (full.log, gone/x.log).
    expect(counter(stats, 'received')).toBe(5);
  });

  it('#13: --ack repeats are dropped, also by a writer restarted in between (the journal)', async () => {
    const { spec } = await startDaemon();
    const dir = tempDir();
    const file = path.join(dir, 'a.log');
    // A sequenced stream as a --ack publisher names it: "=" and nine characters; the first line's id in the type.
    const { c } = await connectClient(spec, '=abcdefghi');
    let w = await startWriter(['-s', spec, '--write', `g=${file}`]);
    c.multicast('g', Buffer.from('web1 l0\nweb1 l1\n'), { messType: 0 });
    c.multicast('g', Buffer.from('web1 l0\nweb1 l1\n'), { messType: 0 }); // resent: both lines seen
    c.flush();
    await waitFor(() => read(file) === 'web1 l0\nweb1 l1\n', 10_000, 'first batch');
    const s1 = await stop(w);
    expect(counter(s1.stats, 'duplicates_dropped')).toBe(2);
    w = await startWriter(['-s', spec, '--write', `g=${file}`]);
    // After the restart: the repeat of l1 and a new l2 in one batch; only l2 is new.
    c.multicast('g', Buffer.from('web1 l1\nweb1 l2\n'), { messType: 1 });
    c.flush();
    await waitFor(() => read(file) === 'web1 l0\nweb1 l1\nweb1 l2\n', 10_000, 'the new line only');
    const s2 = await stop(w);
    expect(counter(s2.stats, 'duplicates_dropped')).toBe(1);
  });

  it('#16: an --ack marker reaching a group (markers go to the private group only) is no line: write, with and without dedup, and tail skip it', async () => {
    const { spec } = await startDaemon();
    const dir = tempDir();
    const [a, b] = [path.join(dir, 'a.log'), path.join(dir, 'b.log')];
    const w1 = await startWriter(['-s', spec, '--write', `g=${a}`]);
    const w2 = await startWriter(['-s', spec, '--write', `g=${b}`, '--no-dedup']);
    const tails = [startCli(['tail', '-g', 'g', '-s', spec, '--count', '2']), startCli(['tail', '-g', 'g', '-s', spec, '--count', '2', '--no-dedup'])];
    const { c: watcher, events } = await connectClient(spec, 'watcher', true);
    watcher.join('g');
    // Both writers, both tails and the watcher.
    await waitFor(() => events.some((e) => e.kind === 'membership' && e.info.members.length === 5), 15_000, 'tails joined');
    const { c } = await connectClient(spec, '=abcdefghi');
    c.multicast('g', Buffer.from('web1 l0\n'), { messType: 0 });
    c.multicast('g', encodeMarker(1), { messType: 1 });
    c.multicast('g', Buffer.from('web1 l1\n'), { messType: 1 });
    c.flush();
    await waitFor(() => read(a).length >= 16 && read(b).length >= 16, 10_000, 'both files');
    await Promise.all(tails.map((t) => withTimeout(t.exited, 10_000, 'tail --count 2')));
    expect(tails.map((t) => t.stdout().toString('latin1'))).toEqual(['web1 l0\nweb1 l1\n', 'web1 l0\nweb1 l1\n']);
    await stop(w1);
    await stop(w2);
    expect([read(a), read(b)]).toEqual(['web1 l0\nweb1 l1\n', 'web1 l0\nweb1 l1\n']);
  });

  it('#13: SIGUSR1 and the exit line give lines and bytes per file and drops by reason', async () => {
    const { spec } = await startDaemon();
    const dir = tempDir();
    const w = await startWriter(['-s', spec, '--write', `g=${dir}/a.log`, '--write-split', `g=${dir}/s`]);
    const { c } = await connectClient(spec, 'pub');
    await send(c, 'g', ['web1 x\n', 'web2 yy\nweb2 zz\n']);
    await waitFor(() => read(path.join(dir, 's', 'web2.log')) !== '', 10_000, 'files');
    w.kill('SIGUSR1');
    const err = await w.waitStderr((s) => s.includes('file ') && s.includes(`s/web2.log`), 5000);
    expect(err).toContain(`file ${dir}/a.log lines=3 bytes=23\n`);
    expect(err).toContain(`file ${dir}/s/web1.log lines=1 bytes=7\n`);
    expect(err).toContain(`file ${dir}/s/web2.log lines=2 bytes=16\n`);
    expect(err).toMatch(/session \d+@127\.0\.0\.1: subscribed on /);
    const { stats } = await stop(w);
    expect(stats).toMatch(/^stats: received=2 written=4 lines=6 bytes=46 filtered=0 duplicates_dropped=0 dropped=0 \(open-failed=0 locked=0 write-failed=0 pipe-full=0 pipe-died=0 oversize=0 no-first-word=0\) gaps=0/);
  });

  it.each([
    [['--spreadlogd-conf', 'CONF'], 'PerlLog', /^spread-pipe: --spreadlogd-conf .*spreadlogd\.conf:4: PerlLog is not supported/],
    [[], '', /^spread-pipe: nothing to write: give --write/],
    [['--write', 'g=/tmp/x.log', '--match', 'g=a('], '', /^spread-pipe: --match g=a\(: bad regular expression/],
    [['--write', 'g=/tmp/x.log', '--match', 'h=a'], '', /^spread-pipe: --match h=a: no --write/],
    [['--write', 'g=/tmp/%Q.log'], '', /^spread-pipe: -w\/--write g=\/tmp\/%Q\.log: unknown conversion %Q/],
    [['--write', 'nogroup'], '', /^spread-pipe: -w\/--write: expected GROUP=FILE/],
    [['--write', 'g=/tmp/x.log', 'stray'], '', /^spread-pipe: unexpected argument "stray"/],
    [['--write', 'g=/tmp/x.log', '--buffer-size', 'lots'], '', /^spread-pipe: --buffer-size: expected a size/],
  ])('#13: usage error %j: exit 2, one line, nothing joined', async (args, perl, want) => {
    const dir = tempDir();
    const conf = path.join(dir, 'spreadlogd.conf');
    fs.writeFileSync(conf, `Spread {\n  Log {\n    Group = g\n    ${perl || 'Match = x'} mylogger::log\n    File = ${dir}/x.log\n  }\n}\n`);
    const p = startCli(['write', ...args.map((a) => a.replace('CONF', conf))], { stdin: 'ignore' });
    const code = await withTimeout(p.exited, 10_000, 'exit');
    expect(code).toBe(2);
    expect(p.stderr()).toMatch(want);
    expect(p.stderr().trim().split('\n')).toHaveLength(1);
    expect(p.stderr()).not.toMatch(/joined/);
  });

  it('#13: a path that cannot be written stops the start with one line, exit 1, before joining', async () => {
    const p = startCli(['write', '-s', '1@127.0.0.1', '--write', `g=${tempDir()}/missing/x.log`], { stdin: 'ignore' });
    expect(await withTimeout(p.exited, 10_000, 'exit')).toBe(1);
    expect(p.stderr()).toMatch(/^spread-pipe: -w\/--write g=.*missing\/x\.log: directory .*missing does not exist[^\n]*\n$/);
  });
});
