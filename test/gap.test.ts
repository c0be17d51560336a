/** --gap-notice (issue 7): the line format and the tally behind it. */
import { describe, expect, it } from 'vitest';
import { GapTally, formatGapNotice, parseGapNotice } from '../src/gap.js';

describe('gap notice', () => {
  it('formats one tagged line and parses back', () => {
    const from = new Date('2026-11-23T06:40:00.000Z');
    const to = new Date('2026-11-23T06:41:02.125Z');
    const line = formatGapNotice({ host: 'web1', reasons: { 'queue-full': 1200, 'lost-in-flight': 34, 'no-route': 0 }, from, to });
    expect(line.toString()).toBe(
      'web1 spread-pipe: lost 1234 lines (lost-in-flight=34 queue-full=1200) between 2026-11-23T06:40:00.000Z and 2026-11-23T06:41:02.125Z\n',
    );
    expect(parseGapNotice(line)).toEqual({ host: 'web1', reasons: { 'lost-in-flight': 34, 'queue-full': 1200 }, from, to, total: 1234 });
  });

  it('without a host tag (--no-tag)', () => {
    const d = new Date(0);
    const line = formatGapNotice({ reasons: { 'spool-full': 5 }, from: d, to: d });
    expect(line.toString().startsWith('spread-pipe: lost 5 lines (spool-full=5) between ')).toBe(true);
    expect(parseGapNotice(line)).toMatchObject({ total: 5, reasons: { 'spool-full': 5 } });
    expect(parseGapNotice(line)?.host).toBeUndefined();
  });

  it('other lines are not notices', () => {
    expect(parseGapNotice('web1 GET / 200')).toBeUndefined();
    expect(parseGapNotice('web1 spread-pipe: lost many lines')).toBeUndefined();
    expect(parseGapNotice('web1 spread-pipe: lost 3 lines (x) between 2026 and then')).toBeUndefined();
  });

  it('GapTally sums reasons between notices, first and last time', () => {
    const t = new GapTally();
    expect(t.take('h')).toBeUndefined();
    t.add('queue-full', 3, new Date(1000));
    t.add('queue-full', 2, new Date(2000));
    t.add('lost-in-flight', 1, new Date(3000));
    t.add('queue-full', 0, new Date(9000));
    expect(t.pending).toBe(6);
    const n = parseGapNotice(t.take('h')!);
    expect(n).toMatchObject({ host: 'h', total: 6, reasons: { 'queue-full': 5, 'lost-in-flight': 1 } });
    expect(n!.from.getTime()).toBe(1000);
    expect(n!.to.getTime()).toBe(3000);
    expect(t.pending).toBe(0);
    expect(t.take('h')).toBeUndefined();
  });
});
