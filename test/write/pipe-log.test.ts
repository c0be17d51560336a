/** #13: File = |program, restarted when it dies, never blocking the writer. */
import fs from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { type PipeEvent, PipedLog } from '../../src/write/pipe-log.js';
import { defer, tempDir, waitFor } from '../helpers.js';

describe('#13 piped logs', () => {
  it('#13: lines reach the program; a program that dies is started again and gets the next lines', async () => {
    const dir = tempDir();
    const out = path.join(dir, 'out');
    const events: PipeEvent[] = [];
    // Each run appends what it reads until it sees "die", then exits.
    const p = new PipedLog(`while read l; do echo "$l" >> ${out}; [ "$l" = die ] && exit 3; done`, (e) => events.push(e));
    defer(() => p.close());
    p.write(Buffer.from('one\ntwo\ndie\n'), 3);
    await waitFor(() => events.some((e) => e.type === 'exit'), 5000, 'the program to exit');
    p.write(Buffer.from('three\n'), 1);
    await waitFor(() => fs.existsSync(out) && fs.readFileSync(out, 'latin1').includes('three'), 5000, 'the restarted program');
    expect(fs.readFileSync(out, 'latin1')).toBe('one\ntwo\ndie\nthree\n');
    expect(events.filter((e) => e.type === 'start')).toHaveLength(2);
    expect(events.find((e) => e.type === 'exit')).toMatchObject({ code: 3 });
    expect(p.restarts).toBe(1);
    await p.close();
  });

  it('#13: a program that dies with lines unread in its pipe: they are counted as lost (bytes, lines), never handed to the next one', async () => {
    const dir = tempDir();
    const out = path.join(dir, 'out');
    const events: PipeEvent[] = [];
    // sh's read takes one line from a pipe (byte by byte): "two" and "three" stay in the pipe when it exits.
    const p = new PipedLog(`while read l; do echo "$l" >> ${out}; [ "$l" = one ] && exit 3; done`, (e) => events.push(e));
    defer(() => p.close());
    p.write(Buffer.from('one\ntwo\nthree\n'), 3);
    await waitFor(() => events.some((e) => e.type === 'lost'), 5000, 'the loss to be counted');
    expect(events.find((e) => e.type === 'lost')).toEqual({ type: 'lost', command: p.command, bytes: 'two\nthree\n'.length, lines: 2 });
    expect(p.lost).toEqual({ bytes: 10, lines: 2 });
    p.write(Buffer.from('one more\n'), 1);
    await waitFor(() => fs.readFileSync(out, 'latin1').includes('one more'), 5000, 'the restarted program');
    expect(fs.readFileSync(out, 'latin1')).toBe('one\none more\n');
    await p.close();
    expect(p.lost).toEqual({ bytes: 10, lines: 2 });
  });

  it('#13: a program that does not read costs its own lines past the backlog, counted, and never blocks', async () => {
    const p = new PipedLog('exec sleep 30', () => {}, 64 * 1024);
    defer(() => p.close(100));
    const chunk = Buffer.alloc(16 * 1024, 0x61);
    let kept = 0;
    const t0 = Date.now();
    for (let i = 0; i < 200; i++) if (p.write(chunk, 1)) kept++;
    expect(Date.now() - t0).toBeLessThan(2000);
    expect(p.dropped).toBe(200 - kept);
    expect(p.dropped).toBeGreaterThan(150);
  });

  it('#13: close() ends the input and waits for the program to finish', async () => {
    const dir = tempDir();
    const out = path.join(dir, 'o');
    const p = new PipedLog(`cat > ${out}`);
    p.write(Buffer.from('a\nb\n'), 2);
    await p.close();
    expect(fs.readFileSync(out, 'latin1')).toBe('a\nb\n');
  });
});
