/** Numbered log lines for fault and end-to-end tests, and the exit-line counters (read = sent + dropped). */
import { once } from 'node:events';
import fs from 'node:fs';
import { expect } from 'vitest';
import { type Proc } from './process.js';

/** Access-log-like lines "n GET /n HTTP/1.1" for n in [from, to); a publisher run with -h HOST tags them. */
export function numberedLines(from: number, to: number): string {
  let s = '';
  for (let i = from; i < to; i++) s += `${i} GET /${i} HTTP/1.1\n`;
  return s;
}

/** Feed numbered lines in chunks, yielding to the event loop between chunks so faults can land mid-stream. */
export async function feedLines(p: Proc, from: number, to: number, chunk = 200): Promise<void> {
  const stdin = p.child.stdin!;
  for (let i = from; i < to; i += chunk) {
    if (!stdin.write(numberedLines(i, Math.min(to, i + chunk)))) await once(stdin, 'drain');
    await new Promise((r) => setImmediate(r));
  }
}

/** The numbers of the lines of `host` in a file (or in text), in file order. */
export function lineNumbers(fileOrText: string, host: string, isText = false): number[] {
  const text = isText ? fileOrText : fs.existsSync(fileOrText) ? fs.readFileSync(fileOrText, 'latin1') : '';
  const out: number[] = [];
  const prefix = `${host} `;
  for (const l of text.split('\n')) if (l.startsWith(prefix)) out.push(Number(l.split(' ')[1]));
  return out;
}

/** A counter from the exit report (or SIGUSR1 line) on a publisher's stderr, e.g. counter(err, 'spool-full'). */
export function counter(stderr: string, name: string): number {
  const all = [...stderr.matchAll(new RegExp(`[ :]${name}=(\\d+)`, 'g'))];
  return all.length ? Number(all[all.length - 1]![1]) : NaN;
}

export interface ExitCounters {
  read: number;
  sentLines: number;
  queued: number;
  /** Lines dropped, by reason. */
  dropped: Record<string, number>;
  notices: number;
  /** Lines taken from datagrams (--syslog), 0 without. */
  syslogLines: number;
  /** Lines a previous run left in the spool (--spool), 0 without. */
  carried: number;
}

/**
 * #11: the pipe-mode exit report adds up. Every line that came in (read from
 * stdin, taken from datagrams, or left in the spool by a previous run) was
 * sent, dropped for a counted reason, or is still queued:
 * read + syslog lines + spool_carried = sent_lines + dropped (all reasons) + queued.
 * Gap notices are counted apart (notices=N) and in none of these.
 */
export function expectCountersAddUp(stderr: string): ExitCounters {
  const lines = stderr.split('\n');
  const exit = lines.filter((l) => /exit: read=/.test(l)).pop();
  expect(exit, `no exit report in: ${stderr.slice(-600)}`).toBeDefined();
  const num = (name: string, text = exit!): number => {
    const m = new RegExp(`[ :]${name}=(\\d+)`).exec(text);
    return m ? Number(m[1]) : NaN;
  };
  const dropPart = /dropped: (.*?) notices=/.exec(exit!);
  expect(dropPart, `no drop counters in: ${exit}`).not.toBeNull();
  const dropped: Record<string, number> = {};
  for (const kv of dropPart![1]!.split(' ')) {
    const [k, v] = kv.split('=');
    dropped[k!] = Number(v);
  }
  const syslogExit = lines.filter((l) => /exit: syslog /.test(l)).pop();
  const c: ExitCounters = {
    read: num('read'),
    sentLines: num('sent_lines'),
    queued: num('queued'),
    dropped,
    notices: num('notices'),
    syslogLines: syslogExit ? num('lines', syslogExit) : 0,
    carried: /spool_carried=/.test(exit!) ? num('spool_carried') : 0,
  };
  for (const [k, v] of Object.entries(c)) if (typeof v === 'number') expect(Number.isInteger(v), `${k} in: ${exit}`).toBe(true);
  const droppedAll = Object.values(dropped).reduce((a, b) => a + b, 0);
  expect(c.sentLines + droppedAll + c.queued, `sent_lines + dropped + queued != lines in: ${exit}`).toBe(c.read + c.syslogLines + c.carried);
  return c;
}


/** Like numberedLines, each line padded to about `width` bytes (lineNumbers still reads its number). */
export function paddedLines(from: number, to: number, width: number): string {
  let s = '';
  for (let i = from; i < to; i++) {
    const head = `${i} GET /${i} HTTP/1.1 `;
    s += `${head}${'x'.repeat(Math.max(0, width - head.length - 1))}\n`;
  }
  return s;
}

/** Feed padded numbered lines in chunks, yielding between chunks (see feedLines). */
export async function feedPaddedLines(p: Proc, from: number, to: number, width: number, chunk = 100): Promise<void> {
  const stdin = p.child.stdin!;
  for (let i = from; i < to; i += chunk) {
    if (!stdin.write(paddedLines(i, Math.min(to, i + chunk), width))) await once(stdin, 'drain');
    await new Promise((r) => setImmediate(r));
  }
}
