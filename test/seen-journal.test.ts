/**
 * The --write writer's memory of --ack streams across a daemon crash (issue
 * 7): lines written are dropped when sent again; a crash between the journal
 * record and the write, or in the middle of the write, leaves those lines
 * unseen (and a torn write cut off), so the resend writes them once.
 */
import fs from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { newStreamName, seqMessType } from '../src/ack.js';
import { DuplicateFilter } from '../src/dedup.js';
import { SeenJournal } from '../src/seen-journal.js';
import { WriteDedup } from '../src/write-dedup.js';
import { LogWriter } from '../src/writer.js';
import type { Frame } from '../src/spread/decoder.js';
import { tempDir } from './helpers.js';

const stream = newStreamName();
const frame = (first: number, count: number, sender = `#${stream}#localhost`): Frame =>
  ({
    sender,
    messType: seqMessType(first),
    data: Buffer.from(Array.from({ length: count }, (_, i) => `web1 line ${first + i}\n`).join('')),
  }) as Frame;

/** A daemon's writer for one --write file, as cli/daemon.ts wires it. */
function writerFor(file: string): { deliver: (f: Frame) => void; writer: LogWriter; dedup: WriteDedup } {
  const dedup = new WriteDedup();
  const writer = new LogWriter(undefined, undefined, undefined, dedup);
  const t = dedup.add(`${file}.seen`);
  const tap = dedup.tap(t, (data, note) => writer.append(file, data, note));
  return { deliver: tap, writer, dedup };
}

const linesOf = (file: string): string[] => fs.readFileSync(file, 'latin1').split('\n').slice(0, -1);
const expected = (from: number, to: number): string[] => Array.from({ length: to - from }, (_, i) => `web1 line ${from + i}`);

describe('SeenJournal with the log writer', () => {
  it('after a restart, lines already written are dropped and the rest written once', () => {
    const file = path.join(tempDir(), 'out.log');
    const a = writerFor(file);
    for (let id = 0; id < 100; id += 10) a.deliver(frame(id, 10));
    a.writer.flush();
    a.dedup.close(); // the daemon dies here (the writer's buffer was flushed: acks went out after it)
    const b = writerFor(file);
    // The publisher resends what it had no ack for, batched differently, then goes on.
    for (let id = 60; id < 150; id += 15) b.deliver(frame(id, 15));
    b.writer.flush();
    expect(linesOf(file)).toEqual(expected(0, 150));
    expect(b.dedup.duplicates).toBe(40);
  });

  it('a crash after the journal record but before the write: those lines are taken again', () => {
    const file = path.join(tempDir(), 'out.log');
    const a = writerFor(file);
    a.deliver(frame(0, 5));
    a.writer.flush();
    // Record a write of ids 5..9 as the writer would, then "die" before writing the data.
    const j = SeenJournal.open(`${file}.seen`, new DuplicateFilter());
    const fd = fs.openSync(file, 'a');
    j.record(file, fd, 55, [{ stream, first: 5, count: 5 }]);
    fs.closeSync(fd);
    j.close();
    a.dedup.close();
    const b = writerFor(file);
    const t = (b.dedup as unknown as { targets: { recovery: { undone: number } }[] }).targets[0]!;
    expect(t.recovery.undone).toBe(1);
    b.deliver(frame(0, 10));
    b.writer.flush();
    expect(linesOf(file)).toEqual(expected(0, 10));
  });

  it('a torn write is cut back to where it began', () => {
    const file = path.join(tempDir(), 'out.log');
    const a = writerFor(file);
    a.deliver(frame(0, 3));
    a.writer.flush();
    const before = fs.statSync(file).size;
    const j = SeenJournal.open(`${file}.seen`, new DuplicateFilter());
    const fd = fs.openSync(file, 'a');
    const data = frame(3, 3).data;
    j.record(file, fd, data.length, [{ stream, first: 3, count: 3 }]);
    fs.writeSync(fd, data, 0, 7); // half a line reached the file
    fs.closeSync(fd);
    j.close();
    a.dedup.close();
    const b = writerFor(file);
    expect(fs.statSync(file).size).toBe(before);
    b.deliver(frame(3, 3));
    b.writer.flush();
    expect(linesOf(file)).toEqual(expected(0, 6));
  });

  it('a rotated file (new inode) does not count as an unfinished write', () => {
    const dir = tempDir();
    const file = path.join(dir, 'out.log');
    const a = writerFor(file);
    a.deliver(frame(0, 4));
    a.writer.flush();
    a.writer.reopen();
    fs.renameSync(file, `${file}.1`); // logrotate
    fs.writeFileSync(file, '');
    a.dedup.close();
    const b = writerFor(file);
    b.deliver(frame(0, 6));
    b.writer.flush();
    expect(linesOf(file)).toEqual(expected(4, 6));
  });

  it('compacts into a snapshot past its bound, and the snapshot restores the windows', () => {
    const file = path.join(tempDir(), 'out.log');
    const filter = new DuplicateFilter();
    filter.trackChanges();
    const j = SeenJournal.open(`${file}.seen`, filter, 2000);
    const fd = fs.openSync(file, 'a');
    for (let id = 0; id < 300; id++) {
      const f = frame(id, 1);
      filter.filter(f.sender, f.messType, f.data);
      j.record(file, fd, f.data.length, filter.takeChanges());
      fs.writeSync(fd, f.data);
      j.maybeCompact();
    }
    fs.closeSync(fd);
    j.close();
    expect(fs.statSync(`${file}.seen`).size).toBeLessThan(2000 + 3000);
    const b = writerFor(file);
    b.deliver(frame(250, 60));
    b.writer.flush();
    expect(linesOf(file)).toEqual(expected(0, 310));
  });

  it('ignores a torn last journal record', () => {
    const file = path.join(tempDir(), 'out.log');
    const a = writerFor(file);
    a.deliver(frame(0, 2));
    a.writer.flush();
    a.dedup.close();
    fs.appendFileSync(`${file}.seen`, Buffer.from([40, 0, 0, 0, 1, 2]));
    const b = writerFor(file);
    b.deliver(frame(0, 3));
    b.writer.flush();
    expect(linesOf(file)).toEqual(expected(0, 3));
  });

  it('plain senders are written as they come, journal untouched', () => {
    const file = path.join(tempDir(), 'out.log');
    const a = writerFor(file);
    a.deliver(frame(0, 1, '#sp123#localhost'));
    a.deliver(frame(0, 1, '#sp123#localhost'));
    a.writer.flush();
    expect(linesOf(file)).toEqual(['web1 line 0', 'web1 line 0']);
    expect(fs.existsSync(`${file}.seen`) ? fs.statSync(`${file}.seen`).size : 0).toBe(0);
  });
});
