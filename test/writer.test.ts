/**
 * The daemon's log writer on its own: newline handling, one file per host
 * tag with names that cannot escape the directory, a bounded set of open
 * files, reopen for logrotate, and failures that are counted and reported
 * without stopping the other files.
 */
import fs from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { LogWriter, type WriterEvent, safeFileName } from '../src/writer.js';
import { tempDir } from './helpers.js';

const read = (f: string): string => fs.readFileSync(f, 'latin1');
const b = (s: string): Buffer => Buffer.from(s, 'latin1');

/** Open descriptors of this process (Linux), to see that the writer's stay bounded. */
const openFds = (): number => fs.readdirSync('/proc/self/fd').length;

describe('LogWriter', () => {
  it('appends each message once, adding a newline only where one is missing', () => {
    const dir = tempDir();
    const w = new LogWriter();
    fs.mkdirSync(path.join(dir, 'sub'));
    const f = path.join(dir, 'sub', 'all.log');
    w.append(f, b('web1 GET /a 200'));
    w.append(f, b('web1 GET /b 200\n'));
    w.append(f, b('web1 line1\nweb1 line2\n')); // a batch of lines in one message
    w.append(f, b(''));
    w.flush();
    expect(read(f)).toBe('web1 GET /a 200\nweb1 GET /b 200\nweb1 line1\nweb1 line2\n\n');
    expect(w.stats).toMatchObject({ messages: 4, errors: 0, dropped: 0 });
    w.close();
  });

  it('writes what is buffered by the end of the turn without an explicit flush', async () => {
    const dir = tempDir();
    const w = new LogWriter();
    const f = path.join(dir, 'a.log');
    w.append(f, b('x 1'));
    expect(fs.existsSync(f) ? read(f) : '').toBe('');
    await new Promise((r) => setImmediate(r));
    await new Promise((r) => setImmediate(r));
    expect(read(f)).toBe('x 1\n');
    w.close();
  });

  it('splits by the first token into safe file names inside the directory only', () => {
    const dir = tempDir();
    const outside = path.dirname(dir);
    const before = new Set(fs.readdirSync(outside));
    const w = new LogWriter();
    const tags = ['web1', '../../etc/passwd', '..', '.', '/abs', 'a/b', 'C:\\x', 'höst', '%2e%2e', '\x00nul', 'x'.repeat(300)];
    for (const t of tags) w.appendSplit(dir, Buffer.concat([b(t), b(' GET / 200')]));
    w.appendSplit(dir, b('notoken')); // no space: the whole line is the tag
    w.appendSplit(dir, b(' leading space'));
    w.appendSplit(dir, b('')); // empty message
    w.close();
    const files = fs.readdirSync(dir).sort();
    for (const f of files) {
      expect(f).toMatch(/^[A-Za-z0-9._-]+\.log$/);
      expect(f.length).toBeLessThanOrEqual(104);
      expect(['.', '..', '.log', '..log']).not.toContain(f);
      expect(fs.statSync(path.join(dir, f)).isFile()).toBe(true);
    }
    // Nothing was created next to the directory or anywhere up the tree.
    expect(new Set(fs.readdirSync(outside))).toEqual(before);
    expect(read(path.join(dir, 'web1.log'))).toBe('web1 GET / 200\n');
    expect(read(path.join(dir, 'notoken.log'))).toBe('notoken\n');
    // Every message is in exactly one file.
    const total = files.reduce((n, f) => n + read(path.join(dir, f)).split('\n').length - 1, 0);
    expect(total).toBe(tags.length + 3);
    expect(safeFileName('..')).not.toBe('..');
    expect(safeFileName('../x')).not.toContain('/');
  });

  it('keeps at most maxOpen files open, closing the least recently used, and loses nothing', () => {
    const dir = tempDir();
    const w = new LogWriter(undefined, 4);
    const fds = openFds();
    const hosts = Array.from({ length: 20 }, (_, i) => `h${i}`);
    for (let round = 0; round < 50; round++) {
      for (const h of hosts) w.appendSplit(dir, b(`${h} ${round}`));
      expect(openFds() - fds).toBeLessThanOrEqual(4);
    }
    w.close();
    expect(openFds()).toBe(fds);
    for (const h of hosts) {
      expect(read(path.join(dir, `${h}.log`))).toBe(Array.from({ length: 50 }, (_, r) => `${h} ${r}\n`).join(''));
    }
    expect(w.stats.closedForLimit).toBeGreaterThan(0);
  });

  it('reopens every file on reopen(): after a logrotate rename, new lines go to a new file', () => {
    const dir = tempDir();
    const events: WriterEvent[] = [];
    const w = new LogWriter((e) => events.push(e));
    w.appendSplit(dir, b('web1 before'));
    w.appendSplit(dir, b('web2 before'));
    w.flush();
    fs.renameSync(path.join(dir, 'web1.log'), path.join(dir, 'web1.log.1'));
    fs.renameSync(path.join(dir, 'web2.log'), path.join(dir, 'web2.log.1'));
    w.appendSplit(dir, b('web1 between')); // after the rename, before the signal: old file
    w.reopen();
    w.appendSplit(dir, b('web1 after'));
    w.appendSplit(dir, b('web2 after'));
    w.close();
    expect(read(path.join(dir, 'web1.log.1'))).toBe('web1 before\nweb1 between\n');
    expect(read(path.join(dir, 'web1.log'))).toBe('web1 after\n');
    expect(read(path.join(dir, 'web2.log.1'))).toBe('web2 before\n');
    expect(read(path.join(dir, 'web2.log'))).toBe('web2 after\n');
    expect(events.filter((e) => e.type === 'reopen')).toEqual([{ type: 'reopen', files: 2 }]);
  });

  it('counts and reports a file it cannot open, once per interval, and goes on with the others', () => {
    const dir = tempDir();
    fs.writeFileSync(path.join(dir, 'blocker'), 'a file where a directory is needed');
    const events: WriterEvent[] = [];
    const w = new LogWriter((e) => events.push(e));
    for (let i = 0; i < 100; i++) {
      w.append(path.join(dir, 'blocker', 'x.log'), b(`lost ${i}`));
      w.append(path.join(dir, 'ok.log'), b(`kept ${i}`));
    }
    w.close();
    expect(w.stats.dropped).toBe(100);
    expect(w.stats.errors).toBe(100);
    const errors = events.filter((e) => e.type === 'error');
    expect(errors).toHaveLength(1);
    expect(errors[0]).toMatchObject({ path: path.join(dir, 'blocker', 'x.log'), dropped: 1 });
    expect(read(path.join(dir, 'ok.log')).split('\n')).toHaveLength(101);
  });

  it('counts the messages of a write that fails (a full disk) as dropped', () => {
    if (!fs.existsSync('/dev/full')) return;
    const events: WriterEvent[] = [];
    const w = new LogWriter((e) => events.push(e));
    for (let i = 0; i < 10; i++) w.append('/dev/full', b(`line ${i}`));
    w.flush();
    w.close();
    expect(w.stats.dropped).toBe(10);
    expect(events.find((e) => e.type === 'error')).toMatchObject({ path: '/dev/full', dropped: 10 });
  });

  it('#11: makes no directory but the --write-split one, and never loops on a path under /proc', () => {
    const dir = tempDir();
    const events: WriterEvent[] = [];
    const w = new LogWriter((e) => events.push(e));
    // append(): a missing directory is reported, named, and not created.
    w.append(path.join(dir, 'missing', 'x.log'), b('lost'));
    expect(fs.existsSync(path.join(dir, 'missing'))).toBe(false);
    expect(events.find((e) => e.type === 'error')).toMatchObject({ message: expect.stringContaining(`directory ${path.join(dir, 'missing')} does not exist`) });
    // appendSplit(): the directory named is made (one level), not its parents.
    w.appendSplit(path.join(dir, 'hosts'), b('web1 GET /'));
    w.appendSplit(path.join(dir, 'no', 'such', 'hosts'), b('web1 GET /'));
    expect(fs.existsSync(path.join(dir, 'no'))).toBe(false);
    // Node's recursive mkdir spins for ever here (ENOENT under /proc/sys); one attempt each.
    w.appendSplit('/proc/sys/nope', b('web1 GET /'));
    w.append('/proc/sys/nope/x.log', b('web1 GET /'));
    w.close();
    expect(read(path.join(dir, 'hosts', 'web1.log'))).toBe('web1 GET /\n');
    expect(w.stats).toMatchObject({ messages: 1, dropped: 4 });
  });
});
